// The compiled architecture of a model file: the .llm model its config values were read for (the
// bundled one that declares the file's architecture name, or the one given with `--arch`) with those
// values bound — the same .llm text `llmc import` writes, compiled from memory. The file's values
// override the model's own, `--set` overrides both.

import { compileFile, type Compiled } from "../../compiler/compile.js";
import { formatDiagnostic } from "../../compiler/base/diagnostics.js";
import { join } from "../../compiler/base/files.js";
import { sanitizeModelName, writeLlm, type ImportedModel } from "../../compiler/import/write-llm.js";
import { bundledModelsDir } from "../../paths.js";
import { InputError } from "./errors.js";

/** The KV cache is sized for this many positions unless asked for more: a model trained for 128K
 *  positions would otherwise need gigabytes of cache before its first token. */
export const DEFAULT_MAX_SEQ_LEN = 4096;

export interface ArchitectureOptions {
  /** Config values to set, as `--set name=value` does. */
  overrides?: ReadonlyMap<string, string>;
  /** The KV cache's length; default the model's max_seq_len, at most DEFAULT_MAX_SEQ_LEN. */
  maxSeqLen?: number;
  /** .llm sources in memory by absolute path, for the architecture's imports (ModelSource.files). */
  files?: ReadonlyMap<string, string>;
}

export function compileArchitecture(imported: ImportedModel, name: string, source: string, opts: ArchitectureOptions = {}): Compiled {
  const overrides = new Map(opts.overrides ?? []);
  if (opts.maxSeqLen !== undefined) {
    if (!Number.isSafeInteger(opts.maxSeqLen) || opts.maxSeqLen <= 0) throw new InputError(`maxSeqLen must be a positive integer, got ${opts.maxSeqLen}`);
    overrides.set("max_seq_len", String(opts.maxSeqLen));
  }
  const modelName = sanitizeModelName(name, imported.arch);
  // Among the bundled models, so that the import of a bundled architecture finds it.
  const root = join(bundledModelsDir(), "imported", `${modelName}.llm`);
  const overlay = new Map([...(opts.files ?? []), [root, writeLlm(imported, { source, modelName })]]);
  const compile = () => {
    const res = compileFile(root, { overrides, overlay });
    if (!res.compiled) {
      const errors = res.diagnostics.filter((d) => d.severity === "error");
      throw new InputError(
        `${source}: the model's architecture does not compile:\n\n${errors.map((d) => formatDiagnostic(d, res.sources)).join("\n\n")}`,
        { list: errors, sources: res.sources },
      );
    }
    return res.compiled;
  };
  const compiled = compile();
  const maxSeqLen = compiled.model.config.get("max_seq_len")?.value?.value;
  if (!overrides.has("max_seq_len") && typeof maxSeqLen === "number" && maxSeqLen > DEFAULT_MAX_SEQ_LEN) {
    overrides.set("max_seq_len", String(DEFAULT_MAX_SEQ_LEN));
    return compile();
  }
  return compiled;
}

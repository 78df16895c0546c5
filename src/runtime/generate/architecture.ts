// The compiled architecture of a model file: the bundled .llm architecture its metadata names, with
// the file's config values bound — the same .llm text `llmc import` writes, compiled from memory —
// or a .llm file the user gives instead (`--arch`). An abstract architecture file (one that leaves
// config values unbound, like models/llama.llm) gets the file's values; a concrete one is used as is.

import { resolve, join } from "node:path";
import { checkFile } from "../../compiler/check/index.js";
import { compileFile, type Compiled } from "../../compiler/compile.js";
import { formatDiagnostic, type Diagnostic } from "../../compiler/base/diagnostics.js";
import { formatValue, sanitizeModelName, writeLlm, type ImportedModel } from "../../compiler/import/write-llm.js";
import { bundledModelsDir } from "../../paths.js";
import { InputError } from "./errors.js";

/** The KV cache is sized for this many positions unless asked for more: a model trained for 128K
 *  positions would otherwise need gigabytes of cache before its first token. */
export const DEFAULT_MAX_SEQ_LEN = 4096;

export interface ArchitectureOptions {
  /** A .llm file to use instead of the bundled architecture the file names. */
  arch?: string;
  /** Config values to set, as `--set name=value` does. */
  overrides?: ReadonlyMap<string, string>;
  /** The KV cache's length; default the model's max_seq_len, at most DEFAULT_MAX_SEQ_LEN. */
  maxSeqLen?: number;
}

export function compileArchitecture(imported: ImportedModel, name: string, source: string, opts: ArchitectureOptions = {}): Compiled {
  const overrides = new Map(opts.overrides ?? []);
  if (opts.maxSeqLen !== undefined) {
    if (!Number.isSafeInteger(opts.maxSeqLen) || opts.maxSeqLen <= 0) throw new InputError(`maxSeqLen must be a positive integer, got ${opts.maxSeqLen}`);
    overrides.set("max_seq_len", String(opts.maxSeqLen));
  }
  const { root, overlay } = opts.arch === undefined ? bundled(imported, name, source) : userArchitecture(imported, name, opts.arch);
  const compile = () => {
    const res = compileFile(root, { overrides, overlay });
    if (!res.compiled) {
      const errors = res.diagnostics.filter((d) => d.severity === "error");
      throw new InputError(
        `${opts.arch ?? source}: the model's architecture does not compile:\n\n${errors.map((d) => formatDiagnostic(d, res.sources)).join("\n\n")}`,
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

/** The imported .llm text, at a path among the bundled models so that its import finds the architecture. */
function bundled(imported: ImportedModel, name: string, source: string) {
  const modelName = sanitizeModelName(name, imported.arch);
  const root = join(bundledModelsDir(), "imported", `${modelName}.llm`);
  return { root, overlay: new Map([[root, writeLlm(imported, { source, modelName })]]) };
}

function userArchitecture(imported: ImportedModel, name: string, archPath: string) {
  const abs = resolve(archPath);
  const check = checkFile(abs);
  const errors = check.diagnostics.filter((d: Diagnostic) => d.severity === "error");
  if (errors.length > 0 || !check.model) {
    const text = errors.length > 0 ? errors.map((d) => formatDiagnostic(d, check.program.sources)).join("\n\n") : `${archPath} declares no model`;
    throw new InputError(`${archPath}: the architecture file has errors:\n\n${text}`, { list: errors, sources: check.program.sources });
  }
  const base = check.model;
  if (base.unbound.length === 0) return { root: abs, overlay: undefined };
  // Bind the file's values that the architecture declares, on a model extending it.
  const bindings = imported.bindings.filter((b) => base.config.has(b.name));
  const modelName = `${sanitizeModelName(name, imported.arch)}_${base.name}`;
  const root = join(bundledModelsDir(), "imported", `${modelName}.llm`);
  const text = [
    `// ${modelName}: ${archPath} with the config values of ${name}.`,
    `import ${JSON.stringify(abs)}`,
    ``,
    `model ${modelName} extends ${base.name} {`,
    `  config {`,
    ...bindings.map((b) => `    ${b.name} = ${formatValue(b.value)}`),
    `  }`,
    `}`,
    ``,
  ].join("\n");
  return { root, overlay: new Map([[root, text]]) };
}

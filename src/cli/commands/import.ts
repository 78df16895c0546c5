// `llmc import FILE [-o OUT.llm] [--name NAME] [--arch ARCH.llm]`: write a .llm file that binds a
// concrete model's hyper-parameters on top of its architecture (the bundled .llm that declares the
// file's architecture name, or ARCH.llm), from a Hugging Face config.json (or the directory holding
// one) or from a GGUF file's header.

import { open, readFile, stat, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { parseArgs } from "node:util";
import { parseModule } from "../../compiler/parse/index.js";
import { formatDiagnostic } from "../../compiler/base/diagnostics.js";
import { architectureFile, type Architecture } from "../../compiler/import/architectures.js";
import { importGgufMetadata, readGgufHeader } from "../../compiler/import/gguf-metadata.js";
import { importHfConfig } from "../../compiler/import/hf-config.js";
import { ImportError, modelNameProblem, sanitizeModelName, writeLlm, type ImportedModel } from "../../compiler/import/write-llm.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";

export const importUsage = `usage: llmc import FILE [-o OUT.llm] [--name NAME] [--arch ARCH.llm]

FILE is a Hugging Face config.json (or a directory holding one) or a .gguf file. Writes a .llm file
that extends the model's architecture with its config values, to OUT.llm or to standard output. The
architecture is the bundled .llm that declares the file's GGUF general.architecture or HF model_type.

options:
  -o, --output OUT.llm   write here instead of standard output
  --name NAME            the model's name in the .llm file (default: from OUT.llm, the file or its folder)
  --arch ARCH.llm        read the config values for the last model of this file, and extend it`;

export async function runImport(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: "string", short: "o" },
      name: { type: "string" },
      arch: { type: "string" },
    },
  });
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? "missing FILE" : `expected one FILE, got ${positionals.length}`, importUsage);
  }
  const problem = values.name === undefined ? null : modelNameProblem(values.name);
  if (problem) throw new UsageError(`--name '${values.name}' cannot name the model: ${problem}`, importUsage);

  try {
    const source = await resolveSource(positionals[0]!);
    const arch = values.arch === undefined ? undefined : userArchitecture(values.arch);
    const model =
      source.kind === "gguf"
        ? importGgufMetadata(await readGgufHeader(source.path), source.path, arch)
        : importHfConfig(await readJson(source.path), source.path, undefined, arch);
    for (const w of model.warnings) io.err(`llmc import: warning: ${w}\n`);
    const modelName = values.name ?? sanitizeModelName(defaultName(source, model, values.output), model.arch);
    const text = writeLlm(model, { source: source.path, modelName });

    // The text is generated, so a diagnostic here is a bug in the writer, not in the input.
    const { diagnostics } = parseModule(values.output ?? "<import>", text);
    if (diagnostics.length > 0) throw new Error(`generated .llm does not parse: ${diagnostics[0]!.message}\n${text}`);

    if (values.output === undefined) {
      io.out(text);
    } else {
      try {
        await writeFile(values.output, text);
      } catch (e) {
        throw new ImportError(`cannot write ${values.output}: ${reason(e)}`);
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof ImportError) {
      io.err(`llmc import: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

function userArchitecture(path: string): Architecture {
  const res = architectureFile(path);
  if ("arch" in res) return res.arch;
  const text = res.errors.length > 0 ? res.errors.map((d) => formatDiagnostic(d, res.sources)).join("\n\n") : `${path} declares no model`;
  throw new ImportError(`${path}: the architecture file has errors:\n\n${text}`);
}

interface Source {
  kind: "hf" | "gguf";
  path: string;
}

const GGUF_MAGIC = "GGUF";

/** A directory means its config.json; a file is GGUF when it starts with the GGUF magic, else JSON. */
async function resolveSource(path: string): Promise<Source> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw new ImportError(`cannot read ${path}: ${reason(e)}`);
  }
  if (info.isDirectory()) {
    const config = join(path, "config.json");
    try {
      await stat(config);
    } catch {
      throw new ImportError(`${path} is a directory without a config.json`);
    }
    return { kind: "hf", path: config };
  }
  let magic = "";
  try {
    const fh = await open(path, "r");
    try {
      const buf = Buffer.alloc(4);
      const { bytesRead } = await fh.read(buf, 0, 4, 0);
      magic = buf.subarray(0, bytesRead).toString("latin1");
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new ImportError(`cannot read ${path}: ${reason(e)}`);
  }
  return { kind: magic === GGUF_MAGIC ? "gguf" : "hf", path };
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ImportError(`cannot read ${path}: ${reason(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const hint = extname(path).toLowerCase() === ".gguf" ? " (and it does not start with the GGUF magic)" : "";
    throw new ImportError(`${path} is not valid JSON${hint}: ${reason(e)}`);
  }
}

/** -o's file name, else the name a GGUF gives itself, else the config's folder (for config.json) or file name. */
function defaultName(source: Source, model: ImportedModel, output: string | undefined): string {
  if (output !== undefined) return stem(output);
  if (model.fileModelName) return model.fileModelName;
  if (basename(source.path) === "config.json") {
    const folder = basename(dirname(source.path));
    if (folder !== "" && folder !== "." && folder !== "..") return folder;
  }
  return stem(source.path);
}

function stem(path: string): string {
  const base = basename(path);
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return "no such file or directory";
  if (err.code === "EACCES") return "permission denied";
  if (err.code === "EISDIR") return "is a directory";
  return err instanceof Error ? err.message : String(e);
}

// GGUF header → config values of the .llm architecture that declares the file's
// `general.architecture` (or the one given with --arch). The header is read with @huggingface/gguf
// (metadata and tensor infos only; no tensor data). Each config value comes from the keys its .llm
// declares (config-keys.ts): llama.cpp's `{arch}.embedding_length`, …, and what only the tensor list
// says (tied output, attention biases, LLaMA 3.1 RoPE factors) as `tensor "…"` keys.

import { gguf } from "@huggingface/gguf";
import { acceptedNames, findArchitecture, supportedNames, type Architecture } from "./architectures.js";
import { readConfig } from "./config-keys.js";
import { GENERAL_KEYS } from "./gguf-keys.js";
import type { TensorShapes } from "./tensor-check.js";
import { ImportError, type ImportedModel } from "./write-llm.js";

/** What the importer needs from a GGUF file: its metadata and the names of its tensors, with their
 *  shapes (row-major, as the loader reads them) where the reader has them. */
export interface GgufHeader {
  metadata: Record<string, unknown>;
  tensorNames: string[];
  tensorShapes?: TensorShapes;
}

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  try {
    const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
    return {
      metadata: metadata as Record<string, unknown>,
      tensorNames: tensorInfos.map((t) => t.name),
      // GGUF lists dims fastest first.
      tensorShapes: new Map(tensorInfos.map((t) => [t.name, t.shape.map(Number).reverse()])),
    };
  } catch (e) {
    throw new ImportError(`${path}: cannot read the GGUF header: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Reads a GGUF header's config values; `arch` is the model to read them for (default: the bundled one that declares the file's architecture). */
export function importGgufMetadata(header: GgufHeader, file: string, arch?: Architecture): ImportedModel {
  const md = header.metadata;
  const archName = md[GENERAL_KEYS.architecture];
  if (archName === undefined && !arch) {
    throw new ImportError(`${file}: missing required key "${GENERAL_KEYS.architecture}" (supported: ${supportedNames("gguf").join(", ")})`);
  }
  const name = typeof archName === "string" ? archName : "";
  const architecture = arch ?? findArchitecture("gguf", name);
  if (!architecture) {
    throw new ImportError(
      `${file}: unsupported ${GENERAL_KEYS.architecture} ${JSON.stringify(archName)}; supported architectures: ${supportedNames("gguf").join(", ")} ` +
        `(or give a .llm that declares it: --arch FILE.llm)`,
    );
  }
  const warnings: string[] = [];
  const accepted = acceptedNames(architecture.model, "gguf");
  if (arch && !accepted.includes(name)) {
    warnings.push(
      `${file}: ${GENERAL_KEYS.architecture} is ${JSON.stringify(archName)}, which model '${arch.model.name}' does not declare ` +
        `(${accepted.length > 0 ? `it declares gguf ${accepted.map((n) => JSON.stringify(n)).join(" | ")}` : "it declares no gguf name"}); its keys are read as that model's`,
    );
  }
  const read = readConfig(architecture, {
    format: "gguf",
    file,
    arch: name,
    get: (key) => (Object.hasOwn(md, key) ? md[key] : undefined),
    modelKeys: Object.keys(md).filter((k) => name !== "" && k.startsWith(`${name}.`)),
    tensors: { names: new Set(header.tensorNames), ...(header.tensorShapes ? { shapes: header.tensorShapes } : {}), weights: "the file" },
  });
  const modelName = md[GENERAL_KEYS.name];
  return {
    arch: architecture.model.name,
    archImport: architecture.importPath,
    origin: `GGUF, ${GENERAL_KEYS.architecture} ${JSON.stringify(archName)}`,
    fileModelName: typeof modelName === "string" && modelName.trim() !== "" ? modelName : null,
    bindings: read.bindings,
    warnings: [...warnings, ...read.warnings],
  };
}

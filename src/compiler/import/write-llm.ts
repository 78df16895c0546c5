// What `llmc import` produces: the config values of one concrete model, bound on top of the
// architecture that declares the file's architecture name (or the one given with --arch), and the
// .llm text that records them. The readers (hf-config.ts, gguf-metadata.ts) turn a file's
// hyper-parameters into an ImportedModel; writeLlm prints it.

import { bundledModelNames } from "./architectures.js";

/** One bound config value, typed as the parameter it binds is declared in the .llm file. */
export type ConfigValue =
  | { type: "int"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "str"; value: string }
  | { type: "enum"; value: string };

export interface ConfigBinding {
  name: string;
  value: ConfigValue;
}

export interface ImportedModel {
  /** The model the import extends. */
  arch: string;
  /** Where that model is, as the import's `import` line says it: "llama.llm" (bundled) or a path. */
  archImport: string;
  /** Says what the file is and what chose the architecture, for the header comment. */
  origin: string; // e.g. `Hugging Face config.json, model_type "llama"`
  /** A name the file gives the model itself (GGUF `general.name`), if any. */
  fileModelName: string | null;
  bindings: ConfigBinding[];
  /** What the user should know: keys the architecture does not declare, a name it does not declare. */
  warnings: string[];
}

/** A file that cannot be imported; the message says which file and what is wrong with it. */
export class ImportError extends Error {
  override name = "ImportError";
}

// Keywords and type names of the .llm language: not usable as a model name.
const RESERVED = new Set([
  "import", "fn", "model", "extends", "config", "weights", "state", "require", "else", "return", "for", "in",
  "true", "false", "gguf", "hf", "optional", "when", "if", "drop", "required", "ignore", "int", "f32", "f16", "bf16", "i32", "bool",
  "str",
]);

/**
 * Turns a file or model name ("Meta-Llama-3-8B", "TinyLlama 1.1B Chat") into a .llm identifier
 * (`meta_llama_3_8b`). A name that would clash with a keyword or with the architecture it extends
 * gets a suffix.
 */
export function sanitizeModelName(raw: string, arch: string): string {
  let name = raw
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_+|_+$/g, "");
  if (name === "") name = `${arch}_model`;
  if (/^[0-9]/.test(name)) name = `m_${name}`;
  if (modelNameProblem(name) || name === arch) name = `${name}_model`;
  return name;
}

/** Why `name` cannot name an imported model, or null when it can. */
export function modelNameProblem(name: string): string | null {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return "it is not an identifier ([A-Za-z_][A-Za-z0-9_]*)";
  if (RESERVED.has(name)) return "it is a keyword of the .llm language";
  if (bundledModelNames().includes(name)) return "it is the name of a bundled architecture";
  return null;
}

export interface WriteOptions {
  /** The file the values came from, as the user named it. */
  source: string;
  /** The model's name in the .llm file; must already be a valid identifier (see sanitizeModelName). */
  modelName: string;
}

export function writeLlm(model: ImportedModel, opts: WriteOptions): string {
  const lines = [
    `// ${opts.modelName}: imported by \`llmc import\` from ${opts.source}`,
    `// (${model.origin}).`,
    `import ${JSON.stringify(model.archImport)}`,
    ``,
    `model ${opts.modelName} extends ${model.arch} {`,
    `  config {`,
    ...model.bindings.map((b) => `    ${b.name} = ${formatValue(b.value)}`),
    `  }`,
    `}`,
    ``,
  ];
  return lines.join("\n");
}

export function formatValue(v: ConfigValue): string {
  switch (v.type) {
    case "int":
      return String(v.value);
    case "f32":
      return formatFloat(v.value);
    case "bool":
      return v.value ? "true" : "false";
    case "str":
    case "enum":
      return JSON.stringify(v.value);
  }
}

/** A float literal that reads back as the same number: `500000.0`, `1e-5`, `0.02`. */
function formatFloat(x: number): string {
  if (x === 0) return "0.0";
  const magnitude = Math.abs(x);
  // Very small values read better in exponent form (1e-5, not 0.00001).
  const text = magnitude < 1e-3 ? x.toExponential() : String(x);
  const plain = text.replace("e+", "e");
  return /[.e]/.test(plain) ? plain : `${plain}.0`;
}

// What a model file says before its weights are read: the architecture and config values (GGUF
// metadata or Hugging Face config.json, through the importers `llmc import` uses, read by the keys
// the architecture's .llm declares), the tokenizer and the chat template. A GGUF file holds all of
// it; a Hugging Face folder holds config.json, tokenizer.json (+ tokenizer_config.json) and
// safetensors files.

import { formatDiagnostic } from "../../compiler/base/diagnostics.js";
import { basename, dirname, extname, join } from "../../compiler/base/files.js";
import { architectureFile, type Architecture } from "../../compiler/import/architectures.js";
import { importGgufMetadata } from "../../compiler/import/gguf-metadata.js";
import { importHfConfig } from "../../compiler/import/hf-config.js";
import type { ImportedModel } from "../../compiler/import/write-llm.js";
import { detectChatTemplate, tokenizerFromGGUF, tokenizerFromJSON, type ChatTemplate, type Tokenizer } from "../tokenizer/index.js";
import { fileHead, pathKind, readTextIfExists } from "../weights/file.js";
import { openGGUF, type GGUFFile } from "../weights/gguf-reader.js";
import { readTensorShapes } from "../weights/loader.js";
import { InputError } from "./errors.js";

export interface ModelSource {
  format: "gguf" | "hf";
  /** What the weight loader is given: the .gguf file, or the Hugging Face folder. */
  weightsPath: string;
  imported: ImportedModel;
  tokenizer: Tokenizer;
  /** The chat template the file names or implies, if it is one llmc knows. */
  chatTemplate: ChatTemplate | undefined;
  /** A name for the model: the file's own (GGUF general.name), else the file or folder name. */
  name: string;
  /**
   * .llm sources by absolute path that are not on disk but that the architecture needs when it is
   * compiled: the architecture given in memory (a browser's `llm`) and the files it imports.
   */
  files?: ReadonlyMap<string, string>;
}

const GGUF_MAGIC = "GGUF";

/**
 * Reads a .gguf file's header, or a Hugging Face folder's (or its safetensors file's folder's) JSON
 * files; `arch` is a .llm file whose model to read the config values for (`--arch`).
 */
export async function readModelSource(path: string, opts: { arch?: string } = {}): Promise<ModelSource> {
  const kind = await pathKind(path);
  if (typeof kind !== "string") throw new InputError(`${path}: ${kind.error}`);
  const arch = opts.arch === undefined ? null : userArchitecture(opts.arch);
  if (kind === "directory") return readHfFolder(path, path, arch);
  if (extname(path).toLowerCase() === ".safetensors") return readHfFolder(dirname(path), path, arch);
  if ((await magic(path)) !== GGUF_MAGIC) {
    throw new InputError(`${path} is not a GGUF file (it does not start with "GGUF"), nor a Hugging Face model folder or .safetensors file`);
  }
  return readGguf(path, arch);
}

function userArchitecture(path: string): Architecture {
  const res = architectureFile(path);
  if ("arch" in res) return res.arch;
  const text = res.errors.length > 0 ? res.errors.map((d) => formatDiagnostic(d, res.sources)).join("\n\n") : `${path} declares no model`;
  throw new InputError(`${path}: the architecture file has errors:\n\n${text}`, { list: res.errors, sources: res.sources });
}

async function magic(path: string): Promise<string> {
  const head = await fileHead(path, 4).catch((e: Error) => {
    throw new InputError(`${path}: cannot open it (${e.message})`);
  });
  return String.fromCharCode(...head);
}

async function readGguf(path: string, arch: Architecture | null): Promise<ModelSource> {
  const file = await openGGUF(path);
  try {
    return ggufModelSource(file, arch);
  } finally {
    await file.close();
  }
}

/**
 * What an open GGUF file says about its model (a browser's download, or a file readGguf opened);
 * `files`: the in-memory sources `arch` was read from (see ModelSource.files).
 */
export function ggufModelSource(file: GGUFFile, arch: Architecture | null, files?: ReadonlyMap<string, string>): ModelSource {
  const path = file.path;
  const metadata = file.metadata as Record<string, unknown>;
  // The config is checked against the tensor headers before anything is compiled or allocated.
  const tensorShapes = new Map([...file.tensors].map(([n, t]) => [n, [...t.shape]]));
  const imported = importGgufMetadata({ metadata, tensorNames: [...file.tensors.keys()], tensorShapes }, path, arch ?? undefined);
  const tokenizer = tokenizerOrError(path, () => tokenizerFromGGUF(metadata));
  const name = imported.fileModelName ?? stem(path);
  return { format: "gguf", weightsPath: path, imported, tokenizer, chatTemplate: detectChatTemplate(metadata), name, ...(files ? { files } : {}) };
}

async function readHfFolder(dir: string, given: string, arch: Architecture | null): Promise<ModelSource> {
  const config = await readJson(join(dir, "config.json"), `${given}: a Hugging Face model needs config.json beside its weights`);
  const tokenizerJson = await readJson(join(dir, "tokenizer.json"), `${given}: a Hugging Face model needs tokenizer.json beside its weights`);
  const tokenizerConfig = await readJson(join(dir, "tokenizer_config.json"), null);
  const tokenizer = tokenizerOrError(join(dir, "tokenizer.json"), () => tokenizerFromJSON(tokenizerJson, tokenizerConfig ?? undefined));
  // The config is checked against the checkpoint's tensor headers before anything is compiled or allocated.
  const { file, shapes } = await readTensorShapes(dir);
  const imported = importHfConfig(config, join(dir, "config.json"), { shapes, weights: file }, arch ?? undefined);
  const template = chatTemplateText(tokenizerConfig);
  const chatTemplate = template === undefined ? undefined : detectChatTemplate({ "tokenizer.chat_template": template }, specialTokenTexts(tokenizerConfig));
  return { format: "hf", weightsPath: dir, imported, tokenizer, chatTemplate, name: basename(dir) };
}

/** tokenizer_config.json's bos_token and eos_token: strings, or objects with their `content`. */
function specialTokenTexts(config: unknown): { bosToken?: string; eosToken?: string } {
  if (typeof config !== "object" || config === null) return {};
  const text = (v: unknown) => (typeof v === "string" ? v : typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string" ? (v as { content: string }).content : undefined);
  const bosToken = text((config as Record<string, unknown>)["bos_token"]);
  const eosToken = text((config as Record<string, unknown>)["eos_token"]);
  return { ...(bosToken !== undefined ? { bosToken } : {}), ...(eosToken !== undefined ? { eosToken } : {}) };
}

/** tokenizer_config.json's chat_template: a string, or a list of named templates ("default" first). */
function chatTemplateText(config: unknown): string | undefined {
  if (typeof config !== "object" || config === null) return undefined;
  const t = (config as Record<string, unknown>)["chat_template"];
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const named = t.filter((x): x is { name: unknown; template: unknown } => typeof x === "object" && x !== null);
    const chosen = named.find((x) => x.name === "default") ?? named[0];
    return typeof chosen?.template === "string" ? chosen.template : undefined;
  }
  return undefined;
}

/** The parsed file; `missing` is the message when it does not exist, or null when it is optional. */
async function readJson(path: string, missing: string | null): Promise<unknown> {
  let text: string | null;
  try {
    text = await readTextIfExists(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read it (${(e as Error).message})`);
  }
  if (text === null) {
    if (missing === null) return null;
    throw new InputError(missing);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function tokenizerOrError(file: string, make: () => Tokenizer): Tokenizer {
  try {
    return make();
  } catch (e) {
    throw new InputError(`${file}: cannot build the tokenizer: ${(e as Error).message}`);
  }
}

function stem(path: string): string {
  const base = basename(path);
  const ext = extname(base);
  return ext ? base.slice(0, -ext.length) : base;
}

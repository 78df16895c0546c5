// GGUF header → config values of a bundled .llm architecture, chosen by `general.architecture`.
// The header is read with @huggingface/gguf (metadata and tensor infos only; no tensor data). Keys
// follow llama.cpp's names: `{arch}.embedding_length`, `{arch}.attention.head_count`, …, from the
// table in gguf-keys.ts that `llmc init-weights` writes with; what the metadata does not say (tied
// output, attention biases, LLaMA 3.1 RoPE factors) is read off the tensor list, as llama.cpp does
// when it loads the file. The sizes are checked against the tensors (tensor-check.ts): the block
// count against the tensor names, the dims against the shapes where the header gives them.

import { gguf } from "@huggingface/gguf";
import {
  GENERAL_KEYS, GGUF_ARCHITECTURES, GGUF_TENSOR_NAMES, HPARAM_KEYS as K, TOKENIZER_KEYS, hparamKey, type HParamKey,
} from "./gguf-keys.js";
import { checkConfigAgainstTensors, type TensorShapes } from "./tensor-check.js";
import { ImportError, type ConfigBinding, type ImportedModel } from "./write-llm.js";

/** GGUF architectures llmc imports. llama.cpp writes Mistral 7B as "llama". */
export const SUPPORTED_GGUF_ARCHITECTURES = Object.keys(GGUF_ARCHITECTURES);

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

export function importGgufMetadata(header: GgufHeader, file: string): ImportedModel {
  const md = header.metadata;
  const tensors = new Set(header.tensorNames);
  const archName = md[GENERAL_KEYS.architecture];
  if (archName === undefined) {
    throw new ImportError(`${file}: missing required key "${GENERAL_KEYS.architecture}" (supported: ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")})`);
  }
  const arch = typeof archName === "string" && Object.hasOwn(GGUF_ARCHITECTURES, archName) ? GGUF_ARCHITECTURES[archName] : undefined;
  if (!arch) {
    throw new ImportError(
      `${file}: unsupported ${GENERAL_KEYS.architecture} ${JSON.stringify(archName)}; supported architectures: ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")}`,
    );
  }
  const r = new MetadataReader(md, file, archName as string);
  const list: ConfigBinding[] = [];
  const int = (key: HParamKey, value: number) => list.push({ name: key.config, value: { type: "int", value } });
  const f32 = (key: HParamKey, value: number) => list.push({ name: key.config, value: { type: "f32", value } });
  const bool = (name: string, value: boolean) => list.push({ name, value: { type: "bool", value } });

  int(K.vocabSize, vocabSize(r, md, file));
  const dim = r.positiveInt(K.embeddingLength);
  int(K.embeddingLength, dim);
  int(K.blockCount, r.positiveInt(K.blockCount));
  const nHeads = r.uniformPositiveInt(K.headCount);
  int(K.headCount, nHeads);
  int(K.headCountKv, r.has(K.headCountKv) ? r.uniformPositiveInt(K.headCountKv) : nHeads);
  const headDim = r.has(K.keyLength) ? r.positiveInt(K.keyLength) : null;
  // llama.cpp reads a missing key_length as dim / n_heads; bind it explicitly, since an architecture
  // may default head_dim otherwise (Gemma's .llm says 256).
  const effectiveHeadDim = headDim ?? Math.trunc(dim / nHeads);
  int(K.keyLength, effectiveHeadDim);
  if (r.has(K.valueLength) && r.positiveInt(K.valueLength) !== effectiveHeadDim) {
    throw new ImportError(`${file}: value heads of a different size than key heads (${r.key(K.valueLength)}) are not supported`);
  }
  if (r.has(K.ropeDimensionCount) && r.positiveInt(K.ropeDimensionCount) !== effectiveHeadDim) {
    throw new ImportError(
      `${file}: RoPE over part of each head (${r.key(K.ropeDimensionCount)} = ${r.positiveInt(K.ropeDimensionCount)}, head size ${effectiveHeadDim}) is not supported`,
    );
  }
  int(K.feedForwardLength, r.uniformPositiveInt(K.feedForwardLength));
  f32(K.rmsEps, r.positiveNumber(K.rmsEps));
  f32(K.ropeFreqBase, r.has(K.ropeFreqBase) ? r.positiveNumber(K.ropeFreqBase) : 10000);

  // llama.cpp stores LLaMA 3.1 scaling as per-frequency divisors in the tensor rope_freqs.weight.
  const scaling = K.ropeScalingType.config;
  const scalingType = r.has(K.ropeScalingType) ? r.string(K.ropeScalingType) : "none";
  const linearFactor = r.has(K.ropeScalingFactor) ? r.positiveNumber(K.ropeScalingFactor) : r.has(K.ropeScaleLinear) ? r.positiveNumber(K.ropeScaleLinear) : null;
  if (tensors.has(GGUF_TENSOR_NAMES.ropeFreqs)) {
    if (scalingType !== "none") throw new ImportError(`${file}: RoPE frequency factors together with ${r.key(K.ropeScalingType)} "${scalingType}" are not supported`);
    list.push({ name: scaling, value: { type: "enum", value: "factors" } });
  } else if (scalingType === "linear" || (scalingType === "none" && linearFactor !== null && linearFactor !== 1)) {
    if (linearFactor === null) throw new ImportError(`${file}: missing required key "${r.key(K.ropeScalingFactor)}"`);
    list.push({ name: scaling, value: { type: "enum", value: "linear" } });
    f32(K.ropeScalingFactor, linearFactor);
  } else if (scalingType === "none") {
    list.push({ name: scaling, value: { type: "enum", value: "none" } });
  } else {
    throw new ImportError(`${file}: ${r.key(K.ropeScalingType)} "${scalingType}" is not supported (supported: none, linear)`);
  }

  int(K.contextLength, r.positiveInt(K.contextLength));
  // No output tensor: llama.cpp reuses the token embedding.
  bool("tie_embeddings", !tensors.has(GGUF_TENSOR_NAMES.output));
  if (arch === "llama") {
    if (tensors.has(GGUF_TENSOR_NAMES.attnOutputBias0)) bool("attn_bias", true);
    else if (tensors.has(GGUF_TENSOR_NAMES.attnQBias0)) bool("qkv_bias", true);
  }

  const allKeys = Object.values(K);
  checkConfigAgainstTensors(list, header.tensorShapes ?? new Map(header.tensorNames.map((n) => [n, []])), {
    scheme: "gguf",
    file,
    weights: "the file",
    keyOf: (config) => {
      const key = allKeys.find((k) => k.config === config);
      return key ? r.key(key) : config;
    },
  });

  const name = md[GENERAL_KEYS.name];
  return {
    arch,
    origin: `GGUF, ${GENERAL_KEYS.architecture} ${JSON.stringify(archName)}`,
    fileModelName: typeof name === "string" && name.trim() !== "" ? name : null,
    bindings: list,
  };
}

/**
 * GGUF stores most floats as f32, so 1e-5 arrives as 9.99999974e-6. When a value is exactly an f32,
 * take the shortest decimal that rounds to the same f32, which is what the model's author wrote.
 */
function shortestF32(x: number): number {
  if (Math.fround(x) !== x) return x;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

function vocabSize(r: MetadataReader, md: Record<string, unknown>, file: string): number {
  if (r.has(K.vocabSize)) return r.positiveInt(K.vocabSize);
  const tokens = md[TOKENIZER_KEYS.tokens];
  if (Array.isArray(tokens) && tokens.length > 0) return tokens.length;
  throw new ImportError(`${file}: cannot tell the vocabulary size: neither "${r.key(K.vocabSize)}" nor "${TOKENIZER_KEYS.tokens}" is present`);
}

/** Reads `{arch}.…` keys; GGUF integers may arrive as bigint (u64/i64). */
class MetadataReader {
  constructor(
    private readonly md: Record<string, unknown>,
    private readonly file: string,
    private readonly arch: string,
  ) {}

  key(k: HParamKey): string {
    return hparamKey(this.arch, k);
  }

  has(k: HParamKey): boolean {
    const v = this.md[this.key(k)];
    return v !== undefined && v !== null;
  }

  private get(k: HParamKey): unknown {
    if (!this.has(k)) throw new ImportError(`${this.file}: missing required key "${this.key(k)}"`);
    return this.md[this.key(k)];
  }

  private wrong(k: HParamKey, what: string, v: unknown): never {
    const shown = typeof v === "bigint" ? v.toString() : JSON.stringify(v);
    throw new ImportError(`${this.file}: "${this.key(k)}" must be ${what}, got ${shown}`);
  }

  positiveInt(k: HParamKey): number {
    return this.toPositiveInt(k, this.get(k));
  }

  /** A per-layer array is accepted when every layer has the same value. */
  uniformPositiveInt(k: HParamKey): number {
    const v = this.get(k);
    if (!Array.isArray(v)) return this.toPositiveInt(k, v);
    const values = new Set(v.map((x) => this.toPositiveInt(k, x)));
    if (values.size !== 1) throw new ImportError(`${this.file}: "${this.key(k)}" differs between layers, which is not supported`);
    return [...values][0]!;
  }

  private toPositiveInt(k: HParamKey, v: unknown): number {
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n <= 0) this.wrong(k, "a positive integer", v);
    return n;
  }

  positiveNumber(k: HParamKey): number {
    const v = this.get(k);
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) this.wrong(k, "a positive number", v);
    return shortestF32(n);
  }

  string(k: HParamKey): string {
    const v = this.get(k);
    if (typeof v !== "string") this.wrong(k, "a string", v);
    return v;
  }
}

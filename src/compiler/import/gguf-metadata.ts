// GGUF header → config values of a bundled .llm architecture, chosen by `general.architecture`.
// The header is read with @huggingface/gguf (metadata and tensor infos only; no tensor data). Keys
// follow llama.cpp's names: `{arch}.embedding_length`, `{arch}.attention.head_count`, …; what the
// metadata does not say (tied output, attention biases, LLaMA 3.1 RoPE factors) is read off the
// tensor list, as llama.cpp does when it loads the file.

import { gguf } from "@huggingface/gguf";
import { ImportError, type Arch, type ConfigBinding, type ImportedModel } from "./write-llm.js";

/** GGUF architectures and the bundled .llm architecture each maps to. llama.cpp writes Mistral 7B as "llama". */
const ARCHS: Record<string, Arch> = { llama: "llama", qwen2: "qwen2", gemma: "gemma" };
export const SUPPORTED_GGUF_ARCHITECTURES = Object.keys(ARCHS);

/** What the importer needs from a GGUF file: its metadata and the names of its tensors. */
export interface GgufHeader {
  metadata: Record<string, unknown>;
  tensorNames: string[];
}

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  try {
    const { metadata, tensorInfos } = await gguf(path, { allowLocalFile: true });
    return { metadata: metadata as Record<string, unknown>, tensorNames: tensorInfos.map((t) => t.name) };
  } catch (e) {
    throw new ImportError(`${path}: cannot read the GGUF header: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function importGgufMetadata(header: GgufHeader, file: string): ImportedModel {
  const md = header.metadata;
  const tensors = new Set(header.tensorNames);
  const archName = md["general.architecture"];
  if (archName === undefined) {
    throw new ImportError(`${file}: missing required key "general.architecture" (supported: ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")})`);
  }
  const arch = typeof archName === "string" ? ARCHS[archName] : undefined;
  if (!arch) {
    throw new ImportError(
      `${file}: unsupported general.architecture ${JSON.stringify(archName)}; supported architectures: ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")}`,
    );
  }
  const r = new MetadataReader(md, file, archName as string);
  const list: ConfigBinding[] = [];
  const int = (name: string, value: number) => list.push({ name, value: { type: "int", value } });
  const f32 = (name: string, value: number) => list.push({ name, value: { type: "f32", value } });
  const bool = (name: string, value: boolean) => list.push({ name, value: { type: "bool", value } });

  int("vocab_size", vocabSize(r, md, file));
  const dim = r.positiveInt("embedding_length");
  int("dim", dim);
  int("n_layers", r.positiveInt("block_count"));
  const nHeads = r.uniformPositiveInt("attention.head_count");
  int("n_heads", nHeads);
  int("n_kv_heads", r.has("attention.head_count_kv") ? r.uniformPositiveInt("attention.head_count_kv") : nHeads);
  const headDim = r.has("attention.key_length") ? r.positiveInt("attention.key_length") : null;
  if (headDim !== null) int("head_dim", headDim);
  const effectiveHeadDim = headDim ?? Math.trunc(dim / nHeads);
  if (r.has("attention.value_length") && r.positiveInt("attention.value_length") !== effectiveHeadDim) {
    throw new ImportError(`${file}: value heads of a different size than key heads (${r.key("attention.value_length")}) are not supported`);
  }
  if (r.has("rope.dimension_count") && r.positiveInt("rope.dimension_count") !== effectiveHeadDim) {
    throw new ImportError(
      `${file}: RoPE over part of each head (${r.key("rope.dimension_count")} = ${r.positiveInt("rope.dimension_count")}, head size ${effectiveHeadDim}) is not supported`,
    );
  }
  int("ffn_dim", r.uniformPositiveInt("feed_forward_length"));
  f32("norm_eps", r.positiveNumber("attention.layer_norm_rms_epsilon"));
  f32("rope_theta", r.has("rope.freq_base") ? r.positiveNumber("rope.freq_base") : 10000);

  // llama.cpp stores LLaMA 3.1 scaling as per-frequency divisors in the tensor rope_freqs.weight.
  const scalingType = r.has("rope.scaling.type") ? r.string("rope.scaling.type") : "none";
  const linearFactor = r.has("rope.scaling.factor") ? r.positiveNumber("rope.scaling.factor") : r.has("rope.scale_linear") ? r.positiveNumber("rope.scale_linear") : null;
  if (tensors.has("rope_freqs.weight")) {
    if (scalingType !== "none") throw new ImportError(`${file}: RoPE frequency factors together with ${r.key("rope.scaling.type")} "${scalingType}" are not supported`);
    list.push({ name: "rope_scaling", value: { type: "enum", value: "factors" } });
  } else if (scalingType === "linear" || (scalingType === "none" && linearFactor !== null && linearFactor !== 1)) {
    if (linearFactor === null) throw new ImportError(`${file}: missing required key "${r.key("rope.scaling.factor")}"`);
    list.push({ name: "rope_scaling", value: { type: "enum", value: "linear" } });
    f32("rope_factor", linearFactor);
  } else if (scalingType === "none") {
    list.push({ name: "rope_scaling", value: { type: "enum", value: "none" } });
  } else {
    throw new ImportError(`${file}: ${r.key("rope.scaling.type")} "${scalingType}" is not supported (supported: none, linear)`);
  }

  int("max_seq_len", r.positiveInt("context_length"));
  // No output tensor: llama.cpp reuses the token embedding.
  bool("tie_embeddings", !tensors.has("output.weight"));
  if (arch === "llama") {
    if (tensors.has("blk.0.attn_output.bias")) bool("attn_bias", true);
    else if (tensors.has("blk.0.attn_q.bias")) bool("qkv_bias", true);
  }

  const name = md["general.name"];
  return {
    arch,
    origin: `GGUF, general.architecture ${JSON.stringify(archName)}`,
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
  if (r.has("vocab_size")) return r.positiveInt("vocab_size");
  const tokens = md["tokenizer.ggml.tokens"];
  if (Array.isArray(tokens) && tokens.length > 0) return tokens.length;
  throw new ImportError(`${file}: cannot tell the vocabulary size: neither "${r.key("vocab_size")}" nor "tokenizer.ggml.tokens" is present`);
}

/** Reads `{arch}.…` keys; GGUF integers may arrive as bigint (u64/i64). */
class MetadataReader {
  constructor(
    private readonly md: Record<string, unknown>,
    private readonly file: string,
    private readonly arch: string,
  ) {}

  key(suffix: string): string {
    return `${this.arch}.${suffix}`;
  }

  has(suffix: string): boolean {
    const v = this.md[this.key(suffix)];
    return v !== undefined && v !== null;
  }

  private get(suffix: string): unknown {
    if (!this.has(suffix)) throw new ImportError(`${this.file}: missing required key "${this.key(suffix)}"`);
    return this.md[this.key(suffix)];
  }

  private wrong(suffix: string, what: string, v: unknown): never {
    const shown = typeof v === "bigint" ? v.toString() : JSON.stringify(v);
    throw new ImportError(`${this.file}: "${this.key(suffix)}" must be ${what}, got ${shown}`);
  }

  positiveInt(suffix: string): number {
    return this.toPositiveInt(suffix, this.get(suffix));
  }

  /** A per-layer array is accepted when every layer has the same value. */
  uniformPositiveInt(suffix: string): number {
    const v = this.get(suffix);
    if (!Array.isArray(v)) return this.toPositiveInt(suffix, v);
    const values = new Set(v.map((x) => this.toPositiveInt(suffix, x)));
    if (values.size !== 1) throw new ImportError(`${this.file}: "${this.key(suffix)}" differs between layers, which is not supported`);
    return [...values][0]!;
  }

  private toPositiveInt(suffix: string, v: unknown): number {
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n <= 0) this.wrong(suffix, "a positive integer", v);
    return n;
  }

  positiveNumber(suffix: string): number {
    const v = this.get(suffix);
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n <= 0) this.wrong(suffix, "a positive number", v);
    return shortestF32(n);
  }

  string(suffix: string): string {
    const v = this.get(suffix);
    if (typeof v !== "string") this.wrong(suffix, "a string", v);
    return v;
  }
}

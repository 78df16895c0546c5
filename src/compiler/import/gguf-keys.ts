// The GGUF metadata keys llmc reads (`llmc import`, from a file's header into config values) and
// writes (`llmc init-weights`, from config values into a header), in one table so that the two
// directions cannot disagree. The names are llama.cpp's (gguf-py's `Keys`): a hyper-parameter key
// is `{arch}.<suffix>`, e.g. `llama.embedding_length`.

import type { Arch } from "./write-llm.js";

export const GENERAL_KEYS = {
  architecture: "general.architecture",
  name: "general.name",
  alignment: "general.alignment",
  fileType: "general.file_type",
  quantizationVersion: "general.quantization_version",
} as const;

/** A hyper-parameter key: `{arch}.{suffix}`, the GGUF type llama.cpp writes it as, and the .llm config parameter it carries. */
export interface HParamKey {
  readonly suffix: string;
  readonly type: "uint32" | "float32" | "string";
  readonly config: string;
}

export const HPARAM_KEYS = {
  vocabSize: { suffix: "vocab_size", type: "uint32", config: "vocab_size" },
  contextLength: { suffix: "context_length", type: "uint32", config: "max_seq_len" },
  embeddingLength: { suffix: "embedding_length", type: "uint32", config: "dim" },
  blockCount: { suffix: "block_count", type: "uint32", config: "n_layers" },
  feedForwardLength: { suffix: "feed_forward_length", type: "uint32", config: "ffn_dim" },
  headCount: { suffix: "attention.head_count", type: "uint32", config: "n_heads" },
  headCountKv: { suffix: "attention.head_count_kv", type: "uint32", config: "n_kv_heads" },
  // Written only when head_dim is not dim / n_heads (Gemma); llama.cpp defaults them to that.
  keyLength: { suffix: "attention.key_length", type: "uint32", config: "head_dim" },
  valueLength: { suffix: "attention.value_length", type: "uint32", config: "head_dim" },
  rmsEps: { suffix: "attention.layer_norm_rms_epsilon", type: "float32", config: "norm_eps" },
  ropeDimensionCount: { suffix: "rope.dimension_count", type: "uint32", config: "head_dim" },
  ropeFreqBase: { suffix: "rope.freq_base", type: "float32", config: "rope_theta" },
  ropeScalingType: { suffix: "rope.scaling.type", type: "string", config: "rope_scaling" },
  ropeScalingFactor: { suffix: "rope.scaling.factor", type: "float32", config: "rope_factor" },
  // The older name of rope.scaling.factor; read, never written.
  ropeScaleLinear: { suffix: "rope.scale_linear", type: "float32", config: "rope_factor" },
} as const satisfies Record<string, HParamKey>;

/**
 * The hyper-parameters that are exactly one config value each and that every file has: the writer
 * writes each of these from its config value, and the importer reads each back into it.
 */
export const DIRECT_HPARAMS: readonly HParamKey[] = [
  HPARAM_KEYS.vocabSize,
  HPARAM_KEYS.contextLength,
  HPARAM_KEYS.embeddingLength,
  HPARAM_KEYS.blockCount,
  HPARAM_KEYS.feedForwardLength,
  HPARAM_KEYS.headCount,
  HPARAM_KEYS.headCountKv,
  HPARAM_KEYS.rmsEps,
  HPARAM_KEYS.ropeFreqBase,
];

export function hparamKey(arch: string, key: HParamKey): string {
  return `${arch}.${key.suffix}`;
}

/** The vocabulary, as llama.cpp's llama-vocab reads it. */
export const TOKENIZER_KEYS = {
  model: "tokenizer.ggml.model",
  pre: "tokenizer.ggml.pre",
  tokens: "tokenizer.ggml.tokens",
  scores: "tokenizer.ggml.scores",
  tokenType: "tokenizer.ggml.token_type",
  merges: "tokenizer.ggml.merges",
  bosId: "tokenizer.ggml.bos_token_id",
  eosId: "tokenizer.ggml.eos_token_id",
  unkId: "tokenizer.ggml.unknown_token_id",
  padId: "tokenizer.ggml.padding_token_id",
  addBos: "tokenizer.ggml.add_bos_token",
  addEos: "tokenizer.ggml.add_eos_token",
  addSpacePrefix: "tokenizer.ggml.add_space_prefix",
} as const;

/** Tensors llama.cpp recognises by name rather than by metadata. */
export const GGUF_TENSOR_NAMES = {
  output: "output.weight", // absent: the output head is the token embedding
  ropeFreqs: "rope_freqs.weight", // LLaMA 3.1 RoPE frequency divisors
  attnOutputBias0: "blk.0.attn_output.bias",
  attnQBias0: "blk.0.attn_q.bias",
} as const;

/** `general.architecture` values llmc imports, and the bundled architecture each maps to. */
export const GGUF_ARCHITECTURES: Readonly<Record<string, Arch>> = { llama: "llama", qwen2: "qwen2", gemma: "gemma" };

/** The `general.architecture` llama.cpp loads each bundled architecture as: Mistral is "llama" to llama.cpp. */
export const GGUF_ARCHITECTURE_OF: Readonly<Record<Arch, string>> = { llama: "llama", mistral: "llama", qwen2: "qwen2", gemma: "gemma" };

/** llama.cpp's `enum llama_ftype` for files whose matrices are mostly of one type. */
export const GGUF_FILE_TYPES = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, bf16: 32 } as const;

/** ggml's quantization format version, which llama.cpp writes into quantized files. */
export const GGML_QUANTIZATION_VERSION = 2;

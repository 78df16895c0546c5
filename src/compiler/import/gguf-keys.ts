// The format-level GGUF metadata keys: the file's architecture and name, its tensor types, and the
// vocabulary (llama.cpp's names, gguf-py's `Keys`). A model's hyper-parameters (`{arch}.*`) are not
// here: each .llm declares their keys beside its config parameters.

export const GENERAL_KEYS = {
  architecture: "general.architecture",
  name: "general.name",
  alignment: "general.alignment",
  fileType: "general.file_type",
  quantizationVersion: "general.quantization_version",
} as const;

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

/** LLaMA 3.1 RoPE frequency divisors, a tensor llama.cpp recognises by name. */
export const ROPE_FREQS_TENSOR = "rope_freqs.weight";

/** llama.cpp's `enum llama_ftype` for files whose matrices are mostly of one type. */
export const GGUF_FILE_TYPES = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, bf16: 32 } as const;

/** ggml's quantization format version, which llama.cpp writes into quantized files. */
export const GGML_QUANTIZATION_VERSION = 2;

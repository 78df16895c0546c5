// GGUF `tokenizer.ggml.pre` names for byte-level BPE: how text is split into words before BPE.
// The regexes are llama.cpp's (Oniguruma syntax, as in tokenizer.json); several regexes split in turn.

const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const llama3Like = (digits: string) =>
  String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|` +
  digits +
  String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const LLAMA3 = llama3Like(String.raw`\p{N}{1,3}`);
const QWEN2 = llama3Like(String.raw`\p{N}`);

export interface PreTokenizerSpec {
  readonly regexes: readonly string[];
  /** A word that is itself a token is not split by merges (LLaMA 3). */
  readonly ignoreMerges: boolean;
  /** Default for add_bos_token when the GGUF does not say. */
  readonly addBos: boolean;
}

const spec = (regexes: string[], extra: Partial<PreTokenizerSpec> = {}): PreTokenizerSpec => ({
  regexes,
  ignoreMerges: false,
  addBos: false,
  ...extra,
});

const LLAMA3_SPEC = spec([LLAMA3], { ignoreMerges: true, addBos: true });
const GPT2_SPEC = spec([GPT2]);
const QWEN2_SPEC = spec([QWEN2]);
const DIGITS_THEN_GPT2 = spec([String.raw`\p{N}`, GPT2]);

const PRE_TOKENIZERS: Record<string, PreTokenizerSpec> = {
  default: spec([String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, "[0-9][0-9][0-9]"]),
  llama3: LLAMA3_SPEC,
  "llama-v3": LLAMA3_SPEC,
  "llama-bpe": LLAMA3_SPEC,
  falcon3: LLAMA3_SPEC,
  dbrx: spec([LLAMA3]),
  "smaug-bpe": spec([LLAMA3]),
  "gpt-2": GPT2_SPEC,
  "phi-2": GPT2_SPEC,
  "roberta-bpe": GPT2_SPEC,
  mpt: GPT2_SPEC,
  olmo: GPT2_SPEC,
  jais: GPT2_SPEC,
  qwen2: QWEN2_SPEC,
  stablelm2: QWEN2_SPEC,
  megrez: QWEN2_SPEC,
  starcoder: DIGITS_THEN_GPT2,
  refact: DIGITS_THEN_GPT2,
  "command-r": DIGITS_THEN_GPT2,
  smollm: DIGITS_THEN_GPT2,
  codeshell: DIGITS_THEN_GPT2,
  exaone: DIGITS_THEN_GPT2,
  "minerva-7b": DIGITS_THEN_GPT2,
};

/** The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value; a missing value means llama.cpp's "default". */
export function preTokenizerFor(pre: string | undefined): PreTokenizerSpec {
  const name = pre ?? "default";
  if (!Object.hasOwn(PRE_TOKENIZERS, name)) {
    const known = Object.keys(PRE_TOKENIZERS).join(", ");
    throw new Error(`unsupported tokenizer.ggml.pre "${name}" (supported: ${known})`);
  }
  return PRE_TOKENIZERS[name];
}

/** The tokenizer.json pre_tokenizer that splits with `spec` and then maps bytes to GPT-2's alphabet. */
export function byteLevelPreTokenizerJSON(spec: PreTokenizerSpec): Record<string, unknown> {
  return {
    type: "Sequence",
    pretokenizers: [
      ...spec.regexes.map((regex) => ({
        type: "Split",
        pattern: { Regex: regex },
        behavior: "Isolated",
        invert: false,
      })),
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  };
}

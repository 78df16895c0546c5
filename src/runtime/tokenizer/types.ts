// The tokenizer contract the runtime uses, whatever file the vocabulary came from.

/** Token kinds, numbered as GGUF's `tokenizer.ggml.token_type`. */
export const TokenType = {
  Undefined: 0,
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/**
 * How token text maps to bytes.
 * - `sentencepiece`: "▁" stands for a space and `<0xNN>` tokens are raw bytes (LLaMA 1/2, Mistral, Gemma).
 * - `byte-level`: every byte is one character of GPT-2's byte alphabet (LLaMA 3, Qwen2).
 */
export type TokenizerKind = "sentencepiece" | "byte-level";

export interface EncodeOptions {
  /** Prepend the BOS token. Default: the model's `add_bos_token`. */
  addBos?: boolean;
  /** Append the EOS token. Default: the model's `add_eos_token`. */
  addEos?: boolean;
  /**
   * Recognise control tokens written in the text (`<s>`, `<|eot_id|>`), as chat templates need.
   * Default false: such text is tokenized as ordinary characters, so user input cannot forge them.
   * User-defined tokens are always recognised (as in llama.cpp and Hugging Face tokenizers).
   */
  parseSpecial?: boolean;
}

/**
 * A piece of text to encode with others (`Tokenizer.encodeParts`): a chat template's own markup
 * (`parseSpecial: true`, where `<s>` or `<|eot_id|>` are tokens) or what someone wrote (false).
 */
export interface TextPart {
  readonly text: string;
  readonly parseSpecial: boolean;
}

export interface DecodeOptions {
  /** Leave out control and unknown tokens instead of writing their text. Default false. */
  skipSpecial?: boolean;
  /**
   * The ids continue earlier text (e.g. generated after a prompt). SentencePiece tokenizers add a
   * space before the first word of a text and decoding drops it again at the start; a continuation
   * keeps it. Default false.
   */
  continuation?: boolean;
}

/** Turns token ids into text as they arrive, never splitting a multi-byte UTF-8 character. */
export interface StreamingDecoder {
  /** Feeds one id; returns the text it completes ("" while a character is still incomplete). */
  push(id: number): string;
  /** Ends the stream: returns what is held back (an incomplete character becomes U+FFFD) and starts over. */
  flush(): string;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number | undefined;
  /** Every id that ends a turn or the generation: EOS, EOT (`<|eot_id|>`, `<|im_end|>`, …), EOM. */
  readonly eotIds: ReadonlySet<number>;
  /** Whether `encode` adds BOS / EOS unless told otherwise. */
  readonly addBos: boolean;
  readonly addEos: boolean;

  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * Encodes the joined text of `parts` as `encode` does, except that control tokens are recognised
   * only inside the parts that say `parseSpecial` and never across two parts.
   */
  encodeParts(parts: readonly TextPart[], opts?: Omit<EncodeOptions, "parseSpecial">): number[];
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  createDecoder(opts?: DecodeOptions): StreamingDecoder;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  tokenType(id: number): TokenType;
}

// The one Tokenizer implementation. GGUF and tokenizer.json both reduce to the same parts:
// a vocabulary with token types, special ids, and a Hugging Face tokenizer (no added tokens) that
// turns plain text into ids. Special tokens, BOS/EOS and decoding are handled here, once.

import { decodeIds, TokenPieces, Utf8StreamingDecoder } from "./detokenize.js";
import type { HFTokenizer } from "./hf.js";
import { SpecialTokenSplitter } from "./special-tokens.js";
import {
  TokenType,
  type DecodeOptions,
  type EncodeOptions,
  type StreamingDecoder,
  type TextPart,
  type Tokenizer,
  type TokenizerKind,
} from "./types.js";

export interface SpecialIds {
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number | undefined;
  readonly eotIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
}

export interface TokenizerParts {
  readonly kind: TokenizerKind;
  /** Token text by id. */
  readonly tokens: readonly string[];
  readonly types: readonly TokenType[];
  readonly special: SpecialIds;
  /** Normalizer + pre-tokenizer + BPE for text between special tokens. */
  readonly textEncoder: HFTokenizer;
  /**
   * Add a space before the text's first fragment unless it starts with one (Metaspace
   * `prepend_scheme: "first"`). Prefixes added by the text encoder itself are not counted here.
   */
  readonly spaceBeforeText: boolean;
  /** Decoding drops one leading space at the start of a text (SentencePiece's added prefix). */
  readonly stripLeadingSpace: boolean;
  readonly lstrip?: ReadonlySet<number>;
  readonly rstrip?: ReadonlySet<number>;
}

export class VocabTokenizer implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly padId: number | undefined;
  readonly eotIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;

  private readonly ids = new Map<string, number>();
  private readonly splitter: SpecialTokenSplitter;
  private readonly pieces: TokenPieces;

  constructor(private readonly parts: TokenizerParts) {
    const { special } = parts;
    this.kind = parts.kind;
    this.vocabSize = parts.tokens.length;
    this.bosId = special.bosId;
    this.eosId = special.eosId;
    this.unkId = special.unkId;
    this.padId = special.padId;
    this.eotIds = special.eotIds;
    this.addBos = special.addBos && special.bosId !== undefined;
    this.addEos = special.addEos && special.eosId !== undefined;
    // Later duplicates win, as in llama.cpp's token_to_id.
    parts.tokens.forEach((text, id) => {
      if (text !== "") this.ids.set(text, id);
    });
    this.splitter = new SpecialTokenSplitter(parts.tokens, parts.types, parts);
    this.pieces = new TokenPieces(parts.kind, parts.tokens, parts.types, parts.stripLeadingSpace);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.encodeParts([{ text, parseSpecial: opts.parseSpecial ?? false }], opts);
  }

  encodeParts(parts: readonly TextPart[], opts: Omit<EncodeOptions, "parseSpecial"> = {}): number[] {
    const out: number[] = [];
    if ((opts.addBos ?? this.addBos) && this.bosId !== undefined) out.push(this.bosId);
    for (const fragment of this.splitter.split(parts)) {
      if ("id" in fragment) out.push(fragment.id);
      else this.encodeText(fragment.text, fragment.atStart, out);
    }
    if ((opts.addEos ?? this.addEos) && this.eosId !== undefined) out.push(this.eosId);
    return out;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return decodeIds(this.pieces, ids, opts);
  }

  createDecoder(opts: DecodeOptions = {}): StreamingDecoder {
    return new Utf8StreamingDecoder(this.pieces, opts);
  }

  tokenToId(token: string): number | undefined {
    return this.ids.get(token);
  }

  idToToken(id: number): string | undefined {
    const text = this.parts.tokens[id];
    return text === "" ? undefined : text;
  }

  tokenType(id: number): TokenType {
    return this.parts.types[id] ?? TokenType.Undefined;
  }

  private encodeText(text: string, atStart: boolean, out: number[]): void {
    if (this.parts.spaceBeforeText && atStart && !text.startsWith(" ") && !text.startsWith("\u2581")) {
      text = " " + text;
    }
    const { ids, tokens } = this.parts.textEncoder.encode(text, { add_special_tokens: false });
    ids.forEach((id, i) => {
      if (id === undefined) {
        throw new Error(`tokenizer produced "${tokens[i]}", which is not in the vocabulary and there is no unknown token`);
      }
      out.push(id);
    });
  }
}

// Token ids back to text. Every token stands for a run of bytes (llama.cpp's "piece"); text is the
// UTF-8 decoding of the concatenated pieces, so a character may span several tokens (byte fallback,
// byte-level BPE) and streaming must hold back incomplete characters.

import { byteLevelToBytes } from "./byte-level.js";
import {
  TokenType,
  type DecodeOptions,
  type StreamingDecoder,
  type TokenizerKind,
} from "./types.js";

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const SPACE = 0x20;

export class TokenPieces {
  private readonly cache: (Uint8Array | undefined)[];

  constructor(
    private readonly kind: TokenizerKind,
    private readonly tokens: readonly string[],
    private readonly types: readonly TokenType[],
    /** SentencePiece tokenizers add a space before a text; decoding removes it at the start. */
    readonly stripLeadingSpace: boolean,
  ) {
    this.cache = new Array(tokens.length);
  }

  /** The bytes token `id` stands for; empty for tokens that write nothing. */
  bytes(id: number, skipSpecial: boolean): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
      throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.tokens.length})`);
    }
    const type = this.types[id];
    if (type === TokenType.Control || type === TokenType.Unknown) {
      return skipSpecial ? EMPTY : this.cached(id, () => utf8.encode(this.tokens[id]));
    }
    return this.cached(id, () => this.piece(id));
  }

  private cached(id: number, make: () => Uint8Array): Uint8Array {
    return (this.cache[id] ??= make());
  }

  private piece(id: number): Uint8Array {
    const text = this.tokens[id];
    switch (this.types[id]) {
      case TokenType.UserDefined:
        // Added tokens are stored as written, not in the model's alphabet.
        return utf8.encode(text);
      case TokenType.Unused:
      case TokenType.Undefined:
        return EMPTY;
      case TokenType.Byte: {
        const m = BYTE_TOKEN.exec(text);
        if (m) return Uint8Array.of(parseInt(m[1], 16));
        break;
      }
    }
    if (this.kind === "sentencepiece") return utf8.encode(text.replaceAll("\u2581", " "));
    return byteLevelToBytes(text) ?? utf8.encode(text);
  }
}

/** Decodes a whole id sequence in one go (kept separate from the streaming path on purpose). */
export function decodeIds(pieces: TokenPieces, ids: readonly number[], opts: DecodeOptions = {}): string {
  const parts: Uint8Array[] = [];
  let length = 0;
  let strip = pieces.stripLeadingSpace && !opts.continuation;
  for (const id of ids) {
    let bytes = pieces.bytes(id, opts.skipSpecial ?? false);
    if (bytes.length === 0) continue;
    if (strip) {
      if (bytes[0] === SPACE) bytes = bytes.subarray(1);
      strip = false;
    }
    parts.push(bytes);
    length += bytes.length;
  }
  const all = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(all);
}

export class Utf8StreamingDecoder implements StreamingDecoder {
  private decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private strip: boolean;

  constructor(
    private readonly pieces: TokenPieces,
    private readonly opts: DecodeOptions = {},
  ) {
    this.strip = this.initialStrip();
  }

  push(id: number): string {
    let bytes = this.pieces.bytes(id, this.opts.skipSpecial ?? false);
    if (bytes.length === 0) return "";
    if (this.strip) {
      if (bytes[0] === SPACE) bytes = bytes.subarray(1);
      this.strip = false;
    }
    return this.decoder.decode(bytes, { stream: true });
  }

  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    this.strip = this.initialStrip();
    return rest;
  }

  private initialStrip(): boolean {
    return this.pieces.stripLeadingSpace && !this.opts.continuation;
  }
}

// Training text → word frequencies, split as each tokenizer kind will split text when it encodes,
// so that no learned piece spans a boundary the tokenizer never crosses.
//
// - sentencepiece: spaces become "▁" and one "▁" goes before the text (as the tokenizer's
//   normalizer does); a word is a "▁" (at most one) with a run of letters, a single digit (LLaMA
//   splits numbers into digits) or a run of other non-space characters; any other whitespace
//   character and each extra "▁" stand alone. This is SentencePiece's split_by_whitespace,
//   split_by_unicode_script (roughly: letters, digits, the rest) and split_digits.
// - byte-level: the pre-tokenizer regex (LLaMA 3's), then every byte written as GPT-2's character.

import { BYTE_TO_CHAR } from "../byte-level.js";
import { preTokenizerFor } from "../pre-tokenizers.js";
import type { TokenizerKind } from "../types.js";

export const METASPACE = "\u2581";

/** The GGUF `tokenizer.ggml.pre` name of the pre-tokenizer byte-level tokenizers are trained with. */
export const BYTE_LEVEL_PRE = "llama-bpe";

const SENTENCEPIECE_WORD = /\u2581?(?:[\p{L}\p{M}]+|\p{N}|[^\s\p{L}\p{M}\p{N}\u2581]+)|\u2581|\s/gu;

/** Counts the words of texts fed to it, one text (a line, a paragraph, a document) at a time. */
export class WordCounter {
  /** Words as the text has them; byte-level ones are written in GPT-2's alphabet once each, at the end. */
  private readonly seen = new Map<string, number>();
  /** Characters (code points) and words seen. */
  chars = 0;
  words = 0;
  private readonly split: RegExp;

  constructor(readonly kind: TokenizerKind) {
    // LLaMA 3's pre-tokenizer is one regex (others split with several in turn).
    this.split = kind === "sentencepiece" ? SENTENCEPIECE_WORD : new RegExp(preTokenizerFor(BYTE_LEVEL_PRE).regexes[0]!, "gu");
  }

  add(text: string): void {
    if (text === "") return;
    this.chars += codePointCount(text);
    const normalized = this.kind === "sentencepiece" ? METASPACE + text.replaceAll(" ", METASPACE) : text;
    for (const m of normalized.matchAll(this.split)) {
      this.seen.set(m[0], (this.seen.get(m[0]) ?? 0) + 1);
      this.words++;
    }
  }

  /** How many different words. */
  get distinct(): number {
    return this.seen.size;
  }

  /** Word → frequency, each word in the alphabet of the vocabulary (▁ for spaces, or byte characters). */
  get counts(): Map<string, number> {
    if (this.kind === "sentencepiece") return this.seen;
    const encoder = new TextEncoder();
    return new Map([...this.seen].map(([word, n]) => [byteLevelText(encoder.encode(word)), n]));
  }
}

/** Bytes as GPT-2's printable characters ("Ġ" for a space). */
export function byteLevelText(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += BYTE_TO_CHAR[b];
  return out;
}

function codePointCount(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}

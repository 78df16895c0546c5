// A real SentencePiece-style vocabulary for models with random weights (`llmc init-weights`), so
// that their GGUF files tokenize and detokenize text like any other: trained deterministically by
// plain BPE on a small bundled corpus.
//
// The layout is LLaMA's: <unk>, <s>, </s>, the 256 byte tokens <0x00>…<0xFF> (so any text can be
// encoded, through byte fallback), the corpus's characters, then the learned pieces with scores
// that fall in merge order ("▁" marks a space). A vocabulary larger than the corpus can fill gets
// `<unused_N>` tokens at the end; one too small for the byte tokens has none, and text outside its
// characters becomes <unk>.

import { TokenType } from "../tokenizer/types.js";
import { CORPUS } from "./corpus.js";

export interface SentencePieceVocab {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Whether the 256 byte tokens are in the vocabulary. */
  readonly byteFallback: boolean;
  /** Characters and pieces learned from the corpus (the rest, past the specials and bytes, are unused fillers). */
  readonly learned: number;
}

const SPACE = "\u2581";
const SPECIALS = ["<unk>", "<s>", "</s>"] as const;
const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");

/** The smallest vocabulary: the three special tokens. */
export const MIN_VOCAB_SIZE = SPECIALS.length;

export function trainSentencePieceVocab(vocabSize: number, corpus: string = CORPUS): SentencePieceVocab {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new RangeError(`a vocabulary needs at least ${MIN_VOCAB_SIZE} tokens (<unk>, <s>, </s>), got ${vocabSize}`);
  }
  const tokens: string[] = [...SPECIALS];
  const scores: number[] = [0, 0, 0];
  const types: number[] = [TokenType.Unknown, TokenType.Control, TokenType.Control];
  // Bytes only when there is room for them and at least one piece besides.
  const byteFallback = vocabSize >= MIN_VOCAB_SIZE + 256 + 1;
  if (byteFallback) {
    for (let b = 0; b < 256; b++) {
      tokens.push(`<0x${hex(b)}>`);
      scores.push(0);
      types.push(TokenType.Byte);
    }
  }

  // Words as SentencePiece sees them: a space before each, written "▁".
  const wordCounts = new Map<string, number>();
  for (const w of corpus.split(/\s+/)) if (w) wordCounts.set(SPACE + w, (wordCounts.get(SPACE + w) ?? 0) + 1);
  const charCounts = new Map<string, number>();
  for (const [w, n] of wordCounts) for (const c of w) charCounts.set(c, (charCounts.get(c) ?? 0) + n);
  const chars = [...charCounts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!)
    .map(([c]) => c)
    .slice(0, vocabSize - tokens.length);
  const charSet = new Set(chars);

  const merges = learnMerges(wordCounts, charSet, vocabSize - tokens.length - chars.length);
  chars.forEach((c, rank) => {
    tokens.push(c);
    scores.push(-(merges.length + rank)); // below every merge, as SentencePiece orders them
    types.push(TokenType.Normal);
  });
  merges.forEach((piece, i) => {
    tokens.push(piece);
    scores.push(-i);
    types.push(TokenType.Normal);
  });
  const learned = chars.length + merges.length;
  for (let k = 0; tokens.length < vocabSize; k++) {
    tokens.push(`<unused_${k}>`);
    scores.push(-1e9);
    types.push(TokenType.Unused);
  }
  return { tokens, scores, types, unkId: 0, bosId: 1, eosId: 2, byteFallback, learned };
}

/**
 * BPE: repeatedly merge the most frequent adjacent pair of symbols (the first one met on ties, in
 * corpus order), up to `budget` new pieces or until every word is one symbol. Returns the pieces in
 * merge order.
 */
function learnMerges(wordCounts: Map<string, number>, charSet: Set<string>, budget: number): string[] {
  const symbols: string[] = [];
  const idOf = new Map<string, number>();
  const intern = (s: string) => {
    let id = idOf.get(s);
    if (id === undefined) {
      id = symbols.length;
      symbols.push(s);
      idOf.set(s, id);
    }
    return id;
  };
  const words: { ids: number[]; count: number }[] = [];
  for (const [w, count] of wordCounts) {
    const chars = [...w];
    if (chars.every((c) => charSet.has(c)) && chars.length > 1) words.push({ ids: chars.map(intern), count });
  }
  const pieces: string[] = [];
  const known = new Set(charSet);
  const SHIFT = 2 ** 21; // pair key a·SHIFT + b; symbol ids stay far below 2^21
  while (pieces.length < budget) {
    const counts = new Map<number, number>();
    for (const { ids, count } of words) {
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = ids[i]! * SHIFT + ids[i + 1]!;
        counts.set(key, (counts.get(key) ?? 0) + count);
      }
    }
    let bestKey = -1;
    let best = 0;
    for (const [key, n] of counts) {
      if (n > best) {
        best = n;
        bestKey = key;
      }
    }
    if (bestKey < 0) break;
    const a = Math.floor(bestKey / SHIFT);
    const b = bestKey % SHIFT;
    const text = symbols[a]! + symbols[b]!;
    const merged = intern(text);
    if (!known.has(text)) {
      known.add(text);
      pieces.push(text);
    }
    for (const w of words) {
      const ids = w.ids;
      let out = 0;
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          ids[out++] = merged;
          i++;
        } else {
          ids[out++] = ids[i]!;
        }
      }
      ids.length = out;
    }
  }
  return pieces;
}

// Training BPE tokenizers (`llmc tokenizer train`): word frequencies in, a vocabulary with merges out,
// in one of the two layouts the runtime loads.
//
// - sentencepiece (LLaMA 1/2): <unk>, <s>, </s>; the 256 byte tokens <0x00>…<0xFF> (byte fallback);
//   the learned pieces in merge order, scored 0, -1, -2, …; then the characters, most frequent first,
//   scored below every piece, as SentencePiece lays out a BPE model. Characters outside the
//   `characterCoverage` share of the text are left to byte fallback.
// - byte-level (GPT-2 / LLaMA 3): the 256 byte characters, the learned pieces, then the special
//   tokens (<|begin_of_text|>, <|end_of_text|>) at the end, as LLaMA 3 places them.

import { TokenType, type TokenizerKind } from "../types.js";
import { learnMerges, type BPEWord } from "./bpe.js";
import { BYTE_LEVEL_PRE, METASPACE, WordCounter } from "./words.js";
import { BYTE_TO_CHAR } from "../byte-level.js";

export { WordCounter, BYTE_LEVEL_PRE } from "./words.js";
export { tokenizerConfigJSON, tokenizerJSON } from "./tokenizer-json.js";

export const SENTENCEPIECE_SPECIALS = ["<unk>", "<s>", "</s>"] as const;
export const BYTE_LEVEL_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"] as const;

export interface TrainOptions {
  readonly kind: TokenizerKind;
  /** Tokens in the vocabulary, specials and bytes included; fewer only when the text cannot fill it. */
  readonly vocabSize: number;
  /** Pairs seen fewer times are never merged. Default 2. */
  readonly minFrequency?: number;
  /** sentencepiece: the share of the text's characters that get a token of their own. Default 0.9995 (SentencePiece's). */
  readonly characterCoverage?: number;
  /** sentencepiece: include the 256 byte tokens. Default true. */
  readonly byteFallback?: boolean;
  /** byte-level: special tokens after the learned ones, BOS first and EOS second. Default BYTE_LEVEL_SPECIALS. */
  readonly specialTokens?: readonly string[];
  /** Called now and then with the number of pieces learned and the number wanted. */
  readonly onProgress?: (learned: number, wanted: number) => void;
}

export interface TrainedTokenizer {
  readonly kind: TokenizerKind;
  /** Token text by id. */
  readonly tokens: string[];
  readonly types: TokenType[];
  /** sentencepiece: SentencePiece scores (higher merges first); byte-level: all 0. */
  readonly scores: number[];
  /** The merges in the order they were learned (byte-level's merge list). */
  readonly merges: [string, string][];
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number | undefined;
  /** How many special tokens, byte tokens (<0xNN> or byte characters), characters and learned pieces. */
  readonly counts: { readonly specials: number; readonly bytes: number; readonly characters: number; readonly pieces: number };
  /** The size asked for; more than tokens.length when the text has too few pairs to fill it. */
  readonly requestedSize: number;
}

const DEFAULT_MIN_FREQUENCY = 2;
const DEFAULT_COVERAGE = 0.9995;
const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");

/** The smallest vocabulary of these options: its special and byte tokens. */
export function minimumVocabSize(opts: Pick<TrainOptions, "kind" | "byteFallback" | "specialTokens">): number {
  if (opts.kind === "sentencepiece") return SENTENCEPIECE_SPECIALS.length + (opts.byteFallback === false ? 0 : 256);
  return 256 + (opts.specialTokens ?? BYTE_LEVEL_SPECIALS).length;
}

/** Counts the words of `texts` as `kind` splits them. */
export function countWords(kind: TokenizerKind, texts: Iterable<string>): WordCounter {
  const counter = new WordCounter(kind);
  for (const t of texts) counter.add(t);
  return counter;
}

export function trainTokenizer(wordCounts: ReadonlyMap<string, number>, opts: TrainOptions): TrainedTokenizer {
  const minimum = minimumVocabSize(opts);
  if (!Number.isSafeInteger(opts.vocabSize) || opts.vocabSize < minimum) {
    throw new RangeError(`a ${opts.kind} vocabulary needs at least ${minimum} tokens (${describeMinimum(opts)}), got ${opts.vocabSize}`);
  }
  const minFrequency = opts.minFrequency ?? DEFAULT_MIN_FREQUENCY;
  if (!Number.isSafeInteger(minFrequency) || minFrequency < 1) throw new RangeError(`the minimum frequency must be a positive integer, got ${minFrequency}`);
  return opts.kind === "sentencepiece" ? trainSentencePiece(wordCounts, opts, minFrequency) : trainByteLevel(wordCounts, opts, minFrequency);
}

function describeMinimum(opts: TrainOptions): string {
  if (opts.kind === "sentencepiece") return opts.byteFallback === false ? "<unk>, <s>, </s>" : "<unk>, <s>, </s> and 256 byte tokens";
  return `256 byte tokens and ${(opts.specialTokens ?? BYTE_LEVEL_SPECIALS).join(", ")}`;
}

function trainSentencePiece(wordCounts: ReadonlyMap<string, number>, opts: TrainOptions, minFrequency: number): TrainedTokenizer {
  const tokens: string[] = [...SENTENCEPIECE_SPECIALS];
  const types: TokenType[] = [TokenType.Unknown, TokenType.Control, TokenType.Control];
  if (opts.byteFallback !== false) {
    for (let b = 0; b < 256; b++) {
      tokens.push(`<0x${hex(b)}>`);
      types.push(TokenType.Byte);
    }
  }
  const bytes = tokens.length - SENTENCEPIECE_SPECIALS.length;
  const scores: number[] = tokens.map(() => 0);

  const characters = coveredCharacters(wordCounts, opts.characterCoverage ?? DEFAULT_COVERAGE, opts.vocabSize - tokens.length);
  const charId = new Map(characters.map((c, i) => [c, i]));
  // A character left to byte fallback splits a word: no piece spans it.
  const words: BPEWord[] = [];
  for (const [word, count] of wordCounts) {
    let symbols: number[] = [];
    for (const c of word) {
      const id = charId.get(c);
      if (id !== undefined) symbols.push(id);
      else {
        if (symbols.length > 1) words.push({ symbols, count });
        symbols = [];
      }
    }
    if (symbols.length > 1) words.push({ symbols, count });
  }
  const wanted = opts.vocabSize - tokens.length - characters.length;
  const learned = learnMerges(words, characters, {
    newSymbols: wanted,
    minFrequency,
    ...(opts.onProgress ? { onProgress: (n: number) => opts.onProgress!(n, wanted) } : {}),
  });
  const pieces = learned.symbols.slice(characters.length);
  pieces.forEach((piece, i) => {
    tokens.push(piece);
    types.push(TokenType.Normal);
    scores.push(-i);
  });
  characters.forEach((c, i) => {
    tokens.push(c);
    types.push(TokenType.Normal);
    scores.push(-(pieces.length + i));
  });
  return finish({
    kind: "sentencepiece",
    tokens,
    types,
    scores,
    merges: learned.merges.map((m) => [learned.symbols[m.left]!, learned.symbols[m.right]!]),
    bosId: 1,
    eosId: 2,
    unkId: 0,
    counts: { specials: SENTENCEPIECE_SPECIALS.length, bytes, characters: characters.length, pieces: pieces.length },
    requestedSize: opts.vocabSize,
  });
}

/**
 * The most frequent characters that together make up `coverage` of the text (at most `room` of
 * them); ties go to the lower code point. "▁" always counts as covered when it occurs.
 */
function coveredCharacters(wordCounts: ReadonlyMap<string, number>, coverage: number, room: number): string[] {
  if (!(coverage > 0 && coverage <= 1)) throw new RangeError(`the character coverage must be in (0, 1], got ${coverage}`);
  const counts = new Map<string, number>();
  let total = 0;
  for (const [word, n] of wordCounts) {
    for (const c of word) {
      counts.set(c, (counts.get(c) ?? 0) + n);
      total += n;
    }
  }
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!);
  const kept: string[] = [];
  let covered = 0;
  for (const [c, n] of sorted) {
    if (kept.length >= room || (covered >= coverage * total && c !== METASPACE)) break;
    kept.push(c);
    covered += n;
  }
  return kept;
}

function trainByteLevel(wordCounts: ReadonlyMap<string, number>, opts: TrainOptions, minFrequency: number): TrainedTokenizer {
  const specials = [...(opts.specialTokens ?? BYTE_LEVEL_SPECIALS)];
  if (specials.length < 2) throw new RangeError("a byte-level vocabulary needs at least two special tokens (BOS and EOS)");
  // GPT-2's order: the byte characters by code point (the printable bytes first).
  const alphabet = [...BYTE_TO_CHAR].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  const charId = new Map(alphabet.map((c, i) => [c, i]));
  const words: BPEWord[] = [];
  for (const [word, count] of wordCounts) {
    const symbols = Array.from(word, (c) => {
      const id = charId.get(c);
      if (id === undefined) throw new Error(`internal: "${c}" is not a byte-level character`);
      return id;
    });
    if (symbols.length > 1) words.push({ symbols, count });
  }
  const wanted = opts.vocabSize - alphabet.length - specials.length;
  const learned = learnMerges(words, alphabet, {
    newSymbols: wanted,
    minFrequency,
    ...(opts.onProgress ? { onProgress: (n: number) => opts.onProgress!(n, wanted) } : {}),
  });
  const tokens = [...learned.symbols, ...specials];
  const types: TokenType[] = tokens.map((_, i) => (i < learned.symbols.length ? TokenType.Normal : TokenType.Control));
  const firstSpecial = learned.symbols.length;
  return finish({
    kind: "byte-level",
    tokens,
    types,
    scores: tokens.map(() => 0),
    merges: learned.merges.map((m) => [learned.symbols[m.left]!, learned.symbols[m.right]!]),
    bosId: firstSpecial,
    eosId: firstSpecial + 1,
    unkId: undefined,
    counts: { specials: specials.length, bytes: 256, characters: 0, pieces: learned.symbols.length - 256 },
    requestedSize: opts.vocabSize,
  });
}

function finish(t: TrainedTokenizer): TrainedTokenizer {
  const seen = new Set<string>();
  for (const token of t.tokens) {
    // Specials and byte tokens cannot be learned (words split at "<", "|", digits), so this is a bug.
    if (seen.has(token)) throw new Error(`internal: token ${JSON.stringify(token)} occurs twice in the trained vocabulary`);
    seen.add(token);
  }
  return t;
}

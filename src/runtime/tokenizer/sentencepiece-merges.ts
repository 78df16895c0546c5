// SentencePiece BPE (GGUF `llama`) as rank-based BPE.
//
// llama.cpp's SentencePiece tokenizer starts from the characters of the text and repeatedly merges
// the adjacent pair whose concatenation is a token with the best score, the leftmost pair among
// equal scores. Rank-based BPE (Hugging Face's `BPE` model, which we run) merges the adjacent pair
// of lowest rank, the leftmost among equal ranks. The two agree when
//   - every split of a token into two possible symbols (a token, or a single character that may
//     not be a token) is a merge, and
//   - a merge's rank orders like its token's score, with EQUAL ranks for equal scores.
// A merges list cannot express the last point (ranks are list positions, so ties would be broken by
// list order, not position in the text), so the ranks are installed after construction.

import { isBPEModel, type HFTokenizer } from "./hf.js";

export interface ScoredMerges {
  /** Best score first. */
  readonly merges: [string, string][];
  /** `ranks[i]`: dense rank of `merges[i]`'s score (0 = best; equal scores, equal ranks). */
  readonly ranks: number[];
}

export function sentencePieceMerges(tokens: readonly string[], scores: ArrayLike<number>): ScoredMerges {
  // The token a text stands for is the last one with that text, as in llama.cpp.
  const idOf = new Map<string, number>();
  tokens.forEach((text, id) => idOf.set(text, id));

  const candidates: { left: string; right: string; score: number; id: number }[] = [];
  for (const [text, id] of idOf) {
    const bounds = codePointBounds(text);
    if (bounds.length < 3) continue; // a single character is never a merge result
    for (let k = 1; k < bounds.length - 1; k++) {
      const left = text.slice(0, bounds[k]);
      const right = text.slice(bounds[k]);
      const leftIsSymbol = k === 1 || idOf.has(left);
      const rightIsSymbol = k === bounds.length - 2 || idOf.has(right);
      if (leftIsSymbol && rightIsSymbol) candidates.push({ left, right, score: scores[id] ?? 0, id });
    }
  }
  // Stable sort; the order within a score does not matter since those ranks are equal.
  candidates.sort((a, b) => b.score - a.score);

  const merges: [string, string][] = [];
  const ranks: number[] = [];
  let rank = -1;
  let previous = Number.NaN;
  for (const c of candidates) {
    if (c.score !== previous) {
      rank++;
      previous = c.score;
    }
    merges.push([c.left, c.right]);
    ranks.push(rank);
  }
  return { merges, ranks };
}

/** Replaces the list-position ranks of `tokenizer`'s BPE model (built from `merges`) by `ranks`. */
export function installScoreRanks(tokenizer: HFTokenizer, { merges, ranks }: ScoredMerges): void {
  const model = tokenizer.model;
  if (!isBPEModel(model) || model.bpe_ranks.size !== merges.length) {
    throw new Error("expected a BPE model built from the SentencePiece merges");
  }
  // bpe_ranks maps each merge to its position in the merges list.
  for (const [key, position] of model.bpe_ranks) model.bpe_ranks.set(key, ranks[position]);
}

/** UTF-16 offsets of the code point boundaries of `text`, including 0 and text.length. */
function codePointBounds(text: string): number[] {
  const bounds = [0];
  for (let i = 0; i < text.length; ) {
    i += text.codePointAt(i)! > 0xffff ? 2 : 1;
    bounds.push(i);
  }
  return bounds;
}

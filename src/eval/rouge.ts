// ROUGE (Lin, 2004) as Google's rouge-score package computes it: its tokeniser (lowercase, every run
// of characters other than a–z and 0–9 is a space, optional Porter stemming of tokens longer than 3
// characters), ROUGE-N from clipped n-gram overlap, ROUGE-L from the longest common subsequence,
// ROUGE-Lsum from the summary-level union LCS over newline-separated sentences; each with precision,
// recall and F1. Against several references the reference with the best F1 counts (score_multi);
// over a set the scores are averaged, as rouge-score's aggregator's mid value and HF evaluate report.
//
// Stemming uses the `stemmer` package, Martin Porter's original algorithm; rouge-score uses NLTK's
// PorterStemmer, whose default mode adds a few extensions (e.g. "dying" → "die"), so rare words can
// stem differently.

import { stemmer } from "stemmer";

export type RougeType = "rouge1" | "rouge2" | "rougeL" | "rougeLsum";
export const ROUGE_TYPES: readonly RougeType[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

export interface RougeOptions {
  /** Which scores; default all of ROUGE_TYPES. */
  types?: readonly RougeType[];
  /** Porter-stem tokens longer than 3 characters (rouge-score's use_stemmer). Default false. */
  stem?: boolean;
}

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export type RougeScores = Partial<Record<RougeType, RougeScore>>;

/** The mean over the set of each hypothesis' scores against its references (`references[i]` for hypothesis i). */
export function rouge(hypotheses: readonly string[], references: readonly (readonly string[])[], opts: RougeOptions = {}): RougeScores {
  if (hypotheses.length !== references.length) {
    throw new RangeError(`ROUGE needs references for each hypothesis: ${hypotheses.length} hypotheses, ${references.length} reference lists`);
  }
  const types = opts.types ?? ROUGE_TYPES;
  const sums = new Map(types.map((t) => [t, { precision: 0, recall: 0, fmeasure: 0 }]));
  hypotheses.forEach((hyp, i) => {
    const scores = sentenceRouge(hyp, references[i]!, opts);
    for (const t of types) {
      const s = scores[t]!;
      const sum = sums.get(t)!;
      sum.precision += s.precision;
      sum.recall += s.recall;
      sum.fmeasure += s.fmeasure;
    }
  });
  const n = Math.max(hypotheses.length, 1);
  const out: RougeScores = {};
  for (const [t, s] of sums) out[t] = { precision: s.precision / n, recall: s.recall / n, fmeasure: s.fmeasure / n };
  return out;
}

/** One hypothesis against several references: for each type, the reference with the highest F1 (the first on ties). */
export function sentenceRouge(hypothesis: string, references: readonly string[], opts: RougeOptions = {}): RougeScores {
  if (references.length === 0) throw new RangeError("ROUGE needs at least one reference for each hypothesis");
  const types = opts.types ?? ROUGE_TYPES;
  const each = references.map((ref) => rougeScore(ref, hypothesis, opts));
  const out: RougeScores = {};
  for (const t of types) {
    let best = each[0]![t]!;
    for (const s of each) if (s[t]!.fmeasure > best.fmeasure) best = s[t]!;
    out[t] = best;
  }
  return out;
}

/** rouge-score's RougeScorer.score(target, prediction). */
export function rougeScore(target: string, prediction: string, opts: RougeOptions = {}): RougeScores {
  const stem = opts.stem ?? false;
  const out: RougeScores = {};
  for (const t of opts.types ?? ROUGE_TYPES) {
    if (t === "rougeLsum") out[t] = summaryLevelLcs(sentences(target).map((s) => rougeTokens(s, stem)), sentences(prediction).map((s) => rougeTokens(s, stem)));
    else if (t === "rougeL") out[t] = lcsScore(rougeTokens(target, stem), rougeTokens(prediction, stem));
    else out[t] = ngramScore(rougeTokens(target, stem), rougeTokens(prediction, stem), t === "rouge1" ? 1 : 2);
  }
  return out;
}

/** rouge-score's default tokeniser. */
export function rougeTokens(text: string, stem = false): string[] {
  const tokens = text.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(" ");
  return tokens.map((t) => (stem && t.length > 3 ? stemmer(t) : t)).filter((t) => /^[a-z0-9]+$/.test(t));
}

/** ROUGE-Lsum's sentences: the lines of the text, empty ones dropped. */
function sentences(text: string): string[] {
  return text.split("\n").filter((s) => s.length > 0);
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function score(precision: number, recall: number): RougeScore {
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function ngramScore(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const grams = (tokens: readonly string[]) => {
    const counts = new Map<string, number>();
    for (let i = 0; i + n <= tokens.length; i++) {
      const g = tokens.slice(i, i + n).join(" ");
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
    return counts;
  };
  const t = grams(target);
  const p = grams(prediction);
  let overlap = 0;
  for (const [g, c] of t) overlap += Math.min(c, p.get(g) ?? 0);
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return score(overlap / Math.max(total(p), 1), overlap / Math.max(total(t), 1));
}

/** The LCS length table: table[i][j] for ref[0..i) and can[0..j). */
function lcsTable(ref: readonly string[], can: readonly string[]): Int32Array[] {
  const table = Array.from({ length: ref.length + 1 }, () => new Int32Array(can.length + 1));
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      table[i]![j] = ref[i - 1] === can[j - 1] ? table[i - 1]![j - 1]! + 1 : Math.max(table[i - 1]![j]!, table[i]![j - 1]!);
    }
  }
  return table;
}

function lcsScore(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return score(0, 0);
  const lcs = lcsTable(target, prediction)[target.length]![prediction.length]!;
  return score(lcs / prediction.length, lcs / target.length);
}

/**
 * The indices into `ref` of one longest common subsequence, read back from the table as rouge-score
 * does (which one matters for the union LCS).
 */
export function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const t = lcsTable(ref, can);
  const out: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.unshift(i - 1);
      i--;
      j--;
    } else if (t[i]![j - 1]! > t[i - 1]![j]!) j--;
    else i--;
  }
  return out;
}

/**
 * Summary-level LCS (section 3.2 of the ROUGE paper): for each reference sentence, the union of its
 * LCS with every candidate sentence; a token counts as a hit at most as often as it occurs in the
 * reference and in the candidate summary (ROUGE-1.5.5 and rouge-score prevent double counting so).
 */
function summaryLevelLcs(refSentences: readonly string[][], canSentences: readonly string[][]): RougeScore {
  const m = refSentences.reduce((a, s) => a + s.length, 0);
  const n = canSentences.reduce((a, s) => a + s.length, 0);
  if (m === 0 || n === 0) return score(0, 0);
  const tally = (sents: readonly string[][]) => {
    const c = new Map<string, number>();
    for (const s of sents) for (const t of s) c.set(t, (c.get(t) ?? 0) + 1);
    return c;
  };
  const refLeft = tally(refSentences);
  const canLeft = tally(canSentences);
  let hits = 0;
  for (const ref of refSentences) {
    const union = new Set<number>();
    for (const can of canSentences) for (const i of lcsIndices(ref, can)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const t = ref[i]!;
      if ((canLeft.get(t) ?? 0) > 0 && (refLeft.get(t) ?? 0) > 0) {
        hits++;
        canLeft.set(t, canLeft.get(t)! - 1);
        refLeft.set(t, refLeft.get(t)! - 1);
      }
    }
  }
  return score(hits / n, hits / m);
}

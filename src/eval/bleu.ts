// BLEU (Papineni et al., 2002) as sacreBLEU computes it, so that a score printed here can be put
// beside one from `sacrebleu`: the 13a tokeniser of mteval-v13a.pl, n-grams up to 4, clipped counts
// (an n-gram counts at most as often as in the reference that has most of it), the brevity penalty
// against the reference whose length is closest to the hypothesis (the shorter on ties), and the
// score on 0–100. Defaults are sacreBLEU's: "exp" smoothing, corpus BLEU without and sentence BLEU
// with effective order.

export type BleuTokenizer = "13a" | "none";
/** Chen & Cherry (2014)'s methods as sacreBLEU names them: none, floor (1), add-k (2), exp (3, NIST's). */
export type BleuSmoothing = "exp" | "none" | "floor" | "add-k";

export interface BleuOptions {
  /** Default "13a"; "none" splits on whitespace only. */
  tokenize?: BleuTokenizer;
  /** Lowercase hypotheses and references first. Default false. */
  lowercase?: boolean;
  /** Default "exp". */
  smooth?: BleuSmoothing;
  /** For "floor" (default 0.1) and "add-k" (default 1). */
  smoothValue?: number;
  /** The longest n-gram. Default 4. */
  maxNgramOrder?: number;
  /** Average only the orders the hypotheses have n-grams of. Default false for corpus BLEU, true for sentence BLEU. */
  effectiveOrder?: boolean;
}

export interface BleuScore {
  /** 0–100. */
  score: number;
  /** Matched (clipped) n-grams of each order, 1…maxNgramOrder. */
  counts: number[];
  /** Hypothesis n-grams of each order. */
  totals: number[];
  /** Per-order precisions on 0–100, after smoothing. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  /** Hypothesis tokens (sacreBLEU's sys_len). */
  sysLen: number;
  /** Reference tokens, the closest reference for each hypothesis (sacreBLEU's ref_len). */
  refLen: number;
}

const SMOOTH_DEFAULTS: Record<BleuSmoothing, number> = { none: 0, floor: 0.1, "add-k": 1, exp: 0 };

/**
 * Corpus BLEU of `hypotheses`, where `references[i]` holds every reference of hypothesis i (sacreBLEU
 * takes reference streams instead: its references[k][i] is references[i][k] here). The statistics are
 * summed over the corpus before the score is computed, as corpus BLEU is defined.
 */
export function bleu(hypotheses: readonly string[], references: readonly (readonly string[])[], opts: BleuOptions = {}): BleuScore {
  if (hypotheses.length !== references.length) {
    throw new RangeError(`BLEU needs references for each hypothesis: ${hypotheses.length} hypotheses, ${references.length} reference lists`);
  }
  const order = maxOrder(opts);
  const sum: SegmentStatistics = { sysLen: 0, refLen: 0, counts: new Array<number>(order).fill(0), totals: new Array<number>(order).fill(0) };
  hypotheses.forEach((hyp, i) => {
    const s = segmentStatistics(hyp, references[i]!, opts);
    sum.sysLen += s.sysLen;
    sum.refLen += s.refLen;
    for (let n = 0; n < order; n++) {
      sum.counts[n]! += s.counts[n]!;
      sum.totals[n]! += s.totals[n]!;
    }
  });
  return bleuFromStatistics(sum, opts);
}

/** BLEU of one hypothesis against its references, with effective order unless told otherwise (sacreBLEU's sentence_bleu). */
export function sentenceBleu(hypothesis: string, references: readonly string[], opts: BleuOptions = {}): BleuScore {
  return bleu([hypothesis], [references], { effectiveOrder: true, ...opts });
}

export interface SegmentStatistics {
  sysLen: number;
  refLen: number;
  counts: number[];
  totals: number[];
}

/** The sufficient statistics of one hypothesis: its length, the closest reference length, matches and totals per order. */
export function segmentStatistics(hypothesis: string, references: readonly string[], opts: BleuOptions = {}): SegmentStatistics {
  if (references.length === 0) throw new RangeError("BLEU needs at least one reference for each hypothesis");
  const order = maxOrder(opts);
  const prepare = (s: string) => words(tokenize(opts.lowercase ? s.toLowerCase() : s, opts.tokenize ?? "13a"));
  // The most times each n-gram occurs in any one reference: the clip for the hypothesis' count.
  const clip = new Map<string, number>();
  const refLens: number[] = [];
  for (const ref of references) {
    const tokens = prepare(ref);
    refLens.push(tokens.length);
    for (const [gram, count] of ngramCounts(tokens, order)) clip.set(gram, Math.max(clip.get(gram) ?? 0, count));
  }
  const hyp = prepare(hypothesis);
  const counts = new Array<number>(order).fill(0);
  const totals = new Array<number>(order).fill(0);
  for (const [gram, count] of ngramCounts(hyp, order)) {
    const n = ngramOrder(gram) - 1;
    totals[n]! += count;
    counts[n]! += Math.min(count, clip.get(gram) ?? 0);
  }
  return { sysLen: hyp.length, refLen: closestRefLength(hyp.length, refLens), counts, totals };
}

/** The score from summed statistics (sacreBLEU's compute_bleu). */
export function bleuFromStatistics(stats: SegmentStatistics, opts: BleuOptions = {}): BleuScore {
  const order = maxOrder(opts);
  const smooth = opts.smooth ?? "exp";
  const smoothValue = opts.smoothValue ?? SMOOTH_DEFAULTS[smooth];
  const counts = [...stats.counts];
  const totals = [...stats.totals];
  const { sysLen, refLen } = stats;
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(order).fill(0);
  if (!counts.some((c) => c > 0)) return { score: 0, counts, totals, precisions, bp, sysLen, refLen };

  let expDivisor = 1;
  let effective = order;
  for (let n = 1; n <= order; n++) {
    if (smooth === "add-k" && n > 1) {
      counts[n - 1]! += smoothValue;
      totals[n - 1]! += smoothValue;
    }
    // No n-grams of this order or longer (a short hypothesis): with effective order, average only the shorter ones.
    if (totals[n - 1] === 0) break;
    if (opts.effectiveOrder) effective = n;
    if (counts[n - 1] === 0) {
      if (smooth === "exp") {
        expDivisor *= 2;
        precisions[n - 1] = 100 / (expDivisor * totals[n - 1]!);
      } else if (smooth === "floor") precisions[n - 1] = (100 * smoothValue) / totals[n - 1]!;
    } else precisions[n - 1] = (100 * counts[n - 1]!) / totals[n - 1]!;
  }
  // sacreBLEU's my_log: log(0) is a large negative number, so a zero precision gives a score of ~0, not NaN.
  const logs = precisions.slice(0, effective).map((p) => (p === 0 ? -9999999999 : Math.log(p)));
  const score = bp * Math.exp(logs.reduce((a, b) => a + b, 0) / effective);
  return { score, counts, totals, precisions, bp, sysLen, refLen };
}

/** The reference length closest to the hypothesis length; the shorter of two equally close. */
function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let best = refLens[0]!;
  for (const len of refLens) {
    const d = Math.abs(hypLen - len);
    const bestD = Math.abs(hypLen - best);
    if (d < bestD || (d === bestD && len < best)) best = len;
  }
  return best;
}

function maxOrder(opts: BleuOptions): number {
  const order = opts.maxNgramOrder ?? 4;
  if (!Number.isInteger(order) || order < 1) throw new RangeError(`maxNgramOrder must be an integer ≥ 1, got ${order}`);
  return order;
}

// N-grams are keys of a Map: their tokens joined by a separator no token contains (tokens have no whitespace).
const GRAM_SEPARATOR = " ";

function ngramCounts(tokens: readonly string[], order: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= order; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const gram = tokens.slice(i, i + n).join(GRAM_SEPARATOR);
      counts.set(gram, (counts.get(gram) ?? 0) + 1);
    }
  }
  return counts;
}

function ngramOrder(gram: string): number {
  let n = 1;
  for (const ch of gram) if (ch === GRAM_SEPARATOR) n++;
  return n;
}

// Python's str.split() whitespace (JavaScript's \s has U+FEFF and lacks U+001C–U+001F and U+0085).
const PYTHON_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const PYTHON_TRAILING_WHITESPACE = new RegExp(`${PYTHON_WHITESPACE.source}$`);

function words(text: string): string[] {
  return text.split(PYTHON_WHITESPACE).filter((w) => w !== "");
}

/** A segment as sacreBLEU tokenises it before counting: 13a (mteval-v13a.pl), or as it is ("none"). */
export function tokenize(text: string, tokenizer: BleuTokenizer = "13a"): string {
  const line = text.replace(PYTHON_TRAILING_WHITESPACE, "");
  return tokenizer === "13a" ? tokenize13a(line) : line;
}

function tokenize13a(text: string): string {
  let line = text.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  line = line.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  line = ` ${line} `;
  // mteval's language-dependent part: punctuation and symbols apart, except . and , between digits
  // and - after a digit.
  line = line.replace(/([{-~[-` -&(-+:-@/])/g, " $1 ");
  line = line.replace(/([^0-9])([.,])/g, "$1 $2 ");
  line = line.replace(/([.,])([^0-9])/g, " $1 $2");
  line = line.replace(/([0-9])(-)/g, "$1 $2 ");
  return words(line).join(" ");
}

// The BPE merge learner both tokenizer kinds share: given words (sequences of symbols) with their
// frequencies, repeatedly merge the most frequent adjacent pair into a new symbol.
//
// Pair counts are kept up to date incrementally: merging (a, b) only rewrites the words that contain
// it (an index from pair to words), and only their pair counts change. The most frequent pair comes
// from a max-heap with lazy invalidation: an entry whose count is stale is re-pushed with the current
// count when it reaches the top, so no merge ever recounts the corpus.

export interface BPEWord {
  /** Symbol ids, rewritten in place as merges apply. */
  symbols: number[];
  readonly count: number;
}

export interface Merge {
  readonly left: number;
  readonly right: number;
  /** The symbol the pair becomes (an existing one when its text was already a symbol). */
  readonly merged: number;
  /** How often the pair occurred when it was merged. */
  readonly count: number;
}

export interface LearnOptions {
  /** Stop after this many NEW symbols. */
  readonly newSymbols: number;
  /** Never merge a pair seen fewer times than this (at least 1). */
  readonly minFrequency: number;
  /** Called every few merges with the number of new symbols so far. */
  readonly onProgress?: (done: number) => void;
}

export interface LearnedMerges {
  /** In the order they were learned. */
  readonly merges: Merge[];
  /** Symbol texts by id: the initial ones, then those the merges made. */
  readonly symbols: string[];
}

// A pair (a, b) as one number; symbol ids stay far below 2^21 (2M symbols).
const SHIFT = 2 ** 21;
const pairKey = (a: number, b: number) => a * SHIFT + b;
const leftOf = (key: number) => Math.floor(key / SHIFT);
const rightOf = (key: number) => key % SHIFT;

/**
 * Learns merges over `words` (whose symbols index `initialSymbols`). Ties between equally frequent
 * pairs go to the pair whose left text, then right text, sorts first (UTF-16 order), so the result
 * depends only on the word counts, not on the order words arrive in.
 */
export function learnMerges(words: BPEWord[], initialSymbols: readonly string[], opts: LearnOptions): LearnedMerges {
  if (initialSymbols.length >= SHIFT) throw new RangeError(`too many distinct symbols (${initialSymbols.length})`);
  const symbols = [...initialSymbols];
  const idOf = new Map(symbols.map((s, i) => [s, i]));
  const counts = new Map<number, number>();
  const wordsWith = new Map<number, number[]>();

  words.forEach((w, index) => {
    const s = w.symbols;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = pairKey(s[i]!, s[i + 1]!);
      const before = counts.get(key) ?? 0;
      counts.set(key, before + w.count);
      const list = wordsWith.get(key);
      if (list === undefined) wordsWith.set(key, [index]);
      else if (list[list.length - 1] !== index) list.push(index);
    }
  });

  const heap = new PairHeap(symbols);
  for (const [key, count] of counts) heap.push(key, count);

  const merges: Merge[] = [];
  const minFrequency = Math.max(1, opts.minFrequency);
  let made = 0;
  const delta = new Map<number, number>();
  while (made < opts.newSymbols && heap.size > 0) {
    const top = heap.pop()!;
    const current = counts.get(top.key) ?? 0;
    if (current !== top.count) {
      // Stale: a lower current count goes back in; a higher one already has its own entry.
      if (current > 0 && current < top.count) heap.push(top.key, current);
      continue;
    }
    if (current < minFrequency) break;

    const a = leftOf(top.key);
    const b = rightOf(top.key);
    const text = symbols[a]! + symbols[b]!;
    let merged = idOf.get(text);
    if (merged === undefined) {
      merged = symbols.length;
      if (merged >= SHIFT) break;
      symbols.push(text);
      idOf.set(text, merged);
      made++;
    }
    merges.push({ left: a, right: b, merged, count: current });

    // Rewrite each word holding the pair; its pair counts change by (new pairs − old pairs) × count.
    delta.clear();
    for (const index of wordsWith.get(top.key) ?? []) {
      const w = words[index]!;
      const s = w.symbols;
      if (!containsPair(s, a, b)) continue; // listed for a pair it has since lost
      for (let i = 0; i + 1 < s.length; i++) addTo(delta, pairKey(s[i]!, s[i + 1]!), -w.count);
      let out = 0;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          s[out++] = merged;
          i++;
        } else {
          s[out++] = s[i]!;
        }
      }
      s.length = out;
      for (let i = 0; i + 1 < s.length; i++) {
        const key = pairKey(s[i]!, s[i + 1]!);
        addTo(delta, key, w.count);
        if (s[i] === merged || s[i + 1] === merged) {
          const list = wordsWith.get(key);
          if (list === undefined) wordsWith.set(key, [index]);
          else if (list[list.length - 1] !== index) list.push(index);
        }
      }
    }
    wordsWith.delete(top.key);
    for (const [key, change] of delta) {
      if (change === 0) continue;
      const next = (counts.get(key) ?? 0) + change;
      if (next > 0) counts.set(key, next);
      else counts.delete(key);
      if (change > 0) heap.push(key, next);
    }
    if (opts.onProgress && merges.length % 256 === 0) opts.onProgress(made);
  }
  return { merges, symbols };
}

function containsPair(s: readonly number[], a: number, b: number): boolean {
  for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) return true;
  return false;
}

function addTo(map: Map<number, number>, key: number, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/** A binary max-heap of (pair, count): larger count first, then the pair whose texts sort first. */
class PairHeap {
  private readonly keys: number[] = [];
  private readonly counts: number[] = [];

  constructor(private readonly symbols: readonly string[]) {}

  get size(): number {
    return this.keys.length;
  }

  push(key: number, count: number): void {
    this.keys.push(key);
    this.counts.push(count);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { key: number; count: number } | undefined {
    if (this.keys.length === 0) return undefined;
    const top = { key: this.keys[0]!, count: this.counts[0]! };
    const lastKey = this.keys.pop()!;
    const lastCount = this.counts.pop()!;
    if (this.keys.length > 0) {
      this.keys[0] = lastKey;
      this.counts[0] = lastCount;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.keys.length && this.before(l, best)) best = l;
        if (r < this.keys.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  /** Whether entry i comes out before entry j. */
  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    if (ci !== cj) return ci > cj;
    const ki = this.keys[i]!;
    const kj = this.keys[j]!;
    if (ki === kj) return false;
    const li = this.symbols[leftOf(ki)]!;
    const lj = this.symbols[leftOf(kj)]!;
    if (li !== lj) return li < lj;
    return this.symbols[rightOf(ki)]! < this.symbols[rightOf(kj)]!;
  }

  private swap(i: number, j: number): void {
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
  }
}

// Picking the next token from a row of logits, as llama.cpp's default sampler chain does:
// repetition penalty → top-k → top-p → min-p → temperature → a draw from the softmax.
// Every step is a pure function over Float32Array logits or a candidate list; the random draw comes
// from a seeded generator, so the same seed gives the same tokens.

import { rng } from "../weights/random.js";

/** How to choose among the logits. Defaults are llama.cpp's. */
export interface SamplerOptions {
  /** Divides the logits before the draw; 0 (or less) is greedy: always the most likely token. Default 0.8. */
  temperature?: number;
  /** Keep only the K most likely tokens; 0 keeps all. Default 40. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability adds up to at least P; 1 keeps all. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than P × the most likely one's probability; 0 keeps all. Default 0.05. */
  minP?: number;
  /** Penalty for tokens among the last `repeatLastN` (llama.cpp: positive logits ÷ R, negative × R); 1 is off. Default 1. */
  repeatPenalty?: number;
  /** How many recent tokens the repetition penalty looks at; 0 none, -1 all. Default 64. */
  repeatLastN?: number;
}

export const SAMPLER_DEFAULTS: Required<SamplerOptions> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  repeatLastN: 64,
};

/** Tokens still in the running, most likely first (ties: lower id first). */
export interface Candidates {
  ids: Int32Array;
  logits: Float32Array;
}

/** A uniform random number in [0, 1). */
export type Random = () => number;

/** A seeded generator (mulberry32 over the seed's low 32 bits): the same seed gives the same draws. */
export function seededRandom(seed: number): Random {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`a seed must be an integer, got ${seed}`);
  return rng(Number(BigInt.asUintN(32, BigInt(seed))));
}

/** A fresh seed, for when the caller gives none (print it to make the run repeatable). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!; // Web Crypto: Node ≥ 19 and browsers
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * llama.cpp's repetition penalty: for each distinct token among `recent`, a positive logit is divided
 * by `penalty` and a negative one multiplied by it. Returns a new array.
 */
export function applyRepetitionPenalty(logits: Float32Array, recent: readonly number[], penalty: number): Float32Array {
  const out = Float32Array.from(logits);
  if (penalty === 1) return out;
  for (const id of new Set(recent)) {
    if (id < 0 || id >= out.length) continue;
    const x = out[id]!;
    out[id] = x > 0 ? x / penalty : x * penalty;
  }
  return out;
}

/** Every token, most likely first. */
export function allCandidates(logits: Float32Array): Candidates {
  const ids = Int32Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  return { ids, logits: Float32Array.from(ids, (i) => logits[i]!) };
}

/**
 * The k most likely tokens, most likely first (all of them when k ≤ 0 or k ≥ the vocabulary). A
 * bounded min-heap keeps this O(V log k), so a large vocabulary is not sorted for each token.
 */
export function topK(logits: Float32Array, k: number): Candidates {
  if (k <= 0 || k >= logits.length) return allCandidates(logits);
  // `heap[0]` is the worst kept token: the smallest logit, the larger id on ties.
  const heap = new Int32Array(k);
  let size = 0;
  const worse = (a: number, b: number) => logits[a]! < logits[b]! || (logits[a] === logits[b] && a > b);
  const swap = (i: number, j: number) => {
    const t = heap[i]!;
    heap[i] = heap[j]!;
    heap[j] = t;
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && worse(heap[l]!, heap[m]!)) m = l;
      if (r < size && worse(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (size < k) {
      heap[size] = id;
      for (let i = size++; i > 0 && worse(heap[i]!, heap[(i - 1) >> 1]!); i = (i - 1) >> 1) swap(i, (i - 1) >> 1);
    } else if (worse(heap[0]!, id)) {
      heap[0] = id;
      down(0);
    }
  }
  const ids = heap.slice().sort((a, b) => logits[b]! - logits[a]! || a - b);
  return { ids, logits: Float32Array.from(ids, (i) => logits[i]!) };
}

/** Softmax over candidate logits (divided by `temperature`), in f64. */
export function softmax(logits: Float32Array, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  if (logits.length === 0) return p;
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp((logits[i]! - max) / temperature);
  for (let i = 0; i < p.length; i++) p[i]! /= sum;
  return p;
}

function keepFirst(c: Candidates, n: number): Candidates {
  return n >= c.ids.length ? c : { ids: c.ids.subarray(0, n), logits: c.logits.subarray(0, n) };
}

/** The shortest prefix of `c` (most likely first) whose probability adds up to at least p; at least one token. */
export function topP(c: Candidates, p: number): Candidates {
  if (p >= 1 || c.ids.length === 0) return c;
  const probs = softmax(c.logits);
  let mass = 0;
  for (let i = 0; i < probs.length; i++) {
    mass += probs[i]!;
    if (mass >= p) return keepFirst(c, i + 1);
  }
  return c;
}

/** The tokens whose probability is at least p × the most likely one's; at least one token. */
export function minP(c: Candidates, p: number): Candidates {
  if (p <= 0 || c.ids.length === 0) return c;
  // p_i ≥ p · p_max  ⇔  logit_i ≥ logit_max + ln p
  const threshold = c.logits[0]! + Math.log(p);
  let n = 1;
  while (n < c.ids.length && c.logits[n]! >= threshold) n++;
  return keepFirst(c, n);
}

/** Draws one candidate with probability softmax(logits / temperature). */
export function draw(c: Candidates, temperature: number, random: Random): number {
  const probs = softmax(c.logits, temperature);
  let u = random();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return c.ids[i]!;
  }
  return c.ids[c.ids.length - 1]!; // u within rounding of 1
}

/**
 * The next token. `recent` is the context so far (prompt and generated tokens, oldest first); the
 * repetition penalty looks at its last `repeatLastN`. Greedy (temperature ≤ 0) never calls `random`.
 */
export function sampleToken(logits: Float32Array, opts: SamplerOptions, random: Random, recent: readonly number[] = []): number {
  const o = resolveSamplerOptions(opts);
  const window = o.repeatLastN < 0 ? recent : o.repeatLastN === 0 ? [] : recent.slice(-o.repeatLastN);
  const penalized = applyRepetitionPenalty(logits, window, o.repeatPenalty);
  if (o.temperature <= 0) return argmax(penalized);
  const kept = minP(topP(topK(penalized, o.topK), o.topP), o.minP);
  return draw(kept, o.temperature, random);
}

/** The options with defaults filled in; a RangeError naming the option for a meaningless value. */
export function resolveSamplerOptions(opts: SamplerOptions): Required<SamplerOptions> {
  const given = Object.fromEntries(Object.entries(opts).filter(([k, v]) => v !== undefined && k in SAMPLER_DEFAULTS));
  const o = { ...SAMPLER_DEFAULTS, ...given };
  checkOptions(o);
  return o;
}

function checkOptions(o: Required<SamplerOptions>): void {
  const bad = (what: string) => {
    throw new RangeError(what);
  };
  if (!Number.isFinite(o.temperature)) bad(`temperature must be a number, got ${o.temperature}`);
  if (!Number.isInteger(o.topK) || o.topK < 0) bad(`topK must be an integer ≥ 0, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) bad(`topP must be in (0, 1], got ${o.topP}`);
  if (!(o.minP >= 0 && o.minP <= 1)) bad(`minP must be in [0, 1], got ${o.minP}`);
  if (!(o.repeatPenalty > 0) || !Number.isFinite(o.repeatPenalty)) bad(`repeatPenalty must be > 0, got ${o.repeatPenalty}`);
  if (!Number.isInteger(o.repeatLastN) || o.repeatLastN < -1) bad(`repeatLastN must be an integer ≥ -1, got ${o.repeatLastN}`);
}

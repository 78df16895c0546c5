// The whole sampler chain against a reference written here from the definitions (llama.cpp's
// order: repetition penalty → top-k → top-p → min-p → temperature → draw). A draw u ∈ [0, 1) picks
// the first candidate (most likely first) whose cumulative probability passes u, so feeding both the
// same u's compares the exact distributions, not samples of them. Logit rows are drawn so that every
// stage changes which tokens survive.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sampleToken, type SamplerOptions } from "../../src/runtime/generate/sampler.js";

interface Options {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
}

/** Candidates (id, probability) in draw order, from the definitions. */
function referenceDistribution(logits: number[], o: Options, recent: number[]): { id: number; p: number }[] {
  const x = logits.map(Math.fround); // the runtime's rows are f32
  const window = o.repeatLastN < 0 ? recent : recent.slice(Math.max(0, recent.length - o.repeatLastN));
  for (const id of new Set(o.repeatLastN === 0 ? [] : window)) x[id] = Math.fround(x[id]! > 0 ? x[id]! / o.repeatPenalty : x[id]! * o.repeatPenalty);
  let kept = x.map((v, id) => ({ id, v })).sort((a, b) => b.v - a.v || a.id - b.id);
  if (o.topK > 0) kept = kept.slice(0, o.topK);
  const probs = (c: { v: number }[], t: number) => {
    const m = Math.max(...c.map((e) => e.v));
    const e = c.map((k) => Math.exp((k.v - m) / t));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  if (o.topP < 1) {
    const p = probs(kept, 1);
    let mass = 0;
    let n = 0;
    while (n < kept.length && mass < o.topP) mass += p[n++]!;
    kept = kept.slice(0, Math.max(1, n));
  }
  if (o.minP > 0) {
    const p = probs(kept, 1);
    kept = kept.filter((_, i) => p[i]! >= o.minP * p[0]!);
  }
  const p = probs(kept, o.temperature);
  return kept.map((k, i) => ({ id: k.id, p: p[i]! }));
}

/** The token a draw of u picks, or null when u sits too close to a boundary to say. */
function pick(dist: { id: number; p: number }[], u: number): number | null {
  let acc = 0;
  for (const { id, p } of dist) {
    if (Math.abs(u - (acc + p)) < 1e-9) return null;
    acc += p;
    if (u < acc) return id;
  }
  return dist[dist.length - 1]!.id;
}

const U = Array.from({ length: 97 }, (_, i) => (i + 0.5) / 97);

function expectSameDistribution(logits: number[], o: Options, recent: number[]): void {
  const dist = referenceDistribution(logits, o, recent);
  const row = Float32Array.from(logits);
  for (const u of U) {
    const want = pick(dist, u);
    if (want === null) continue;
    expect(sampleToken(row, o as SamplerOptions, () => u, recent), `u = ${u}, options ${JSON.stringify(o)}`).toBe(want);
  }
}

const SEED = Number(process.env["FC_SEED"] ?? Date.now() % 2 ** 31);

describe("the sampler chain equals its definition", () => {
  it("each stage on a row built to need it", () => {
    const logits = [2.0, 5.0, 4.6, -1.0, 4.0, 3.1, 0.5, 3.0, -2.5, 1.0];
    const base: Options = { temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 64 };
    // Each option alone changes the set of survivors or their weights.
    for (const o of [
      base,
      { ...base, topK: 3 },
      { ...base, topP: 0.7 },
      { ...base, minP: 0.3 },
      { ...base, temperature: 0.5 },
      { ...base, temperature: 2.5 },
      { ...base, repeatPenalty: 1.8 },
      { ...base, repeatPenalty: 1.8, repeatLastN: 1 },
      { ...base, topK: 5, topP: 0.8, minP: 0.2, temperature: 0.7, repeatPenalty: 1.3 },
    ]) {
      expectSameDistribution(logits, o, [1, 4, 3, 2]);
    }
    // Top-p really cuts: with it, the fourth most likely token can never be drawn.
    const withTopP = U.map((u) => sampleToken(Float32Array.from(logits), { temperature: 1, topK: 0, topP: 0.7, minP: 0 }, () => u));
    expect(new Set(withTopP).size).toBeLessThan(new Set(U.map((u) => sampleToken(Float32Array.from(logits), { temperature: 1, topK: 0, topP: 1, minP: 0 }, () => u))).size);
  });

  it(`random rows and options (seed ${SEED}; FC_SEED=${SEED} replays it)`, () => {
    const opts = fc.record({
      temperature: fc.oneof(fc.constant(1), fc.double({ min: 0.2, max: 3, noNaN: true })),
      topK: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 12 })),
      topP: fc.oneof(fc.constant(1), fc.double({ min: 0.05, max: 0.99, noNaN: true })),
      minP: fc.oneof(fc.constant(0), fc.double({ min: 0.01, max: 0.9, noNaN: true })),
      repeatPenalty: fc.oneof(fc.constant(1), fc.double({ min: 0.5, max: 3, noNaN: true })),
      repeatLastN: fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 1, max: 6 })),
    });
    const row = fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: 2, maxLength: 24 });
    fc.assert(
      fc.property(row, opts, fc.array(fc.nat(23), { maxLength: 10 }), (logits, o, recent) => {
        expectSameDistribution(logits, o, recent.filter((id) => id < logits.length));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

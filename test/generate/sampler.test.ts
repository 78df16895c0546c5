// The sampler's steps as properties over random logits: greedy is argmax, top-k keeps the k largest,
// top-p the smallest prefix with enough mass, min-p what is likely enough; temperature → 0 is greedy;
// a seed fixes the draws; the repetition penalty follows llama.cpp.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  allCandidates,
  applyRepetitionPenalty,
  argmax,
  draw,
  minP,
  sampleToken,
  seededRandom,
  softmax,
  topK,
  topP,
} from "../../src/runtime/generate/sampler.js";

const runs = process.env["CI"] ? 500 : 100;

// Logits with ties (small integers) as well as spread-out values.
const logitsArb = fc
  .oneof(
    fc.array(fc.float({ min: -20, max: 20, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 60 }),
    fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 60 }),
  )
  .map((xs) => Float32Array.from(xs));

const never = () => {
  throw new Error("greedy sampling must not draw a random number");
};

describe("sampler", () => {
  it("greedy (temperature 0) is the argmax, the first on ties, whatever the other options", () => {
    fc.assert(
      fc.property(logitsArb, fc.integer({ min: 0, max: 10 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (logits, k, p) => {
        const id = sampleToken(logits, { temperature: 0, topK: k, topP: p, minP: p / 2 }, never);
        const best = Math.max(...logits);
        expect(logits[id] === best).toBe(true);
        expect(logits.findIndex((x) => x === best)).toBe(id);
        expect(argmax(logits)).toBe(id);
      }),
      { numRuns: runs },
    );
  });

  it("top-k keeps exactly the k largest, most likely first", () => {
    fc.assert(
      fc.property(logitsArb, fc.integer({ min: 0, max: 70 }), (logits, k) => {
        const c = topK(logits, k);
        const n = k <= 0 || k >= logits.length ? logits.length : k;
        expect(c.ids.length).toBe(n);
        expect(new Set(c.ids).size).toBe(n);
        const sorted = [...logits].sort((a, b) => b - a);
        expect([...c.logits]).toEqual(sorted.slice(0, n));
        for (let i = 0; i < n; i++) expect(c.logits[i]).toBe(logits[c.ids[i]!]);
        // The same set as a full sort (ties broken towards lower ids).
        expect([...c.ids]).toEqual([...allCandidates(logits).ids.subarray(0, n)]);
      }),
      { numRuns: runs },
    );
  });

  it("top-p keeps the smallest prefix whose probability reaches p", () => {
    fc.assert(
      fc.property(logitsArb, fc.double({ min: 0.01, max: 0.999, noNaN: true }), (logits, p) => {
        const all = allCandidates(logits);
        const kept = topP(all, p);
        const probs = softmax(all.logits);
        const mass = (n: number) => probs.subarray(0, n).reduce((a, b) => a + b, 0);
        const n = kept.ids.length;
        expect(n).toBeGreaterThanOrEqual(1);
        expect([...kept.ids]).toEqual([...all.ids.subarray(0, n)]);
        if (n < all.ids.length) expect(mass(n)).toBeGreaterThanOrEqual(p);
        if (n > 1) expect(mass(n - 1)).toBeLessThan(p);
      }),
      { numRuns: runs },
    );
  });

  it("min-p keeps the tokens at least p times as likely as the most likely one", () => {
    fc.assert(
      fc.property(logitsArb, fc.double({ min: 0.001, max: 1, noNaN: true }), (logits, p) => {
        const all = allCandidates(logits);
        const kept = minP(all, p);
        const probs = softmax(all.logits);
        const pmax = probs[0]!;
        const n = kept.ids.length;
        expect(n).toBeGreaterThanOrEqual(1);
        expect([...kept.ids]).toEqual([...all.ids.subarray(0, n)]);
        for (let i = 0; i < all.ids.length; i++) {
          if (i < n) expect(probs[i]! / pmax).toBeGreaterThanOrEqual(p * (1 - 1e-6));
          else expect(probs[i]! / pmax).toBeLessThan(p * (1 + 1e-6));
        }
      }),
      { numRuns: runs },
    );
  });

  it("as the temperature goes to 0, sampling becomes greedy", () => {
    fc.assert(
      fc.property(logitsArb, fc.integer(), (logits, seed) => {
        const best = Math.max(...logits);
        const clearWinner = logits.filter((x) => x > best - 1e-2).length === 1;
        fc.pre(clearWinner);
        const id = sampleToken(logits, { temperature: 1e-4, topK: 0, topP: 1, minP: 0 }, seededRandom(seed));
        expect(id).toBe(argmax(logits));
      }),
      { numRuns: runs },
    );
  });

  it("the same seed gives the same samples; different seeds different sequences", () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const run = (seed: number) => {
      const r = seededRandom(seed);
      return Array.from({ length: 40 }, () => sampleToken(logits, opts, r));
    };
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        expect(run(seed)).toEqual(run(seed));
      }),
      { numRuns: 50 },
    );
    expect(new Set([1, 2, 3, 4].map((s) => run(s).join(","))).size).toBe(4);
  });

  it("draws each candidate about as often as its probability says", () => {
    const c = allCandidates(Float32Array.of(0, Math.log(2), Math.log(3), Math.log(4)));
    const r = seededRandom(123);
    const counts = new Map<number, number>();
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const id = draw(c, 1, r);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    [1, 2, 3, 4].forEach((w, id) => expect(counts.get(id)! / n).toBeCloseTo(w / 10, 1));
  });

  it("repetition penalty: positive logits divided, negative multiplied, once per distinct recent token", () => {
    fc.assert(
      fc.property(logitsArb, fc.array(fc.nat(80)), fc.double({ min: 1, max: 3, noNaN: true }), (logits, recent, r) => {
        const out = applyRepetitionPenalty(logits, recent, r);
        logits.forEach((x, i) => {
          const expected = recent.includes(i) ? (x > 0 ? x / r : x * r) : x;
          expect(out[i]).toBe(Math.fround(expected));
        });
      }),
      { numRuns: runs },
    );
  });

  it("the penalty looks only at the last repeatLastN tokens", () => {
    const logits = Float32Array.of(5, 4.5, 0);
    const greedy = (recent: number[], n: number) => sampleToken(logits, { temperature: 0, repeatPenalty: 2, repeatLastN: n }, never, recent);
    expect(greedy([0, 2, 2], 3)).toBe(1); // token 0 penalised: 2.5 < 4.5
    expect(greedy([0, 2, 2], 2)).toBe(0); // token 0 is outside the window
    expect(greedy([0, 2, 2], 0)).toBe(0);
    expect(greedy([0, 2, 2], -1)).toBe(1);
  });

  it("rejects meaningless options, naming them", () => {
    const l = Float32Array.of(1, 2);
    expect(() => sampleToken(l, { topP: 0 }, Math.random)).toThrow(/topP/);
    expect(() => sampleToken(l, { topK: -1 }, Math.random)).toThrow(/topK/);
    expect(() => sampleToken(l, { repeatPenalty: 0 }, Math.random)).toThrow(/repeatPenalty/);
    expect(() => seededRandom(1.5)).toThrow(/seed/);
  });
});

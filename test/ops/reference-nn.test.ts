// The model-level properties: softmax and rms_norm composed from reference ops the way
// models/std/nn.llm writes them, rotary (RoPE) and attention with causal/window masks and GQA.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { tensor, type HostTensor } from "../../src/compiler/ops/reference.js";
import { NUM_RUNS, maxAbsDiff, randomTensor, rng, run, scalar, seedArb } from "./helpers.js";

const last = { axis: -1, keepdim: true };

/** nn.llm: e = exp(x - amax(x)); e / sum(e) */
function softmax(x: HostTensor): HostTensor {
  const e = run("exp", [run("sub", [x, run("amax", [x], last)])]);
  return run("div", [e, run("sum", [e], last)]);
}

/** nn.llm: x * rsqrt(mean(x * x) + eps) * w */
function rmsNorm(x: HostTensor, w: HostTensor, eps: number): HostTensor {
  const ms = run("mean", [run("mul", [x, x])], last);
  return run("mul", [run("mul", [x, run("rsqrt", [run("add", [ms, scalar(eps)])])]), w]);
}

/** nn.llm's rope: angles pos · theta^(-2j/D) as an outer product, then rotary. */
function rope(x: HostTensor, pos: number[], theta = 10000): HostTensor {
  const [t, , d] = x.shape as [number, number, number];
  const r = d / 2;
  const expo = run("div", [run("mul", [run("arange", [], { n: r }), scalar(2)]), scalar(d)]);
  const invFreq = run("div", [scalar(1), run("pow", [scalar(theta), expo])]);
  const p = run("cast", [tensor([t], "i32", pos)], { dtype: "f32" });
  const angle = run("mul", [run("reshape", [p], { shape: [t, 1] }), run("reshape", [invFreq], { shape: [1, r] })]);
  return run("rotary", [x, run("cos", [angle]), run("sin", [angle])]);
}

function rows(t: HostTensor, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < t.data.length; i += width) out.push(Array.from(t.data.subarray(i, i + width)));
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));

describe("softmax from exp/amax/sum/div", () => {
  const rowsArb = fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 12 }), seedArb);

  it("rows sum to 1 and are in [0, 1]", () => {
    fc.assert(
      fc.property(rowsArb, ([n, d, seed]) => {
        const y = softmax(randomTensor([n, d], "f32", rng(seed), { range: 30 }));
        for (const r of rows(y, d)) {
          expect(Math.abs(r.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
          for (const v of r) expect(v >= 0 && v <= 1).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("is invariant to adding a constant to a row, even a huge one", () => {
    fc.assert(
      fc.property(rowsArb, fc.integer({ min: -10000, max: 10000 }), ([n, d, seed], c) => {
        // Logits on a 1/64 grid, so x + c is exact in f32 and the results must agree exactly.
        const x = randomTensor([n, d], "f32", rng(seed), { range: 10 });
        const grid = tensor([n, d], "f32", Array.from(x.data, (v) => Math.round(v * 64) / 64));
        expect(softmax(run("add", [grid, scalar(c)])).data).toEqual(softmax(grid).data);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("rms_norm from mul/mean/rsqrt/add", () => {
  it("is invariant to scaling the input", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 16 }), seedArb, fc.double({ min: 0.01, max: 100, noNaN: true }), (n, d, seed, alpha) => {
        const next = rng(seed);
        // Rows away from zero, so eps is negligible at every scale.
        const x = tensor([n, d], "f32", Array.from({ length: n * d }, () => (next() < 0.5 ? -1 : 1) * (0.5 + next())));
        const w = randomTensor([d], "f32", next);
        const eps = 1e-12;
        const y = rmsNorm(x, w, eps);
        const ys = rmsNorm(run("mul", [x, scalar(alpha)]), w, eps);
        expect(maxAbsDiff(ys.data, y.data)).toBeLessThan(1e-5);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("gives rows of unit RMS when w = 1", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 16 }), seedArb, (n, d, seed) => {
        const y = rmsNorm(randomTensor([n, d], "f32", rng(seed), { range: 50 }), tensor([d], "f32", new Array(d).fill(1)), 1e-12);
        for (const r of rows(y, d)) expect(Math.abs(norm(r) / Math.sqrt(d) - 1)).toBeLessThan(1e-5);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("rotary", () => {
  const ropeArb = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), seedArb);

  it("preserves the norm of every head vector", () => {
    fc.assert(
      fc.property(ropeArb, ([t, h, half, seed]) => {
        const next = rng(seed);
        const x = randomTensor([t, h, 2 * half], "f32", next);
        const pos = Array.from({ length: t }, () => Math.floor(next() * 4096));
        const y = rope(x, pos);
        const xr = rows(x, 2 * half);
        rows(y, 2 * half).forEach((r, i) => expect(Math.abs(norm(r) - norm(xr[i]!))).toBeLessThan(1e-5 * (1 + norm(xr[i]!))));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("rotates the pair (x[2j], x[2j+1]) by the given angle", () => {
    // D = 4, one token: pair 0 by 90°, pair 1 by 180°.
    const x = tensor([1, 1, 4], "f32", [1, 2, 3, 4]);
    const y = run("rotary", [x, tensor([1, 2], "f32", [0, -1]), tensor([1, 2], "f32", [1, 0])]);
    expect(Array.from(y.data)).toEqual([-2, 1, -3, -4]);
  });

  it("makes q·k depend only on the position difference", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 }), seedArb, (half, p, m, shift, seed) => {
        const next = rng(seed);
        const d = 2 * half;
        const q = randomTensor([1, 1, d], "f32", next);
        const k = randomTensor([1, 1, d], "f32", next);
        const score = (pq: number, pk: number) => dot(Array.from(rope(q, [pq]).data), Array.from(rope(k, [pk]).data));
        const scale = norm(Array.from(q.data)) * norm(Array.from(k.data));
        expect(Math.abs(score(p, m) - score(p + shift, m + shift))).toBeLessThan(1e-4 * (1 + scale));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

interface AttnCase {
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  t: number;
  s: number;
}

const attnArb = (maxGroup = 3) =>
  fc
    .record({
      t: fc.integer({ min: 1, max: 5 }),
      extra: fc.integer({ min: 0, max: 5 }),
      hkv: fc.integer({ min: 1, max: 3 }),
      group: fc.integer({ min: 1, max: maxGroup }),
      d: fc.integer({ min: 1, max: 8 }),
      seed: seedArb,
    })
    .map(({ t, extra, hkv, group, d, seed }): AttnCase & { hkv: number; group: number; d: number } => {
      const next = rng(seed);
      const s = t + extra; // the cache holds the past and this step
      return {
        t, s, hkv, group, d,
        q: randomTensor([t, hkv * group, d], "f32", next),
        k: randomTensor([s, hkv, d], "f32", next),
        v: randomTensor([s, hkv, d], "f32", next),
      };
    });

/** k or v with rows `from` (absolute positions) replaced by fresh random values. */
function perturbRows(x: HostTensor, keep: (pos: number) => boolean, seed: number): HostTensor {
  const [, h, d] = x.shape as [number, number, number];
  const next = rng(seed);
  return tensor(x.shape, x.dtype, Array.from(x.data, (val, i) => (keep(Math.floor(i / (h * d))) ? val : 10 * next() - 5)));
}

/** Output rows of query t (all heads). */
const queryRow = (o: HostTensor, t: number) => {
  const [, h, d] = o.shape as [number, number, number];
  return Array.from(o.data.subarray(t * h * d, (t + 1) * h * d));
};

describe("attention", () => {
  it("causal: the output at query t ignores keys and values after its position", () => {
    fc.assert(
      fc.property(attnArb(), seedArb, ({ q, k, v, t, s }, seed) => {
        const attrs = { causal: true, window: 0, scale: 0.5 };
        const out = run("attention", [q, k, v], attrs);
        const qt = Math.floor(rng(seed)() * t);
        const pos = s - t + qt;
        const out2 = run("attention", [q, perturbRows(k, (p) => p <= pos, seed), perturbRows(v, (p) => p <= pos, seed + 1)], attrs);
        expect(queryRow(out2, qt)).toEqual(queryRow(out, qt));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("window: the output ignores keys at or before position − window", () => {
    fc.assert(
      fc.property(attnArb(), fc.integer({ min: 1, max: 4 }), fc.boolean(), seedArb, ({ q, k, v, t, s }, window, causal, seed) => {
        const attrs = { causal, window, scale: 0.5 };
        const out = run("attention", [q, k, v], attrs);
        const qt = Math.floor(rng(seed)() * t);
        const pos = s - t + qt;
        const out2 = run("attention", [q, perturbRows(k, (p) => p > pos - window, seed), perturbRows(v, (p) => p > pos - window, seed + 1)], attrs);
        expect(queryRow(out2, qt)).toEqual(queryRow(out, qt));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("window 1 with causal attends to the query's own position only", () => {
    fc.assert(
      fc.property(attnArb(1), ({ q, k, v, t, s, d }) => {
        const out = run("attention", [q, k, v], { causal: true, window: 1, scale: 1 });
        // query t reads value row s - t + tq
        const h = q.shape[1]!;
        const want = tensor([t, h, d], "f32", Array.from(out.data, (_, i) => v.data[(s - t) * h * d + i]!));
        expect(out).toEqual(want);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("GQA equals MHA with each kv head repeated for its group of query heads", () => {
    fc.assert(
      fc.property(attnArb(), fc.boolean(), fc.integer({ min: 0, max: 3 }), ({ q, k, v, s, hkv, group, d }, causal, window) => {
        const hq = hkv * group;
        const repeat = (x: HostTensor) =>
          tensor([s, hq, d], "f32", Array.from({ length: s * hq * d }, (_, i) => {
            const [p, h, e] = [Math.floor(i / (hq * d)), Math.floor(i / d) % hq, i % d];
            return x.data[(p * hkv + Math.floor(h / group)) * d + e]!;
          }));
        const attrs = { causal, window, scale: 1 / Math.sqrt(d) };
        expect(run("attention", [q, repeat(k), repeat(v)], attrs)).toEqual(run("attention", [q, k, v], attrs));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("equals softmax(q·kᵀ·scale + causal mask)·v composed from matmul, where, softmax", () => {
    fc.assert(
      fc.property(attnArb(1), fc.boolean(), fc.double({ min: 0.1, max: 2, noNaN: true }), ({ q, k, v, t, s, d }, causal, scale) => {
        const h = q.shape[1]!;
        const qh = run("transpose", [q], { perm: [1, 0, 2] }); // [H, T, D]
        const kh = run("transpose", [k], { perm: [1, 2, 0] }); // [H, D, S]
        const vh = run("transpose", [v], { perm: [1, 0, 2] }); // [H, S, D]
        let scores = run("mul", [run("matmul", [qh, kh]), scalar(scale)]); // [H, T, S]
        if (causal) {
          const qPos = run("reshape", [run("add", [run("arange", [], { n: t }), scalar(s - t)])], { shape: [t, 1] });
          const kPos = run("reshape", [run("arange", [], { n: s })], { shape: [1, s] });
          scores = run("where", [run("gt", [kPos, qPos]), scalar(-Infinity), scores]);
        }
        const probs = softmax(run("reshape", [scores], { shape: [h * t, s] }));
        const composed = run("transpose", [run("matmul", [run("reshape", [probs], { shape: [h, t, s] }), vh])], { perm: [1, 0, 2] });
        const out = run("attention", [q, k, v], { causal, window: 0, scale });
        expect(out.shape).toEqual([t, h, d]);
        expect(maxAbsDiff(out.data, composed.data)).toBeLessThan(1e-5);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("scale defaults to 1/√D, and a query with every key masked gives 0", () => {
    const next = rng(7);
    const q = randomTensor([2, 2, 4], "f32", next);
    const k = randomTensor([3, 1, 4], "f32", next);
    expect(run("attention", [q, k, k], { causal: false })).toEqual(run("attention", [q, k, k], { causal: false, window: 0, scale: 0.5 }));
    // S < T: query 0 sits at position -1, before every key.
    const k1 = run("slice", [k], { axis: 0, start: 0, end: 1 });
    const out = run("attention", [randomTensor([2, 1, 4], "f32", next), k1, k1], { causal: true });
    expect(Array.from(out.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from(out.data.subarray(4, 8))).toEqual(Array.from(k.data.subarray(0, 4)));
  });
});

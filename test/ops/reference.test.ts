// Semantics of the reference ops against explicit loops and known values: broadcasting, unary
// functions, casts and rounding, reductions, matmul, and the layout ops.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { DType } from "../../src/compiler/ops/table.js";
import { roundToDType, sizeOf, stridesOf, tensor, type HostTensor } from "../../src/compiler/ops/reference.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/compiler/target/storage.js";
import { NUM_RUNS, broadcastableShapes, maxAbsDiff, randomTensor, rng, run, seedArb, shapeArb } from "./helpers.js";

const f32 = Math.fround;

/** Element at a multi-index padded on the left to rank 4; broadcast dims of 1 read index 0. */
function at(t: HostTensor, idx4: number[]): number {
  const s = stridesOf(t.shape);
  let off = 0;
  t.shape.forEach((d, i) => {
    const j = idx4[4 - t.shape.length + i]!;
    off += (d === 1 ? 0 : j) * s[i]!;
  });
  return t.data[off]!;
}

function pad4(shape: readonly number[]): number[] {
  return [...new Array<number>(4 - shape.length).fill(1), ...shape];
}

/** The broadcast result of `f` over inputs, by four nested loops. */
function loops(inputs: HostTensor[], f: (...xs: number[]) => number): { shape: number[]; values: number[] } {
  const rank = Math.max(...inputs.map((t) => t.shape.length));
  const p = inputs.map((t) => pad4(t.shape));
  const out4 = [0, 1, 2, 3].map((i) => Math.max(...p.map((s) => s[i]!)));
  const values: number[] = [];
  for (let a = 0; a < out4[0]!; a++)
    for (let b = 0; b < out4[1]!; b++)
      for (let c = 0; c < out4[2]!; c++)
        for (let d = 0; d < out4[3]!; d++) values.push(f(...inputs.map((t) => at(t, [a, b, c, d]))));
  return { shape: out4.slice(4 - rank), values };
}

describe("elementwise broadcasting equals explicit loops", () => {
  const F: Record<string, (a: number, b: number) => number> = {
    add: (a, b) => f32(a + b),
    sub: (a, b) => f32(a - b),
    mul: (a, b) => f32(a * b),
    div: (a, b) => f32(a / b),
    pow: (a, b) => f32(a ** b),
    max: (a, b) => Math.max(a, b),
    min: (a, b) => Math.min(a, b),
    lt: (a, b) => +(a < b),
    le: (a, b) => +(a <= b),
    gt: (a, b) => +(a > b),
    ge: (a, b) => +(a >= b),
    eq: (a, b) => +(a === b),
    ne: (a, b) => +(a !== b),
  };
  for (const [op, f] of Object.entries(F)) {
    it(op, () => {
      fc.assert(
        fc.property(broadcastableShapes(2), seedArb, ([sa, sb], seed) => {
          const next = rng(seed);
          // Values on a coarse grid, so eq/ne/le see ties.
          const grid = (t: HostTensor) => tensor(t.shape, "f32", Array.from(t.data, (x) => Math.round(x * 2) / 2 + 0.25));
          const a = grid(randomTensor(sa!, "f32", next));
          const b = grid(randomTensor(sb!, "f32", next));
          const out = run(op, [a, b]);
          const want = loops([a, b], f);
          expect(out.shape).toEqual(want.shape);
          expect(Array.from(out.data)).toEqual(want.values);
        }),
        { numRuns: NUM_RUNS },
      );
    });
  }

  it("i32 arithmetic wraps and divides toward zero", () => {
    const I: Record<string, (a: number, b: number) => number> = {
      add: (a, b) => (a + b) | 0,
      sub: (a, b) => (a - b) | 0,
      mul: (a, b) => Number(BigInt.asIntN(32, BigInt(a) * BigInt(b))),
      div: (a, b) => Math.trunc(a / b) | 0,
    };
    fc.assert(
      fc.property(broadcastableShapes(2), seedArb, fc.constantFrom(...Object.keys(I)), ([sa, sb], seed, op) => {
        const next = rng(seed);
        const big = { lo: -(2 ** 31), hi: 2 ** 31 - 1 };
        const a = randomTensor(sa!, "i32", next, big);
        const b = randomTensor(sb!, "i32", next, op === "div" ? { lo: 1, hi: 1000 } : big);
        expect(Array.from(run(op, [a, b]).data)).toEqual(loops([a, b], I[op]!).values);
      }),
      { numRuns: NUM_RUNS },
    );
    expect(() => run("div", [tensor([1], "i32", [3]), tensor([1], "i32", [0])])).toThrow(/integer division by zero/);
    expect(Array.from(run("div", [tensor([4], "i32", [7, -7, 7, -7]), tensor([4], "i32", [2, 2, -2, -2])]).data)).toEqual([3, -3, -3, 3]);
    expect(Array.from(run("pow", [tensor([4], "i32", [3, 2, -1, 5]), tensor([4], "i32", [4, 31, 3, -1])]).data)).toEqual([81, -(2 ** 31), -1, 0]);
  });

  it("where, and, or, not broadcast their operands", () => {
    fc.assert(
      fc.property(broadcastableShapes(3), seedArb, ([sc, sa, sb], seed) => {
        const next = rng(seed);
        const c = randomTensor(sc!, "bool", next);
        const a = randomTensor(sa!, "i32", next);
        const b = randomTensor(sb!, "i32", next);
        expect(Array.from(run("where", [c, a, b]).data)).toEqual(loops([c, a, b], (x, y, z) => (x ? y : z)).values);
        const c2 = randomTensor(sa!, "bool", next);
        expect(Array.from(run("and", [c, c2]).data)).toEqual(loops([c, c2], (x, y) => x & y).values);
        expect(Array.from(run("or", [c, c2]).data)).toEqual(loops([c, c2], (x, y) => x | y).values);
        expect(Array.from(run("not", [c]).data)).toEqual(Array.from(c.data, (x) => 1 - x));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("unary functions", () => {
  const SQRT_2_OVER_PI = 0.7978845608028654;
  const U: Record<string, [(x: number) => number, number]> = {
    // op: [f64 formula, range of x]
    neg: [(x) => -x, 10],
    abs: [Math.abs, 10],
    exp: [Math.exp, 10],
    log: [(x) => Math.log(Math.abs(x)), 10],
    sqrt: [(x) => Math.sqrt(Math.abs(x)), 10],
    rsqrt: [(x) => 1 / Math.sqrt(Math.abs(x)), 10],
    sin: [Math.sin, 10],
    cos: [Math.cos, 10],
    tanh: [Math.tanh, 10],
    sigmoid: [(x) => 1 / (1 + Math.exp(-x)), 20],
    silu: [(x) => x / (1 + Math.exp(-x)), 20],
    gelu: [(x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))), 10],
    recip: [(x) => 1 / x, 10],
  };
  const positive = new Set(["log", "sqrt", "rsqrt"]);
  for (const [op, [f, range]] of Object.entries(U)) {
    it(op, () => {
      fc.assert(
        fc.property(shapeArb(0, 3, 0, 5), seedArb, (shape, seed) => {
          let x = randomTensor(shape, "f32", rng(seed), { range });
          if (positive.has(op)) x = tensor(shape, "f32", Array.from(x.data, Math.abs));
          const out = run(op, [x]);
          // One rounding of the exact value: at most half an f32 ulp away from it.
          Array.from(x.data).forEach((xi, i) => {
            const exact = f(xi);
            expect(Math.abs(out.data[i]! - exact)).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -24 + 1e-45);
          });
        }),
        { numRuns: NUM_RUNS },
      );
    });
  }

  it("erf matches known values to 1e-6", () => {
    const known: [number, number][] = [
      [0, 0], [0.1, 0.1124629160], [0.5, 0.5204998778], [1, 0.8427007929], [1.5, 0.9661051465], [-2, -0.9953222650],
      [2.5, 0.9995930480], [3, 0.9999779095], [-4, -0.9999999846], [7, 1],
    ];
    const out = run("erf", [tensor([known.length], "f32", known.map(([x]) => x))]);
    known.forEach(([, want], i) => expect(Math.abs(out.data[i]! - want)).toBeLessThan(1e-6));
  });

  it("erf is odd, increasing, and its slope is 2/√π·e^(−x²)", () => {
    const xs = Array.from({ length: 801 }, (_, i) => -4 + i * 0.01);
    const e = Array.from(run("erf", [tensor([xs.length], "f32", xs)]).data);
    const neg = Array.from(run("erf", [tensor([xs.length], "f32", xs.map((x) => -x))]).data);
    e.forEach((v, i) => {
      expect(neg[i]).toBe(-v);
      if (i > 0) expect(v).toBeGreaterThanOrEqual(e[i - 1]!);
    });
    for (let i = 1; i < xs.length - 1; i += 37) {
      const x = f32(xs[i]!);
      const slope = (e[i + 1]! - e[i - 1]!) / (f32(xs[i + 1]!) - f32(xs[i - 1]!));
      expect(Math.abs(slope - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x))).toBeLessThan(2e-4);
    }
  });
});

describe("casts and rounding", () => {
  it("f32 → i32 truncates toward zero, saturates, and maps NaN to 0", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -3e9, max: 3e9, noNaN: true }), { maxLength: 20 }), (xs) => {
        const out = run("cast", [tensor([xs.length], "f32", xs)], { dtype: "i32" });
        expect(out.data).toBeInstanceOf(Int32Array);
        expect(Array.from(out.data)).toEqual(xs.map((x) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.trunc(x))) + 0));
      }),
      { numRuns: NUM_RUNS },
    );
    const xs = [2.7, -2.7, 0.5, -0.5, -0, 1e10, -1e10, NaN, Infinity, -Infinity];
    expect(Array.from(run("cast", [tensor([xs.length], "f32", xs)], { dtype: "i32" }).data)).toEqual([2, -2, 0, 0, 0, 2 ** 31 - 1, -(2 ** 31), 0, 2 ** 31 - 1, -(2 ** 31)]);
  });

  it("bool ↔ numbers is 0/1 and nonzero", () => {
    const b = tensor([3], "bool", [1, 0, 1]);
    expect(Array.from(run("cast", [b], { dtype: "f32" }).data)).toEqual([1, 0, 1]);
    expect(Array.from(run("cast", [b], { dtype: "i32" }).data)).toEqual([1, 0, 1]);
    expect(Array.from(run("cast", [tensor([4], "f32", [0, -0, 0.1, NaN])], { dtype: "bool" }).data)).toEqual([0, 0, 1, 1]);
    expect(Array.from(run("cast", [tensor([3], "i32", [0, -5, 7])], { dtype: "bool" }).data)).toEqual([0, 1, 1]);
  });

  it("i32 → f32 rounds to nearest even", () => {
    const out = run("cast", [tensor([3], "i32", [16777217, 16777219, -16777217])], { dtype: "f32" });
    expect(Array.from(out.data)).toEqual([16777216, 16777220, -16777216]);
  });

  it("f32 → f16/bf16 agrees with the weight converters on every f32", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        expect(roundToDType(x, "f16")).toBe(f16BitsToF32(f32ToF16Bits(x)));
        expect(roundToDType(x, "bf16")).toBe(bf16BitsToF32(f32ToBf16Bits(x)));
      }),
      { numRuns: NUM_RUNS * 10 },
    );
  });

  it("f16 rounding: representable values are fixed, midpoints go to even, overflow to ∞", () => {
    const vals: number[] = [];
    for (let h = 0; h < 0x7c00; h++) vals.push(f16BitsToF32(h)); // every finite non-negative f16, increasing
    const wrong: string[] = [];
    const check = (x: number, want: number) => {
      if (!Object.is(roundToDType(x, "f16"), want)) wrong.push(`${x} → ${roundToDType(x, "f16")}, want ${want}`);
    };
    for (let i = 0; i < vals.length; i++) {
      check(vals[i]!, vals[i]!);
      check(-vals[i]!, -vals[i]!);
      if (i + 1 < vals.length) {
        const mid = (vals[i]! + vals[i + 1]!) / 2; // exact in f64
        check(mid, i % 2 === 0 ? vals[i]! : vals[i + 1]!);
        check(mid * (1 - 2 ** -40), vals[i]!);
        check(mid * (1 + 2 ** -40), vals[i + 1]!);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(roundToDType(65504, "f16")).toBe(65504);
    expect(roundToDType(65519.99, "f16")).toBe(65504);
    expect(roundToDType(65520, "f16")).toBe(Infinity);
    expect(roundToDType(2 ** -25, "f16")).toBe(0); // a tie between 0 and the smallest subnormal
    expect(roundToDType(-(2 ** -25) * 1.0001, "f16")).toBe(-(2 ** -24));
  });

  it("f16 and bf16 tensors hold rounded values, op results included", () => {
    const x = tensor([2], "f16", [1 + 2 ** -12, 0.1]);
    expect(Array.from(x.data)).toEqual([1, f16BitsToF32(f32ToF16Bits(0.1))]);
    const y = run("add", [tensor([1], "bf16", [1]), tensor([1], "bf16", [2 ** -9])]);
    expect(Array.from(y.data)).toEqual([1]);
    expect(Array.from(run("cast", [tensor([1], "f32", [1 + 2 ** -8 + 2 ** -20])], { dtype: "bf16" }).data)).toEqual([1 + 2 ** -7]);
  });

  it("const and arange", () => {
    expect(run("const", [], { value: 0.1, dtype: "f32" })).toEqual({ shape: [], dtype: "f32", data: new Float32Array([0.1]) });
    expect(run("const", [], { value: true, dtype: "bool" }).data).toEqual(new Uint8Array([1]));
    expect(run("const", [], { value: -3, dtype: "i32" }).data).toEqual(new Int32Array([-3]));
    expect(() => run("const", [], { value: 1.5, dtype: "i32" })).toThrow(/i32 constant must be an integer, got 1.5/);
    expect(Array.from(run("arange", [], { n: 5 }).data)).toEqual([0, 1, 2, 3, 4]);
    expect(run("arange", [], { n: 0 }).shape).toEqual([0]);
  });
});

describe("reductions", () => {
  it("sum, mean and amax over any axis equal explicit loops", () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4, 1, 5).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }), fc.boolean(), seedArb)),
        ([shape, axis, keepdim, seed]) => {
          const x = randomTensor(shape, "f32", rng(seed));
          const ax = axis < 0 ? axis + shape.length : axis;
          const outer = sizeOf(shape.slice(0, ax));
          const n = shape[ax]!;
          const inner = sizeOf(shape.slice(ax + 1));
          const want = { sum: [] as number[], mean: [] as number[], amax: [] as number[] };
          for (let o = 0; o < outer; o++)
            for (let i = 0; i < inner; i++) {
              const xs = Array.from({ length: n }, (_, k) => x.data[(o * n + k) * inner + i]!);
              const s = xs.reduce((a, b) => a + b, 0);
              want.sum.push(f32(s));
              want.mean.push(f32(s / n));
              want.amax.push(Math.max(...xs));
            }
          const outShape = keepdim ? shape.map((d, i) => (i === ax ? 1 : d)) : shape.filter((_, i) => i !== ax);
          for (const op of ["sum", "mean", "amax"] as const) {
            const out = run(op, [x], { axis, keepdim });
            expect(out.shape).toEqual(outShape);
            expect(maxAbsDiff(out.data, want[op])).toBeLessThanOrEqual(1e-6);
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("amax propagates NaN and is -∞ over an empty axis", () => {
    expect(run("amax", [tensor([3], "f32", [1, NaN, 2])], { axis: 0, keepdim: false }).data[0]).toBeNaN();
    expect(Array.from(run("amax", [tensor([2, 0], "f32")], { axis: 1, keepdim: false }).data)).toEqual([-Infinity, -Infinity]);
  });
});

describe("matmul", () => {
  it("equals a naive triple loop, with broadcast batch dims", () => {
    fc.assert(
      fc.property(
        broadcastableShapes(2, 2),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 6 }),
        seedArb,
        ([ba, bb], m, k, n, seed) => {
          const next = rng(seed);
          const a = randomTensor([...ba!, m, k], "f32", next);
          const b = randomTensor([...bb!, k, n], "f32", next);
          const out = run("matmul", [a, b]);
          // Batch dims padded to rank 2; a dim of 1 is read at index 0.
          const pa = [...new Array<number>(2 - ba!.length).fill(1), ...ba!];
          const pb = [...new Array<number>(2 - bb!.length).fill(1), ...bb!];
          const batch = [Math.max(pa[0]!, pb[0]!), Math.max(pa[1]!, pb[1]!)];
          const want: number[] = [];
          for (let p = 0; p < batch[0]!; p++)
            for (let q = 0; q < batch[1]!; q++) {
              const ia = ((pa[0] === 1 ? 0 : p) * pa[1]! + (pa[1] === 1 ? 0 : q)) * m * k;
              const ib = ((pb[0] === 1 ? 0 : p) * pb[1]! + (pb[1] === 1 ? 0 : q)) * k * n;
              for (let i = 0; i < m; i++)
                for (let j = 0; j < n; j++) {
                  let s = 0;
                  for (let kk = 0; kk < k; kk++) s += a.data[ia + i * k + kk]! * b.data[ib + kk * n + j]!;
                  want.push(f32(s));
                }
            }
          const batchShape = ba!.length >= bb!.length ? ba!.map((d, i) => Math.max(d, bb![i - (ba!.length - bb!.length)] ?? 1)) : bb!.map((d, i) => Math.max(d, ba![i - (bb!.length - ba!.length)] ?? 1));
          expect(out.shape).toEqual([...batchShape, m, n]);
          expect(maxAbsDiff(out.data, want)).toBeLessThanOrEqual(1e-6);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("multiplies [64, 512] @ [512, 1376] well under a second", () => {
    const next = rng(1);
    const a = randomTensor([64, 512], "f32", next);
    const b = randomTensor([512, 1376], "f32", next);
    const t0 = performance.now();
    const out = run("matmul", [a, b]);
    expect(performance.now() - t0).toBeLessThan(1000);
    let s = 0;
    for (let k = 0; k < 512; k++) s += a.data[5 * 512 + k]! * b.data[k * 1376 + 77]!;
    expect(out.data[5 * 1376 + 77]).toBe(f32(s));
  });
});

describe("layout", () => {
  it("transpose moves each element to its permuted index, and the inverse undoes it", () => {
    fc.assert(
      fc.property(
        shapeArb(0, 5).chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray([...s.keys()], { minLength: s.length, maxLength: s.length }), seedArb)),
        ([shape, perm, seed]) => {
          const x = randomTensor(shape, "i32", rng(seed), { lo: -1000, hi: 1000 });
          const y = run("transpose", [x], { perm });
          const xs = stridesOf(shape);
          const ys = stridesOf(y.shape);
          for (let i = 0; i < y.data.length; i++) {
            // y[o] = x[i] with i[perm[k]] = o[k]
            let off = 0;
            perm.forEach((p, k) => (off += (Math.floor(i / ys[k]!) % y.shape[k]!) * xs[p]!));
            expect(y.data[i]).toBe(x.data[off]);
          }
          const inv = perm.map((_, i) => perm.indexOf(i));
          expect(run("transpose", [y], { perm: inv })).toEqual(x);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("reshape keeps row-major order and round-trips", () => {
    fc.assert(
      fc.property(shapeArb(0, 4).chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }), seedArb)), ([shape, target, seed]) => {
        const x = randomTensor(shape, "f16", rng(seed));
        const y = run("reshape", [x], { shape: target });
        expect(y.shape).toEqual(target);
        expect(y.data).toEqual(x.data);
        expect(y.data).not.toBe(x.data);
        expect(run("reshape", [y], { shape })).toEqual(x);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("concat then slice recovers the parts", () => {
    fc.assert(
      fc.property(
        shapeArb(1, 4).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 1, max: 4 }), seedArb)),
        ([shape, axis, nb, seed]) => {
          const next = rng(seed);
          const sb = shape.map((d, i) => (i === axis ? nb : d));
          const dt: DType = next() < 0.5 ? "f32" : "i32";
          const a = randomTensor(shape, dt, next);
          const b = randomTensor(sb, dt, next);
          const c = run("concat", [a, b], { axis: axis - shape.length });
          expect(run("slice", [c], { axis, start: 0, end: shape[axis]! })).toEqual(a);
          expect(run("slice", [c], { axis, start: shape[axis]!, end: shape[axis]! + nb })).toEqual(b);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("slice takes the given range along one axis", () => {
    const x = tensor([2, 4], "i32", [0, 1, 2, 3, 4, 5, 6, 7]);
    expect(run("slice", [x], { axis: 1, start: 1, end: 3 })).toEqual(tensor([2, 2], "i32", [1, 2, 5, 6]));
    expect(run("slice", [x], { axis: -2, start: 1, end: 2 })).toEqual(tensor([1, 4], "i32", [4, 5, 6, 7]));
  });

  it("gather picks the rows named by ids of any shape", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 6 }), shapeArb(0, 3, 0, 4), seedArb, (v, d, idShape, seed) => {
        const next = rng(seed);
        const table = randomTensor([v, d], "bf16", next);
        const ids = randomTensor(idShape, "i32", next, { lo: 0, hi: v - 1 });
        const out = run("gather", [table, ids]);
        expect(out.shape).toEqual([...idShape, d]);
        Array.from(ids.data).forEach((id, i) => {
          expect(Array.from(out.data.subarray(i * d, (i + 1) * d))).toEqual(Array.from(table.data.subarray(id * d, (id + 1) * d)));
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("gather names an out-of-range id and the table size", () => {
    const table = tensor([3, 2], "f32");
    expect(() => run("gather", [table, tensor([2], "i32", [1, 3])])).toThrow(/row id 3 .*table of 3 rows/);
    expect(() => run("gather", [table, tensor([1], "i32", [-1])])).toThrow(/row id -1 .*table of 3 rows/);
  });
});

// Shared pieces of the op reference tests: seeded random data, shape arbitraries, one arbitrary case
// (valid inputs and attributes) per op of the table, and a shorthand for running reference ops.

import fc from "fast-check";
import { opTable, type DType } from "../../src/compiler/ops/table.js";
import { parseProgram } from "../../src/compiler/ops/expr.js";
import { rng } from "../../src/runtime/weights/random.js";
import { reference, sizeOf, tensor, type ConcreteAttrs, type HostTensor } from "../../src/compiler/ops/reference.js";

/** For cheap properties; expensive ones use a fraction of it. */
export const NUM_RUNS = process.env["CI"] ? 1000 : 200;

/** A small seeded generator, so shrinking keeps the data of a case. */
export { rng };

export interface DataOpts {
  /** Floats uniform in [-range, range] (default 2). */
  range?: number;
  /** Integers uniform in [lo, hi] (default -9…9). */
  lo?: number;
  hi?: number;
}

export function randomTensor(shape: readonly number[], dtype: DType, next: () => number, opts: DataOpts = {}): HostTensor {
  const n = sizeOf(shape);
  const range = opts.range ?? 2;
  const lo = opts.lo ?? -9;
  const hi = opts.hi ?? 9;
  const vals = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (dtype === "bool") vals[i] = next() < 0.5 ? 1 : 0;
    else if (dtype === "i32") vals[i] = lo + Math.floor(next() * (hi - lo + 1));
    else vals[i] = (2 * next() - 1) * range;
  }
  return tensor(shape, dtype, vals);
}

export const seedArb = fc.integer({ min: 0, max: 0x7fffffff });
export const FLOATS: readonly DType[] = ["f32", "f16", "bf16"];
export const floatDType = fc.constantFrom(...FLOATS);

export function shapeArb(minRank = 0, maxRank = 4, minDim = 1, maxDim = 4): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: minDim, max: maxDim }), { minLength: minRank, maxLength: maxRank });
}

/** `n` shapes that broadcast together: suffixes of one shape with some dims replaced by 1. */
export function broadcastableShapes(n: number, maxRank = 4): fc.Arbitrary<number[][]> {
  return shapeArb(0, maxRank).chain((base) =>
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: base.length }), fc.array(fc.boolean(), { minLength: base.length, maxLength: base.length })), {
        minLength: n,
        maxLength: n,
      })
      .map((specs) => specs.map(([drop, ones]) => base.map((d, i) => (ones[i] ? 1 : d)).slice(drop))),
  );
}

/** Runs a checked reference op. */
export function run(op: string, inputs: HostTensor[], attrs: ConcreteAttrs = {}): HostTensor {
  const f = reference[op];
  if (!f) throw new Error(`no reference for ${op}`);
  return f(inputs, attrs);
}

export function scalar(value: number, dtype: DType = "f32"): HostTensor {
  return run("const", [], { value, dtype });
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? (Object.is(a[i], b[i]) || (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) ? m : Infinity) : d;
  }
  return m;
}

// ------------------------------------------------------------------------------------------ one case per op

export interface OpCase {
  inputs: HostTensor[];
  attrs: ConcreteAttrs;
}

type CaseArb = fc.Arbitrary<OpCase>;

const withData = <T>(arb: fc.Arbitrary<T>, build: (v: T, next: () => number) => OpCase): CaseArb =>
  fc.tuple(arb, seedArb).map(([v, seed]) => build(v, rng(seed)));

const unaryCase = (dtypes: readonly DType[]): CaseArb =>
  withData(fc.tuple(shapeArb(0, 4, 0, 4), fc.constantFrom(...dtypes)), ([shape, dt], next) => ({
    inputs: [randomTensor(shape, dt, next, { range: 3, lo: 1, hi: 9 })],
    attrs: {},
  }));

const naryCase = (n: number, dtypes: readonly DType[], condFirst = false): CaseArb =>
  withData(fc.tuple(broadcastableShapes(n), fc.constantFrom(...dtypes)), ([shapes, dt], next) => ({
    // Positive integers so i32 division and powers are defined.
    inputs: shapes.map((s, i) => randomTensor(s, condFirst && i === 0 ? "bool" : dt, next, { lo: 1, hi: 9 })),
    attrs: {},
  }));

const reductionCase: CaseArb = withData(
  shapeArb(1, 4).chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: -shape.length, max: shape.length - 1 }), fc.boolean(), floatDType)),
  ([shape, axis, keepdim, dt], next) => ({ inputs: [randomTensor(shape, dt, next)], attrs: { axis, keepdim } }),
);

const ALL_DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i32", "bool"];

/** One random attention shape (small enough for the reference's every case). */
const attentionShape = fc.record({
  t: fc.integer({ min: 1, max: 4 }),
  s: fc.integer({ min: 1, max: 6 }),
  hkv: fc.integer({ min: 1, max: 3 }),
  group: fc.integer({ min: 1, max: 3 }),
  d: fc.integer({ min: 1, max: 4 }),
  dv: fc.integer({ min: 1, max: 4 }),
  causal: fc.boolean(),
  window: fc.integer({ min: 0, max: 4 }),
  segment: fc.integer({ min: 0, max: 3 }),
  dt: floatDType,
});
const attentionAttrs = (causal: boolean, window: number, segment: number, d: number) => ({ causal, window, scale: 1 / Math.sqrt(d), ...(segment ? { segment } : {}) });

const CASES: Record<string, () => CaseArb> = {
  const: () =>
    fc.tuple(fc.constantFrom(...ALL_DTYPES), fc.integer({ min: -100, max: 100 }), fc.double({ min: -1e3, max: 1e3, noNaN: true })).map(([dtype, i, x]) => ({
      inputs: [],
      attrs: { dtype, value: dtype === "i32" ? i : dtype === "bool" ? i & 1 : x },
    })),
  arange: () => fc.integer({ min: 0, max: 40 }).map((n) => ({ inputs: [], attrs: { n } })),
  dim_value: () =>
    fc.tuple(fc.constantFrom<DType>("f32", "i32"), fc.integer({ min: 0, max: 1 << 20 })).map(([dtype, value]) => ({ inputs: [], attrs: { dtype, value } })),
  not: () => unaryCase(["bool"]),
  dropout: () => fc.tuple(unaryCase(FLOATS), fc.double({ min: 0, max: 0.95, noNaN: true })).map(([c, p]) => ({ ...c, attrs: { p } })),
  neg: () => unaryCase(["f32", "f16", "bf16", "i32"]),
  abs: () => unaryCase(["f32", "f16", "bf16", "i32"]),
  cast: () =>
    withData(fc.tuple(shapeArb(0, 3, 0, 4), fc.constantFrom(...ALL_DTYPES), fc.constantFrom(...ALL_DTYPES)), ([shape, from, to], next) => ({
      inputs: [randomTensor(shape, from, next, { range: 100 })],
      attrs: { dtype: to },
    })),
  where: () => naryCase(3, ["f32", "i32", "bf16"], true),
  sum: () => reductionCase,
  mean: () => reductionCase,
  amax: () => reductionCase,
  argmax: () => reductionCase,
  matmul: () =>
    withData(
      fc.tuple(broadcastableShapes(2, 2), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), floatDType),
      ([[ba, bb], m, k, n, dt], next) => ({
        inputs: [randomTensor([...ba!, m, k], dt, next), randomTensor([...bb!, k, n], dt, next)],
        attrs: {},
      }),
    ),
  transpose: () =>
    withData(
      shapeArb(0, 5).chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length }))),
      ([shape, perm], next) => ({ inputs: [randomTensor(shape, "f32", next)], attrs: { perm } }),
    ),
  reshape: () =>
    withData(
      shapeArb(0, 4).chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray(shape, { minLength: shape.length, maxLength: shape.length }), fc.nat())),
      ([shape, shuffled, merge], next) => {
        // A different factorisation of the same size: shuffled dims, two of them merged.
        const target = shuffled.slice();
        if (target.length >= 2) {
          const i = merge % (target.length - 1);
          target.splice(i, 2, target[i]! * target[i + 1]!);
        }
        return { inputs: [randomTensor(shape, "i32", next)], attrs: { shape: target } };
      },
    ),
  concat: () =>
    withData(
      shapeArb(1, 4).chain((shape) => fc.tuple(fc.constant(shape), fc.integer({ min: 0, max: shape.length - 1 }), fc.integer({ min: 0, max: 4 }), fc.boolean())),
      ([shape, axis, nb, negAxis], next) => {
        const sb = shape.slice();
        sb[axis] = nb;
        return {
          inputs: [randomTensor(shape, "f32", next), randomTensor(sb, "f32", next)],
          attrs: { axis: negAxis ? axis - shape.length : axis },
        };
      },
    ),
  slice: () =>
    withData(
      shapeArb(1, 4).chain((shape) =>
        fc.integer({ min: 0, max: shape.length - 1 }).chain((axis) =>
          fc
            .tuple(fc.integer({ min: 0, max: shape[axis]! - 1 }), fc.integer({ min: 1, max: shape[axis]! }))
            .map(([a, b]) => [shape, axis, Math.min(a, b - 1), Math.max(b, a + 1)] as const),
        ),
      ),
      ([shape, axis, start, end], next) => ({ inputs: [randomTensor(shape, "bf16", next)], attrs: { axis, start, end } }),
    ),
  gather: () =>
    withData(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), shapeArb(0, 3, 0, 4)), ([v, d, idShape], next) => ({
      inputs: [randomTensor([v, d], "f32", next), randomTensor(idShape, "i32", next, { lo: 0, hi: v - 1 })],
      attrs: {},
    })),
  gather_grad: () =>
    withData(fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), shapeArb(0, 3, 0, 4), floatDType), ([v, d, idShape, dt], next) => ({
      // Ids from −1 to v: out-of-range ones add to no row.
      inputs: [randomTensor(idShape, "i32", next, { lo: -1, hi: v }), randomTensor([...idShape, d], dt, next)],
      attrs: { rows: v },
    })),
  // The loss's rows: targets from −1 to V (some ignored), dy for the gradient.
  ...Object.fromEntries(["cross_entropy_rows", "cross_entropy_rows_grad"].map((op) => [op, () =>
    withData(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 7 }), floatDType), ([t, v, dt], next) => {
      const inputs = [randomTensor([t, v], dt, next), randomTensor([t], "i32", next, { lo: -1, hi: v })];
      return { inputs: op === "cross_entropy_rows" ? inputs : [...inputs, randomTensor([t], "f32", next)], attrs: {} };
    })])),
  rotary: () =>
    withData(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), floatDType), ([t, h, half, dt], next) => ({
      inputs: [randomTensor([t, h, 2 * half], dt, next), randomTensor([t, half], "f32", next), randomTensor([t, half], "f32", next)],
      attrs: {},
    })),
  attention: () =>
    withData(attentionShape, ({ t, s, hkv, group, d, dv, causal, window, segment, dt }, next) => ({
      inputs: [randomTensor([t, hkv * group, d], dt, next), randomTensor([s, hkv, d], dt, next), randomTensor([s, hkv, dv], dt, next)],
      attrs: attentionAttrs(causal, window, segment, d),
    })),
  // The attention gradient ops: q, k, v, o, dO and lse of one random attention shape, inputs in each
  // op's order.
  ...Object.fromEntries(["attention_lse", "attention_dq", "attention_dk", "attention_dv"].map((op) => [op, () =>
    withData(attentionShape, ({ t, s, hkv, group, d, dv, causal, window, segment, dt }, next) => {
      const hq = hkv * group;
      const [q, k, v] = [randomTensor([t, hq, d], dt, next), randomTensor([s, hkv, d], dt, next), randomTensor([s, hkv, dv], dt, next)];
      const [o, dO, lse] = [randomTensor([t, hq, dv], dt, next), randomTensor([t, hq, dv], dt, next), randomTensor([t, hq], "f32", next)];
      const inputs = op === "attention_lse" ? [q, k] : op === "attention_dv" ? [q, k, dO, lse] : [q, k, v, o, dO, lse];
      return { inputs, attrs: attentionAttrs(causal, window, segment, d) };
    })])),
  // Fused kernels: an RMSNorm-like row program over x [rows, width] and a gain [width].
  fused: () =>
    withData(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 })), ([rows, width], next) => ({
      inputs: [randomTensor([rows, width], "f32", next), randomTensor([width], "f32", next)],
      attrs: { program: parseProgram("in0; mul(0, 0); mean(1); 0.00001:f32; add(2, 3); rsqrt(4); mul(0, 5); in1; mul(6, 7) -> 8") },
    })),
  // A gated pair of accumulators with a residual: silu(x·W0ᵀ) · (x·W1ᵀ) + r.
  linear: () =>
    withData(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })), ([m, k, n], next) => ({
      inputs: [randomTensor([m, k], "f32", next), randomTensor([n, k], "f32", next), randomTensor([n, k], "f32", next), randomTensor([m, n], "f32", next)],
      attrs: { weights: 2, epilogue: parseProgram("in0; silu(0); in1; mul(1, 2); in2; add(3, 4) -> 5") },
    })),
  // RMSNorm prologue over x [m, k] and a gain [k]; a bias epilogue; RoPE-style rotation of heads of
  // 2·half by the angle a[m]·f[j] (or no rotation).
  fused_linear: () =>
    withData(
      fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.boolean()),
      ([m, k, heads, half, rotate], next) => {
        const n = heads * 2 * half;
        return {
          inputs: [
            randomTensor([m, k], "f32", next),
            randomTensor([k], "f32", next),
            randomTensor([n, k], "f32", next),
            randomTensor([n], "f32", next),
            ...(rotate ? [randomTensor([m, 1], "f32", next), randomTensor([half], "f32", next)] : []),
          ],
          attrs: {
            prologue: parseProgram("in0; mul(0, 0); mean(1); 0.00001:f32; add(2, 3); rsqrt(4); mul(0, 5); in1; mul(6, 7) -> 8"),
            x_inputs: 2,
            weights: 1,
            epilogue: parseProgram("in0; in1; add(0, 1) -> 2"),
            extras: 1,
            head_dim: rotate ? 2 * half : 0,
            rotation: parseProgram(rotate ? "in0; in1; mul(0, 1); cos(2); sin(2) -> 3, 4" : "1:f32; 0:f32 -> 0, 1"),
          },
        };
      },
    ),
};

/** Valid random inputs and attributes for `op`; undefined for an op this file does not know yet. */
export function opCase(op: string): CaseArb | undefined {
  const special = CASES[op];
  if (special) return special();
  const def = opTable.get(op);
  if (!def || def.kind !== "elementwise") return undefined;
  // Every other elementwise op is a float unary op, a numeric binary op, or a logical (bool) one.
  if (def.arity === 1) return unaryCase(FLOATS);
  if (def.arity === 2) {
    let boolOnly = false;
    try {
      def.infer([{ shape: [], dtype: "f32" }, { shape: [], dtype: "f32" }], {});
    } catch {
      boolOnly = true;
    }
    return naryCase(2, boolOnly ? ["bool"] : ["f32", "f16", "bf16", "i32"]);
  }
  return undefined;
}

// Random cases of the training kernels that both GPU backends check against the CPU reference
// (test/{webgpu,cuda}/gather-grad.test.ts and cross-entropy.test.ts): the same shapes, values and
// graphs, each backend running them its own way.

import fc from "fast-check";
import { constDim } from "../../src/compiler/base/symbolic.js";
import { rng } from "../../src/runtime/weights/random.js";
import { dims, GraphBuilder } from "./graph.js";

/** f32 sums (in id or vocabulary order) against the reference's f64 ones. */
export const TRAINING_KERNEL_TOL = 1e-5;

/** `tensor` seen through a slice `pad` elements into a flat weight of `name`: unaligned offsets. */
function paddedView(b: GraphBuilder, name: string, shape: number[], pad: number): number {
  const size = shape.reduce((a, x) => a * x, 1);
  const flat = b.op("slice", [b.weight(name, [pad + size])], { axis: 0, start: constDim(pad), end: constDim(pad + size) });
  return b.op("reshape", [flat], { shape: dims(shape) });
}

// ------------------------------------------------------------------------------------ gather_grad

export interface GatherGradCase {
  idShape: number[];
  /** In −1…rows: the ends are out of range and add to no row. */
  ids: number[];
  rows: number;
  d: number;
  /** dy as a view `pad` elements into a weight. */
  pad: number;
}

export const gatherGradCase: fc.Arbitrary<GatherGradCase> = fc
  .record({
    idShape: fc.oneof(fc.tuple(fc.integer({ min: 1, max: 200 })), fc.tuple(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 14 }))),
    rows: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
    d: fc.constantFrom(1, 3, 4, 8, 64),
    pad: fc.constantFrom(0, 0, 1, 4),
  })
  .chain((c) => {
    const n = c.idShape.reduce((a, b) => a * b, 1);
    return fc.array(fc.integer({ min: -1, max: c.rows }), { minLength: n, maxLength: n }).map((ids) => ({ ...c, ids }));
  });

export function gatherGradGraph(c: GatherGradCase) {
  const b = new GraphBuilder();
  const ids = b.literal(Int32Array.from(c.ids), c.idShape);
  const dy = paddedView(b, "dy", [...c.idShape, c.d], c.pad);
  return b.graph([b.op("gather_grad", [ids, dy], { rows: constDim(c.rows) })]);
}

// ---------------------------------------------------------------------------------- cross-entropy

export const LOSS_OPS = ["cross_entropy_rows", "cross_entropy_rows_grad"] as const;

export interface LossCase {
  t: number;
  v: number;
  /** In −1…V: the ends are out of range and the row is ignored. */
  targets: number[];
  /** Logits as a view `pad` elements into a literal. */
  pad: number;
  seed: number;
}

export const lossCase: fc.Arbitrary<LossCase> = fc
  .record({
    t: fc.integer({ min: 1, max: 40 }),
    v: fc.constantFrom(1, 3, 4, 7, 64, 1000),
    pad: fc.constantFrom(0, 0, 1, 4),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .chain((c) => fc.array(fc.integer({ min: -1, max: c.v }), { minLength: c.t, maxLength: c.t }).map((targets) => ({ ...c, targets })));

/** Uniform in ±2, a quarter of the rows in ±50, and now and then one logit of ±50 standing out. */
function logitValues(n: number, v: number, seed: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  let scale = 2;
  for (let i = 0; i < n; i++) {
    if (i % v === 0) scale = next() < 0.25 ? 50 : 2;
    out[i] = (next() < 0.02 ? 50 : scale) * (2 * next() - 1);
  }
  return out;
}

/** One op of the loss over the case's logits (a literal, at `pad`) and targets; dy a weight. */
export function lossGraph(c: LossCase, op: (typeof LOSS_OPS)[number]) {
  const b = new GraphBuilder();
  const size = c.t * c.v;
  const all = b.literal(logitValues(c.pad + size, c.v, c.seed), [c.pad + size]);
  const flat = b.op("slice", [all], { axis: 0, start: constDim(c.pad), end: constDim(c.pad + size) });
  const logits = b.op("reshape", [flat], { shape: dims([c.t, c.v]) });
  const targets = b.literal(Int32Array.from(c.targets), [c.t]);
  const inputs = op === "cross_entropy_rows" ? [logits, targets] : [logits, targets, b.weight("dy", [c.t])];
  return b.graph([b.op(op, inputs)]);
}

// The training loss's kernels: cross_entropy_rows and cross_entropy_rows_grad (ops/table.ts).
// One row of logits per invocation, looping over the vocabulary rather than holding the row (V may be
// ~128k): a pass for the row's max, one for Σ exp(x − max), then the row's loss, or a third pass
// writing its gradient. Read as vec4 where the vocabulary and the offsets allow.
//
// llvmpipe cuts an invocation's loops short after 65535 iterations in all (gallivm's
// LP_MAX_TGSI_LOOP_ITERATIONS, shared by every loop of a shader), silently: one element an iteration,
// a scalar row of 128256 logits came out wrong. So each iteration covers UNROLL elements, and three
// passes over 128256 logits take ~24k iterations.

import { crossEntropyGeometry } from "../shared/geometry.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import type { WgslTuning } from "./tuning.js";

/** Elements (f32 or vec4) each loop iteration reads. */
const UNROLL = 16;
/** llvmpipe's limit on an invocation's loop iterations, all loops together. */
const MAX_LOOP_ITERATIONS = 65535;

/** [j == t] for the logits j of element c: one, or four in a vec4. */
const HOT = {
  f32: "fn hot(c: u32, t: u32) -> f32 {\n  return select(0.0f, 1.0f, c == t);\n}",
  vec4: "fn hot(c: u32, t: u32) -> vec4<f32> {\n  return select(vec4<f32>(0.0f), vec4<f32>(1.0f), vec4<u32>(c * 4u) + vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(t));\n}",
};

export function emitCrossEntropy(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const { n, grad, logits, targets, dy, tDim, V } = crossEntropyGeometry(ctx, "WGSL");
  const [lp, tp, op] = [ctx.placement(logits), ctx.placement(targets), ctx.placement(n.id)];
  // The loss is one f32 a row; the gradient is as wide as the logits and is written as they are read.
  const vec = V % 4 === 0 && lp.offset % 4 === 0 && (!grad || op.offset % 4 === 0) ? 4 : 1;
  const vt = vec === 4 ? "vec4<f32>" : "f32";
  const b = new BindingSet(ctx);
  const logitBuf = b.storage(lp, "read", vt);
  const targetBuf = b.storage(tp, "read", "i32");
  const dyp = dy === undefined ? undefined : ctx.placement(dy);
  const dyBuf = dyp ? b.storage(dyp, "read", "f32") : "";
  const out = b.storage(op, "write", grad ? vt : "f32");
  const width = V / vec;
  const bulk = width - (width % UNROLL);
  // Three passes (a zero row: one), each its bulk in steps of UNROLL and the rest one at a time.
  if (3 * (bulk / UNROLL + UNROLL) > MAX_LOOP_ITERATIONS) {
    throw new Error(`${ctx.label()}: a vocabulary of ${V} is more than the WGSL cross-entropy kernels loop over (llvmpipe stops a shader after ${MAX_LOOP_ITERATIONS} loop iterations)`);
  }
  const rows = b.extent(tDim);
  const g = grid(rows.max, tuning.workgroupSize);
  const code = renderTemplate("cross_entropy", {
    ...headerContext("cross_entropy", b, grad ? [vec === 4 ? HOT.vec4 : HOT.f32] : []),
    op: n.op,
    grad,
    rows: rows.code,
    vocab: V,
    last: V - 1,
    width,
    unroll: UNROLL,
    bulk,
    rest: width - bulk,
    steps: Array.from({ length: UNROLL }, (_, k) => (k === 0 ? "" : ` + ${k}u`)),
    vec4: vec === 4,
    vt,
    logitBuf,
    logitOffset: plus(lp.offset / vec),
    targetBuf,
    targetOffset: plus(tp.offset),
    dyBuf,
    dyOffset: plus(dyp?.offset ?? 0),
    out,
    outOffset: plus(op.offset / (grad ? vec : 1)),
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

// The training loss's kernels: cross_entropy_rows and cross_entropy_rows_grad (ops/table.ts).
// A warp per row of logits, lanes striding over the vocabulary: the row's max and Σ exp(x − max) by
// warp reductions (fixed shuffle order, so the same bits run to run), then the row's loss or a pass
// writing its gradient.

import { crossEntropyGeometry } from "../shared/geometry.js";
import type { DispatchContext } from "./context.js";
import { single, type Emitted } from "./elementwise.js";
import { checkIndexRange, makeKernel, ParamSet } from "./kernel.js";

/** Rows (one a warp) per block: rows are independent, so a small block keeps short steps spread. */
const WARPS = 4;

export function emitCrossEntropy(ctx: DispatchContext): Emitted {
  const { n, grad, logits, targets, dy, tDim, V } = crossEntropyGeometry(ctx, "CUDA");
  const maxRows = ctx.atMax(tDim);
  checkIndexRange(maxRows * V, ctx.label());
  const params = new ParamSet(ctx);
  const ptr = (id: number, elem: string, access: "read" | "write") => {
    const a = ctx.arg(id);
    return params.buffer(a.buffer, a.offsetBytes, elem, access);
  };
  const kernel = makeKernel("cross_entropy", "cross_entropy", params, [], {
    op: n.op,
    grad,
    logits: ptr(logits, "float", "read"),
    targets: ptr(targets, "int", "read"),
    dy: dy === undefined ? "" : ptr(dy, "float", "read"),
    out: ptr(n.id, "float", "write"),
    rows: params.dim(tDim),
    vocab: V,
    last: V - 1,
    warps: WARPS,
    block: WARPS * 32,
  });
  return single(ctx, kernel, params, [Math.max(1, Math.ceil(maxRows / WARPS)), 1, 1], WARPS * 32);
}

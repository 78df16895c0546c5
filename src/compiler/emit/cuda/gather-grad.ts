// An embedding's gradient (training): gather_grad sums the rows of dy by id into a [rows, D] table.
// A warp per output row: every lane reads each id in turn (a branch the whole warp takes alike) and
// adds its columns of the matching dy rows, in id order. No atomics, so the sums are the same bits
// run to run; each lane owns its columns of the row, so it accumulates straight into the output.

import type { Dim } from "../../base/symbolic.js";
import { dimProduct } from "../shared/indexing.js";
import type { DispatchContext } from "./context.js";
import { single, type Emitted } from "./elementwise.js";
import { checkIndexRange, makeKernel, ParamSet } from "./kernel.js";

/** Rows (one a warp) per block: rows are independent, so a small block keeps few rows spread. */
const WARPS = 4;

export function emitGatherGrad(ctx: DispatchContext): Emitted {
  const [ids, dy] = ctx.dispatch.inputs as [number, number];
  const n = ctx.outputNode;
  const dtype = ctx.node(dy).ty.dtype;
  if (dtype !== "f32") throw new Error(`${ctx.label()}: the CUDA gather_grad kernel takes f32 dy, got ${dtype}`);
  const [rows, D] = ctx.dims(n.id) as [Dim, Dim];
  const nIds = dimProduct(ctx.dims(ids));
  const maxRows = ctx.atMax(rows);
  checkIndexRange(Math.max(maxRows, ctx.atMax(nIds)) * ctx.atMax(D), ctx.label());
  const params = new ParamSet(ctx);
  const ia = ctx.arg(ids);
  const ya = ctx.arg(dy);
  const oa = ctx.arg(n.id);
  const kernel = makeKernel("gather_grad", "gather_grad", params, [], {
    idBuf: params.buffer(ia.buffer, ia.offsetBytes, "int", "read"),
    dy: params.buffer(ya.buffer, ya.offsetBytes, "float", "read"),
    out: params.buffer(oa.buffer, oa.offsetBytes, "float", "write"),
    rows: params.dim(rows),
    ids: params.dim(nIds),
    width: params.dim(D),
    warps: WARPS,
    block: WARPS * 32,
  });
  return single(ctx, kernel, params, [Math.max(1, Math.ceil(maxRows / WARPS)), 1, 1], WARPS * 32);
}

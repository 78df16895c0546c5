// An embedding's gradient (training): gather_grad sums the rows of dy by id into a [rows, D] table.
// One output row per invocation, which zeroes its row and adds the rows of dy whose id is its row, in
// id order: no atomics, so the sums are the same bits run to run. On llvmpipe (2 cores; ids 1024,
// rows 4096, D 256) a step takes ~12 ms this way against ~40 ms with an invocation per (row, 16
// vec4 columns) and ~500 ms per (row, vec4 column): each invocation reads every id.

import { divDimExact, type Dim } from "../../base/symbolic.js";
import { dimProduct } from "../shared/indexing.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import type { WgslTuning } from "./tuning.js";

export function emitGatherGrad(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const [ids, dy] = ctx.dispatch.inputs as [number, number];
  const n = ctx.outputNode;
  const dtype = ctx.node(dy).ty.dtype;
  if (dtype !== "f32") throw new Error(`${ctx.label()}: the WGSL gather_grad kernel takes f32 dy, got ${dtype}`);
  const [rows, D] = ctx.dims(n.id) as [Dim, Dim];
  const [ip, yp, op] = [ctx.placement(ids), ctx.placement(dy), ctx.placement(n.id)];
  const quarter = divDimExact(D, 4);
  const vec = quarter !== null && yp.offset % 4 === 0 && op.offset % 4 === 0 ? 4 : 1;
  const vt = vec === 4 ? "vec4<f32>" : "f32";
  const b = new BindingSet(ctx);
  const idBuf = b.storage(ip, "read", "i32");
  const dyBuf = b.storage(yp, "read", vt);
  const out = b.storage(op, "write", vt);
  const rowCount = b.extent(rows);
  const g = grid(rowCount.max, tuning.workgroupSize);
  const code = renderTemplate("gather_grad", {
    ...headerContext("gather_grad", b),
    rows: rowCount.code,
    ids: b.dim(dimProduct(ctx.dims(ids))),
    width: b.dim(vec === 4 ? quarter! : D),
    vec,
    vt,
    idBuf,
    idOffset: plus(ip.offset),
    dyBuf,
    dyOffset: plus(yp.offset / vec),
    out,
    outOffset: plus(op.offset / vec),
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

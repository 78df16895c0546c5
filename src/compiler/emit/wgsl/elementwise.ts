// Elementwise and row-reduction kernels, their bodies written once for every target (emit/shared):
// `elementwise` (one op, constants inlined), `fused` (a program; with reductions it is a row
// program over the output's last axis) and `reduce` (sum / mean / amax over any axis; argmax here).

import { mulDim } from "../../base/symbolic.js";
import { elementwiseBody } from "../shared/elementwise.js";
import { axisRows, renderRows, rowSpec } from "../shared/rows.js";
import type { DispatchContext } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { wgsl } from "./lang.js";
import type { WgslTuning } from "./tuning.js";

/** An elementwise program over the dispatch's inputs, broadcast to the output shape. */
export function emitElementwise(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  if (ctx.dispatch.program!.nodes.some((n) => n.kind === "reduce")) return emitRows(ctx, tuning);
  const b = new BindingSet(ctx);
  const e = elementwiseBody(b);
  const perInvocation = Math.max(1, Math.min(tuning.elementsPerInvocation, e.count.max));
  const invocations = Math.ceil(e.count.max / perInvocation);
  const g = grid(invocations, tuning.workgroupSize);
  const code = renderTemplate("elementwise", {
    ...headerContext(ctx.dispatch.kernel, b, e.helpers),
    count: e.count.code,
    perInvocation,
    invocations,
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
    body: e.body,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** A row program (emit/shared/rows.ts): one row per invocation. */
function emitRows(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const b = new BindingSet(ctx);
  const spec = rowSpec(b);
  const r = renderRows(spec, wgsl);
  const g = grid(spec.rows.max, tuning.reduceWorkgroupSize);
  const code = renderTemplate("reduction", {
    ...headerContext(ctx.dispatch.kernel, b, r.helpers),
    rows: spec.rows.code,
    length: spec.length.code,
    workgroupSize: tuning.reduceWorkgroupSize,
    rowStride: g.rowStride,
    rowSetup: spec.rowBases.map((v) => wgsl.letIndex(v.name, v.value)),
    pre: r.pre,
    perRow: spec.perRow,
    body: r.body,
    store: r.store,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** Invocations of one argmax row: a power of two for the shared-memory tree. */
export const ARGMAX_WORKGROUP_SIZE = 64;

/**
 * argmax over one axis: one workgroup per row (rows are (outer, inner) pairs), each invocation
 * scanning every ARGMAX_WORKGROUP_SIZE-th element, then a tree in shared memory. Ties go to the
 * lowest index and a NaN beats every number, as in the reference.
 */
function emitArgmax(ctx: DispatchContext): WgslKernel {
  const d = ctx.dispatch;
  const n = ctx.outputNode;
  const src = d.inputs[0]!;
  const b = new BindingSet(ctx);
  const { outer, length, inner, rowBase, element } = axisRows(ctx.dims(src), n.attrs["axis"], b.dim);
  const rows = b.extent(mulDim(outer, inner));
  const load = b.read(src)(`rb + ${element}`);
  const out = b.output(d.node);
  const w = ARGMAX_WORKGROUP_SIZE;
  const g = grid(rows.max * w, w);
  const code = renderTemplate("argmax", {
    ...headerContext(d.kernel, b),
    rows: rows.code,
    length: b.dim(length),
    workgroupSize: w,
    half: w / 2,
    groupsX: g.workgroups[0],
    rowBase,
    load,
    store: out.store("r", "i32(bestIndex[0])"),
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** sum / mean / amax (and argmax) over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return ctx.outputNode.op === "argmax" ? emitArgmax(ctx) : emitRows(ctx, tuning);
}

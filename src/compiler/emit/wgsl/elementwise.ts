// Elementwise and row-reduction kernels, both bodies rendered by the shared expression renderer:
// `elementwise` (one op, constants inlined), `fused` (a program; with reductions it is a row
// program over the output's last axis) and `reduce` (sum / mean / amax over any axis).

import { renderExpr } from "../shared/expr.js";
import { alongRow, axisRows, lastAxisRows, reduceProgram, type RowSpec } from "../shared/rows.js";
import type { DispatchContext } from "./context.js";
import { plus, product } from "./context.js";
import { BindingSet, broadcastStrides, grid, headerContext, offsetExpr, renderTemplate, type WgslKernel } from "./kernel.js";
import { loadAs, storageType, storeAs, u32Literal, wgsl } from "./lang.js";
import type { WgslTuning } from "./tuning.js";

/** An elementwise program over the dispatch's inputs, broadcast to the output shape. */
export function emitElementwise(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const program = d.program!;
  if (program.nodes.some((n) => n.kind === "reduce")) return emitRowProgram(ctx, tuning);
  const outShape = ctx.shape(d.node);
  const count = product(outShape);
  const b = new BindingSet();
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const access = d.inputs.map((id, i) => {
    const p = ctx.placement(id);
    const name = b.storage(p, "read", storageType(types[i]!));
    return loadAs(types[i]!, `${name}[${offsetExpr("i", outShape, broadcastStrides(ctx.shape(id), outShape), p.offset)}]`);
  });
  const outType = ctx.outputNode.ty.dtype;
  const out = b.storage(ctx.placement(d.node), "read_write", storageType(outType));
  const r = renderExpr(program, wgsl, (i) => access[i]!, undefined, types);
  const perInvocation = Math.max(1, Math.min(tuning.elementsPerInvocation, count));
  const invocations = Math.ceil(count / perInvocation);
  const g = grid(invocations, tuning.workgroupSize);
  const code = renderTemplate("elementwise", {
    ...headerContext(d.kernel, b, r.helpers),
    count,
    perInvocation,
    invocations,
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
    pre: r.pre,
    body: r.body,
    store: [`${out}[${plus(ctx.placement(d.node).offset)}i] = ${storeAs(outType, r.outputs[0]!)};`],
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

function rowKernel(ctx: DispatchContext, tuning: WgslTuning, b: BindingSet, spec: RowSpec): WgslKernel {
  const r = renderExpr(spec.program, wgsl, (i) => spec.access[i]!, { index: "k", length: u32Literal(spec.length) }, spec.types);
  const g = grid(spec.rows, tuning.reduceWorkgroupSize);
  const code = renderTemplate("reduction", {
    ...headerContext(ctx.dispatch.kernel, b, r.helpers),
    rows: spec.rows,
    length: spec.length,
    workgroupSize: tuning.reduceWorkgroupSize,
    rowStride: g.rowStride,
    rowSetup: spec.rowSetup,
    pre: r.pre,
    perRow: spec.perRow,
    body: r.body,
    store: [spec.store(r.outputs[0]!)],
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** A fused program with reductions over the last axis of its output: one row per invocation. */
function emitRowProgram(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const outShape = ctx.shape(d.node);
  const { length, rowShape } = lastAxisRows(outShape);
  const b = new BindingSet();
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const rowSetup: string[] = [];
  const access = d.inputs.map((id, i) => {
    const p = ctx.placement(id);
    const name = b.storage(p, "read", storageType(types[i]!));
    const strides = broadcastStrides(ctx.shape(id), outShape);
    const along = outShape.length ? strides[strides.length - 1]! : 0;
    rowSetup.push(`let rb${i} = ${offsetExpr("r", rowShape, strides.slice(0, -1), p.offset)};`);
    return loadAs(types[i]!, `${name}[rb${i}${alongRow(along, u32Literal)}]`);
  });
  const outType = ctx.outputNode.ty.dtype;
  const out = b.storage(ctx.placement(d.node), "read_write", storageType(outType));
  const base = ctx.placement(d.node).offset;
  return rowKernel(ctx, tuning, b, {
    rows: product(rowShape),
    length,
    rowSetup,
    access,
    types,
    program: d.program!,
    perRow: false,
    store: (v) => `${out}[${plus(base)}r * ${u32Literal(length)} + k] = ${storeAs(outType, v)};`,
  });
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
  const { outer, length, inner, rowBase, element } = axisRows(ctx.shape(src), n.attrs["axis"]);
  const rows = outer * inner;
  const b = new BindingSet();
  const p = ctx.placement(src);
  const dtype = ctx.node(src).ty.dtype;
  const name = b.storage(p, "read", storageType(dtype));
  const out = b.storage(ctx.placement(d.node), "read_write", storageType("i32"));
  const w = ARGMAX_WORKGROUP_SIZE;
  const g = grid(rows * w, w);
  const code = renderTemplate("argmax", {
    ...headerContext(d.kernel, b),
    rows,
    length,
    workgroupSize: w,
    half: w / 2,
    groupsX: g.workgroups[0],
    rowBase: `${plus(p.offset)}${rowBase(u32Literal)}`,
    load: loadAs(dtype, `${name}[rb + ${element(u32Literal)}]`),
    store: `${out}[${plus(ctx.placement(d.node).offset)}r] = i32(bestIndex[0]);`,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** sum / mean / amax (and argmax) over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const n = ctx.outputNode;
  if (n.op === "argmax") return emitArgmax(ctx);
  const src = d.inputs[0]!;
  const { outer, length, inner, rowBase, element } = axisRows(ctx.shape(src), n.attrs["axis"]);
  const b = new BindingSet();
  const p = ctx.placement(src);
  const dtype = ctx.node(src).ty.dtype;
  const name = b.storage(p, "read", storageType(dtype));
  const out = b.storage(ctx.placement(d.node), "read_write", storageType(n.ty.dtype));
  return rowKernel(ctx, tuning, b, {
    rows: outer * inner,
    length,
    rowSetup: [`let rb0 = ${plus(p.offset)}${rowBase(u32Literal)};`],
    access: [loadAs(dtype, `${name}[rb0 + ${element(u32Literal)}]`)],
    types: [dtype],
    program: reduceProgram(n.op),
    perRow: true,
    store: (v) => `${out}[${plus(ctx.placement(d.node).offset)}r] = ${storeAs(n.ty.dtype, v)};`,
  });
}

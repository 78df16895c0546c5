// Elementwise and row-reduction kernels, both bodies rendered by the shared expression renderer:
// `elementwise` (one op, constants inlined), `fused` (a program; with reductions it is a row
// program over the output's last axis) and `reduce` (sum / mean / amax over any axis).

import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import { renderExpr } from "../shared/expr.js";
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
  const outType = ctx.output.ty.dtype;
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

interface RowSpec {
  rows: number;
  length: number;
  /** Statements run once per row (index `r`), e.g. each input's row base. */
  rowSetup: string[];
  /** Input i at element `k` of row `r`. */
  access: string[];
  types: DType[];
  program: ExprProgram;
  /** Store of the program's output: once per row (after the reductions) or per element. */
  perRow: boolean;
  store: (value: string) => string;
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
  const length = outShape.length ? outShape[outShape.length - 1]! : 1;
  const rowShape = outShape.slice(0, -1);
  const b = new BindingSet();
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const rowSetup: string[] = [];
  const access = d.inputs.map((id, i) => {
    const p = ctx.placement(id);
    const name = b.storage(p, "read", storageType(types[i]!));
    const strides = broadcastStrides(ctx.shape(id), outShape);
    const along = outShape.length ? strides[strides.length - 1]! : 0;
    rowSetup.push(`let rb${i} = ${offsetExpr("r", rowShape, strides.slice(0, -1), p.offset)};`);
    const k = along === 0 ? "" : along === 1 ? " + k" : ` + k * ${u32Literal(along)}`;
    return loadAs(types[i]!, `${name}[rb${i}${k}]`);
  });
  const outType = ctx.output.ty.dtype;
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
  const n = ctx.output;
  const src = d.inputs[0]!;
  const shape = ctx.shape(src);
  const rank = shape.length;
  const axis = (n.attrs["axis"] as number) < 0 ? (n.attrs["axis"] as number) + rank : (n.attrs["axis"] as number);
  const outer = product(shape.slice(0, axis));
  const length = shape[axis]!;
  const inner = product(shape.slice(axis + 1));
  const rows = outer * inner;
  const b = new BindingSet();
  const p = ctx.placement(src);
  const dtype = ctx.node(src).ty.dtype;
  const name = b.storage(p, "read", storageType(dtype));
  const out = b.storage(ctx.placement(d.node), "read_write", storageType("i32"));
  const rowBase = inner === 1 ? `r * ${u32Literal(length)}` : `(r / ${u32Literal(inner)}) * ${u32Literal(length * inner)} + r % ${u32Literal(inner)}`;
  const w = ARGMAX_WORKGROUP_SIZE;
  const g = grid(rows * w, w);
  const code = renderTemplate("argmax", {
    ...headerContext(d.kernel, b),
    rows,
    length,
    workgroupSize: w,
    half: w / 2,
    groupsX: g.workgroups[0],
    rowBase: `${plus(p.offset)}${rowBase}`,
    load: loadAs(dtype, `${name}[rb + ${inner === 1 ? "k" : `k * ${u32Literal(inner)}`}]`),
    store: `${out}[${plus(ctx.placement(d.node).offset)}r] = i32(bestIndex[0]);`,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** sum / mean / amax (and argmax) over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const n = ctx.output;
  if (n.op === "argmax") return emitArgmax(ctx);
  const src = d.inputs[0]!;
  const shape = ctx.shape(src);
  const rank = shape.length;
  const axis = (n.attrs["axis"] as number) < 0 ? (n.attrs["axis"] as number) + rank : (n.attrs["axis"] as number);
  const outer = product(shape.slice(0, axis));
  const length = shape[axis]!;
  const inner = product(shape.slice(axis + 1));
  const b = new BindingSet();
  const p = ctx.placement(src);
  const dtype = ctx.node(src).ty.dtype;
  const name = b.storage(p, "read", storageType(dtype));
  const rowBase = inner === 1 ? `r * ${u32Literal(length)}` : `(r / ${u32Literal(inner)}) * ${u32Literal(length * inner)} + r % ${u32Literal(inner)}`;
  const out = b.storage(ctx.placement(d.node), "read_write", storageType(n.ty.dtype));
  const program: ExprProgram = { nodes: [{ kind: "input", index: 0 }, { kind: "reduce", op: n.op as "sum" | "mean" | "amax", arg: 0 }], outputs: [1] };
  return rowKernel(ctx, tuning, b, {
    rows: outer * inner,
    length,
    rowSetup: [`let rb0 = ${plus(p.offset)}${rowBase};`],
    access: [loadAs(dtype, `${name}[rb0 + ${inner === 1 ? "k" : `k * ${u32Literal(inner)}`}]`)],
    types: [dtype],
    program,
    perRow: true,
    store: (v) => `${out}[${plus(ctx.placement(d.node).offset)}r] = ${storeAs(n.ty.dtype, v)};`,
  });
}

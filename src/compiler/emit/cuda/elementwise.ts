// Elementwise and row kernels, bodies rendered by the shared expression renderer: `elementwise` (one
// op, constants inlined), `fused` (a program; with reductions it is a row program over the output's
// last axis: RMSNorm, softmax) and `reduce` (sum / mean / amax over any axis). Row reductions run on
// a group of threads per row: each strides over the row, then warp shuffles (and shared memory past
// one warp) combine the partial results.

import type { ExprProgram } from "../../ops/expr.js";
import { renderExpr, type RenderedExpr } from "../shared/expr.js";
import { alongRow, axisRows, lastAxisRows, reduceProgram, type RowSpec } from "../shared/rows.js";
import type { DispatchContext } from "./context.js";
import { broadcastStrides, checkIndexRange, makeKernel, offsetExpr, ParamSet, product, strideGrid, type CudaKernel, type CudaLaunch } from "./kernel.js";
import { cudaLang, intLiteral, loadAs, storageType, storeAs } from "./lang.js";

export interface Emitted {
  kernels: CudaKernel[];
  launches: CudaLaunch[];
}

export function single(ctx: DispatchContext, kernel: CudaKernel, params: ParamSet, grid: [number, number, number], block: number): Emitted {
  return { kernels: [kernel], launches: [{ kernel: kernel.name, grid, block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }] };
}

/** An elementwise program over the dispatch's inputs, broadcast to the output shape. */
export function emitElementwise(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const program = d.program!;
  if (program.nodes.some((n) => n.kind === "reduce")) return emitRowProgram(ctx);
  const outShape = ctx.shape(d.node);
  const count = product(outShape);
  const t = ctx.tuning.elementwise;
  checkIndexRange(count + t.block * t.maxBlocks, ctx.label());
  const params = new ParamSet();
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const access = d.inputs.map((id, i) => {
    const a = ctx.arg(id);
    const name = params.pointer(a.buffer, a.offsetBytes, storageType(types[i]!), "read");
    return loadAs(types[i]!, `${name}[${offsetExpr("i", outShape, broadcastStrides(ctx.shape(id), outShape))}]`);
  });
  const outType = ctx.outputNode.ty.dtype;
  const o = ctx.arg(d.node);
  const out = params.pointer(o.buffer, o.offsetBytes, storageType(outType), "write");
  const r = renderExpr(program, cudaLang(), (i) => access[i]!, undefined, types);
  const kernel = makeKernel(d.kernel, "elementwise", params, r.helpers, {
    what: d.kernel === "fused" ? "fused elementwise program" : `elementwise ${ctx.outputNode.op}`,
    count: intLiteral(count),
    block: t.block,
    pre: r.pre,
    body: r.body,
    store: [`${out}[i] = ${storeAs(outType, r.outputs[0]!)};`],
  });
  return single(ctx, kernel, params, strideGrid(count, t.block, t.maxBlocks), t.block);
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Threads per row: enough for `elementsPerThread` each, a whole number of warps, at most a block. */
export function rowGroup(length: number, block: number, elementsPerThread: number): number {
  return Math.max(32, Math.min(block, nextPow2(Math.ceil(length / elementsPerThread))));
}

/**
 * The renderer's reduction loops accumulate per thread; after each loop closes, the group combines
 * its partial results. (The shared renderer has no hook after a loop — see the report; the CUDA table
 * declares only accumulators as mutable, so they are the `float vN = …;` lines.)
 */
export function finishGroupReductions(r: RenderedExpr, program: ExprProgram, group: number): string[] {
  const out: string[] = [];
  let pending: { name: string; op: string }[] = [];
  for (const line of r.pre) {
    const m = /^float (v(\d+)) = /.exec(line);
    const node = m ? program.nodes[Number(m[2])] : undefined;
    if (m && node?.kind === "reduce") pending.push({ name: m[1]!, op: node.op });
    out.push(line);
    if (line === "}") {
      for (const p of pending) out.push(`${p.name} = llmc_group_${p.op === "amax" ? "max" : "sum"}<${group}>(${p.name}, llmc_red);`);
      pending = [];
    }
  }
  if (pending.length) throw new Error("internal: a reduction accumulator without its loop");
  return out;
}

function rowKernel(ctx: DispatchContext, params: ParamSet, spec: RowSpec): Emitted {
  const t = ctx.tuning.row;
  const group = rowGroup(spec.length, t.block, t.elementsPerThread);
  const rowsPerBlock = Math.max(1, Math.floor(t.block / group));
  const block = group * rowsPerBlock;
  checkIndexRange(spec.rows * spec.length + block, ctx.label());
  const lang = cudaLang({ loopOpen: (index, length) => `for (int ${index} = lane; live && ${index} < ${length}; ${index} += ${group}) {` });
  const r = renderExpr(spec.program, lang, (i) => spec.access[i]!, { index: "k", length: intLiteral(spec.length) }, spec.types);
  const kernel = makeKernel(ctx.dispatch.kernel, "row", params, r.helpers, {
    rows: intLiteral(spec.rows),
    length: intLiteral(spec.length),
    group,
    rowsPerBlock,
    block,
    warps: block / 32,
    blockReduce: group > 32,
    rowSetup: spec.rowSetup,
    pre: finishGroupReductions(r, spec.program, group),
    perRow: spec.perRow,
    body: r.body,
    store: [spec.store(r.outputs[0]!)],
  });
  return single(ctx, kernel, params, [Math.ceil(spec.rows / rowsPerBlock), 1, 1], block);
}

/** A fused program with reductions over the last axis of its output. */
function emitRowProgram(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const outShape = ctx.shape(d.node);
  const { length, rowShape } = lastAxisRows(outShape);
  const params = new ParamSet();
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const rowSetup: string[] = [];
  const access = d.inputs.map((id, i) => {
    const a = ctx.arg(id);
    const name = params.pointer(a.buffer, a.offsetBytes, storageType(types[i]!), "read");
    const strides = broadcastStrides(ctx.shape(id), outShape);
    const along = outShape.length ? strides[strides.length - 1]! : 0;
    rowSetup.push(`const int rb${i} = ${offsetExpr("r", rowShape, strides.slice(0, -1))};`);
    return loadAs(types[i]!, `${name}[rb${i}${alongRow(along, intLiteral)}]`);
  });
  const outType = ctx.outputNode.ty.dtype;
  const o = ctx.arg(d.node);
  const out = params.pointer(o.buffer, o.offsetBytes, storageType(outType), "write");
  return rowKernel(ctx, params, {
    rows: product(rowShape),
    length,
    rowSetup,
    access,
    types,
    program: d.program!,
    perRow: false,
    store: (v) => `${out}[r * ${intLiteral(length)} + k] = ${storeAs(outType, v)};`,
  });
}

/** sum / mean / amax over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const n = ctx.outputNode;
  const src = d.inputs[0]!;
  const rows = axisRows(ctx.shape(src), n.attrs["axis"]);
  const params = new ParamSet();
  const dtype = ctx.node(src).ty.dtype;
  const a = ctx.arg(src);
  const name = params.pointer(a.buffer, a.offsetBytes, storageType(dtype), "read");
  const o = ctx.arg(d.node);
  const out = params.pointer(o.buffer, o.offsetBytes, storageType(n.ty.dtype), "write");
  if (n.op === "argmax") throw new Error("the CUDA backend has no argmax kernel yet");
  return rowKernel(ctx, params, {
    rows: rows.outer * rows.inner,
    length: rows.length,
    rowSetup: [`const int rb0 = ${rows.rowBase(intLiteral)};`],
    access: [loadAs(dtype, `${name}[rb0 + ${rows.element(intLiteral)}]`)],
    types: [dtype],
    program: reduceProgram(n.op),
    perRow: true,
    store: (v) => `${out}[r] = ${storeAs(n.ty.dtype, v)};`,
  });
}

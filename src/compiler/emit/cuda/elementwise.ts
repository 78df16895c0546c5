// Elementwise and row kernels, their bodies written once for every target (emit/shared):
// `elementwise` (one op, constants inlined), `fused` (a program; with reductions it is a row program
// over the output's last axis: RMSNorm, softmax) and `reduce` (sum / mean / amax over any axis). Row
// reductions run on a group of threads per row: each strides over the row, then warp shuffles (and
// shared memory past one warp) combine the partial results (cudaLang's rowGroup).

import { elementwiseBody } from "../shared/elementwise.js";
import { renderRows, rowSpec } from "../shared/rows.js";
import type { DispatchContext } from "./context.js";
import { checkIndexRange, makeKernel, ParamSet, strideGrid, type CudaKernel, type CudaLaunch } from "./kernel.js";
import { cudaLang, intLiteral } from "./lang.js";

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
  if (d.program!.nodes.some((n) => n.kind === "reduce")) return emitRows(ctx);
  const params = new ParamSet(ctx);
  const e = elementwiseBody(params);
  const t = ctx.tuning.elementwise;
  checkIndexRange(e.count + t.block * t.maxBlocks, ctx.label());
  const kernel = makeKernel(d.kernel, "elementwise", params, e.helpers, {
    what: d.kernel === "fused" ? "fused elementwise program" : `elementwise ${ctx.outputNode.op}`,
    count: intLiteral(e.count),
    block: t.block,
    body: e.body,
  });
  return single(ctx, kernel, params, strideGrid(e.count, t.block, t.maxBlocks), t.block);
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Threads per row: enough for `elementsPerThread` each, a whole number of warps, at most a block. */
export function rowGroup(length: number, block: number, elementsPerThread: number): number {
  return Math.max(32, Math.min(block, nextPow2(Math.ceil(length / elementsPerThread))));
}

/** A row program (emit/shared/rows.ts) on a group of threads per row. */
function emitRows(ctx: DispatchContext): Emitted {
  const params = new ParamSet(ctx);
  const spec = rowSpec(params);
  const t = ctx.tuning.row;
  const group = rowGroup(spec.length, t.block, t.elementsPerThread);
  const rowsPerBlock = Math.max(1, Math.floor(t.block / group));
  const block = group * rowsPerBlock;
  checkIndexRange(spec.rows * spec.length + block, ctx.label());
  const r = renderRows(spec, cudaLang(group));
  const kernel = makeKernel(ctx.dispatch.kernel, "row", params, r.helpers, {
    rows: intLiteral(spec.rows),
    length: intLiteral(spec.length),
    group,
    rowsPerBlock,
    block,
    warps: block / 32,
    blockReduce: group > 32,
    rowSetup: spec.rowSetup,
    pre: r.pre,
    perRow: spec.perRow,
    body: r.body,
    store: r.store,
  });
  return single(ctx, kernel, params, [Math.ceil(spec.rows / rowsPerBlock), 1, 1], block);
}

/** sum / mean / amax over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext): Emitted {
  if (ctx.outputNode.op === "argmax") throw new Error("the CUDA backend has no argmax kernel yet");
  return emitRows(ctx);
}

// Elementwise and row kernels, their bodies written once for every target (emit/shared):
// `elementwise` (one op, constants inlined), `fused` (a program; with reductions it is a row program
// over the output's last axis: RMSNorm, softmax) and `reduce` (sum / mean / amax over any axis). Row
// reductions run on a group of threads per row: each strides over the row, then warp shuffles (and
// shared memory past one warp) combine the partial results (cudaLang's rowGroup).

import { constOf } from "../shared/context.js";
import { elementwiseBody } from "../shared/elementwise.js";
import { dimProduct } from "../shared/indexing.js";
import { renderRows, rowSpec } from "../shared/rows.js";
import type { Extent } from "../shared/params.js";
import type { DispatchContext } from "./context.js";
import { checkIndexRange, makeKernel, ParamSet, strideGrid, type CudaKernel, type CudaLaunch } from "./kernel.js";
import { cudaLang } from "./lang.js";

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
  return perElement(ctx, (params) => {
    const e = elementwiseBody(params);
    return { what: d.kernel === "fused" ? "fused elementwise program" : `elementwise ${ctx.outputNode.op}`, ...e };
  });
}

/** A kernel running a shared body for each element `i` below its count, one per thread of a
 *  grid-stride loop sized for the count at the largest P (codegen-templates/cuda/element.hbs). */
export function perElement(ctx: DispatchContext, of: (params: ParamSet) => { what: string; count: Extent; body: string[]; helpers?: string[] }): Emitted {
  const params = new ParamSet(ctx);
  const { what, count, body, helpers } = of(params);
  const t = ctx.tuning.elementwise;
  checkIndexRange(count.max + t.block * t.maxBlocks, ctx.label());
  for (const id of ctx.dispatch.inputs) checkIndexRange(ctx.atMax(dimProduct(ctx.dims(id))), `${ctx.label()}'s input %${id}`);
  const kernel = makeKernel(ctx.dispatch.kernel, "element", params, helpers ?? [], { what, count: count.code, block: t.block, body });
  return single(ctx, kernel, params, strideGrid(count.max, t.block, t.maxBlocks), t.block);
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
  const group = rowGroup(spec.length.max, t.block, t.elementsPerThread);
  const rowsPerBlock = Math.max(1, Math.floor(t.block / group));
  const block = group * rowsPerBlock;
  checkIndexRange(spec.rows.max * spec.length.max + block, ctx.label());
  const lang = cudaLang(group);
  const r = renderRows(spec, lang);
  const kernel = makeKernel(ctx.dispatch.kernel, "row", params, r.helpers, {
    rows: spec.rows.code,
    length: spec.length.code,
    group,
    rowsPerBlock,
    block,
    warps: block / 32,
    blockReduce: group > 32,
    // Where the rows depend on P, rows that do not exist compute no row base: its divisors may be 0
    // when there are none.
    rowSetup: spec.rowBases.map((v) => lang.letIndex(v.name, constOf(spec.rows.dim) === null ? `live ? ${v.value} : 0` : v.value)),
    pre: r.pre,
    perRow: spec.perRow,
    body: r.body,
    store: r.store,
  });
  return single(ctx, kernel, params, [Math.max(1, Math.ceil(spec.rows.max / rowsPerBlock)), 1, 1], block);
}

/** sum / mean / amax over one axis: rows are (outer, inner) pairs, the row runs along the axis. */
export function emitReduce(ctx: DispatchContext): Emitted {
  if (ctx.outputNode.op === "argmax") throw new Error("the CUDA backend has no argmax kernel yet");
  return emitRows(ctx);
}

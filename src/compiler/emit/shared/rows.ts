// Row kernels, for every target: a fused program with reductions runs over the last axis of its
// output, and `reduce` over one axis of its input (rows are (outer, inner) pairs). Both become one
// row program (per-row setup, the reductions, the per-element body, the store), written here once;
// a target's template runs it (WGSL: an invocation per row; CUDA: a group of threads per row).
// The row count and length may depend on P.

import { constDim, mulDim, type Dim } from "../../base/symbolic.js";
import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import { constOf } from "./context.js";
import { renderExpr } from "./expr.js";
import { axisOf } from "./geometry.js";
import { broadcastStrides, dimProduct, offsetExpr, type DimCode } from "./indexing.js";
import type { KernelLang } from "./lang.js";
import type { Extent, KernelParams } from "./params.js";

export interface RowSpec {
  rows: Extent;
  length: Extent;
  /** Index values set once per row `r`, e.g. each input's row base: a target declares them where
   *  the row exists (their divisors may be 0 where no row does). */
  rowBases: { name: string; value: string }[];
  /** Input i at element `k` of row `r`. */
  access: string[];
  types: DType[];
  program: ExprProgram;
  /** Store of the program's output: once per row (after the reductions) or per element. */
  perRow: boolean;
  store: (value: string) => string;
  /** The step's P, for the program's dims (binds the step parameters). */
  past: () => string;
}

/** The rows of a `fused` dispatch with reductions or of a `reduce` (sum / mean / amax). */
export function rowSpec(params: KernelParams): RowSpec {
  return params.ctx.dispatch.kernel === "reduce" ? reduceRows(params) : lastAxisRows(params);
}

/** A program with reductions over the last axis of the output: row r of the output, element k. */
function lastAxisRows(params: KernelParams): RowSpec {
  const { ctx } = params;
  const d = ctx.dispatch;
  const u = params.dim;
  const outShape = ctx.dims(d.node);
  const length = outShape.length ? outShape[outShape.length - 1]! : constDim(1);
  const rowShape = outShape.slice(0, -1);
  const rowBases: RowSpec["rowBases"] = [];
  const access = d.inputs.map((id, i) => {
    const strides = broadcastStrides(ctx.dims(id), outShape);
    const along = outShape.length ? constOf(strides[strides.length - 1]!) : 0;
    rowBases.push({ name: `rb${i}`, value: offsetExpr("r", rowShape, strides.slice(0, -1), u) });
    return params.read(id)(`rb${i}${along === 0 ? "" : along === 1 ? " + k" : ` + k * ${u(strides[strides.length - 1]!)}`}`);
  });
  const out = params.output(d.node);
  return {
    rows: params.extent(dimProduct(rowShape)),
    length: params.extent(length),
    rowBases,
    access,
    types: d.inputs.map((id) => ctx.node(id).ty.dtype),
    program: d.program!,
    perRow: false,
    store: (v) => out.store(`r * ${u(length)} + k`, v),
    past: () => params.past(),
  };
}

/** A reduction over one axis of the input: row r is the pair (r / inner, r % inner), element k runs along the axis. */
function reduceRows(params: KernelParams): RowSpec {
  const { ctx } = params;
  const d = ctx.dispatch;
  const n = ctx.outputNode;
  const src = d.inputs[0]!;
  const ax = axisRows(ctx.dims(src), n.attrs["axis"], params.dim);
  const read = params.read(src);
  const out = params.output(d.node);
  return {
    rows: params.extent(mulDim(ax.outer, ax.inner)),
    length: params.extent(ax.length),
    rowBases: [{ name: "rb0", value: ax.rowBase }],
    access: [read(`rb0 + ${ax.element}`)],
    types: [ctx.node(src).ty.dtype],
    program: { nodes: [{ kind: "input", index: 0 }, { kind: "reduce", op: n.op as "sum" | "mean" | "amax", arg: 0 }], outputs: [1] },
    perRow: true,
    store: (v) => out.store("r", v),
    past: () => params.past(),
  };
}

export interface RenderedRows {
  helpers: string[];
  /** Once per row, after the row bases: the reduction loops and row-uniform values. */
  pre: string[];
  /** Per element `k`, then `store` (unless the spec stores per row). */
  body: string[];
  store: string[];
}

/** The row program in `lang`, whose loops a target may spread over threads (CUDA's row groups). */
export function renderRows(spec: RowSpec, lang: KernelLang): RenderedRows {
  const r = renderExpr(spec.program, lang, (i) => spec.access[i]!, { index: "k", length: spec.length.code }, spec.types, spec.past);
  return { helpers: r.helpers, pre: r.pre, body: r.body, store: [spec.store(r.outputs[0]!)] };
}

/** A reduction over `axis` (negative counts from the end) of `shape`. */
export interface AxisRows {
  outer: Dim;
  length: Dim;
  inner: Dim;
  /** Offset of row `r`'s first element. */
  rowBase: string;
  /** Offset of element `k` from the row base. */
  element: string;
}

export function axisRows(shape: readonly Dim[], axisAttr: unknown, u: DimCode): AxisRows {
  const axis = axisOf(axisAttr, shape.length);
  const outer = dimProduct(shape.slice(0, axis));
  const length = shape[axis]!;
  const inner = dimProduct(shape.slice(axis + 1));
  const flat = constOf(inner) === 1;
  return {
    outer,
    length,
    inner,
    rowBase: flat ? `r * ${u(length)}` : `(r / ${u(inner)}) * ${u(mulDim(length, inner))} + r % ${u(inner)}`,
    element: flat ? "k" : `k * ${u(inner)}`,
  };
}

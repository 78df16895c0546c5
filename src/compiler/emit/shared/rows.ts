// Row kernels, for every target: a fused program with reductions runs over the last axis of its
// output, and `reduce` over one axis of its input (rows are (outer, inner) pairs). Both become one
// row program (per-row setup, the reductions, the per-element body, the store), written here once;
// a target's template runs it (WGSL: an invocation per row; CUDA: a group of threads per row).

import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import { renderExpr } from "./expr.js";
import { axisOf } from "./geometry.js";
import { broadcastStrides, offsetExpr, product } from "./indexing.js";
import type { KernelLang } from "./lang.js";
import type { KernelParams } from "./params.js";

export interface RowSpec {
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

/** The rows of a `fused` dispatch with reductions or of a `reduce` (sum / mean / amax). */
export function rowSpec(params: KernelParams): RowSpec {
  return params.ctx.dispatch.kernel === "reduce" ? reduceRows(params) : lastAxisRows(params);
}

/** A program with reductions over the last axis of the output: row r of the output, element k. */
function lastAxisRows(params: KernelParams): RowSpec {
  const { ctx, lang } = params;
  const d = ctx.dispatch;
  const lit = lang.indexLiteral;
  const outShape = ctx.shape(d.node);
  const length = outShape.length ? outShape[outShape.length - 1]! : 1;
  const rowShape = outShape.slice(0, -1);
  const rowSetup: string[] = [];
  const access = d.inputs.map((id, i) => {
    const strides = broadcastStrides(ctx.shape(id), outShape);
    const along = outShape.length ? strides[strides.length - 1]! : 0;
    rowSetup.push(lang.letIndex(`rb${i}`, offsetExpr("r", rowShape, strides.slice(0, -1), lit)));
    return params.read(id)(`rb${i}${along === 0 ? "" : along === 1 ? " + k" : ` + k * ${lit(along)}`}`);
  });
  const out = params.output(d.node);
  return {
    rows: product(rowShape),
    length,
    rowSetup,
    access,
    types: d.inputs.map((id) => ctx.node(id).ty.dtype),
    program: d.program!,
    perRow: false,
    store: (v) => out.store(`r * ${lit(length)} + k`, v),
  };
}

/** A reduction over one axis of the input: row r is the pair (r / inner, r % inner), element k runs along the axis. */
function reduceRows(params: KernelParams): RowSpec {
  const { ctx, lang } = params;
  const d = ctx.dispatch;
  const lit = lang.indexLiteral;
  const n = ctx.outputNode;
  const src = d.inputs[0]!;
  const { outer, length, inner, rowBase, element } = axisRows(ctx.shape(src), n.attrs["axis"]);
  const read = params.read(src);
  const out = params.output(d.node);
  return {
    rows: outer * inner,
    length,
    rowSetup: [lang.letIndex("rb0", rowBase(lit))],
    access: [read(`rb0 + ${element(lit)}`)],
    types: [ctx.node(src).ty.dtype],
    program: { nodes: [{ kind: "input", index: 0 }, { kind: "reduce", op: n.op as "sum" | "mean" | "amax", arg: 0 }], outputs: [1] },
    perRow: true,
    store: (v) => out.store("r", v),
  };
}

export interface RenderedRows {
  helpers: string[];
  /** Once per row, after `rowSetup`: the reduction loops and row-uniform values. */
  pre: string[];
  /** Per element `k`, then `store` (unless the spec stores per row). */
  body: string[];
  store: string[];
}

/** The row program in `lang`, whose loops a target may spread over threads (CUDA's row groups). */
export function renderRows(spec: RowSpec, lang: KernelLang): RenderedRows {
  const r = renderExpr(spec.program, lang, (i) => spec.access[i]!, { index: "k", length: lang.indexLiteral(spec.length) }, spec.types);
  return { helpers: r.helpers, pre: r.pre, body: r.body, store: [spec.store(r.outputs[0]!)] };
}

/** A reduction over `axis` (negative counts from the end) of `shape`. */
export interface AxisRows {
  outer: number;
  length: number;
  inner: number;
  /** Offset of row `r`'s first element. */
  rowBase(literal: (v: number) => string): string;
  /** Offset of element `k` from the row base. */
  element(literal: (v: number) => string): string;
}

export function axisRows(shape: readonly number[], axisAttr: unknown): AxisRows {
  const axis = axisOf(axisAttr, shape.length);
  const outer = product(shape.slice(0, axis));
  const length = shape[axis]!;
  const inner = product(shape.slice(axis + 1));
  return {
    outer,
    length,
    inner,
    rowBase: (l) => (inner === 1 ? `r * ${l(length)}` : `(r / ${l(inner)}) * ${l(length * inner)} + r % ${l(inner)}`),
    element: (l) => (inner === 1 ? "k" : `k * ${l(inner)}`),
  };
}

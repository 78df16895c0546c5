// Row kernels, for every target: a fused program with reductions runs over the last axis of its
// output, and `reduce` over one axis of its input (rows are (outer, inner) pairs). This is the
// bookkeeping both share; a target turns a RowSpec into its kernel.

import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import { product } from "./indexing.js";

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

/** The rows of an output reduced along its last axis: the row length and the shape of the rows. */
export function lastAxisRows(outShape: readonly number[]): { length: number; rowShape: number[] } {
  return { length: outShape.length ? outShape[outShape.length - 1]! : 1, rowShape: outShape.slice(0, -1) };
}

/** `k`'s part of an input's index along the row, for its stride `along` (0 when broadcast). */
export function alongRow(along: number, literal: (v: number) => string): string {
  return along === 0 ? "" : along === 1 ? " + k" : ` + k * ${literal(along)}`;
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
  const rank = shape.length;
  const axis = (axisAttr as number) < 0 ? (axisAttr as number) + rank : (axisAttr as number);
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

/** The one-reduction program of a `reduce` dispatch. */
export function reduceProgram(op: string): ExprProgram {
  return { nodes: [{ kind: "input", index: 0 }, { kind: "reduce", op: op as "sum" | "mean" | "amax", arg: 0 }], outputs: [1] };
}

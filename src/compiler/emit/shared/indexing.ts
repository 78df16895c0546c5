// Index arithmetic every target shares: strides, broadcasting, and the offset of element `i` of a
// strided tensor as an expression. Sizes and strides are dims (constants or polynomials of P); a
// target renders each as an index expression (`KernelParams.dim`: a literal, or an expression of P
// read from the step parameters).

import { constDim, dimEquals, mulDim, type Dim } from "../../base/symbolic.js";
import { constOf } from "./context.js";

export const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** The product of dims. */
export const dimProduct = (xs: readonly Dim[]): Dim => xs.reduce((a, b) => mulDim(a, b), constDim(1));

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly Dim[]): Dim[] {
  const s: Dim[] = [];
  let acc = constDim(1);
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc = mulDim(acc, shape[i]!);
  }
  return s;
}

/** Dims of constant sizes. */
export const constDims = (xs: readonly number[]): Dim[] => xs.map(constDim);

/** Strides reading a tensor of `shape` broadcast to `outShape` (NumPy rules). */
export function broadcastStrides(shape: readonly Dim[], outShape: readonly Dim[]): Dim[] {
  const s = stridesOf(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((d, i) => (i < lead || !dimEquals(shape[i - lead]!, d) ? constDim(0) : s[i - lead]!));
}

/** Renders a dim as an index expression of the target. */
export type DimCode = (d: Dim) => string;

const isConst = (d: Dim, v: number) => constOf(d) === v;

/**
 * The terms of the offset of element `i` (row-major over `shape`) of a tensor read through
 * `strides` (one per dim of `shape`; 0 where it is broadcast); their sum is the offset, none is 0.
 * Adjacent dims that are contiguous in the source merge first, so the common cases come out as
 * `i`, `i % 32` or nothing.
 */
function offsetTerms(i: string, shape: readonly Dim[], strides: readonly Dim[], dim: DimCode): string[] {
  const dims: { n: Dim; s: Dim }[] = [];
  shape.forEach((n, d) => {
    if (isConst(n, 1)) return;
    const last = dims[dims.length - 1];
    if (last && dimEquals(last.s, mulDim(strides[d]!, n))) {
      last.n = mulDim(last.n, n);
      last.s = strides[d]!;
    } else dims.push({ n, s: strides[d]! });
  });
  const terms: string[] = [];
  let outStride = constDim(1);
  for (let d = dims.length - 1; d >= 0; d--) {
    const { n, s } = dims[d]!;
    if (!isConst(s, 0)) {
      const q = isConst(outStride, 1) ? i : `(${i} / ${dim(outStride)})`;
      const idx = d === 0 ? q : `(${q} % ${dim(n)})`;
      terms.unshift(isConst(s, 1) ? idx : `${idx} * ${dim(s)}`);
    }
    outStride = mulDim(outStride, n);
  }
  return terms;
}

/** The offset terms summed into one index expression, after `base` elements (`dim(0)` when
 *  nothing is left): `i`, `i % 32u`, `12u` in the common cases. */
export function offsetExpr(i: string, shape: readonly Dim[], strides: readonly Dim[], dim: DimCode, base: Dim = constDim(0)): string {
  const terms = offsetTerms(i, shape, strides, dim);
  if (!isConst(base, 0)) terms.unshift(dim(base));
  return terms.length ? terms.join(" + ") : dim(constDim(0));
}

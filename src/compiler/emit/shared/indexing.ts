// Index arithmetic every target shares: strides, broadcasting, and the offset of element `i` of a
// strided tensor as an expression (each target supplies its index literals).

import { stridesOf } from "../../ops/reference.js";

export { stridesOf };

export const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Strides reading a tensor of `shape` broadcast to `outShape` (NumPy rules). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const s = stridesOf(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((d, i) => (i < lead || shape[i - lead] !== d ? 0 : s[i - lead]!));
}

/**
 * The terms of the offset of element `i` (row-major over `shape`) of a tensor read through
 * `strides` (one per dim of `shape`; 0 where it is broadcast); their sum is the offset, none is 0.
 * Adjacent dims that are contiguous in the source merge first, so the common cases come out as
 * `i`, `i % 32` or nothing.
 */
function offsetTerms(i: string, shape: readonly number[], strides: readonly number[], literal: (v: number) => string): string[] {
  const dims: { n: number; s: number }[] = [];
  shape.forEach((n, d) => {
    if (n === 1) return;
    const last = dims[dims.length - 1];
    if (last && last.s === strides[d]! * n) {
      last.n *= n;
      last.s = strides[d]!;
    } else dims.push({ n, s: strides[d]! });
  });
  const terms: string[] = [];
  let outStride = 1;
  for (let d = dims.length - 1; d >= 0; d--) {
    const { n, s } = dims[d]!;
    if (s !== 0) {
      const q = outStride === 1 ? i : `(${i} / ${literal(outStride)})`;
      const idx = d === 0 ? q : `(${q} % ${literal(n)})`;
      terms.unshift(s === 1 ? idx : `${idx} * ${literal(s)}`);
    }
    outStride *= n;
  }
  return terms;
}

/** The offset terms summed into one index expression, after `base` elements (`literal(0)` when
 *  nothing is left): `i`, `i % 32u`, `12u` in the common cases. */
export function offsetExpr(i: string, shape: readonly number[], strides: readonly number[], literal: (v: number) => string, base = 0): string {
  const terms = offsetTerms(i, shape, strides, literal);
  if (base !== 0) terms.unshift(literal(base));
  return terms.length ? terms.join(" + ") : literal(0);
}

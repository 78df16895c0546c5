// The argmax op's CPU reference against a naive loop: any axis, keepdim, ties (lowest index),
// negatives, and NaN (the first NaN wins).

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { reference, tensor } from "../../src/compiler/ops/reference.js";
import { getOp } from "../../src/compiler/ops/table.js";
import { constDim } from "../../src/compiler/base/symbolic.js";

/** Index of the largest of `xs`: the first maximum, the first NaN if any. */
function naive(xs: number[]): number {
  const nan = xs.findIndex((x) => Number.isNaN(x));
  if (nan >= 0) return nan;
  let best = 0;
  for (let i = 0; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

const argmax = reference["argmax"]!;

describe("argmax reference", () => {
  it("equals a naive loop along any axis (small integers: many ties; negatives)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }).chain((shape) =>
          fc.tuple(
            fc.constant(shape),
            fc.integer({ min: -shape.length, max: shape.length - 1 }),
            fc.boolean(),
            fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(-Infinity, Infinity, NaN)), { minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }),
          ),
        ),
        ([shape, axis, keepdim, values]) => {
          const out = argmax([tensor(shape, "f32", Float32Array.from(values))], { axis, keepdim });
          const a = axis < 0 ? axis + shape.length : axis;
          const inner = shape.slice(a + 1).reduce((x, y) => x * y, 1);
          const n = shape[a]!;
          const want: number[] = [];
          const outer = shape.slice(0, a).reduce((x, y) => x * y, 1);
          for (let o = 0; o < outer; o++) {
            for (let i = 0; i < inner; i++) want.push(naive(Array.from({ length: n }, (_, k) => values[o * n * inner + k * inner + i]!)));
          }
          const wantShape = shape.slice();
          if (keepdim) wantShape[a] = 1;
          else wantShape.splice(a, 1);
          expect(out.dtype).toBe("i32");
          expect(out.shape).toEqual(wantShape);
          expect(Array.from(out.data)).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives the lowest index on ties, and the first NaN", () => {
    const run = (xs: number[]) => argmax([tensor([xs.length], "f32", Float32Array.from(xs))], { axis: 0, keepdim: false }).data[0];
    expect(run([-5, -1, -1, -3])).toBe(1);
    expect(run([2, 7, 7, 7])).toBe(1);
    expect(run([-Infinity, -Infinity])).toBe(0);
    expect(run([1, NaN, 9, NaN])).toBe(1);
  });

  it("is typed i32 by the op table; an empty axis is an error", () => {
    const def = getOp("argmax");
    expect(def.kind).toBe("reduction");
    expect(def.infer([{ shape: [constDim(3), constDim(5)], dtype: "f32" }], { axis: -1, keepdim: true })).toEqual({ shape: [constDim(3), constDim(1)], dtype: "i32" });
    expect(() => def.infer([{ shape: [constDim(3)], dtype: "i32" }], { axis: 0, keepdim: false })).toThrow(/floating-point/);
    expect(() => def.infer([{ shape: [constDim(0)], dtype: "f32" }], { axis: 0, keepdim: false })).toThrow(/non-empty/);
  });
});

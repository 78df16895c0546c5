// The reference covers the op table, agrees with its shape/dtype rules on random shapes, and rejects
// what the table rejects with the table's message.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { opTable } from "../../src/compiler/ops/table.js";
import { constDim, constValue } from "../../src/compiler/base/symbolic.js";
import {
  ReferenceOpError, STATEFUL_OPS, expectedOutput, reference, referenceKernels, sizeOf, tensor, type ConcreteAttrs, type HostTensor,
} from "../../src/compiler/ops/reference.js";
import { NUM_RUNS, opCase, run } from "./helpers.js";

const computed = [...opTable.keys()].filter((op) => !STATEFUL_OPS.has(op));

/** The table's type for concrete inputs, derived here without the reference's helpers. */
function tableType(op: string, inputs: HostTensor[], attrs: ConcreteAttrs) {
  const def = opTable.get(op)!;
  const a: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    a[k] = def.attrs[k] === "dim" ? constDim(v as number) : def.attrs[k] === "dims" ? (v as number[]).map(constDim) : v;
  }
  const ty = def.infer(inputs.map((t) => ({ shape: t.shape.map(constDim), dtype: t.dtype })), a as never);
  return { shape: ty.shape.map((d) => constValue(d)), dtype: ty.dtype };
}

describe("reference coverage", () => {
  it("has one reference per op of the table, except stateful kv_append", () => {
    expect(STATEFUL_OPS).toEqual(new Set(["kv_append"]));
    expect(Object.keys(reference).sort()).toEqual(computed.slice().sort());
    expect(Object.keys(referenceKernels).sort()).toEqual(computed.slice().sort());
  });

  it("has a random case for every op", () => {
    expect(computed.filter((op) => opCase(op) === undefined)).toEqual([]);
  });
});

describe("output shape and dtype equal the op table's infer", () => {
  for (const op of computed) {
    it(op, () => {
      // Cheap cases; the costliest (attention) stays below a few hundred flops each.
      fc.assert(
        fc.property(opCase(op)!, ({ inputs, attrs }) => {
          const out = referenceKernels[op]!(inputs, attrs);
          const want = tableType(op, inputs, attrs);
          expect(out.shape).toEqual(want.shape);
          expect(out.dtype).toBe(want.dtype);
          expect(out.data.length).toBe(sizeOf(out.shape));
          expect(out.data).toBeInstanceOf(out.dtype === "i32" ? Int32Array : out.dtype === "bool" ? Uint8Array : Float32Array);
          // The checked entry agrees and returns the same values.
          const checked = reference[op]!(inputs, attrs);
          expect(checked.shape).toEqual(out.shape);
          expect(Array.from(checked.data)).toEqual(Array.from(out.data));
        }),
        { numRuns: NUM_RUNS },
      );
    });
  }
});

describe("checked reference rejects what the op table rejects", () => {
  const f32 = (shape: number[]) => tensor(shape, "f32");
  const cases: [string, HostTensor[], ConcreteAttrs, RegExp][] = [
    ["matmul", [f32([2, 3]), f32([4, 3])], {}, /matmul: @ contracts dim 3 of \[2, 3\] with dim 4 of \[4, 3\]/],
    ["add", [f32([2, 3]), f32([4])], {}, /add: .*do not broadcast/],
    ["add", [f32([2]), tensor([2], "i32")], {}, /one element type, got f32 and i32/],
    ["exp", [tensor([2], "i32")], {}, /exp needs a floating-point tensor, got i32/],
    ["sum", [f32([2, 3])], { axis: 2, keepdim: false }, /axis 2 is out of range for a tensor of rank 2/],
    ["reshape", [f32([2, 3])], { shape: [4, 2] }, /cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/],
    ["transpose", [f32([2, 3])], { perm: [0, 0] }, /permutation \[0, 0\]/],
    ["slice", [f32([4])], { axis: 0, start: 1, end: 5 }, /slice end 5 is past the end of dim 4/],
    ["gather", [f32([4, 2]), f32([3])], {}, /row indices must be i32/],
    ["rotary", [f32([2, 1, 3]), f32([2, 1]), f32([2, 1])], {}, /even head_dim/],
    ["attention", [f32([1, 3, 4]), f32([2, 2, 4]), f32([2, 2, 4])], { causal: true, window: 0, scale: 1 }, /multiple of key\/value heads/],
    ["concat", [f32([2, 3]), f32([3, 3])], { axis: 1 }, /differ in dim 0/],
    ["add", [f32([2])], {}, /add takes 2 input\(s\), got 1/],
  ];
  for (const [op, inputs, attrs, msg] of cases) {
    it(`${op}: ${msg.source}`, () => {
      expect(() => run(op, inputs, attrs)).toThrow(ReferenceOpError);
      expect(() => run(op, inputs, attrs)).toThrow(msg);
    });
  }

  it("rejects a tensor whose data does not fit its shape or dtype", () => {
    expect(() => run("exp", [{ shape: [3], dtype: "f32", data: new Float32Array(2) }])).toThrow(/shape \[3\] needs 3 values, data has 2/);
    expect(() => run("exp", [{ shape: [2], dtype: "f32", data: new Int32Array(2) }])).toThrow(/f32 tensor cannot hold a Int32Array/);
  });

  it("expectedOutput evaluates the table's rule on concrete dims", () => {
    expect(expectedOutput("matmul", [tensor([5, 2, 3], "f32"), tensor([3, 4], "f32")], {})).toEqual({ shape: [5, 2, 4], dtype: "f32" });
    expect(expectedOutput("slice", [tensor([7, 2], "bf16")], { axis: 0, start: 2, end: 6 })).toEqual({ shape: [4, 2], dtype: "bf16" });
    expect(expectedOutput("arange", [], { n: 5 })).toEqual({ shape: [5], dtype: "f32" });
    expect(expectedOutput("lt", [tensor([3, 1], "i32"), tensor([4], "i32")], {})).toEqual({ shape: [3, 4], dtype: "bool" });
  });
});

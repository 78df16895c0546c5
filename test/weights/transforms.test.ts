// Weight transforms: rope_permute is llama.cpp's permute on any row layout (f32, f16, quantized
// blocks, 1-D biases) and the writer's inverse undoes it; add(c) works in f32; the storable values
// of init-weights survive store → load exactly.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { TensorTransform } from "../../src/compiler/check/model.js";
import { decodeTensor, encodeTensor } from "../../src/compiler/target/storage.js";
import { applyLoadTransforms, applyStoreTransforms, permuteRows, storableF32 } from "../../src/runtime/weights/transforms.js";
import { gatherRows, llamaCppPermuteRows } from "./model-helpers.js";

const rope = (n: number): TensorTransform => ({ name: "rope_permute", args: [{ type: "int", value: n }] });
const add = (c: number): TensorTransform => ({ name: "add", args: [{ type: "f32", value: c }] });
const fail = (p: string) => new Error(p);
const bytesOf = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
const f32Of = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

const layout = fc.record({ heads: fc.integer({ min: 1, max: 4 }), halfHead: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 3 }) });

describe("rope_permute", () => {
  it("loading is llama.cpp's permute; storing undoes it", () => {
    fc.assert(
      fc.property(layout, fc.integer(), ({ heads, halfHead, cols }, seed) => {
        const rows = heads * 2 * halfHead;
        const v = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed + i));
        const loaded = applyLoadTransforms({ dtype: "f32", shape: [rows, cols], bytes: bytesOf(v) }, [rope(heads)], fail);
        expect(f32Of(loaded.bytes)).toEqual(gatherRows(v, rows, llamaCppPermuteRows(rows, heads)));
        expect(applyStoreTransforms(f32Of(loaded.bytes), [rows, cols], [rope(heads)], fail)).toEqual(v);
        expect(permuteRows(permuteRows(bytesOf(v), rows, heads, "store"), rows, heads, "load")).toEqual(bytesOf(v));
      }),
    );
  });

  it("a small case by hand: one head of 4 rows, [r0 r1 r2 r3] → [r0 r2 r1 r3]", () => {
    const v = Float32Array.of(0, 1, 2, 3);
    const out = applyLoadTransforms({ dtype: "f32", shape: [4], bytes: bytesOf(v) }, [rope(1)], fail);
    expect([...f32Of(out.bytes)]).toEqual([0, 2, 1, 3]);
    const two = applyLoadTransforms({ dtype: "f32", shape: [8], bytes: bytesOf(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7)) }, [rope(2)], fail);
    expect([...f32Of(two.bytes)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it("moves quantized rows as they are, which equals permuting the dequantized values", () => {
    for (const dtype of ["q8_0", "q4_0", "f16", "bf16"] as const) {
      const rows = 8;
      const cols = 64;
      const v = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i * 0.37) * (1 + (i % 7)));
      const bytes = encodeTensor(dtype, v);
      const loaded = applyLoadTransforms({ dtype, shape: [rows, cols], bytes }, [rope(2)], fail);
      expect(loaded.dtype).toBe(dtype);
      expect(decodeTensor(dtype, loaded.bytes)).toEqual(gatherRows(decodeTensor(dtype, bytes), rows, llamaCppPermuteRows(rows, 2)));
    }
  });

  it("a 1-D tensor of a block type is permuted as f32 values", () => {
    const v = Float32Array.from({ length: 64 }, (_, i) => i / 8);
    const loaded = applyLoadTransforms({ dtype: "q8_0", shape: [64], bytes: encodeTensor("q8_0", v) }, [rope(4)], fail);
    expect(loaded.dtype).toBe("f32");
    expect(f32Of(loaded.bytes)).toEqual(gatherRows(decodeTensor("q8_0", encodeTensor("q8_0", v)), 64, llamaCppPermuteRows(64, 4)));
  });

  it("refuses a first dimension that is not a multiple of 2 × heads", () => {
    expect(() => applyLoadTransforms({ dtype: "f32", shape: [6, 1], bytes: new Uint8Array(24) }, [rope(2)], fail)).toThrow(/multiple of 2 × 2 heads/);
    expect(() => applyStoreTransforms(new Float32Array(6), [6], [rope(4)], fail)).toThrow(/first dimension \(6\)/);
  });
});

describe("add", () => {
  it("adds in f32, from any storage type, and the store inverse subtracts", () => {
    const v = Float32Array.of(0.5, 1, -2, 3.25);
    const loaded = applyLoadTransforms({ dtype: "f16", shape: [4], bytes: encodeTensor("f16", v) }, [add(-1)], fail);
    expect(loaded.dtype).toBe("f32");
    expect([...f32Of(loaded.bytes)]).toEqual([-0.5, 0, -3, 2.25]);
    expect([...applyStoreTransforms(Float32Array.of(-0.5, 0), [2], [add(-1)], fail)]).toEqual([0.5, 1]);
  });

  it("does not write into the bytes it was given", () => {
    const v = Float32Array.of(1, 2);
    const bytes = bytesOf(v);
    applyLoadTransforms({ dtype: "f32", shape: [2], bytes }, [add(1)], fail);
    expect([...v]).toEqual([1, 2]);
  });

  it("storable values come back exactly after store and load at f32, and move by at most an ulp", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 16 }),
        fc.constantFrom(-1, 1, 0.5, -3.75),
        (xs, c) => {
          const v = Float32Array.from(xs);
          const s = storableF32(v, [v.length], [add(c)], fail);
          const stored = applyStoreTransforms(s, [v.length], [add(c)], fail);
          const loaded = f32Of(applyLoadTransforms({ dtype: "f32", shape: [v.length], bytes: bytesOf(new Float32Array(stored)) }, [add(c)], fail).bytes);
          expect(loaded).toEqual(s);
          s.forEach((x, i) => expect(Math.abs(x - v[i]!)).toBeLessThanOrEqual(Math.max(Math.abs(c), Math.abs(v[i]!)) * 2 ** -22));
        },
      ),
    );
  });
});

// The safetensors reader and writer on their own: round trips of every readable dtype and the
// metadata, the layout the writer produces (what other readers expect), and sharded indexes.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeTensor, encodeTensor } from "../../src/compiler/target/storage.js";
import { WeightFileError } from "../../src/runtime/weights/errors.js";
import { openSafetensors, openSafetensorsIndex, writeSafetensors } from "../../src/runtime/weights/safetensors.js";

let dir: string;
let counter = 0;
const temp = () => join(dir, `t${counter++}.safetensors`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-safetensors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("safetensors round trip", () => {
  it("values of every readable dtype, shapes (also empty and scalar-like), metadata", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 3 }),
            dtype: fc.constantFrom("f32" as const, "f16" as const, "bf16" as const),
            seed: fc.integer(),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        async (specs) => {
          const tensors = specs.map((s, i) => {
            const n = s.shape.reduce((a, b) => a * b, 1);
            const data = Float32Array.from({ length: n }, (_, j) => Math.sin(s.seed + j) * 3);
            return { name: `t.${i}`, shape: s.shape, dtype: s.dtype, data };
          });
          const path = temp();
          await writeSafetensors(path, tensors, { format: "pt", note: "ü" });
          const f = await openSafetensors(path);
          try {
            expect(f.metadata).toEqual({ format: "pt", note: "ü" });
            expect([...f.tensors.keys()]).toEqual(tensors.map((t) => t.name));
            for (const t of tensors) {
              const info = f.tensor(t.name);
              expect(info.shape).toEqual(t.shape);
              expect(info.dtype).toBe(t.dtype);
              expect(info.fileDType).toBe(t.dtype.toUpperCase());
              expect(await f.readTensorF32(t.name)).toEqual(decodeTensor(t.dtype, encodeTensor(t.dtype, t.data)));
            }
          } finally {
            await f.close();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("writes the layout of the reference implementation: 8-byte length, JSON padded with spaces to 8 bytes, aligned data", async () => {
    const path = temp();
    await writeSafetensors(path, [
      { name: "a", shape: [3], dtype: "f16", data: Float32Array.of(1, 2, 3) },
      { name: "b", shape: [2], dtype: "f32", data: Float32Array.of(4, 5) },
    ]);
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString("utf8");
    expect(text).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
    expect(header["a"]).toEqual({ dtype: "F16", shape: [3], data_offsets: [0, 6] });
    expect(header["b"]).toEqual({ dtype: "F32", shape: [2], data_offsets: [8, 16] });
    expect(bytes.length).toBe(8 + n + 16);
    expect(bytes.readFloatLE(8 + n + 8)).toBe(4);
  });

  it("refuses to write what it cannot: q8_0, a data length that does not fit the shape, two tensors of one name", async () => {
    const path = temp();
    await expect(writeSafetensors(path, [{ name: "q", shape: [32], dtype: "q8_0" as never, data: new Float32Array(32) }])).rejects.toThrow(WeightFileError);
    await expect(writeSafetensors(path, [{ name: "x", shape: [3], dtype: "f32", data: new Float32Array(2) }])).rejects.toThrow(/needs 12 bytes/);
    const t = { name: "x", shape: [1], dtype: "f32" as const, data: new Float32Array(1) };
    await expect(writeSafetensors(path, [t, t])).rejects.toThrow(/two tensors/);
  });

  it("reads a sharded checkpoint through its index, each tensor from its shard", async () => {
    const a = join(dir, "model-00001-of-00002.safetensors");
    const b = join(dir, "model-00002-of-00002.safetensors");
    await writeSafetensors(a, [{ name: "x", shape: [2], dtype: "f32", data: Float32Array.of(1, 2) }]);
    await writeSafetensors(b, [
      { name: "y", shape: [1], dtype: "bf16", data: Float32Array.of(3) },
      { name: "unlisted", shape: [1], dtype: "f32", data: Float32Array.of(9) },
    ]);
    const index = join(dir, "model.safetensors.index.json");
    await writeFile(index, JSON.stringify({ metadata: { total_size: 10 }, weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors" } }));
    const r = await openSafetensorsIndex(index);
    try {
      expect([...r.tensors.keys()]).toEqual(["x", "y"]);
      expect(r.tensors.get("y")!.file).toBe(b);
      expect(await r.readTensorF32("x")).toEqual(Float32Array.of(1, 2));
      expect(await r.readTensorF32("y")).toEqual(Float32Array.of(3));
      expect(r.metadata).toEqual({ total_size: "10" });
      await expect(r.readTensorBytes("unlisted")).rejects.toThrow(WeightFileError);
    } finally {
      await r.close();
    }
  });

  it("an unsupported dtype is read as metadata and refused by name when its data is asked for", async () => {
    const json = Buffer.from(JSON.stringify({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const path = temp();
    await writeFile(path, Buffer.concat([len, json, Buffer.alloc(16)]));
    const f = await openSafetensors(path);
    expect(f.tensor("ids")).toMatchObject({ dtype: null, fileDType: "I64", shape: [2] });
    await expect(f.readTensorBytes("ids")).rejects.toThrow(/tensor "ids": its dtype I64 is not supported/);
    await f.close();
  });
});

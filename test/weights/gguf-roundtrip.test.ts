import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { DTYPES, SUPPORTED_DTYPES, decodeTensor, encodeTensor, type StorageDType } from "../../src/compiler/target/storage.js";
import { openGGUF, type GGUFScalarType, type GGUFValue, type ReadProgress } from "../../src/runtime/weights/gguf-reader.js";
import { meta, writeGGUF, type GGUFMetadataEntry, type GGUFTensorInput } from "../../src/runtime/weights/gguf-writer.js";

let dir: string;
let counter = 0;
const tempPath = () => join(dir, `t${counter++}.gguf`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-gguf-roundtrip-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(metadata: GGUFMetadataEntry[], tensors: GGUFTensorInput[] = [], alignment?: number) {
  const path = tempPath();
  await writeGGUF(path, alignment === undefined ? { metadata, tensors } : { metadata, tensors, alignment });
  return openGGUF(path);
}

/** What the reader gives back for a written scalar. */
function expectedScalar(type: GGUFScalarType, v: number | bigint | boolean | string): GGUFValue {
  if (type === "float32") return Math.fround(v as number);
  if (typeof v === "bigint" && Number.isSafeInteger(Number(v))) return Number(v);
  return v;
}

describe("metadata round trip", () => {
  it("reads back every value type with its type", async () => {
    const entries: GGUFMetadataEntry[] = [
      meta.uint8("u8", 255),
      meta.int8("i8", -128),
      meta.uint16("u16", 65535),
      meta.int16("i16", -32768),
      meta.uint32("u32", 4294967295),
      meta.int32("i32", -2147483648),
      meta.uint64("u64.small", 42n),
      meta.uint64("u64.big", 2n ** 64n - 1n),
      meta.int64("i64.small", -7),
      meta.int64("i64.big", -(2n ** 63n)),
      meta.float32("f32", 0.1),
      meta.float64("f64", Math.PI),
      meta.bool("yes", true),
      meta.bool("no", false),
      meta.string("s", "llama ü 😀"),
      meta.string("empty", ""),
      meta.array("tokens", "string", ["<s>", "</s>", "▁the", ""]),
      meta.array("scores", "float32", [0, -1.5, 0.1]),
      meta.array("types", "int32", [1, 2, -3]),
      meta.array("flags", "bool", [true, false]),
      meta.array("big", "uint64", [1n, 2n ** 60n]),
      meta.array("bytes", "uint8", [0, 255]),
      meta.array("i8s", "int8", [-1, 1]),
      meta.array("u16s", "uint16", [1]),
      meta.array("i16s", "int16", [-1]),
      meta.array("u32s", "uint32", [7]),
      meta.array("i64s", "int64", [-1n]),
      meta.array("f64s", "float64", [1e300]),
      meta.array("none", "string", []),
    ];
    const file = await roundTrip(entries);
    try {
      expect(file.version).toBe(3);
      expect(Object.keys(file.metadata)).toEqual(entries.map((e) => e.key));
      expect(file.metadata["u64.small"]).toBe(42);
      expect(file.metadata["u64.big"]).toBe(2n ** 64n - 1n);
      expect(file.metadata["i64.big"]).toBe(-(2n ** 63n));
      expect(file.metadata["f32"]).toBe(Math.fround(0.1));
      expect(file.metadata["s"]).toBe("llama ü 😀");
      expect(file.metadata["big"]).toEqual([1, 2n ** 60n]); // beyond 2^53: stays a bigint
      for (const e of entries) {
        const got = file.metadata[e.key];
        if (e.type === "array") {
          expect(got, e.key).toEqual(e.value.map((v) => expectedScalar(e.elementType, v)));
          expect(file.metadataTypes.get(e.key)).toEqual({ type: "array", elementType: e.elementType });
        } else {
          expect(got, e.key).toEqual(expectedScalar(e.type, e.value));
          expect(file.metadataTypes.get(e.key)).toEqual({ type: e.type });
        }
      }
    } finally {
      await file.close();
    }
  });

  it("round-trips random metadata", async () => {
    const scalarOf: Record<GGUFScalarType, fc.Arbitrary<number | bigint | boolean | string>> = {
      uint8: fc.integer({ min: 0, max: 255 }),
      int8: fc.integer({ min: -128, max: 127 }),
      uint16: fc.integer({ min: 0, max: 65535 }),
      int16: fc.integer({ min: -32768, max: 32767 }),
      uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      uint64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      int64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      float32: fc.float({ noNaN: true }),
      float64: fc.double({ noNaN: true }),
      bool: fc.boolean(),
      string: fc.string({ unit: "grapheme", maxLength: 20 }),
    };
    const types = Object.keys(scalarOf) as GGUFScalarType[];
    const entryArb: fc.Arbitrary<GGUFMetadataEntry> = fc.constantFrom(...types).chain((type) =>
      fc.oneof(
        scalarOf[type].map((value) => ({ key: "", type, value }) as GGUFMetadataEntry),
        fc.array(scalarOf[type], { maxLength: 8 }).map((value) => ({ key: "", type: "array", elementType: type, value }) as GGUFMetadataEntry),
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(entryArb, { maxLength: 12 }), async (generated) => {
        const entries = generated.map((e, i) => ({ ...e, key: `k.${i}` }));
        const file = await roundTrip(entries);
        try {
          for (const e of entries) {
            const got = file.metadata[e.key];
            if (e.type === "array") {
              expect(got).toEqual(e.value.map((v) => expectedScalar(e.elementType, v)));
              expect(file.metadataTypes.get(e.key)).toEqual({ type: "array", elementType: e.elementType });
            } else {
              expect(got).toEqual(expectedScalar(e.type, e.value));
              expect(file.metadataTypes.get(e.key)).toEqual({ type: e.type });
            }
          }
        } finally {
          await file.close();
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe("tensor round trip", () => {
  it("writes ggml's ne (the reverse of the row-major shape) and the type ids", async () => {
    const path = tempPath();
    await writeGGUF(path, {
      tensors: [
        { name: "m", shape: [3, 64], dtype: "q8_0", data: new Float32Array(192) },
        { name: "v", shape: [5], dtype: "bf16", data: new Float32Array(5) },
      ],
    });
    // checked with the library directly, independently of our reader
    const parsed = await gguf(path, { allowLocalFile: true });
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape, t.dtype])).toEqual([
      ["m", [64n, 3n], 8],
      ["v", [5n], 30],
    ]);
    const file = await openGGUF(path);
    expect(file.tensor("m")).toMatchObject({ shape: [3, 64], numElements: 192, dtype: "q8_0", typeName: "Q8_0", byteLength: 6 * 34 });
    expect(file.tensor("v")).toMatchObject({ shape: [5], dtype: "bf16", typeName: "BF16", byteLength: 10 });
    await file.close();
  });

  it("reads back every dtype: f32 exactly, the others as their encoding", async () => {
    const values = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i * 0.7) * (1 + i / 10));
    const tensors: GGUFTensorInput[] = SUPPORTED_DTYPES.map((dtype) => ({ name: `w.${dtype}`, shape: [2, 64], dtype, data: values }));
    const file = await roundTrip([meta.string("general.architecture", "llama")], tensors);
    try {
      for (const dtype of SUPPORTED_DTYPES) {
        const name = `w.${dtype}`;
        const encoded = encodeTensor(dtype, values);
        expect(await file.readTensorBytes(name), name).toEqual(encoded);
        const back = await file.readTensorF32(name);
        expect(back, name).toEqual(decodeTensor(dtype, encoded));
        if (dtype === "f32") expect(back).toEqual(values);
        const info = file.tensor(name);
        expect(info.byteOffset % 32).toBe(0);
        expect(info.byteOffset - file.tensorDataOffset).toBeGreaterThanOrEqual(0);
      }
    } finally {
      await file.close();
    }
  });

  it("round-trips random tensors of every dtype within each dtype's rounding", async () => {
    const tensorArb = fc.record({
      dtype: fc.constantFrom(...SUPPORTED_DTYPES),
      rows: fc.integer({ min: 1, max: 3 }),
      blocks: fc.integer({ min: 1, max: 2 }),
      extraDims: fc.array(fc.integer({ min: 1, max: 2 }), { maxLength: 2 }),
      scale: fc.float({ min: Math.fround(1e-3), max: 1000, noNaN: true }),
      seed: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(tensorArb, { minLength: 1, maxLength: 5 }), fc.constantFrom(undefined, 32, 64, 256), async (specs, alignment) => {
        const inputs = specs.map((s, i) => {
          const shape = [...s.extraDims, s.rows, s.blocks * 32];
          const n = shape.reduce((a, b) => a * b, 1);
          const data = Float32Array.from({ length: n }, (_, j) => Math.sin(s.seed + j * 1.3) * s.scale);
          return { name: `t${i}`, shape, dtype: s.dtype, data };
        });
        const file = await roundTrip([], inputs, alignment);
        try {
          expect(file.alignment).toBe(alignment ?? 32);
          for (const t of inputs) {
            const info = file.tensor(t.name);
            expect(info.shape).toEqual(t.shape);
            expect(info.byteOffset % file.alignment).toBe(0);
            const back = await file.readTensorF32(t.name);
            expect(back.length).toBe(t.data.length);
            for (let j = 0; j < back.length; j++) {
              const err = Math.abs(back[j]! - t.data[j]!);
              expect(err, `${t.dtype} ${t.name}[${j}]`).toBeLessThanOrEqual(tolerance(t.dtype, t.data, j));
            }
          }
        } finally {
          await file.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it("takes raw bytes and lazily produced data", async () => {
    const values = Float32Array.from({ length: 32 }, (_, i) => i - 16);
    const q4 = encodeTensor("q4_0", values);
    let produced = 0;
    const file = await roundTrip(
      [],
      [
        { name: "raw", shape: [32], dtype: "q4_0", data: q4 },
        {
          name: "lazy",
          shape: [32],
          dtype: "f16",
          data: async () => {
            produced++;
            return values;
          },
        },
      ],
    );
    try {
      expect(produced).toBe(1);
      expect(await file.readTensorBytes("raw")).toEqual(q4);
      expect(await file.readTensorF32("lazy")).toEqual(values); // small integers are exact in f16
    } finally {
      await file.close();
    }
  });

  it("reads tensors in file order with progress, and into a given buffer", async () => {
    const tensors: GGUFTensorInput[] = [
      { name: "a", shape: [32], dtype: "f32", data: new Float32Array(32).fill(1) },
      { name: "b", shape: [64], dtype: "q8_0", data: new Float32Array(64).fill(2) },
      { name: "c", shape: [3], dtype: "f16", data: new Float32Array(3).fill(3) },
    ];
    const file = await roundTrip([], tensors);
    try {
      const progress: ReadProgress[] = [];
      const seen: string[] = [];
      for await (const { info, bytes } of file.readTensors({ names: ["c", "a"], onProgress: (p) => progress.push(p) })) {
        seen.push(info.name);
        expect(bytes.byteLength).toBe(info.byteLength);
      }
      expect(seen).toEqual(["a", "c"]);
      expect(progress.map((p) => [p.tensor, p.tensorsDone, p.tensorsTotal, p.bytesDone, p.bytesTotal])).toEqual([
        ["a", 1, 2, 128, 134],
        ["c", 2, 2, 134, 134],
      ]);
      const all: string[] = [];
      for await (const { info } of file.readTensors()) all.push(info.name);
      expect(all).toEqual(["a", "b", "c"]);
      const into = new Uint8Array(68);
      expect(await file.readTensorBytes("b", into)).toBe(into);
      expect(into).toEqual(encodeTensor("q8_0", new Float32Array(64).fill(2)));
    } finally {
      await file.close();
    }
  });

  it("pads every tensor and the header to the alignment", async () => {
    const path = tempPath();
    await writeGGUF(path, {
      alignment: 64,
      metadata: [meta.string("general.name", "x")],
      tensors: [
        { name: "a", shape: [3], dtype: "f32", data: new Float32Array([1, 2, 3]) },
        { name: "b", shape: [1], dtype: "f32", data: new Float32Array([4]) },
      ],
    });
    const bytes = await readFile(path);
    const file = await openGGUF(path);
    try {
      expect(file.metadata["general.alignment"]).toBe(64);
      expect(file.metadataTypes.get("general.alignment")).toEqual({ type: "uint32" });
      expect(file.tensorDataOffset % 64).toBe(0);
      expect(file.tensor("a").byteOffset).toBe(file.tensorDataOffset);
      expect(file.tensor("b").byteOffset).toBe(file.tensorDataOffset + 64);
      expect(bytes.byteLength).toBe(file.tensorDataOffset + 128);
      expect([...bytes.subarray(file.tensorDataOffset + 12, file.tensorDataOffset + 64)].every((b) => b === 0)).toBe(true);
    } finally {
      await file.close();
    }
  });

  it("reads version 2 files", async () => {
    const path = tempPath();
    await writeGGUF(path, { metadata: [meta.uint32("n", 5)], tensors: [{ name: "w", shape: [2], dtype: "f32", data: new Float32Array([1, 2]) }] });
    const bytes = await readFile(path);
    bytes.writeUInt32LE(2, 4);
    await writeFile(path, bytes);
    const file = await openGGUF(path);
    try {
      expect(file.version).toBe(2);
      expect(file.metadata["n"]).toBe(5);
      expect(await file.readTensorF32("w")).toEqual(new Float32Array([1, 2]));
    } finally {
      await file.close();
    }
  });

  it("writes an empty file that reads back empty, and leaves no temporary files", async () => {
    const file = await roundTrip([]);
    expect(file.tensors.size).toBe(0);
    expect(Object.keys(file.metadata)).toEqual([]);
    await file.close();
    await file.close(); // closing twice is fine
    expect((await readdir(dir)).filter((f) => f.includes(".tmp"))).toEqual([]);
  });
});

/** How far a decoded value may be from the original: exact, f16/bf16 rounding, or the block's quantization step. */
function tolerance(dtype: StorageDType, data: Float32Array, j: number): number {
  const x = Math.abs(data[j]!);
  switch (dtype) {
    case "f32":
      return 0;
    case "f16":
      return Math.max(x * 2 ** -11, 2 ** -25);
    case "bf16":
      return x * 2 ** -8;
    case "q8_0":
    case "q4_0": {
      const start = j - (j % DTYPES[dtype].blockSize);
      const amax = Math.max(...[...data.subarray(start, start + 32)].map(Math.abs));
      // half a step (q8_0) or a step (q4_0, whose largest value can be clamped), plus the error of
      // storing d as f16 (relative 2^-11, or absolute 2^-25 when d is an f16 subnormal) times the largest quant
      const [d, qmax, steps] = dtype === "q8_0" ? [amax / 127, 127, 0.5] : [amax / 8, 8, 1];
      return d * steps * (1 + 1e-4) + qmax * Math.max(d * 2 ** -11, 2 ** -25);
    }
  }
}

// Bad weight files and bad writer input: each must give a WeightFileError that names the file (and
// the tensor or key), never a crash, a hang or a huge allocation. The bad files are good files from
// our writer, then cut or patched.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { WeightFileError } from "../../src/runtime/weights/errors.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { meta, writeGGUF, type GGUFTensorInput, type GGUFWriteContent } from "../../src/runtime/weights/gguf-writer.js";

let dir: string;
let counter = 0;
const tempPath = (ext = "gguf") => join(dir, `bad${counter++}.${ext}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-gguf-errors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const GOOD: GGUFWriteContent = {
  metadata: [
    meta.string("general.architecture", "llama"),
    meta.uint32("llama.block_count", 1),
    meta.array("tokenizer.ggml.tokens", "string", ["<unk>", "<s>", "</s>"]),
  ],
  tensors: [
    { name: "token_embd.weight", shape: [3, 32], dtype: "f16", data: new Float32Array(96).fill(0.5) },
    { name: "blk.0.attn_q.weight", shape: [2, 32], dtype: "q8_0", data: new Float32Array(64).fill(1) },
    { name: "output_norm.weight", shape: [32], dtype: "f32", data: new Float32Array(32).fill(2) },
  ],
};

/** The bytes of a good file. */
async function goodBytes(content: GGUFWriteContent = GOOD): Promise<Buffer> {
  const path = tempPath();
  await writeGGUF(path, content);
  return readFile(path);
}

async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = tempPath();
  await writeFile(path, bytes);
  return path;
}

/** Where a tensor's info fields are in the header, found by its name. */
function tensorInfoAt(bytes: Buffer, name: string) {
  const nameAt = bytes.indexOf(Buffer.from(name, "utf8"));
  if (nameAt < 8 || bytes.readBigUInt64LE(nameAt - 8) !== BigInt(Buffer.byteLength(name))) throw new Error(`no tensor info for ${name}`);
  const nDimsAt = nameAt + Buffer.byteLength(name);
  const nDims = bytes.readUInt32LE(nDimsAt);
  const neAt = nDimsAt + 4;
  const typeAt = neAt + 8 * nDims;
  return { nameAt, nDimsAt, neAt, typeAt, offsetAt: typeAt + 4 };
}

/** The position of a metadata entry's value (after its key and type). */
function valueAt(bytes: Buffer, key: string): number {
  return bytes.indexOf(Buffer.from(key, "utf8")) + Buffer.byteLength(key) + 4;
}

async function expectOpenError(path: string, ...patterns: RegExp[]): Promise<WeightFileError> {
  const err = await openGGUF(path).then(
    async (f) => {
      await f.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  return checkError(err, path, patterns);
}

async function expectRejects(promise: Promise<unknown>, path: string, ...patterns: RegExp[]): Promise<WeightFileError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return checkError(err, path, patterns);
}

function checkError(err: unknown, path: string, patterns: RegExp[]): WeightFileError {
  expect(err, "expected a WeightFileError").toBeInstanceOf(WeightFileError);
  const e = err as WeightFileError;
  expect(e.message.startsWith(`${path}: `), e.message).toBe(true);
  for (const p of patterns) expect(e.message).toMatch(p);
  return e;
}

describe("openGGUF rejects files that are not GGUF v2/v3", () => {
  it("a missing file or a directory", async () => {
    const missing = join(dir, "nope.gguf");
    await expectOpenError(missing, /no such file/, /Check the path/);
    const sub = join(dir, "a-directory");
    await mkdir(sub);
    await expectOpenError(sub, /not a regular file/);
  });

  it("wrong magic, or too short to have one", async () => {
    const bytes = await goodBytes();
    bytes.write("PK\x03\x04", 0, "latin1");
    await expectOpenError(await fileWith(bytes), /is not a GGUF file: it starts with the bytes 50 4b 03 04/, /safetensors/);
    await expectOpenError(await fileWith(new Uint8Array(0)), /is not a GGUF file: it is only 0 bytes long/);
    await expectOpenError(await fileWith(Buffer.from("GG")), /is not a GGUF file/);
  });

  it("unsupported versions and big-endian files", async () => {
    const bytes = await goodBytes();
    for (const [version, pattern] of [
      [1, /version 1 file, a format llmc .* no longer reads/],
      [4, /GGUF version 4; llmc reads versions 2 and 3.*newer than this llmc/],
      [0xdeadbeef, /GGUF version 3735928559/],
    ] as const) {
      bytes.writeUInt32LE(version, 4);
      await expectOpenError(await fileWith(bytes), pattern);
    }
    bytes.writeUInt32BE(3, 4);
    await expectOpenError(await fileWith(bytes), /big-endian/);
  });
});

describe("openGGUF rejects truncated files", () => {
  it("cut at every byte: inside the header, or inside any tensor's data", async () => {
    const bytes = await goodBytes();
    const intact = await openGGUF(await fileWith(bytes));
    const dataEnd = Math.max(...[...intact.tensors.values()].map((t) => t.byteOffset + t.byteLength!));
    const tensorsByEnd = [...intact.tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset);
    await intact.close();
    // where the tensor infos end; after that only padding up to the data is left of the header
    const headerEnd = (await gguf(await fileWith(bytes), { allowLocalFile: true })).tensorInfoByteRange[1];
    const path = tempPath();
    for (let cut = 0; cut < bytes.byteLength; cut++) {
      await writeFile(path, bytes.subarray(0, cut));
      if (cut >= dataEnd) {
        // only the padding after the last tensor is missing: nothing lost
        const f = await openGGUF(path);
        await f.close();
        continue;
      }
      const err = await expectOpenError(path);
      if (cut >= headerEnd) {
        // the first tensor whose data the cut reaches is named
        const victim = tensorsByEnd.find((t) => t.byteOffset + t.byteLength! > cut)!;
        expect(err.tensor, `cut at ${cut}`).toBe(victim.name);
        expect(err.message).toMatch(/past the end of the file/);
      } else if (cut >= 8) {
        expect(err.message, `cut at ${cut}`).toMatch(/ends inside its GGUF header|more than a file of \d+ bytes can hold/);
      }
    }
  });

  it("tensor data offset pointing past the end of the file", async () => {
    const bytes = await goodBytes();
    const { offsetAt } = tensorInfoAt(bytes, "output_norm.weight");
    bytes.writeBigUInt64LE(BigInt(32 * 1000), offsetAt);
    const e = await expectOpenError(await fileWith(bytes), /past the end of the file/, /download or convert it again/);
    expect(e.tensor).toBe("output_norm.weight");
    expect(e.message).toContain('tensor "output_norm.weight"');
  });

  it("a file cut after it was opened, when a tensor is read", async () => {
    const path = await fileWith(await goodBytes());
    const file = await openGGUF(path);
    try {
      await truncate(path, file.tensor("output_norm.weight").byteOffset + 8);
      await expectRejects(file.readTensorF32("output_norm.weight"), path, /ended at byte .* while reading/, /output_norm.weight/);
    } finally {
      await file.close();
    }
  });
});

describe("openGGUF rejects absurd counts and lengths without allocating them", () => {
  it("tensor and metadata counts larger than the file can hold", async () => {
    for (const [at, value] of [
      [8, 2n ** 62n],
      [8, 1000n],
      [16, 2n ** 40n],
      [16, 2n ** 64n - 1n],
    ] as const) {
      const bytes = await goodBytes();
      bytes.writeBigUInt64LE(value, at);
      await expectOpenError(await fileWith(bytes), /declares \d+ tensors and \d+ metadata entries, more than a file of \d+ bytes can hold/);
    }
  });

  it("string and array lengths beyond the file", async () => {
    const keyLength = await goodBytes();
    keyLength.writeBigUInt64LE(2n ** 60n, 24); // the first key's length
    await expectOpenError(await fileWith(keyLength), /GGUF header is malformed: String length/);

    const longKey = await goodBytes();
    longKey.writeBigUInt64LE(5000n, 24); // plausible, but past the end of the file
    await expectOpenError(await fileWith(longKey), /header|truncated/);

    const arrayLength = await goodBytes();
    const at = valueAt(arrayLength, "tokenizer.ggml.tokens") + 4; // after the element type
    arrayLength.writeBigUInt64LE(2n ** 50n, at);
    await expectOpenError(await fileWith(arrayLength), /malformed: Metadata array length/);
    arrayLength.writeBigUInt64LE(100_000n, at); // plausible: the tensor infos and data are read as strings
    await expectOpenError(await fileWith(arrayLength), /GGUF header/, /truncated or corrupt/);
  });

  it("bad metadata value types", async () => {
    const bytes = await goodBytes();
    bytes.writeUInt32LE(99, valueAt(bytes, "general.architecture") - 4);
    await expectOpenError(await fileWith(bytes), /malformed: Unsupported metadata type: 99/);
  });

  it("too many dimensions, or dimensions with more elements than the file", async () => {
    const dims = await goodBytes();
    dims.writeUInt32LE(9, tensorInfoAt(dims, "token_embd.weight").nDimsAt);
    await expectOpenError(await fileWith(dims), /n_dims 9|dimensions/);

    const five = await goodBytes();
    const { nDimsAt } = tensorInfoAt(five, "output_norm.weight");
    five.writeUInt32LE(5, nDimsAt); // reads four more "dimensions" from what follows
    await expectOpenError(await fileWith(five), /output_norm.weight/);

    const huge = await goodBytes();
    const info = tensorInfoAt(huge, "token_embd.weight");
    huge.writeBigUInt64LE(2n ** 32n, info.neAt + 8); // 3 rows -> 2^32 rows
    const e = await expectOpenError(await fileWith(huge), /more elements than the file could hold/);
    expect(e.tensor).toBe("token_embd.weight");
  });
});

describe("openGGUF rejects inconsistent headers", () => {
  it("misaligned tensor offsets", async () => {
    const bytes = await goodBytes();
    const { offsetAt } = tensorInfoAt(bytes, "blk.0.attn_q.weight");
    bytes.writeBigUInt64LE(bytes.readBigUInt64LE(offsetAt) + 4n, offsetAt);
    const e = await expectOpenError(await fileWith(bytes), /not a multiple of the file's alignment 32/);
    expect(e.tensor).toBe("blk.0.attn_q.weight");
  });

  it("rows that are not whole quantization blocks", async () => {
    const bytes = await goodBytes();
    const { neAt } = tensorInfoAt(bytes, "blk.0.attn_q.weight");
    bytes.writeBigUInt64LE(16n, neAt); // ne[0], the row length: 32 -> 16
    await expectOpenError(await fileWith(bytes), /blk.0.attn_q.weight.*rows have 16 elements, not a multiple of the q8_0 block size 32/);
  });

  it("two tensors of the same name", async () => {
    const bytes = await goodBytes({
      tensors: [
        { name: "aa", shape: [1], dtype: "f32", data: new Float32Array(1) },
        { name: "bb", shape: [1], dtype: "f32", data: new Float32Array(1) },
      ],
    });
    bytes.write("aa", tensorInfoAt(bytes, "bb").nameAt, "latin1");
    const e = await expectOpenError(await fileWith(bytes), /two tensors of this name/);
    expect(e.tensor).toBe("aa");
  });

  it("an alignment that is not a power of two", async () => {
    const bytes = await goodBytes({ ...GOOD, alignment: 64 });
    bytes.writeUInt32LE(48, valueAt(bytes, "general.alignment"));
    const e = await expectOpenError(await fileWith(bytes), /general.alignment is 48 \(uint32\), not a power of two/);
    expect(e.key).toBe("general.alignment");
  });
});

describe("unsupported tensor types", () => {
  it("open, list the tensor, and fail on reading it, naming the type, the tensor and the supported types", async () => {
    const bytes = await goodBytes();
    bytes.writeUInt32LE(12, tensorInfoAt(bytes, "blk.0.attn_q.weight").typeAt); // Q4_K
    const path = await fileWith(bytes);
    const file = await openGGUF(path);
    try {
      expect(file.tensor("blk.0.attn_q.weight")).toMatchObject({ ggmlType: 12, typeName: "Q4_K", dtype: null, byteLength: null });
      const e = await expectRejects(
        file.readTensorBytes("blk.0.attn_q.weight"),
        path,
        /tensor "blk.0.attn_q.weight": its type Q4_K \(ggml type 12\) is not supported; llmc reads f32, f16, bf16, q8_0, q4_0/,
        /llama-quantize/,
      );
      expect(e.tensor).toBe("blk.0.attn_q.weight");
      await expectRejects(file.readTensorF32("blk.0.attn_q.weight"), path, /Q4_K/);
      // reading many checks them all before reading any
      const read: string[] = [];
      const all = (async () => {
        for await (const { info } of file.readTensors()) read.push(info.name);
      })();
      await expectRejects(all, path, /Q4_K/);
      expect(read).toEqual([]);
      // the supported ones still read
      expect(await file.readTensorF32("output_norm.weight")).toEqual(new Float32Array(32).fill(2));
    } finally {
      await file.close();
    }
  });

  it("types unknown to ggml too", async () => {
    const bytes = await goodBytes();
    bytes.writeUInt32LE(999, tensorInfoAt(bytes, "output_norm.weight").typeAt);
    const path = await fileWith(bytes);
    const file = await openGGUF(path);
    try {
      await expectRejects(file.readTensorBytes("output_norm.weight"), path, /its type type 999 \(ggml type 999\) is not supported/);
    } finally {
      await file.close();
    }
  });
});

describe("reading", () => {
  it("an unknown tensor name, or after close", async () => {
    const path = await fileWith(await goodBytes());
    const file = await openGGUF(path);
    await expectRejects(file.readTensorBytes("blk.9.nope"), path, /tensor "blk.9.nope": no such tensor in the file; it has 3 tensors, e.g. "token_embd.weight"/);
    expect(() => file.tensor("x")).toThrow(WeightFileError);
    await file.close();
    await expectRejects(file.readTensorBytes("output_norm.weight"), path, /has been closed/);
  });
});

describe("writeGGUF rejects bad input and leaves no file behind", () => {
  const f32 = (n: number) => new Float32Array(n);
  const cases: [string, GGUFWriteContent, RegExp][] = [
    ["no dimensions", { tensors: [{ name: "t", shape: [], dtype: "f32", data: f32(1) }] }, /tensor "t": shape \[\] must have 1 to 4/],
    ["five dimensions", { tensors: [{ name: "t", shape: [1, 1, 1, 1, 1], dtype: "f32", data: f32(1) }] }, /1 to 4/],
    ["a fractional dimension", { tensors: [{ name: "t", shape: [1.5], dtype: "f32", data: f32(1) }] }, /non-negative integer/],
    ["too few values", { tensors: [{ name: "t", shape: [4], dtype: "f32", data: f32(3) }] }, /needs 4 values, the data has 3/],
    ["too few bytes", { tensors: [{ name: "t", shape: [32], dtype: "q4_0", data: new Uint8Array(17) }] }, /18 bytes, the data has 17/],
    ["rows not whole blocks", { tensors: [{ name: "t", shape: [2, 48], dtype: "q8_0", data: f32(96) }] }, /rows have 48 elements; q8_0 needs a multiple of 32/],
    ["NaN into q8_0", { tensors: [{ name: "t", shape: [32], dtype: "q8_0", data: f32(32).fill(NaN) }] }, /tensor "t": cannot convert it to q8_0: value NaN at index 0/],
    ["an unknown dtype", { tensors: [{ name: "t", shape: [1], dtype: "q4_k" as "q4_0", data: f32(1) }] }, /unknown dtype "q4_k"/],
    [
      "duplicate tensor names",
      {
        tensors: [
          { name: "t", shape: [1], dtype: "f32", data: f32(1) },
          { name: "t", shape: [1], dtype: "f32", data: f32(1) },
        ],
      },
      /two tensors have this name/,
    ],
    ["a long tensor name", { tensors: [{ name: "x".repeat(64), shape: [1], dtype: "f32", data: f32(1) }] }, /longer than ggml's limit of 63 bytes/],
    [
      "failing lazy data",
      {
        tensors: [
          {
            name: "t",
            shape: [1],
            dtype: "f32",
            data: () => {
              throw new Error("disk on fire");
            },
          },
        ],
      },
      /producing the tensor data failed \(disk on fire\)/,
    ],
    ["duplicate keys", { metadata: [meta.uint8("k", 1), meta.uint8("k", 2)] }, /metadata key "k": two metadata entries have this key/],
    ["uint8 out of range", { metadata: [meta.uint8("k", 256)] }, /metadata key "k": 256 is not a uint8/],
    ["int32 out of range", { metadata: [meta.int32("k", 2 ** 31)] }, /is not a int32/],
    ["negative uint64", { metadata: [meta.uint64("k", -1n)] }, /-1 is not a uint64/],
    ["a fractional integer", { metadata: [meta.uint32("k", 1.5)] }, /1.5 is not a uint32/],
    ["a bad array element", { metadata: [meta.array("k", "string", ["a", 3])] }, /metadata key "k": element 1: 3 is not a string/],
    ["a non-boolean bool", { metadata: [{ key: "k", type: "bool", value: 1 }] }, /1 is not a boolean/],
    ["an alignment that is not a power of two", { alignment: 48 }, /general.alignment must be a uint32 power of two, not 48/],
    ["contradicting alignments", { alignment: 64, metadata: [meta.uint32("general.alignment", 32)] }, /contradicts/],
  ];
  for (const [what, content, pattern] of cases) {
    it(what, async () => {
      const path = tempPath();
      await expectRejects(writeGGUF(path, content), path, pattern);
      const left = (await readdir(dir)).filter((f) => f.startsWith(path.slice(dir.length + 1)));
      expect(left).toEqual([]);
    });
  }

  it("a directory that does not exist", async () => {
    const path = join(dir, "missing-dir", "x.gguf");
    const tensors: GGUFTensorInput[] = [{ name: "t", shape: [1], dtype: "f32", data: f32(1) }];
    await expectRejects(writeGGUF(path, { tensors }), path, /writing the file failed/, /directory exists/);
  });
});

// Bad weight files given to loadModelWeights: each is a WeightFileError that names the file and,
// where one is at fault, the tensor — never another kind of exception. The bad files are good files
// from our writers, then cut, patched, or paired with a model they do not fit.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedModel } from "../../src/compiler/check/model.js";
import { WeightFileError } from "../../src/runtime/weights/errors.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initWeights, randomWeightSource } from "../../src/runtime/weights/init.js";
import { loadModelWeights } from "../../src/runtime/weights/loader.js";
import { compileModel, SMALL, writeHfCheckpoint } from "./model-helpers.js";

let dir: string;
let counter = 0;
const temp = (ext: string) => join(dir, `bad${counter++}.${ext}`);
let llama: ResolvedModel;
let goodGguf: string;
let goodHf: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-loader-errors-"));
  llama = compileModel("llama", SMALL.llama).model;
  goodGguf = join(dir, "good.gguf");
  await initWeights(llama, goodGguf, { seed: 1 });
  goodHf = join(dir, "good-hf");
  const values = randomWeightSource(llama, 1);
  await writeHfCheckpoint(llama, goodHf, (n) => values(n, []));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The error loading fails with; fails the test unless it is a WeightFileError naming `file` (and `tensor`, when given). */
async function loadError(model: ResolvedModel, path: string, expected: { file?: string; tensor?: string | null } = {}): Promise<WeightFileError> {
  let err: unknown;
  try {
    const w = await loadModelWeights(model, path);
    await w.close();
  } catch (e) {
    err = e;
  }
  expect(err, "loading should fail").toBeInstanceOf(WeightFileError);
  const wfe = err as WeightFileError;
  expect(wfe.file).toBe(expected.file ?? path);
  expect(wfe.message.startsWith(wfe.file)).toBe(true);
  if (expected.tensor !== undefined) expect(wfe.tensor).toBe(expected.tensor ?? undefined);
  return wfe;
}

/** Sets the ggml type id of a tensor in a GGUF file's bytes (its info: name, n_dims, ne…, type). */
function patchGgmlType(bytes: Buffer, name: string, type: number): void {
  const at = bytes.indexOf(Buffer.from(name, "utf8"));
  expect(at).toBeGreaterThan(0);
  const nDims = bytes.readUInt32LE(at + name.length);
  bytes.writeUInt32LE(type, at + name.length + 4 + 8 * nDims);
}

/** A safetensors file from a header object and data bytes. */
function safetensorsBytes(header: Record<string, unknown>, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe("GGUF files that do not fit the model", () => {
  it("a missing tensor: named, with similar names in the file and how many others are missing", async () => {
    const withBias = compileModel("llama", { ...SMALL.llama, qkv_bias: true }).model;
    const e = await loadError(withBias, goodGguf, { tensor: "blk.0.attn_q.bias" });
    expect(e.message).toContain("weight 'layers.0.bq'");
    expect(e.message).toContain('"blk.0.attn_q.weight"');
    expect(e.message).toContain("5 more");
  });

  it("a wrong shape: expected and found", async () => {
    const wider = compileModel("llama", { ...SMALL.llama, ffn_dim: 128 }).model;
    const e = await loadError(wider, goodGguf, { tensor: "blk.0.ffn_gate.weight" });
    expect(e.message).toContain("[96, 64]");
    expect(e.message).toContain("[128, 64]");
    const vocab = compileModel("llama", { ...SMALL.llama, vocab_size: 301 }).model;
    expect((await loadError(vocab, goodGguf, { tensor: "token_embd.weight" })).message).toContain("[301, 64]");
  });

  it("a tensor of a type llmc does not read (Q4_K, or an id ggml does not know)", async () => {
    for (const [type, name] of [[12, "Q4_K"], [99, "type 99"]] as const) {
      const bytes = await readFile(goodGguf);
      patchGgmlType(bytes, "blk.1.ffn_up.weight", type);
      const path = temp("gguf");
      await writeFile(path, bytes);
      const e = await loadError(llama, path, { tensor: "blk.1.ffn_up.weight" });
      expect(e.message).toContain(name);
      expect(e.message).toContain("not supported");
    }
  });

  it("a truncated file names the first tensor past the end", async () => {
    const bytes = await readFile(goodGguf);
    const path = temp("gguf");
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    const e = await loadError(llama, path);
    expect(e.tensor).toMatch(/^(blk\.|output|token_embd)/);
    expect(e.message).toContain("past the end of the file");
  });

  it("a file that is neither GGUF nor safetensors, an empty file, no file", async () => {
    const text = temp("bin");
    await writeFile(text, "this is not a model, just some text\n");
    expect((await loadError(llama, text, { tensor: null })).message).toContain("neither a GGUF nor a safetensors file");
    const empty = temp("gguf");
    await writeFile(empty, "");
    expect((await loadError(llama, empty, { tensor: null })).message).toContain("neither");
    expect((await loadError(llama, join(dir, "nope.gguf"), { tensor: null })).message).toContain("no such file");
  });

  it("format: 'gguf' on a safetensors file says it is not GGUF", async () => {
    await expect(loadModelWeights(llama, join(goodHf, "model.safetensors"), { format: "gguf" })).rejects.toThrow(/is not a GGUF file/);
  });
});

describe("safetensors files", () => {
  const f32 = (n: number) => new Uint8Array(n * 4);

  it("an absurd header length", async () => {
    const path = temp("safetensors");
    const bytes = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from("{}")]);
    await writeFile(path, bytes);
    expect((await loadError(llama, path, { tensor: null })).message).toContain("over the limit");
    const short = temp("safetensors");
    await writeFile(short, safetensorsBytes({}, new Uint8Array()).subarray(0, 9));
    expect((await loadError(llama, short)).message).toMatch(/header is \d+ bytes long/);
  });

  it("a header that is not JSON, or not an object", async () => {
    const path = temp("safetensors");
    const json = Buffer.from("{not json at all}");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    await writeFile(path, Buffer.concat([len, json]));
    expect((await loadError(llama, path)).message).toContain("not UTF-8 JSON");
  });

  it("data past the end of the file, named", async () => {
    const path = temp("safetensors");
    await writeFile(path, safetensorsBytes({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] }, b: { dtype: "F32", shape: [8], data_offsets: [16, 48] } }, f32(4)));
    expect((await loadError(llama, path, { tensor: "b" })).message).toContain("past the end of the file");
  });

  it("overlapping ranges, misaligned ranges, ranges of the wrong size", async () => {
    const overlap = temp("safetensors");
    await writeFile(overlap, safetensorsBytes({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] }, b: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }, f32(6)));
    expect((await loadError(llama, overlap, { tensor: "b" })).message).toContain('overlaps that of "a"');
    const misaligned = temp("safetensors");
    await writeFile(misaligned, safetensorsBytes({ a: { dtype: "F32", shape: [2], data_offsets: [2, 10] } }, f32(3)));
    expect((await loadError(llama, misaligned, { tensor: "a" })).message).toContain("not aligned");
    const size = temp("safetensors");
    await writeFile(size, safetensorsBytes({ a: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, f32(2)));
    expect((await loadError(llama, size, { tensor: "a" })).message).toContain("needs 6 bytes");
    const bad = temp("safetensors");
    await writeFile(bad, safetensorsBytes({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, f32(1)));
    expect((await loadError(llama, bad, { tensor: "a" })).message).toContain("shape");
  });

  it("an unsupported dtype is named when the model needs the tensor, ignored when it does not", async () => {
    const src = join(goodHf, "model.safetensors");
    // Rewrite the good file with its header's embed dtype changed to I32 (same element size).
    const bytes = await readFile(src);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string }>;
    header["model.embed_tokens.weight"]!.dtype = "I32";
    header["extra.position_ids"] = { dtype: "I64", shape: [0], data_offsets: [0, 0] } as never;
    const path = temp("safetensors");
    await writeFile(path, safetensorsBytes(header, bytes.subarray(8 + n)));
    const e = await loadError(llama, path, { tensor: "model.embed_tokens.weight" });
    expect(e.message).toContain("I32");
  });

  it("a truncated checkpoint names a tensor past the end", async () => {
    const d = join(dir, "truncated-hf");
    await mkdir(d);
    const bytes = await readFile(join(goodHf, "model.safetensors"));
    await writeFile(join(d, "model.safetensors"), bytes.subarray(0, bytes.length - 1000));
    const e = await loadError(llama, d, { file: join(d, "model.safetensors") });
    expect(e.tensor).toMatch(/^(model\.|lm_head)/);
  });

  it("a directory without weights says what it has", async () => {
    const d = join(dir, "empty-hf");
    await mkdir(d);
    await writeFile(join(d, "config.json"), "{}");
    await writeFile(join(d, "pytorch_model.bin"), "x");
    const e = await loadError(llama, d, { tensor: null });
    expect(e.message).toContain("neither model.safetensors nor model.safetensors.index.json");
    expect(e.message).toContain('"config.json"');
    expect(e.message).toContain("convert them to safetensors");
  });

  it("sharded: a missing shard, a shard outside the directory, a tensor not where the index says", async () => {
    const values = randomWeightSource(llama, 1);
    const d = join(dir, "sharded-bad");
    await writeHfCheckpoint(llama, d, (n) => values(n, []), { shards: 2 });
    const indexPath = join(d, "model.safetensors.index.json");
    const index = JSON.parse(await readFile(indexPath, "utf8")) as { weight_map: Record<string, string> };

    const missing = structuredClone(index);
    missing.weight_map["model.norm.weight"] = "model-00009-of-00009.safetensors";
    await writeFile(indexPath, JSON.stringify(missing));
    expect((await loadError(llama, d, { file: join(d, "model-00009-of-00009.safetensors") })).message).toContain("no such file");

    const escaping = structuredClone(index);
    escaping.weight_map["model.norm.weight"] = "../good-hf/model.safetensors";
    await writeFile(indexPath, JSON.stringify(escaping));
    expect((await loadError(llama, d, { file: indexPath, tensor: "model.norm.weight" })).message).toContain("not a file name in the index's directory");

    const moved = structuredClone(index);
    const other = Object.values(index.weight_map).find((f) => f !== index.weight_map["model.norm.weight"])!;
    moved.weight_map["model.norm.weight"] = other;
    await writeFile(indexPath, JSON.stringify(moved));
    expect((await loadError(llama, d, { file: join(d, other), tensor: "model.norm.weight" })).message).toContain("says it is here");

    await writeFile(indexPath, "[1, 2]");
    expect((await loadError(llama, d, { file: indexPath })).message).toContain("weight_map");
  });
});

describe("corrupted files", () => {
  it("random byte changes in GGUF and safetensors headers give a WeightFileError or a successful load, nothing else", async () => {
    const gguf = await readFile(goodGguf);
    const info = await openGGUF(goodGguf);
    const ggufHeaderEnd = info.tensorDataOffset;
    await info.close();
    const st = await readFile(join(goodHf, "model.safetensors"));
    const stHeaderEnd = 8 + Number(st.readBigUInt64LE(0));
    const path = temp("bin");
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (isGguf, edits) => {
          const bytes = Buffer.from(isGguf ? gguf : st);
          const end = isGguf ? ggufHeaderEnd : stHeaderEnd;
          for (const [at, v] of edits) bytes[at % end] = v;
          await writeFile(path, bytes);
          try {
            const w = await loadModelWeights(llama, path);
            await w.close();
          } catch (e) {
            if (!(e instanceof WeightFileError)) throw e;
            expect(e.file).toBe(path);
          }
        },
      ),
      { numRuns: process.env["CI"] ? 150 : 60 },
    );
  });

  it("a file cut anywhere gives a WeightFileError", async () => {
    const gguf = await readFile(goodGguf);
    const path = temp("gguf");
    for (const fraction of [0.001, 0.01, 0.2, 0.5, 0.99]) {
      await writeFile(path, gguf.subarray(0, Math.floor(gguf.length * fraction)));
      await loadError(llama, path);
    }
  });
});

describe("hints", () => {
  it("a missing output head of a model that could tie it suggests the tie", async () => {
    const tied = compileModel("llama", { ...SMALL.llama, tie_embeddings: true }).model;
    const path = temp("gguf");
    await initWeights(tied, path, { seed: 1 });
    const e = await loadError(llama, path, { tensor: "output.weight" });
    expect(e.message).toContain("set tie_embeddings = true");
  });

  it("a GGUF file of another architecture says so", async () => {
    const gemma = compileModel("gemma", SMALL.gemma).model;
    const e = await loadError(gemma, goodGguf);
    expect(e.message).toContain(`general.architecture is "llama", but model 'gemma' is a "gemma" model`);
  });
});

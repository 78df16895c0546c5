// loadModelWeights end to end: random weights written by init-weights (GGUF) and by an independent
// Hugging Face checkpoint writer load back to the same values, per architecture and storage type;
// the CPU interpreter gives the same logits from loaded weights as from the values themselves.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { decodeTensor, encodeTensor, type StorageDType } from "../../src/compiler/target/storage.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { drawTensor, initWeights, randomModelWeight, randomWeightSource } from "../../src/runtime/weights/init.js";
import { loadModelWeights, weightSource, type LoadProgress } from "../../src/runtime/weights/loader.js";
import { fileTensorName, modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import {
  compileModel, gatherRows, llamaCppPermuteRows, maxAbs, maxAbsDiff, SMALL, toHfOrder, writeHfCheckpoint,
} from "./model-helpers.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-loader-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ARCHS = ["llama", "qwen2", "gemma", "mistral"] as const;
const SEED = 7;

/** What loading a tensor written at `dtype` must give: the stored type's rounding of the values, nothing else. */
function expectedAfterStorage(values: Float32Array, shape: readonly number[], dtype: StorageDType): Float32Array {
  if (shape.length < 2 || dtype === "f32") return values;
  return decodeTensor(dtype, encodeTensor(dtype, values));
}

/** A bound on the storage error of `dtype` for values of largest magnitude `amax`. */
function storageBound(dtype: StorageDType, amax: number): number {
  return { f32: 0, f16: amax * 2 ** -11, bf16: amax * 2 ** -8, q8_0: amax / 127, q4_0: amax / 8 }[dtype];
}

describe("init-weights → loadModelWeights (GGUF)", () => {
  for (const arch of ARCHS) {
    for (const dtype of ["f32", "f16", "q8_0", "q4_0"] as const) {
      it(`${arch} at ${dtype}: every weight comes back${dtype === "f32" ? " exactly" : " within the storage type's error"}`, async () => {
        const { model } = compileModel(arch, SMALL[arch]);
        const path = join(dir, `${arch}-${dtype}.gguf`);
        await initWeights(model, path, { dtype, seed: SEED });
        const progress: LoadProgress[] = [];
        const w = await loadModelWeights(model, path, { onProgress: (p) => progress.push(p) });
        const tensors = modelTensors(model);
        expect(w.names().sort()).toEqual(tensors.map((t) => t.irName).sort());
        expect(progress.length).toBe(tensors.length);
        expect(progress.at(-1)).toMatchObject({ done: tensors.length, total: tensors.length });
        expect(progress.at(-1)!.bytes).toBe(progress.at(-1)!.bytesTotal);
        for (const t of tensors) {
          const want = randomModelWeight(t, SEED);
          const got = w.f32(t.irName);
          const quantized = t.shape.length >= 2 && dtype !== "f32";
          if (quantized) {
            expect(maxAbsDiff(got, want), t.irName).toBeLessThanOrEqual(storageBound(dtype, maxAbs(want)));
            expect(maxAbsDiff(got, expectedAfterStorage(want, t.shape, dtype)), t.irName).toBe(0);
            expect(w.info(t.irName).dtype).toBe(dtype);
          } else {
            expect(got, t.irName).toEqual(want);
          }
          expect(w.info(t.irName).shape).toEqual(t.shape);
        }
        await w.close();
      });
    }
  }

  it("the IR values are the initialisers' draws (plus the perturbation) except where add(c) must round-trip, and those differ by at most an ulp", () => {
    const { model } = compileModel("gemma", SMALL.gemma);
    const perturb = 0.05; // Gemma's (1 + w) norms initialise to zeros: noise makes add(1) inexact at f32
    for (const t of modelTensors(model)) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const noise = drawTensor(`${t.irName}#perturb`, n, { kind: "normal", mean: 0, std: perturb }, SEED);
      const plain = drawTensor(t.irName, n, t.field.init.distribution, SEED).map((x, i) => x + noise[i]!);
      const ir = randomModelWeight(t, SEED, perturb);
      const adds = fileTensorName(t, "gguf")!.transforms.some((tr) => tr.name === "add");
      if (!adds) expect(ir).toEqual(plain);
      else expect(maxAbsDiff(ir, plain)).toBeLessThanOrEqual(2 ** -22);
    }
  });

  it("qwen2 and gemma GGUF files hold Q/K in llama.cpp's NeoX (HF) row order, llama's in adjacent pairs; gemma's norms hold w + 1", async () => {
    for (const arch of ["llama", "qwen2", "gemma"] as const) {
      const { model } = compileModel(arch, SMALL[arch]);
      const path = join(dir, `${arch}-order.gguf`);
      await initWeights(model, path, { seed: SEED });
      const file = await openGGUF(path);
      try {
        const tensors = new Map(modelTensors(model).map((t) => [t.irName, t]));
        for (const name of ["layers.1.wq", "layers.1.wk", ...(arch === "qwen2" ? ["layers.0.bq", "layers.0.bk"] : [])]) {
          const t = tensors.get(name)!;
          const stored = await file.readTensorF32(fileTensorName(t, "gguf")!.name);
          const ir = randomModelWeight(t, SEED);
          expect(stored, `${arch} ${name}`).toEqual(arch === "llama" ? ir : toHfOrder(t, ir));
        }
        if (arch === "gemma") {
          const t = tensors.get("layers.0.attn_norm")!;
          const stored = await file.readTensorF32("blk.0.attn_norm.weight");
          const ir = randomModelWeight(t, SEED);
          expect(maxAbsDiff(stored, ir.map((x) => x + 1))).toBeLessThan(1e-6);
          expect(file.tensors.has("output.weight")).toBe(false); // tied to the embedding, as llama.cpp expects
        }
      } finally {
        await file.close();
      }
    }
  });

  it("raw() keeps quantized matrices quantized, rows permuted, and gives f32 where add(c) applied", async () => {
    const { model } = compileModel("gemma", SMALL.gemma);
    const path = join(dir, "gemma-raw.gguf");
    await initWeights(model, path, { dtype: "q8_0", seed: SEED });
    const w = await loadModelWeights(model, path);
    const wq = w.raw("layers.0.wq");
    expect(wq.dtype).toBe("q8_0");
    expect(wq.shape).toEqual([32, 64]);
    expect(wq.bytes.byteLength).toBe((32 * 64 * 34) / 32);
    expect(decodeTensor("q8_0", wq.bytes)).toEqual(w.f32("layers.0.wq"));
    expect(w.raw("layers.0.attn_norm").dtype).toBe("f32");
    expect(w.info("layers.0.attn_norm")).toEqual({ shape: [64], dtype: "f32" });
    // the tied output head is the embedding
    expect(w.f32("lm_head")).toBe(w.f32("embed"));
    expect(w.names()).not.toContain("lm_head");
    await w.close();
    expect(() => w.f32("embed")).toThrow(/closed/);
  });
});

describe("Hugging Face checkpoints", () => {
  for (const arch of ARCHS) {
    it(`${arch}: a safetensors directory with rotate-half Q/K loads to the same values as the GGUF`, async () => {
      const { model } = compileModel(arch, SMALL[arch]);
      const gguf = join(dir, `${arch}-hf-ref.gguf`);
      await initWeights(model, gguf, { seed: SEED });
      const hfDir = join(dir, `${arch}-hf`);
      const values = randomWeightSource(model, SEED);
      await writeHfCheckpoint(model, hfDir, (n) => values(n, []));
      const fromGguf = await loadModelWeights(model, gguf);
      const fromHf = await loadModelWeights(model, hfDir);
      expect(fromHf.format).toBe("safetensors");
      expect(fromHf.names().sort()).toEqual(fromGguf.names().sort());
      for (const n of fromGguf.names()) expect(fromHf.f32(n), n).toEqual(fromGguf.f32(n));
      await Promise.all([fromGguf.close(), fromHf.close()]);
    });
  }

  it("the loader's rope_permute is llama.cpp's permute, on matrices and on biases", async () => {
    // Write HF tensors in a known order and check each loaded row against llama.cpp's formula directly.
    const { model } = compileModel("qwen2", SMALL.qwen2);
    const hfDir = join(dir, "qwen2-permute");
    const hf = new Map<string, Float32Array>();
    for (const t of modelTensors(model)) hf.set(t.irName, randomTensor(`hf:${t.irName}`, t.shape, { seed: 1 }));
    // write the HF values as they are (no inverse): the helper's toHfOrder is skipped by pre-permuting forward
    const tensors = new Map(modelTensors(model).map((t) => [t.irName, t]));
    await writeHfCheckpoint(model, hfDir, (n) => {
      const t = tensors.get(n)!;
      const perm = t.field.hf!.transforms[0];
      const v = hf.get(n)!;
      return perm ? gatherRows(v, t.shape[0]!, llamaCppPermuteRows(t.shape[0]!, perm.args[0]!.value as number)) : v;
    });
    const w = await loadModelWeights(model, hfDir);
    for (const [name, heads] of [["layers.0.wq", 4], ["layers.0.wk", 2], ["layers.1.bq", 4], ["layers.1.bk", 2]] as const) {
      const rows = tensors.get(name)!.shape[0]!;
      expect(w.f32(name), name).toEqual(gatherRows(hf.get(name)!, rows, llamaCppPermuteRows(rows, heads)));
    }
    expect(w.f32("layers.0.wv")).toEqual(hf.get("layers.0.wv"));
    await w.close();
  });

  it("sharded checkpoints (model.safetensors.index.json), a single .safetensors file, and bf16/f16 storage", async () => {
    const { model } = compileModel("llama", SMALL.llama);
    const values = randomWeightSource(model, SEED);
    const sharded = join(dir, "llama-sharded");
    await writeHfCheckpoint(model, sharded, (n) => values(n, []), { shards: 3 });
    const a = await loadModelWeights(model, sharded);
    const b = await loadModelWeights(model, join(sharded, "model.safetensors.index.json"));
    for (const t of modelTensors(model)) {
      expect(a.f32(t.irName)).toEqual(values(t.irName, []));
      expect(b.f32(t.irName)).toEqual(values(t.irName, []));
    }
    for (const dtype of ["bf16", "f16"] as const) {
      const single = join(dir, `llama-${dtype}`);
      await writeHfCheckpoint(model, single, (n) => values(n, []), { dtype });
      const c = await loadModelWeights(model, join(single, "model.safetensors"));
      for (const t of modelTensors(model)) {
        expect(c.info(t.irName).dtype).toBe(dtype);
        expect(c.f32(t.irName)).toEqual(decodeTensor(dtype, encodeTensor(dtype, values(t.irName, []))));
      }
      await c.close();
    }
    await Promise.all([a.close(), b.close()]);
  });
});

describe("the CPU interpreter on loaded weights", () => {
  const tokens = Int32Array.of(1, 17, 260, 42, 5, 299);
  for (const arch of ARCHS) {
    it(`${arch}: logits from the GGUF and from the HF checkpoint equal those from the random values fed directly`, async () => {
      const { model, graph } = compileModel(arch, SMALL[arch]);
      const gguf = join(dir, `${arch}-logits.gguf`);
      await initWeights(model, gguf, { seed: 3 });
      const direct = new CpuInterpreter(graph, randomWeightSource(model, 3)).step({ tokens });
      const fromGguf = await loadModelWeights(model, gguf);
      const viaGguf = new CpuInterpreter(graph, weightSource(fromGguf)).step({ tokens });
      expect(viaGguf.shape).toEqual([tokens.length, 300]);
      expect(viaGguf.data).toEqual(direct.data);

      const hfDir = join(dir, `${arch}-logits-hf`);
      const values = randomWeightSource(model, 3);
      await writeHfCheckpoint(model, hfDir, (n) => values(n, []));
      const fromHf = await loadModelWeights(model, hfDir);
      expect(new CpuInterpreter(graph, weightSource(fromHf)).step({ tokens }).data).toEqual(direct.data);
      await Promise.all([fromGguf.close(), fromHf.close()]);
    });
  }

  it("quantized weights give nearby logits (q8_0)", async () => {
    const { model, graph } = compileModel("llama", SMALL.llama);
    const path = join(dir, "llama-logits-q8.gguf");
    await initWeights(model, path, { dtype: "q8_0", seed: 3 });
    const direct = new CpuInterpreter(graph, randomWeightSource(model, 3)).step({ tokens }).data as Float32Array;
    const w = await loadModelWeights(model, path);
    const q = new CpuInterpreter(graph, weightSource(w)).step({ tokens }).data as Float32Array;
    expect(maxAbsDiff(q, direct)).toBeGreaterThan(0);
    expect(maxAbsDiff(q, direct)).toBeLessThan(0.05 * maxAbs(direct));
  });

  it("an optional tensor the file lacks loads as zeros", async () => {
    // bo is optional in this model and absent from a plain llama file: the output is then llama's.
    const cfg = SMALL.llama;
    const plain = compileModel("llama", cfg);
    const withBias = compileModel("test/fixtures/weights/optional-bias.llm", cfg);
    const path = join(dir, "llama-no-bias.gguf");
    await initWeights(plain.model, path, { seed: 5 });
    const w = await loadModelWeights(withBias.model, path);
    expect(w.f32("layers.1.bo")).toEqual(new Float32Array(64));
    const a = new CpuInterpreter(plain.graph, randomWeightSource(plain.model, 5)).step({ tokens });
    const b = new CpuInterpreter(withBias.graph, weightSource(w)).step({ tokens });
    expect(maxAbsDiff(a.data as Float32Array, b.data as Float32Array)).toBeLessThan(1e-5);
  });
});

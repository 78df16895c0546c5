// Matrices larger than one binding (maxStorageBufferBindingSize) are uploaded as row ranges, each a
// buffer of its own, and the linear and gather kernels bind each part: the row ranges' device bytes
// (target/storage.ts deviceRows) against the rows packed on their own, and whole models run with a
// small forced limit against the CPU reference, for every dtype, tied embeddings included.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { evalDim } from "../../src/compiler/base/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import { weightNodes } from "../../src/compiler/ir/graph.js";
import { BindingSizeError, compileWgsl, wgslProfile } from "../../src/compiler/target/wgsl.js";
import { CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { deviceBytes, deviceLayout, deviceRows, decodeTensor, encodeTensor, rowsWithin, type StorageDType } from "../../src/compiler/target/storage.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { ResourceError } from "../../src/runtime/errors.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { CI, expectClose, gpu } from "./helpers.js";

const DTYPES: StorageDType[] = ["f32", "f16", "bf16", "q8_0", "q4_0"];

beforeAll(async () => {
  await gpu();
});
afterAll(releaseSharedGpu);

describe("row ranges of a matrix on the device", () => {
  it("deviceRows cuts the same bytes as packing those rows on their own, for every dtype", () => {
    fc.assert(
      fc.property(fc.constantFrom(...DTYPES), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1000 }), (dtype, N, kBlocks, seed) => {
        const K = 32 * kBlocks;
        const values = randomTensor("w", [N, K], { seed });
        const whole = deviceBytes(dtype, [N, K], values);
        const first = seed % N;
        const count = 1 + ((seed >> 4) % (N - first));
        const own = deviceBytes(dtype, [count, K], values.subarray(first * K, (first + count) * K));
        expect(deviceRows(dtype, [N, K], whole, first, count)).toEqual(own);
      }),
      { numRuns: CI ? 200 : 60 },
    );
  });

  it("rowsWithin: the most rows (a multiple of the step) whose layout fits the limit", () => {
    for (const dtype of DTYPES) {
      for (const [K, limit] of [[64, 4096], [96, 1000], [4096, 1 << 20]] as const) {
        const rows = rowsWithin(dtype, K, limit, 2);
        expect(rows % 2).toBe(0);
        expect(deviceLayout(dtype, [rows, K]).bytes).toBeLessThanOrEqual(limit);
        expect(deviceLayout(dtype, [rows + 2, K]).bytes).toBeGreaterThan(limit);
      }
    }
  });
});

/** A source whose matrices the file stores as `dtype` (the CPU sees their decoded values). */
function storedAs(seed: number, dtype: StorageDType): WeightSource {
  const raw = new Map<string, Uint8Array>();
  const f32: WeightSource = (name, shape) => {
    const v = randomTensor(name, shape, { seed });
    if (dtype === "f32" || shape.length !== 2) return v;
    const bytes = encodeTensor(dtype, v);
    raw.set(name, bytes);
    return decodeTensor(dtype, bytes);
  };
  return Object.assign(f32, { raw: (name: string) => (raw.has(name) ? { dtype, bytes: raw.get(name)! } : null) });
}

function graphOf(path: string, cfg: Record<string, number>) {
  const res = compileFile(path, { overrides: new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)])) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled!.graph;
}

describe("models whose matrices exceed a (forced) binding limit equal the CPU reference", () => {
  // vocab 600 × dim 64: a 150 KiB f32 embedding and LM head, split by every limit here; at 12 KiB the
  // f32 layers' wq (rotated pairs across a part boundary) and gate/up pairs (two weights) split too.
  const cfg = { vocab_size: 600, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 };
  const cases: [string, StorageDType, number, "cpu" | "gpu", number?][] = [
    ["models/llama.llm", "f32", 12 << 10, "cpu"], // (vocab 200 here: fewer parts, a kernel llvmpipe compiles faster)
    // 6 bindings per kernel: the embedding's 5 parts do not fit one gather or LM head, which run as two dispatches each.
    ["models/llama.llm", "f32", 12 << 10, "gpu", 6],
    ["models/llama.llm", "f32", 32 << 10, "gpu"],
    ["models/llama.llm", "q8_0", 16 << 10, "cpu"],
    ["models/llama.llm", "q4_0", 16 << 10, "gpu"],
    ["models/gemma.llm", "f16", 32 << 10, "cpu"], // tied embedding: one split table, read by the gather and the LM head
    ["models/gemma.llm", "bf16", 32 << 10, "gpu"],
  ];
  for (const [path, dtype, limit, profile, maxStorageBuffers] of cases) {
    it(`${path} ${dtype}, ${limit >> 10} KiB per binding${maxStorageBuffers ? `, ${maxStorageBuffers} bindings per kernel` : ""}, ${profile} profile: prefill and decode`, async () => {
      const vocab = limit === 12 << 10 ? 200 : cfg.vocab_size;
      const graph = graphOf(path, { ...cfg, vocab_size: vocab, ...(path.includes("gemma") ? { head_dim: 16 } : {}) });
      const weights = storedAs(5, dtype);
      for (const n of weightNodes(graph)) weights(String(n.attrs["name"]), n.ty.shape.map((d) => evalDim(d, new Map()))); // the file's bytes, before the executor asks
      const tuning = profile === "cpu" ? CPU_TUNING : GPU_TUNING;
      const ex = await createWebGpuExecutor(graph, weights, await gpu(), { tuning, maxStorageBufferBindingSize: limit, ...(maxStorageBuffers ? { maxStorageBuffers } : {}) });
      const cpu = new CpuInterpreter(graph, weights);
      try {
        expect(new Set(ex.program.weights.filter((w) => w.shape.length === 2).map((w) => w.dtype))).toEqual(new Set([dtype]));
        const split = ex.program.weights.filter((w) => w.parts);
        expect(split.map((w) => w.name)).toContain("embed");
        if (limit === 12 << 10) expect(split.map((w) => w.name)).toEqual(expect.arrayContaining(["layers.0.wq", "layers.0.w_gate", "layers.0.w_up"]));
        for (const w of split) {
          expect(w.parts!.length).toBeGreaterThan(1);
          expect(w.parts!.reduce((a, b) => a + b, 0)).toBe(w.shape[0]);
          expect(deviceLayout(w.dtype, [w.parts![0]!, w.shape[1]!]).bytes).toBeLessThanOrEqual(limit);
        }
        if (maxStorageBuffers) {
          const plan = (await ex.stepProgram(1)).plan;
          expect(plan.dispatches.filter((d) => d.kernel === "gather").map((d) => d.parts)).toEqual([[0, 4], [4, 5]]);
          for (const k of (await ex.stepProgram(1)).kernels) expect(k.bindings.filter((b) => b.access !== "uniform").length).toBeLessThanOrEqual(maxStorageBuffers);
        }
        const steps = [Int32Array.of(1, vocab - 1, vocab / 2, 3, 157), ...Array.from({ length: 6 }, (_, i) => Int32Array.of((i * 211 + vocab - 2) % vocab))];
        for (const [i, tokens] of steps.entries()) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-4, `${dtype} step ${i}`);
      } finally {
        ex.dispose();
      }
    });
  }

  it("the target splits only for a runtime that uploads parts; kernels never bind more than the device allows", () => {
    const graph = graphOf("models/llama.llm", { ...cfg, vocab_size: 200 });
    const limits = { maxStorageBuffersPerShaderStage: 6, maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256, maxStorageBufferBindingSize: 12 << 10 };
    expect(() => compileWgsl(graph, { profile: wgslProfile(false, limits) }).step(1)).toThrow(BindingSizeError);
    const program = compileWgsl(graph, { profile: wgslProfile(false, limits), splitWeights: true });
    const step = program.step(1);
    // The LM head's 5 parts: x, the final norm's gain and the logits leave 3 bindings for parts.
    const head = step.plan.dispatches.filter((d) => d.linear?.segments.some((sg) => step.plan.graph.nodes.find((n) => n.id === sg.weights[0])?.attrs["name"] === "lm_head"));
    expect(head.map((d) => d.parts)).toEqual([[0, 3], [3, 5]]);
    for (const k of step.kernels) expect(k.bindings.filter((b) => b.access !== "uniform").length).toBeLessThanOrEqual(6);
  });

  it("a weight that cannot be split (a row larger than the limit) is refused with the reason", async () => {
    const graph = graphOf("models/llama.llm", cfg);
    const err = await createWebGpuExecutor(graph, storedAs(5, "f32"), await gpu(), { maxStorageBufferBindingSize: 256 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceError);
    expect((err as Error).message).toMatch(/cannot be split into row ranges/);
  });
});

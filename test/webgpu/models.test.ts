// Whole models on WebGPU: logits equal the CPU interpreter's (max |diff| ≤ 1e-4) for a prefill and
// 16 decode steps, for random small models of every architecture, fused and unfused.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { ContextOverflowError } from "../../src/runtime/executor.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor, type WebGpuExecutorOptions } from "../../src/runtime/webgpu/executor.js";
import { CPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { expectClose, gpu } from "./helpers.js";

beforeAll(async () => {
  await gpu();
});
afterAll(releaseSharedGpu);

function compile(path: string, cfg: Record<string, number | string | boolean> = {}, fused = true) {
  const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
  const res = compileFile(path, { overrides, ...(fused ? {} : { pipeline: UNFUSED_PIPELINE }) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled!.graph;
}

const weightsFor = (seed: number) => (name: string, shape: readonly number[]) => randomTensor(name, shape, { seed });

/** Prefill `prompt`, then decode 16 tokens (ids from a fixed walk), comparing logits every step;
 *  returns the decode step's dispatch count. */
async function prefillAndDecode(graph: ReturnType<typeof compile>, vocab: number, seed: number, chunks: number[][] = [[1, 5, 9, 3]], opts: WebGpuExecutorOptions = {}): Promise<number> {
  const weights = weightsFor(seed);
  const ex = await createWebGpuExecutor(graph, weights, await gpu(), opts);
  const cpu = new CpuInterpreter(graph, weights);
  try {
    const steps = [...chunks.map((c) => Int32Array.from(c)), ...Array.from({ length: 16 }, (_, i) => Int32Array.of((i * 7 + 2) % vocab))];
    for (const [i, tokens] of steps.entries()) {
      const want = cpu.step({ tokens });
      const got = await ex.step({ tokens });
      expectClose(got, want, 1e-4, `step ${i} (T=${tokens.length}, P=${cpu.past - tokens.length})`);
    }
    return ex.dispatchesPerStep(1);
  } finally {
    ex.dispose();
  }
}

const small = { vocab_size: 48, dim: 32, n_layers: 2, n_heads: 4, ffn_dim: 40, max_seq_len: 32 };

describe("whole models on WebGPU equal the CPU interpreter", () => {
  it("tiny.llm, fused (the default pipeline) and unfused", async () => {
    const fused = await prefillAndDecode(compile("test/fixtures/check/tiny.llm"), 64, 1);
    const unfused = await prefillAndDecode(compile("test/fixtures/check/tiny.llm", {}, false), 64, 1);
    expect(fused).toBeLessThan(unfused);
  });

  it("llama with GQA, prefill in chunks (a prefill at P > 0)", async () => {
    await prefillAndDecode(compile(join("models", "llama.llm"), { ...small, n_kv_heads: 2 }), 48, 2, [[3, 1, 4], [1, 5], [9]]);
  });

  it("llama with MQA and head_dim 4 (scalar loads)", async () => {
    await prefillAndDecode(compile(join("models", "llama.llm"), { ...small, dim: 16, n_heads: 4, n_kv_heads: 1, ffn_dim: 20 }), 48, 3);
  });

  it("qwen2 (q/k/v biases)", async () => {
    await prefillAndDecode(compile(join("models", "qwen2.llm"), { ...small, n_kv_heads: 2 }), 48, 4);
  });

  it("gemma (GeGLU, (1 + w) norms, scaled tied embeddings, head_dim ≠ dim / n_heads)", async () => {
    await prefillAndDecode(compile(join("models", "gemma.llm"), { ...small, n_kv_heads: 1, head_dim: 16 }), 48, 5);
  });

  it("mistral (sliding window shorter than the context)", async () => {
    await prefillAndDecode(compile(join("models", "mistral.llm"), { ...small, n_kv_heads: 2, sliding_window: 5 }), 48, 6);
  });

  it("qwen2, llama and gemma with fewer storage buffers (partial merges) and without merging", async () => {
    // Under WebGPU's default 8 buffers: qwen2's q and k (with biases, and RoPE's frequencies
    // written into the kernel) merge, v runs alone; llama's q, k and v merge.
    const qwen = compile(join("models", "qwen2.llm"), { ...small, n_kv_heads: 2 });
    expect(await prefillAndDecode(qwen, 48, 7, [[2, 7], [4]], { maxStorageBuffers: 8 })).toBe(2 * 6 + 2);
    expect(await prefillAndDecode(qwen, 48, 7, [[2, 7], [4]], { maxStorageBuffers: 7 })).toBe(2 * 7 + 2);
    const llama = compile(join("models", "llama.llm"), { ...small, n_kv_heads: 2 });
    expect(await prefillAndDecode(llama, 48, 9, [[2, 7], [4]], { maxStorageBuffers: 8 })).toBe(2 * 5 + 2);
    const gemma = compile(join("models", "gemma.llm"), { ...small, n_kv_heads: 2, head_dim: 8 });
    expect(await prefillAndDecode(gemma, 48, 8, [[2, 7, 1]], { tuning: { ...CPU_TUNING, linear: { ...CPU_TUNING.linear, merge: false } } })).toBe(2 * 7 + 3);
  });
});

describe("the executor's step contract", () => {
  it("refuses to run past max_seq_len, like the CPU interpreter", async () => {
    const graph = compile(join("models", "llama.llm"), { ...small, max_seq_len: 4 });
    const ex = await createWebGpuExecutor(graph, weightsFor(1), await gpu());
    await ex.step({ tokens: Int32Array.of(1, 2, 3) });
    await expect(ex.step({ tokens: Int32Array.of(4, 5) })).rejects.toThrow(ContextOverflowError);
    await expect(ex.step({ tokens: Int32Array.of(4, 5) })).rejects.toThrow(/3 cached \+ 2 new tokens exceed max_seq_len 4/);
    ex.reset();
    expect(ex.past).toBe(0);
    await ex.step({ tokens: Int32Array.of(4, 5) });
    expect(ex.past).toBe(2);
    ex.dispose();
  });

  it("names an out-of-range token id", async () => {
    const ex = await createWebGpuExecutor(compile("test/fixtures/check/tiny.llm"), weightsFor(1), await gpu());
    await expect(ex.step({ tokens: Int32Array.of(3, 64) })).rejects.toThrow(/token id 64 \(at index 1\) is out of range for a vocabulary of 64/);
    ex.dispose();
  });

  it("decode records one submit and reuses its pipelines and bind groups across steps", async () => {
    const ex = await createWebGpuExecutor(compile("test/fixtures/check/tiny.llm"), weightsFor(1), await gpu());
    await ex.step({ tokens: Int32Array.of(1) });
    const plan = (await ex.stepProgram(1)).plan;
    await ex.step({ tokens: Int32Array.of(2) });
    expect((await ex.stepProgram(1)).plan).toBe(plan);
    // The greedy token's argmax (appended by the executor) is recorded only when it is read.
    expect(ex.lastStep).toEqual({ tokens: 1, dispatches: plan.dispatches.length - 1, submits: 1, hostMs: expect.any(Number), readbackBytes: 4 * Number(ex.graph.nodes.find((n) => n.id === ex.graph.outputs[0])!.ty.shape[1]!.get("")) });
    await ex.step({ tokens: Int32Array.of(3), read: "argmax" });
    expect(ex.lastStep).toMatchObject({ dispatches: plan.dispatches.length, readbackBytes: 4 });
    expect(ex.lastStep!.hostMs).toBeGreaterThan(0);
    ex.dispose();
  });
});

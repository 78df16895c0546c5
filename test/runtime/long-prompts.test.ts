// Long prompts run as chunks on every backend: a step longer than the prefill chunk gives the rows a
// single step gives (the CPU interpreter unchunked is the reference), `read: "last"` gives the last
// of them (and reads back one row), `read: "argmax"` its greedy token. On WebGPU the chunk is the
// largest whose activations fit one binding, so a 1200-token prompt on a 32k-vocabulary model runs
// (it used to stop at the logits, 1200 × 32000 × 4 bytes > llvmpipe's 128 MiB binding limit).

import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import { compileWgsl, DEFAULT_PREFILL_CHUNK, wgslProfile } from "../../src/compiler/target/wgsl.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { lastRow, type StepRead } from "../../src/runtime/executor.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { emulated } from "../cuda/helpers.js";
import { expectClose } from "../helpers/graph.js";
import { gpu } from "../webgpu/helpers.js";

afterAll(releaseSharedGpu);

function llama(cfg: Record<string, number>): Graph {
  const res = compileFile(join("models", "llama.llm"), { overrides: new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)])) });
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  return res.compiled.graph;
}

const weights = (name: string, shape: readonly number[]) => randomTensor(name, shape, { seed: 11 });
const small = llama({ vocab_size: 40, dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 48, max_seq_len: 40 });
const prompt = (n: number, vocab: number) => Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab);

/** The reference: the CPU interpreter running each step whole. */
function reference(graph: Graph, steps: Int32Array[]): HostTensor[] {
  const cpu = new CpuInterpreter(graph, weights, { prefillChunk: 1 << 30 });
  return steps.map((tokens) => cpu.step({ tokens }));
}

type Stepper = { step(inputs: { tokens: Int32Array; read?: StepRead }): HostTensor | Promise<HostTensor>; reset(): void; past: number };

/** Two steps (a prompt of 13, then 9 more at P = 13) read as logits, last row and greedy token, each
 *  equal to the whole-step reference. */
async function checkChunked(ex: Stepper, tol: number): Promise<void> {
  const steps = [prompt(13, 40), prompt(9, 37).map((t) => (t + 3) % 40)];
  const want = reference(small, steps);
  for (const read of ["logits", "last", "argmax"] as const) {
    ex.reset();
    for (const [i, tokens] of steps.entries()) {
      const got = await ex.step({ tokens, read });
      const what = `read "${read}", step ${i}`;
      if (read === "logits") expectClose(got, want[i]!, tol, what);
      else if (read === "last") expectClose(got, lastRow(want[i]!), tol, what);
      else {
        const row = lastRow(want[i]!).data as Float32Array;
        expect(got.dtype, what).toBe("i32");
        expect(row[got.data[0]!], what).toBeCloseTo(Math.max(...row), 4);
      }
    }
    expect(ex.past).toBe(22);
  }
}

describe("a step longer than the prefill chunk", () => {
  it("CPU interpreter: chunks of 4 give the rows of one whole step", async () => {
    await checkChunked(new CpuInterpreter(small, weights, { prefillChunk: 4 }), 1e-5);
  });

  it("WebGPU: chunks of 4 give the rows of one whole step; only the last chunk reads back for \"last\"", async () => {
    const ex = await createWebGpuExecutor(small, weights, await gpu(), { prefillChunk: 4 });
    try {
      expect(ex.program.prefillChunk).toBe(4);
      await checkChunked(ex, 1e-4);
      ex.reset();
      await ex.step({ tokens: prompt(13, 40), read: "last" });
      expect(ex.lastStep).toMatchObject({ tokens: 13, submits: 4, readbackBytes: 40 * 4 });
      // The three chunks before the last skip the kernels that only compute the logits.
      const perChunk = await ex.dispatchesPerStep(4);
      const chunk = await ex.stepProgram(4);
      const onlyLogits = chunk.outputsOnly.filter((o, i) => o && !chunk.greedyOnly[i]).length;
      expect(onlyLogits).toBeGreaterThan(0);
      expect(ex.lastStep!.dispatches).toBe(3 * (perChunk - onlyLogits) + (await ex.dispatchesPerStep(1)));
      await ex.step({ tokens: prompt(9, 40), read: "logits" });
      expect(ex.lastStep).toMatchObject({ tokens: 9, submits: 3, readbackBytes: 9 * 40 * 4 });
    } finally {
      ex.dispose();
    }
  });

  it("CUDA (emulated): prefill chunks of 4, read back as logits, last row or greedy token", async () => {
    const ex = new CudaExecutor(small, weights, emulated({ prefillChunk: 4 }));
    try {
      await ex.init();
      await checkChunked(ex, 1e-4);
    } finally {
      ex.dispose();
    }
  });
});

describe("the WebGPU prefill chunk comes from the adapter's binding limit", () => {
  const vocab = 32000;
  const wide = llama({ vocab_size: vocab, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 176, max_seq_len: 4096 });
  const profile = (limit?: number) => wgslProfile(true, { maxStorageBuffersPerShaderStage: 16, maxComputeWorkgroupSizeX: 1024, maxComputeInvocationsPerWorkgroup: 1024, ...(limit ? { maxStorageBufferBindingSize: limit } : {}) });
  const largest = (program: ReturnType<typeof compileWgsl>, T: number) => Math.max(...program.step(T).plan.buffers.filter((b) => b.kind === "activation").map((b) => b.bytes));

  it("the largest chunk whose activations fit, at most the cap", () => {
    expect(compileWgsl(wide, { profile: profile() }).prefillChunk).toBe(DEFAULT_PREFILL_CHUNK);
    expect(compileWgsl(wide, { profile: profile(2 ** 27) }).prefillChunk).toBe(DEFAULT_PREFILL_CHUNK);
    for (const limit of [2 ** 24, 5_000_000, 1_000_000]) {
      const program = compileWgsl(wide, { profile: profile() });
      const chunk = compileWgsl(wide, { profile: profile(limit) }).prefillChunk;
      expect(chunk).toBeLessThan(DEFAULT_PREFILL_CHUNK);
      expect(largest(program, chunk)).toBeLessThanOrEqual(limit);
      expect(largest(program, chunk + 1)).toBeGreaterThan(limit);
    }
    // Not even one token's logits fit: one token per step, which the step itself refuses.
    expect(compileWgsl(wide, { profile: profile(vocab * 4 - 16) }).prefillChunk).toBe(1);
  });

  it("a 1200-token prompt on a 32k-vocabulary model runs on llvmpipe and equals the CPU interpreter", async () => {
    const tokens = prompt(1200, vocab);
    const ex = await createWebGpuExecutor(wide, weights, await gpu());
    try {
      const chunk = ex.program.prefillChunk;
      expect(chunk * vocab * 4).toBeLessThanOrEqual((await gpu()).limits.maxStorageBufferBindingSize);
      const got = await ex.step({ tokens, read: "last" });
      expect(ex.lastStep).toMatchObject({ tokens: 1200, submits: Math.ceil(1200 / chunk), readbackBytes: vocab * 4 });
      expect(ex.past).toBe(1200);
      const cpu = new CpuInterpreter(wide, weights);
      expectClose(got, cpu.step({ tokens, read: "last" }), 1e-3, "the logits after 1200 tokens");
    } finally {
      ex.dispose();
    }
  });
});

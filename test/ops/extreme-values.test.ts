// Kernels at the magnitudes where a careless implementation breaks: attention scores of ±1000 and
// more over long rows (exp overflows unless the row maximum is subtracted), and whole models whose
// residual stream is 1e4 or 1e-4 times the usual (RMSNorm must neither overflow nor lose the
// signal to epsilon). WebGPU (llvmpipe) and the CUDA emulation, each against the CPU interpreter.

import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { emulated } from "../cuda/helpers.js";
import { expectClose, gpu, GraphBuilder, testWeights } from "../webgpu/helpers.js";

afterAll(releaseSharedGpu);

/** `base` with the tensors whose name matches `which` multiplied by `factor`. */
function scaled(base: WeightSource, which: RegExp, factor: number): WeightSource {
  return (name, shape) => {
    const v = base(name, shape);
    return which.test(name) ? v.map((x) => x * factor) : v;
  };
}

/** Runs `graph` on WebGPU and on the CUDA emulation for `steps`, comparing every step with the CPU. */
async function onEveryBackend(graph: Graph, weights: WeightSource, steps: Int32Array[], tol: number, what: string): Promise<void> {
  const cpu = new CpuInterpreter(graph, weights);
  const want = steps.map((tokens) => cpu.step({ tokens }));
  const web = await createWebGpuExecutor(graph, weights, await gpu());
  try {
    for (const [i, tokens] of steps.entries()) expectClose(await web.step({ tokens }), want[i]!, tol, `${what}, webgpu step ${i}`);
  } finally {
    web.dispose();
  }
  const cuda = new CudaExecutor(graph, weights, emulated({ prefillChunk: Math.min(4, steps[0]!.length) }));
  try {
    for (const [i, tokens] of steps.entries()) expectClose(await cuda.step({ tokens }), want[i]!, tol, `${what}, cuda step ${i}`);
  } finally {
    cuda.dispose();
  }
}

describe("extreme magnitudes", () => {
  for (const { s, causal } of [{ s: 300, causal: false }, { s: 37, causal: true }]) {
    it(`attention with scores beyond ±1000 over ${s} keys (${causal ? "causal" : "all keys"})`, async () => {
      const b = new GraphBuilder();
      const t = causal ? s : 3;
      const q = b.weight("q", [t, 4, 8]);
      const k = b.weight("k", [s, 2, 8]);
      const v = b.weight("v", [s, 2, 8]);
      const graph = b.graph([b.op("attention", [q, k, v], { causal, window: 0 })]);
      const weights = scaled(testWeights(5), /^[qk]$/, 40);
      // The scores really are that large: |q·k| / √8 for some pair exceeds 1000.
      const qs = weights("q", [t, 4, 8]);
      const ks = weights("k", [s, 2, 8]);
      let biggest = 0;
      for (let i = 0; i < t * 4; i++) for (let j = 0; j < s * 2; j++) {
        let dot = 0;
        for (let d = 0; d < 8; d++) dot += qs[i * 8 + d]! * ks[j * 8 + d]!;
        biggest = Math.max(biggest, Math.abs(dot) / Math.sqrt(8));
      }
      expect(biggest).toBeGreaterThan(1000);
      // A score S carries f32 rounding of about S · 2⁻²⁴ into its exponent: ~2e-4 at S ≈ 3000.
      await onEveryBackend(graph, weights, [Int32Array.of(0)], 2e-3, "attention");
    });
  }

  const tiny = (): Graph => {
    const cfg = { vocab_size: "48", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "64", max_seq_len: "16" };
    const res = compileFile(join("models", "llama.llm"), { overrides: new Map(Object.entries(cfg)) });
    if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
    return res.compiled.graph;
  };
  const steps = [Int32Array.of(1, 7, 3, 9, 2), Int32Array.of(11), Int32Array.of(40)];

  for (const factor of [1e4, 1e-4]) {
    it(`a LLaMA whose embeddings are ${factor} times the usual (RMSNorm at the edges of f32)`, async () => {
      const weights = scaled((name, shape) => randomTensor(name, shape, { seed: 3 }), /^embed$/, factor);
      await onEveryBackend(tiny(), weights, steps, 1e-3, `embeddings × ${factor}`);
    });
  }
});

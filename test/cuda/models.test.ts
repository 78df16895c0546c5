// Whole tiny models on the emulated CUDA backend against the CPU interpreter: a prompt (prefill
// chunks, the last one padded) then decode steps replayed as a CUDA graph, for every architecture;
// weights stored as f16 / q8_0 / q4_0 / bf16; the tuning profiles of other GPUs; and the executor's
// errors.

import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { ContextOverflowError, type WeightSource } from "../../src/runtime/executor.js";
import { CudaExecutor, type CudaExecutorOptions } from "../../src/runtime/cuda/executor.js";
import { decodeTensor, encodeTensor } from "../../src/compiler/target/storage.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { emulated, expectClose, withComputeCapability } from "./helpers.js";
import type { StorageDType } from "../../src/compiler/target/storage.js";

function tiny(arch: string, extra: Record<string, string> = {}): Graph {
  const cfg: Record<string, string> = { vocab_size: "40", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "48", max_seq_len: "24", ...extra };
  if (arch === "gemma") cfg["head_dim"] = "8";
  if (arch === "mistral") cfg["sliding_window"] = "5";
  const res = compileFile(join("models", `${arch}.llm`), { overrides: new Map(Object.entries(cfg)) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || !res.compiled) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled.graph;
}

const weightsOf = (seed: number): WeightSource => (name, shape) => randomTensor(name, shape, { seed });

interface Run {
  prompt: number[];
  decode: number[];
  /** Tolerance of the prompt's logits and of the decode steps' (relative to max(1, |logit|)). */
  tol?: number;
  decodeTol?: number;
}

/** Runs the model on both, comparing the logits of the prompt and of every decode step. */
async function compareModel(graph: Graph, opts: CudaExecutorOptions, run: Run, reference?: WeightSource): Promise<CudaExecutor> {
  const weights = weightsOf(7);
  const ex = new CudaExecutor(graph, weights, emulated(opts));
  await ex.init();
  const formats = new Map(ex.module!.weights.map((w) => [w.name, w.dtype]));
  const cpu = new CpuInterpreter(graph, reference ?? ((name, shape) => {
    const f = formats.get(name) ?? "f32";
    const v = weights(name, shape);
    return f === "f32" ? v : decodeTensor(f, encodeTensor(f, v));
  }));
  try {
    if (run.prompt.length) {
      const tokens = Int32Array.from(run.prompt);
      expectClose(await ex.step({ tokens }), cpu.step({ tokens }), run.tol ?? 1e-4, `prompt of ${run.prompt.length}`);
    }
    for (const t of run.decode) {
      const tokens = Int32Array.of(t);
      expectClose(await ex.step({ tokens }), cpu.step({ tokens }), run.decodeTol ?? run.tol ?? 1e-4, `decode at P = ${ex.past}`);
    }
    expect(ex.past).toBe(cpu.past);
    return ex;
  } catch (e) {
    ex.dispose();
    throw e;
  }
}

const PROMPT = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2];
const DECODE = [38, 4, 6, 26];

describe("CUDA backend on whole models (emulated)", () => {
  for (const arch of ["llama", "qwen2", "gemma", "mistral"]) {
    it(`${arch}: prompt in chunks (last one padded) then decode steps as a CUDA graph, logits within 1e-4 of the CPU interpreter`, async () => {
      const ex = await compareModel(tiny(arch), { prefillChunk: 5 }, { prompt: PROMPT, decode: DECODE });
      expect(ex.lastStep).toEqual({ tokens: 1, launches: ex.module!.steps.find((s) => s.T === 1)!.launches.length, graphs: 1 });
      ex.dispose();
    });
  }

  for (const format of ["f16", "q8_0", "q4_0", "bf16"] as StorageDType[]) {
    it(`llama with ${format} weights: decode matvecs dequantise exactly; prefill tiles run on tensor cores`, async () => {
      // Token by token, every product is a matvec: exact but for f32 summation order.
      const exact = await compareModel(tiny("llama"), { prefillChunk: 4, weightDType: format }, { prompt: [], decode: [...PROMPT.slice(0, 3), ...DECODE] });
      // Matrices take the format unless their rows are not whole 32-element blocks (ffn_dim 48: w_down).
      for (const w of exact.module!.weights.filter((x) => x.shape.length === 2)) {
        expect(w.dtype === format || (format.startsWith("q") && w.shape[1]! % 32 !== 0 && /multiple of 32/.test(w.demoted!))).toBe(true);
      }
      exact.dispose();
      // A prompt: activations are rounded to f16 (bf16) for the tensor cores.
      const tc = await compareModel(tiny("llama"), { prefillChunk: 8, weightDType: format }, { prompt: PROMPT, decode: DECODE.slice(0, 2), tol: format === "bf16" ? 0.1 : 0.03 });
      tc.dispose();
    });
  }

  for (const cc of ["7.5", "9.0"]) {
    it(`the tuning profile of compute capability ${cc} gives the same logits`, () =>
      withComputeCapability(cc, async () => {
        const ex = await compareModel(tiny("qwen2"), { prefillChunk: 6 }, { prompt: PROMPT, decode: DECODE.slice(0, 2) });
        expect(ex.info!.profile).toBe(cc === "7.5" ? "sm75" : "sm90");
        ex.dispose();
      }));
  }

  it("without CUDA graphs, and with every prompt token a decode step (chunk 1), the logits are the same", async () => {
    const a = await compareModel(tiny("llama"), { prefillChunk: 1, cudaGraphs: false }, { prompt: PROMPT.slice(0, 4), decode: DECODE.slice(0, 2) });
    expect(a.lastStep!.graphs).toBe(0);
    a.dispose();
  });

  it("refuses to run past max_seq_len, and token ids outside the vocabulary, with clear errors", async () => {
    const ex = new CudaExecutor(tiny("llama", { max_seq_len: "8" }), weightsOf(1), emulated({ prefillChunk: 4 }));
    try {
      await expect(ex.step({ tokens: Int32Array.of(1, 40) })).rejects.toThrow(/token id 40 \(at index 1\) is out of range for a vocabulary of 40/);
      await ex.step({ tokens: Int32Array.of(1, 2, 3, 4, 5, 6) });
      await expect(ex.step({ tokens: Int32Array.of(1, 2, 3) })).rejects.toThrow(ContextOverflowError);
      await expect(ex.step({ tokens: Int32Array.of(1, 2, 3) })).rejects.toThrow(/6 cached \+ 3 new tokens exceed max_seq_len 8/);
      ex.reset();
      expect(ex.past).toBe(0);
      await ex.step({ tokens: Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8) });
    } finally {
      ex.dispose();
    }
  });
});

// The target layer is the one place that decides a program: what `llmc compile --target wgsl|cuda`
// writes is exactly what the WebGPU and CUDA executors run (plans, weight dtypes and kernel
// sources, file for file), for every bundled architecture; and a quantized GGUF stays quantized
// on the device (device weight bytes ≈ file tensor bytes) with logits equal to the CPU reference.

import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCompile } from "../../src/cli/commands/compile.js";
import { runInitWeights } from "../../src/cli/commands/init-weights.js";
import { bufferIO } from "../../src/cli/io.js";
import { compileFile } from "../../src/compiler/compile.js";
import { cudaProgramFiles } from "../../src/compiler/target/cuda.js";
import { deviceLayout, deviceStorageProblem, deviceDType, tensorByteSize } from "../../src/compiler/target/storage.js";
import { wgslProgramFiles } from "../../src/compiler/target/wgsl.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { compileArchitecture } from "../../src/runtime/generate/architecture.js";
import { readModelSource } from "../../src/runtime/generate/source.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { loadModelWeights, weightSource } from "../../src/runtime/weights/loader.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { emulated, withComputeCapability } from "../cuda/helpers.js";
import { expectClose, gpu } from "../webgpu/helpers.js";

afterAll(releaseSharedGpu);

const ARCHS = ["llama", "qwen2", "gemma", "mistral"] as const;
const PROMPT = 5;

function config(arch: string): Record<string, string> {
  const cfg: Record<string, string> = { vocab_size: "64", dim: "64", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "96", max_seq_len: "32" };
  if (arch === "gemma") cfg["head_dim"] = "16";
  if (arch === "mistral") cfg["sliding_window"] = "6";
  return cfg;
}

const setFlags = (cfg: Record<string, string>) => Object.entries(cfg).flatMap(([k, v]) => ["--set", `${k}=${v}`]);

function graphOf(arch: string) {
  const res = compileFile(join("models", `${arch}.llm`), { overrides: new Map(Object.entries(config(arch))) });
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  return res.compiled.graph;
}

/** The files the CLI wrote into `dir` (those the target layer writes; PTX and the report aside). */
function written(dir: string, names: Iterable<string>): Map<string, string> {
  return new Map([...names].map((n) => [n, readFileSync(join(dir, n), "utf8")]));
}

const weights = (seed: number): WeightSource => (name, shape) => randomTensor(name, shape, { seed });

describe("compile --target writes the program the executors run", () => {
  for (const arch of ARCHS) {
    it(`wgsl, ${arch}: the CLI's kernels and plan.json equal the WebGPU executor's (llvmpipe)`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "llmc-target-wgsl-"));
      const io = bufferIO();
      const code = await runCompile([join("models", `${arch}.llm`), ...setFlags(config(arch)), "--target", "wgsl", "--tuning", "llvmpipe", "--prompt-tokens", String(PROMPT), "-o", dir], io);
      expect(code, io.stderr()).toBe(0);
      const ex = await createWebGpuExecutor(graphOf(arch), weights(1), await gpu());
      try {
        await ex.step({ tokens: Int32Array.from({ length: PROMPT }, (_, i) => i + 1) });
        await ex.step({ tokens: Int32Array.of(7), read: "argmax" });
        const mine = wgslProgramFiles(ex.program, [["decode", 1], ["prefill", PROMPT]]);
        const cli = written(dir, readdirSync(dir).filter((f) => f !== "report.txt"));
        expect([...cli.keys()].sort()).toEqual([...mine.keys()].sort());
        for (const [name, text] of mine) expect(cli.get(name), `${arch}: ${name}`).toBe(text);
        expect(mine.size).toBeGreaterThan(4);
      } finally {
        ex.dispose();
      }
    });

    it(`cuda, ${arch}: the CLI's kernels.cu and plan.json equal the CUDA executor's (sm_80, emulated)`, () =>
      withComputeCapability("8.0", async () => {
        const dir = mkdtempSync(join(tmpdir(), "llmc-target-cuda-"));
        const io = bufferIO();
        const code = await runCompile([join("models", `${arch}.llm`), ...setFlags(config(arch)), "--target", "cuda", "--cuda-arch", "sm_80", "--prefill-chunk", "8", "--no-ptx", "-o", dir], io);
        expect(code, io.stderr()).toBe(0);
        const ex = new CudaExecutor(graphOf(arch), weights(2), emulated({ prefillChunk: 8 }));
        try {
          await ex.init();
          const mine = cudaProgramFiles(ex.program!);
          for (const [name, text] of mine) expect(readFileSync(join(dir, name), "utf8"), `${arch}: ${name}`).toBe(text);
        } finally {
          ex.dispose();
        }
      }));
  }

  it("a difference in what the runtime decides shows: another weight dtype changes plan.json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-target-wgsl-"));
    const io = bufferIO();
    expect(await runCompile([join("models", "llama.llm"), ...setFlags(config("llama")), "--target", "wgsl", "--weight-dtype", "q8_0", "--prompt-tokens", String(PROMPT), "-o", dir], io), io.stderr()).toBe(0);
    const ex = await createWebGpuExecutor(graphOf("llama"), weights(1), await gpu());
    try {
      await ex.step({ tokens: Int32Array.of(1) });
      const mine = wgslProgramFiles(ex.program, [["decode", 1], ["prefill", PROMPT]]);
      expect(readFileSync(join(dir, "plan.json"), "utf8")).not.toBe(mine.get("plan.json"));
      expect(readFileSync(join(dir, "plan.json"), "utf8")).toMatch(/"dtype":"q8_0"/);
    } finally {
      ex.dispose();
    }
  });
});

describe("weight storage policy", () => {
  it("keeps the file's dtype unless asked otherwise, f32 where a dtype cannot hold the shape", () => {
    expect(deviceDType([64, 64], "q4_0")).toEqual({ dtype: "q4_0" });
    expect(deviceDType([64, 64], "q4_0", "f16")).toEqual({ dtype: "f16" });
    expect(deviceDType([64, 64], undefined)).toEqual({ dtype: "f32" });
    expect(deviceDType([64], "f16").dtype).toBe("f32");
    expect(deviceDType([64, 48], "q8_0")).toEqual({ dtype: "f32", demoted: deviceStorageProblem("q8_0", [64, 48]) });
    // q8_0/q4_0 on the device: the file's bytes, quants and scales in two regions.
    for (const d of ["q8_0", "q4_0"] as const) expect(deviceLayout(d, [64, 64]).bytes).toBe(tensorByteSize(d, 64 * 64));
  });
});

describe("a q4_0 GGUF stays q4_0 on the device", () => {
  const cfg = ["dim=64", "n_layers=2", "n_heads=4", "n_kv_heads=2", "ffn_dim=128", "vocab_size=320", "max_seq_len=32"].flatMap((s) => ["--set", s]);

  async function q4File(): Promise<string> {
    const file = join(mkdtempSync(join(tmpdir(), "llmc-q4-")), "llama-q4_0.gguf");
    const io = bufferIO();
    expect(await runInitWeights(["models/llama.llm", ...cfg, "--dtype", "q4_0", "-o", file], io), io.stderr()).toBe(0);
    return file;
  }

  async function load(file: string) {
    const src = await readModelSource(file);
    const compiled = compileArchitecture(src.imported, src.name, file, { overrides: new Map() });
    const w = await loadModelWeights(compiled.model, src.weightsPath);
    return { graph: compiled.graph, w, source: weightSource(w) };
  }

  const steps = [[1, 5, 9, 3, 4], [17], [200]].map((t) => Int32Array.from(t));

  /** Bytes the file stores the program's weights in (f32 where it has no stored form). */
  function fileTensorBytes(source: WeightSource, ws: readonly { name: string; shape: number[] }[]): number {
    return ws.reduce((a, x) => a + (source.raw?.(x.name)?.bytes.length ?? 4 * x.shape.reduce((p, d) => p * d, 1)), 0);
  }

  it("on the CUDA emulation: device weight bytes ≈ file bytes, logits = the CPU reference", async () => {
    const file = await q4File();
    const { graph, w, source } = await load(file);
    const ex = new CudaExecutor(graph, source, emulated({ prefillChunk: 4 }));
    try {
      await ex.init();
      const device = ex.module!.weights.reduce((a, x) => a + x.layout.bytes, 0);
      expect(ex.module!.weights.filter((x) => x.dtype === "q4_0").length).toBeGreaterThanOrEqual(2 * 7 + 1); // every projection, the embedding
      const ratio = device / fileTensorBytes(source, ex.module!.weights);
      expect(ratio).toBeGreaterThanOrEqual(1);
      expect(ratio).toBeLessThan(1.05); // 16-byte alignment of each tensor
      const cpu = new CpuInterpreter(graph, source);
      for (const tokens of steps) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-4, "q4_0 on cuda");
    } finally {
      ex.dispose();
      await w.close();
    }
  });

  it("on WebGPU: device weight bytes ≈ file bytes, logits = the CPU reference", async () => {
    const file = await q4File();
    const { graph, w, source } = await load(file);
    const ex = await createWebGpuExecutor(graph, source, await gpu());
    try {
      expect([...ex.weightFormats.values()].filter((d) => d === "q4_0").length).toBeGreaterThanOrEqual(2 * 7 + 1);
      const ratio = ex.weightBytes / fileTensorBytes(source, ex.program.weights);
      expect(ratio).toBeGreaterThanOrEqual(1);
      expect(ratio).toBeLessThan(1.05);
      const cpu = new CpuInterpreter(graph, source);
      for (const tokens of steps) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-4, "q4_0 on webgpu");
    } finally {
      ex.dispose();
      await w.close();
    }
  });
});

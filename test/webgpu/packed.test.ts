// Weights that stay packed on the device (f16, bf16, q8_0, q4_0; target/storage.ts, emit/wgsl/packed.ts): the linear
// kernels' dequantizing loads against the CPU interpreter on the dequantized values, for random
// shapes, and whole models written by `llmc init-weights --dtype …` loaded as the runtime loads them
// (gemma: the tied embedding is packed once, read by the gather and by the output linear).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { runInitWeights } from "../../src/cli/commands/init-weights.js";
import { bufferIO } from "../../src/cli/io.js";
import { CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { parseProgram } from "../../src/compiler/ops/expr.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { compileArchitecture } from "../../src/runtime/generate/architecture.js";
import { readModelSource } from "../../src/runtime/generate/source.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor, type WebGpuExecutorOptions } from "../../src/runtime/webgpu/executor.js";
import { decodeTensor, encodeTensor, packForDevice, type StorageDType } from "../../src/compiler/target/storage.js";
import { loadModelWeights, weightSource } from "../../src/runtime/weights/loader.js";
import { CI, expectClose, gpu, GraphBuilder, testWeights } from "./helpers.js";

const RUNS = CI ? 16 : 8;
const ONE_STEP = [Int32Array.of(0)];
const seedArb = fc.integer({ min: 0, max: 1 << 30 });
type Packed = "f16" | "bf16" | "q8_0" | "q4_0";

beforeAll(async () => {
  await gpu();
});
afterAll(releaseSharedGpu);

/** Weights named w* stored in `format` (values the CPU sees: the dequantized ones). */
function packedWeights(seed: number, format: Packed): { f32: WeightSource; raw: NonNullable<WeightSource["raw"]> } {
  const base = testWeights(seed);
  const raw = new Map<string, Uint8Array>();
  const f32: WeightSource = (name, shape) => {
    const v = base(name, shape);
    if (!name.startsWith("w")) return v;
    const bytes = encodeTensor(format, v);
    raw.set(name, bytes);
    return decodeTensor(format, bytes);
  };
  return { f32, raw: (name) => (raw.has(name) ? { dtype: format as StorageDType, bytes: raw.get(name)! } : null) };
}

async function comparePacked(graph: ReturnType<GraphBuilder["graph"]>, seed: number, format: Packed, opts: WebGpuExecutorOptions = {}) {
  const { f32, raw } = packedWeights(seed, format);
  const cpu = new CpuInterpreter(graph, f32); // fills `raw` as it reads the weights
  const want = cpu.step({ tokens: ONE_STEP[0]! });
  const ex = await createWebGpuExecutor(graph, Object.assign(f32, { raw }), await gpu(), opts);
  try {
    const packed = [...ex.weightFormats.values()];
    expect(packed.length).toBeGreaterThan(0);
    expect(packed.every((f) => f === format)).toBe(true);
    expectClose(await ex.step({ tokens: ONE_STEP[0]! }), want, 1e-4, `${format} linear`);
  } finally {
    ex.dispose();
  }
}

describe("packed weights in the linear kernels", () => {
  it("packForDevice splits q8_0/q4_0 blocks into quants then scales, and keeps f16 as it is", () => {
    const v = Float32Array.from({ length: 64 }, (_, i) => (i - 30) / 7);
    for (const f of ["q8_0", "q4_0"] as const) {
      const blocks = encodeTensor(f, v);
      const out = packForDevice(f, blocks, [2, 32]);
      const bb = f === "q8_0" ? 34 : 18;
      expect(out.length).toBe(Math.ceil((2 * (bb - 2) + 4) / 16) * 16);
      expect([...out.subarray(0, bb - 2)]).toEqual([...blocks.subarray(2, bb)]);
      expect([...out.subarray(2 * (bb - 2), 2 * (bb - 2) + 2)]).toEqual([...blocks.subarray(0, 2)]);
      expect([...out.subarray(2 * (bb - 2) + 2, 2 * (bb - 2) + 4)]).toEqual([...blocks.subarray(bb, bb + 2)]);
    }
    const h = encodeTensor("f16", v.subarray(0, 3));
    expect([...packForDevice("f16", h, [1, 3]).subarray(0, 6)]).toEqual([...h]);
  });

  it("linear (several weights, bias) equals dequantize-then-matmul: decode and prefill tiles", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Packed>("f16", "bf16", "q8_0", "q4_0"),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 1, max: 2 }),
        fc.boolean(),
        fc.boolean(),
        seedArb,
        async (format, m, kBlocks, n, nw, bias, gpuTuning, seed) => {
          const k = 32 * kBlocks;
          const b = new GraphBuilder();
          const x = b.weight("x", [m, k]);
          const ws = Array.from({ length: nw }, (_, i) => b.weight(`w${i}`, [n, k]));
          const extras = bias ? [b.weight("bias", [n])] : [];
          const acc = ws.map((_, i) => `in${i}`);
          const epilogue = nw === 2 ? `${acc.join("; ")}; silu(0); mul(2, 1)${bias ? "; in2; add(3, 4) -> 5" : " -> 3"}` : bias ? "in0; in1; add(0, 1) -> 2" : "in0 -> 0";
          const out = b.op("linear", [x, ...ws, ...extras], { weights: nw, epilogue: parseProgram(epilogue) });
          await comparePacked(b.graph([out]), seed, format, { tuning: gpuTuning ? GPU_TUNING : CPU_TUNING });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("f16 and bf16 with K not a multiple of 4 (scalar loads)", async () => {
    for (const format of ["f16", "bf16"] as const) {
      for (const k of [3, 5, 13]) {
        const b = new GraphBuilder();
        const out = b.op("linear", [b.weight("x", [3, k]), b.weight("w0", [7, k])], { weights: 1, epilogue: parseProgram("in0 -> 0") });
        await comparePacked(b.graph([out]), k, format);
      }
    }
  });

  it("an RMSNorm prologue keeps its gain in the kernel (no folding into packed weights)", async () => {
    for (const format of ["q8_0", "q4_0", "f16"] as const) {
      const k = 64;
      const b = new GraphBuilder();
      const x = b.weight("x", [2, k]);
      const g = b.weight("g", [k]);
      const out = b.op("fused_linear", [x, g, b.weight("w0", [8, k])], {
        prologue: parseProgram("in0; mul(0, 0); mean(1); 0.00001:f32; add(2, 3); rsqrt(4); mul(0, 5); in1; mul(6, 7) -> 8"),
        x_inputs: 2,
        weights: 1,
        epilogue: parseProgram("in0 -> 0"),
        extras: 0,
        head_dim: 0,
        rotation: parseProgram("1:f32; 0:f32 -> 0, 1"),
      });
      await comparePacked(b.graph([out]), 5, format);
    }
  });
});

describe("models from llmc init-weights keep their weights packed on WebGPU", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmc-packed-"));
  const cfg = ["dim=64", "n_layers=2", "n_heads=4", "n_kv_heads=2", "ffn_dim=96", "vocab_size=320", "max_seq_len=64"].flatMap((s) => ["--set", s]);

  const cases = [["llama", "q8_0"], ["llama", "q4_0"], ["llama", "f16"], ["gemma", "q8_0"]] as const;
  for (const [arch, dtype] of cases) {
    it(`${arch} ${dtype}: logits equal the CPU interpreter's on the dequantized weights, with fewer device bytes`, async () => {
      const file = join(dir, `${arch}-${dtype}.gguf`);
      const io = bufferIO();
      expect(await runInitWeights([`models/${arch}.llm`, ...cfg, "--dtype", dtype, "-o", file], io), io.stderr()).toBe(0);
      const src = await readModelSource(file);
      const compiled = compileArchitecture(src.imported, src.name, file, { overrides: new Map() });
      const weights = await loadModelWeights(compiled.model, src.weightsPath);
      const source = weightSource(weights);
      const ex = await createWebGpuExecutor(compiled.graph, source, await gpu());
      const f32 = await createWebGpuExecutor(compiled.graph, source, await gpu(), { weightDType: "f32" });
      const cpu = new CpuInterpreter(compiled.graph, source);
      try {
        expect(ex.weightFormats.size).toBeGreaterThan(0);
        expect([...ex.weightFormats.values()].every((f) => f === dtype)).toBe(true);
        const ratio = f32.weightBytes / ex.weightBytes;
        expect(ratio).toBeGreaterThan(dtype === "q4_0" ? 4 : dtype === "q8_0" ? 3 : 1.8); // the 1-D norm gains stay f32
        const steps = [[1, 5, 9, 3], ...Array.from({ length: 6 }, (_, i) => [(i * 37 + 2) % 320])].map((t) => Int32Array.from(t));
        for (const [i, tokens] of steps.entries()) {
          const want = cpu.step({ tokens });
          expectClose(await ex.step({ tokens }), want, 1e-4, `${dtype} step ${i}`);
        }
      } finally {
        ex.dispose();
        f32.dispose();
        await weights.close();
      }
    });
  }
});

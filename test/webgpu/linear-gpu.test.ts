// The GPU profile's linear kernels (a workgroup of lanes per tile, striding along K, partial sums
// meeting in a workgroup-memory tree; emit/wgsl/linear.ts) against the CPU reference on llvmpipe,
// which runs them as it runs any WGSL: every weight dtype, prologues, rotations, merged segments,
// decode and prefill tiles; whole models with the GPU profile; and the WGSL written for devices
// that grant `subgroups` and `shader-f16` (llvmpipe grants neither, so those are checked as text).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { compileFile } from "../../src/compiler/compile.js";
import { CPU_TUNING, emitPlan, GPU_TUNING, type WgslTuning } from "../../src/compiler/emit/wgsl/index.js";
import { parseProgram } from "../../src/compiler/ops/expr.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { decodeTensor, encodeTensor, type StorageDType } from "../../src/compiler/target/storage.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { releaseSharedGpu, requestGpu } from "../../src/runtime/webgpu/device.js";
import { openDevice } from "../../src/runtime/webgpu/context.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { deviceFeatures } from "../../src/runtime/webgpu/tuning.js";
import { wgslProfile } from "../../src/compiler/target/wgsl.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { CI, expectClose, fusedLinears, gpu, GraphBuilder, linearSegment, NO_PROLOGUE, NORM_PROLOGUES, testWeights } from "./helpers.js";

const RUNS = CI ? 24 : 10;
const seedArb = fc.integer({ min: 0, max: 1 << 30 });
const DTYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"] as const;
type DTypeName = (typeof DTYPES)[number];

beforeAll(async () => {
  await gpu();
});
afterAll(releaseSharedGpu);

/** The GPU profile with other lane counts and tile sizes (the shapes a tuning may choose). */
const gpuTuning = (lanes: number, rows: number, tileM: number, merge = true): WgslTuning => ({ ...GPU_TUNING, linear: { ...GPU_TUNING.linear, lanes, workgroupSize: lanes, rowsPerInvocation: rows, tileM, merge } });

/** Weights named w* stored as `dtype` on the device; the CPU sees their dequantized values. */
function storedAs(seed: number, dtype: DTypeName): WeightSource {
  const base = testWeights(seed);
  const raw = new Map<string, Uint8Array>();
  const f32: WeightSource = (name, shape) => {
    const v = base(name, shape);
    if (dtype === "f32" || !name.startsWith("w")) return v;
    const bytes = encodeTensor(dtype, v);
    raw.set(name, bytes);
    return decodeTensor(dtype, bytes);
  };
  return Object.assign(f32, { raw: (name: string) => (raw.has(name) ? { dtype: dtype as StorageDType, bytes: raw.get(name)! } : null) });
}

async function compareOnce(graph: ReturnType<GraphBuilder["graph"]>, weights: WeightSource, tuning: WgslTuning, what: string): Promise<void> {
  const tokens = Int32Array.of(0);
  const want = new CpuInterpreter(graph, weights).step({ tokens }); // fills the raw bytes as it reads
  const ex = await createWebGpuExecutor(graph, weights, await gpu(), { tuning });
  try {
    expectClose(await ex.step({ tokens }), want, 1e-4, what);
  } finally {
    ex.dispose();
  }
}

/** RMSNorm, Gemma's (1 + g) norm, an absmax scaling (amax: the tree's max), none. */
const PROLOGUES = [...NORM_PROLOGUES, NO_PROLOGUE];

describe("GPU-profile linear kernels equal the CPU reference", () => {
  it("every dtype, prologues, RoPE rotations, merged segments, decode and prefill tiles, several lane counts", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DTYPES),
        fc.integer({ min: 0, max: PROLOGUES.length - 1 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }), // K in 32-element blocks: from fewer steps than lanes to several per lane
        fc.array(linearSegment, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(2, 8, 64),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        seedArb,
        async (dtype, pi, m, blocks, segs, lanes, rows, tileM, seed) => {
          const k = 32 * blocks;
          const b = new GraphBuilder();
          const x = b.weight("x", [m, k]);
          const sources = pi === PROLOGUES.length - 1 ? [x] : [x, b.weight("g", [k])];
          const out = fusedLinears(b, sources, PROLOGUES[pi]!, m, k, segs);
          await compareOnce(b.graph([out]), storedAs(seed, dtype), gpuTuning(lanes, rows, tileM), `${dtype}, ${lanes} lanes × ${rows} rows, tileM ${tileM}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("K not a multiple of 4 (scalar steps) and x read at an offset", async () => {
    for (const k of [3, 13, 70]) {
      const b = new GraphBuilder();
      const x = b.op("slice", [b.weight("x", [3, k + 1])], { axis: 1, start: new Map([["", 1]]), end: new Map([["", k + 1]]) });
      const out = b.op("linear", [x, b.weight("w0", [5, k])], { weights: 1, epilogue: parseProgram("in0 -> 0") });
      await compareOnce(b.graph([out]), storedAs(k, "f32"), GPU_TUNING, `K = ${k}`);
    }
  });

  it("keeps the tree within workgroup memory: fewer rows of x per tile where the partial sums would not fit", () => {
    const b = new GraphBuilder();
    const x = b.weight("x", [8, 64]);
    const out = b.op("linear", [x, b.weight("w0", [16, 64]), b.weight("w1", [16, 64])], { weights: 2, epilogue: parseProgram("in0; in1; silu(0); mul(2, 1) -> 3") });
    const plan = buildStepPlan(b.graph([out]), { T: 1 });
    const [k] = emitPlan(plan, gpuTuning(64, 8, 8));
    const size = Number(/array<f32, (\d+)>/.exec(k!.code)![1]);
    expect(size * 4).toBeLessThanOrEqual(16384);
    expect(size).toBe(64 * 2 * 8 * 4); // lanes × 2 weights × 8 rows × 4 rows of x: 16 KiB (8 rows of x would need 32)
  });
});

describe("whole models with the GPU profile equal the CPU interpreter", () => {
  // K of 128 and 256: every lane of 64 has steps of K (vec4) to add.
  const small = { vocab_size: 48, dim: 128, n_layers: 2, n_heads: 4, ffn_dim: 256, max_seq_len: 32 };
  const cases: [string, Record<string, number>][] = [
    ["models/llama.llm", { ...small, n_kv_heads: 2 }],
    ["models/gemma.llm", { ...small, n_kv_heads: 1, head_dim: 40 }],
  ];
  for (const [path, cfg] of cases) {
    it(`${path}: a prefill of 5 tokens and 8 decode steps`, async () => {
      const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
      const res = compileFile(path, { overrides });
      expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      const graph = res.compiled!.graph;
      const weights: WeightSource = (name, shape) => randomTensor(name, shape, { seed: 11 });
      const ex = await createWebGpuExecutor(graph, weights, await gpu(), { tuning: GPU_TUNING });
      const cpu = new CpuInterpreter(graph, weights);
      try {
        expect(ex.tuning.linear.lanes).toBeGreaterThan(1);
        const steps = [Int32Array.of(1, 5, 9, 3, 7), ...Array.from({ length: 8 }, (_, i) => Int32Array.of((i * 7 + 2) % 48))];
        for (const [i, tokens] of steps.entries()) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-4, `${path} step ${i}`);
      } finally {
        ex.dispose();
      }
    });
  }
});

describe("subgroups and shader-f16 only where the device grants them", () => {
  it("the device asks for the features its adapter offers, and the profile reads what was granted", async () => {
    const asked: GPUDeviceDescriptor[] = [];
    const device = { lost: new Promise(() => undefined), onuncapturederror: null, features: new Set(["subgroups"]), destroy: () => undefined };
    const adapter = {
      features: new Set(["subgroups", "timestamp-query"]),
      limits: {},
      info: { vendor: "nvidia", architecture: "", device: "NVIDIA H200", description: "", subgroupMinSize: 32 },
      requestDevice: (d: GPUDeviceDescriptor) => (asked.push(d), Promise.resolve(device)),
    };
    const ctx = await openDevice({} as GPU, adapter as unknown as GPUAdapter, "hardware", "core");
    expect(asked[0]!.requiredFeatures).toEqual(["subgroups"]);
    const features = deviceFeatures(ctx);
    expect(features).toEqual({ subgroups: true, shaderF16: false, subgroupMinSize: 32 });
    const limits = { maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 };
    // One warp per tile with subgroups of 32; 64 lanes and the tree where subgroups may be smaller or absent.
    expect(wgslProfile(false, limits, { features }).tuning.linear.lanes).toBe(32);
    expect(wgslProfile(false, limits, { features: { ...features, subgroupMinSize: 16 } }).tuning.linear.lanes).toBe(64);
    expect(wgslProfile(false, limits).tuning.linear.lanes).toBe(64);
    expect(wgslProfile(true, limits, { features }).tuning.linear.lanes).toBe(1);
  });

  function kernel(opts: { dtype?: StorageDType; prologue?: string; features?: Parameters<typeof emitPlan>[2]; tuning?: WgslTuning }) {
    const b = new GraphBuilder();
    const x = b.weight("x", [1, 64]);
    const w = b.weight("w", [8, 64]);
    const out = b.op("fused_linear", [x, b.weight("g", [64]), w], {
      prologue: parseProgram(opts.prologue ?? PROLOGUES[0]!),
      x_inputs: 2,
      weights: 1,
      epilogue: parseProgram("in0 -> 0"),
      extras: 0,
      head_dim: 0,
      rotation: parseProgram("1:f32; 0:f32 -> 0, 1"),
    });
    const formats = opts.dtype ? new Map([["w", opts.dtype]]) : undefined;
    const plan = buildStepPlan(b.graph([out]), { T: 1, ...(formats ? { weightFormats: formats } : {}) });
    return emitPlan(plan, opts.tuning ?? gpuTuning(32, 2, 4), opts.features)[0]!.code;
  }
  const granted = { subgroups: true, shaderF16: true, subgroupMinSize: 32 };

  it("Dawn (Tint) accepts the subgroup and f16 variants: a model's every pipeline built on the null backend, which grants both", async () => {
    const g = await requestGpu("null");
    try {
      const features = deviceFeatures(g);
      expect(features.subgroups && features.shaderF16).toBe(true);
      const overrides = new Map(Object.entries({ vocab_size: 48, dim: 64, n_layers: 1, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 16 }).map(([k, v]) => [k, String(v)]));
      const graph = compileFile("models/llama.llm", { overrides }).compiled!.graph;
      // Lanes no more than the adapter's smallest subgroup, so that subgroupAdd completes the sums.
      const tuning = gpuTuning(Math.min(32, features.subgroupMinSize), 2, 4);
      for (const dtype of ["f16", "q4_0"] as const) {
        const ex = await createWebGpuExecutor(graph, storedAs(1, dtype), g, { tuning, weightDType: dtype });
        try {
          await ex.prepareSteps(5); // builds (and validates) every pipeline of decode and a 5-token prefill
          const code = (await ex.stepProgram(1)).kernels.map((k) => k.code).join("\n");
          expect(code).toContain("enable subgroups;");
          expect(code).toContain("subgroupAdd(");
          if (dtype === "f16") expect(code).toContain("array<vec4<f16>>");
        } finally {
          ex.dispose();
        }
      }
    } finally {
      g.destroy();
    }
  });

  it("without features: core WGSL, the lanes meet in a workgroup-memory tree", () => {
    const code = kernel({ dtype: "f16" });
    expect(code).not.toContain("enable");
    expect(code).toContain("var<workgroup> llmc_partial");
    expect(code).toContain("workgroupBarrier();");
    expect(code).toContain("unpack2x16float");
  });

  it("subgroups with a workgroup of one subgroup: subgroupAdd, no workgroup memory, no barrier", () => {
    const code = kernel({ features: { ...granted, shaderF16: false } });
    expect(code.split("\n")[1]).toBe("enable subgroups;");
    expect(code).toContain("red0_0 = subgroupAdd(red0_0);");
    expect(code).toContain("g0_acc0_0_1 = subgroupAdd(g0_acc0_0_1);");
    expect(code).not.toContain("workgroupBarrier");
    expect(code).not.toContain("var<workgroup>");
  });

  it("subgroups that may be smaller than the workgroup, or an amax reduction, keep the tree", () => {
    for (const code of [kernel({ features: { ...granted, subgroupMinSize: 16 } }), kernel({ features: granted, prologue: PROLOGUES[2]! })]) {
      expect(code).not.toContain("subgroupAdd");
      expect(code).toContain("workgroupBarrier();");
    }
  });

  it("shader-f16: f16 weights load as vec4<f16>, other dtypes as before", () => {
    const f16 = kernel({ dtype: "f16", features: { ...granted, subgroups: false } });
    expect(f16).toContain("enable f16;");
    expect(f16).toMatch(/var<storage, read> b\d+: array<vec4<f16>>;/);
    expect(f16).not.toContain("unpack2x16float");
    const q8 = kernel({ dtype: "q8_0", features: { ...granted, subgroups: false } });
    expect(q8).not.toContain("enable f16;");
  });

  it("the llvmpipe profile's tiles stay one invocation each: no subgroup operations, no workgroup memory", () => {
    const code = kernel({ features: granted, tuning: CPU_TUNING });
    expect(code).not.toContain("enable");
    expect(code).not.toContain("subgroupAdd");
    expect(code).not.toContain("var<workgroup>");
  });
});

// The CUDA runtime's edges: no driver, the emulation itself (barriers, shuffles, wmma, deadlocks,
// out-of-bounds writes), PTX selection, `llmc compile --target cuda`, and that no name from a
// model reaches generated code.

import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferIO } from "../../src/cli/io.js";
import { runCompileCuda } from "../../src/cli/commands/compile-cuda.js";
import { compileFile } from "../../src/compiler/compile.js";
import { compileCuda, parseArch, type CudaKernel } from "../../src/compiler/target/cuda.js";
import { checkGenerated } from "../../src/compiler/emit/cuda/kernel.js";
import { parseProgram } from "../../src/compiler/ops/expr.js";
import { CudaDriver, CudaUnavailableError } from "../../src/runtime/cuda/driver.js";
import { buildEmulatedModule, buildFakeLibcuda, emulatedImage } from "../../tools/cuda-emulation/build.js";
import { cudaBackend } from "../../src/runtime/cuda/backend.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { fitPtxVersion, libraryHas, maxPtxVersion, pickArch, readKernelLibrary } from "../../src/runtime/cuda/ptx.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { emulated, GraphBuilder, NVCC, nvccCheck } from "./helpers.js";

const tinyLlama = () => compileFile(join("models", "examples", "tiny-llama.llm")).compiled!;

describe("no CUDA driver", () => {
  it("creating the backend fails with a message naming libcuda.so.1", async () => {
    const before = process.env["LLMC_LIBCUDA"];
    delete process.env["LLMC_LIBCUDA"];
    try {
      const ex = new CudaExecutor(tinyLlama().graph, (n, s) => randomTensor(n, s, { seed: 1 }));
      await expect(ex.init()).rejects.toThrow(CudaUnavailableError);
      await expect(new CudaExecutor(tinyLlama().graph, () => new Float32Array()).init()).rejects.toThrow(/libcuda\.so\.1.*Install the NVIDIA driver, or point LLMC_LIBCUDA/);
      expect(() => new CudaDriver("/nonexistent/libcuda.so.1")).toThrow(/libcuda\.so\.1, which was not found at \/nonexistent\/libcuda\.so\.1/);
      expect(() => cudaBackend()).toThrow(CudaUnavailableError);
      expect(cudaBackend({ libcuda: buildFakeLibcuda() }).description).toMatch(/^cuda \(llmc emulated GPU.*compute capability \d\.\d\)$/);
    } finally {
      if (before !== undefined) process.env["LLMC_LIBCUDA"] = before;
    }
  });
});

// ------------------------------------------------------------------------------------------ emulation

const EMU_SOURCE = `#include <cuda_fp16.h>
#include <mma.h>
extern "C" __global__ void t_reverse(const float* __restrict__ in, float* __restrict__ out) {
  __shared__ float s[64];
  s[threadIdx.x] = in[blockIdx.x * 64 + threadIdx.x];
  __syncthreads();
  out[blockIdx.x * 64 + threadIdx.x] = s[63 - threadIdx.x];
}
extern "C" __global__ void t_shuffle(const float* __restrict__ in, float* __restrict__ out) {
  const float v = in[threadIdx.x];
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, v, 5);
  out[64 + threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 3);
  out[128 + threadIdx.x] = __shfl_sync(0xffffffffu, v, 7);
}
extern "C" __global__ void t_deadlock(float* __restrict__ out) {
  if (threadIdx.x < 16) __syncthreads();
  else __syncwarp();
  out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void t_overflow(float* __restrict__ out) {
  out[threadIdx.x + 1] = 1.0f;
}
extern "C" __global__ void t_wmma(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c) {
  __shared__ __half as[256];
  __shared__ __half bs[256];
  for (int i = threadIdx.x; i < 256; i += 32) { as[i] = __float2half(a[i]); bs[i] = __float2half(b[i]); }
  __syncthreads();
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major> fa;
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __half, nvcuda::wmma::col_major> fb;
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> fc;
  nvcuda::wmma::fill_fragment(fc, 1.0f);
  nvcuda::wmma::load_matrix_sync(fa, as, 16);
  nvcuda::wmma::load_matrix_sync(fb, bs, 16);
  nvcuda::wmma::mma_sync(fc, fa, fb, fc);
  nvcuda::wmma::store_matrix_sync(c, fc, 16, nvcuda::wmma::mem_row_major);
}
`;

const kernel = (name: string, params: string[]): CudaKernel => ({ family: "test", name, code: "", helpers: [], params });
const EMU_KERNELS = [
  kernel("t_reverse", ["const float* __restrict__", "float* __restrict__"]),
  kernel("t_shuffle", ["const float* __restrict__", "float* __restrict__"]),
  kernel("t_deadlock", ["float* __restrict__"]),
  kernel("t_overflow", ["float* __restrict__"]),
  kernel("t_wmma", ["const float* __restrict__", "const float* __restrict__", "float* __restrict__"]),
];

describe("the CUDA emulation (fake libcuda + cuda_emu.h)", () => {
  const d = new CudaDriver(buildFakeLibcuda());
  d.init();
  const ctx = d.createContext(d.device(0));
  const mod = d.loadModule(emulatedImage(buildEmulatedModule(EMU_SOURCE, EMU_KERNELS)));
  const fn = (name: string) => d.getFunction(mod, name);
  const arg = (p: number) => BigUint64Array.of(BigInt(p));
  const upload = (data: Float32Array) => {
    const p = d.alloc(data.byteLength);
    d.htod(p, data);
    return p;
  };

  it("__syncthreads is a barrier and __shared__ memory is per block", () => {
    const input = Float32Array.from({ length: 128 }, (_, i) => i);
    const inp = upload(input);
    const out = d.alloc(512);
    d.launch(fn("t_reverse"), [2, 1, 1], [64, 1, 1], null, [arg(inp), arg(out)], "t_reverse");
    const got = new Float32Array(128);
    d.dtoh(got, out);
    expect(Array.from(got)).toEqual(Array.from({ length: 128 }, (_, i) => 64 * Math.floor(i / 64) + 63 - (i % 64)));
  });

  it("shuffles exchange values within a 32-lane warp (xor, down, index)", () => {
    const inp = upload(Float32Array.from({ length: 64 }, (_, i) => i * 10));
    const out = d.alloc(192 * 4);
    d.launch(fn("t_shuffle"), [1, 1, 1], [64, 1, 1], null, [arg(inp), arg(out)], "t_shuffle");
    const got = new Float32Array(192);
    d.dtoh(got, out);
    for (let t = 0; t < 64; t++) {
      const lane = t % 32;
      const base = t - lane;
      expect(got[t]).toBe((base + (lane ^ 5)) * 10);
      expect(got[64 + t]).toBe((lane + 3 < 32 ? t + 3 : t) * 10);
      expect(got[128 + t]).toBe((base + 7) * 10);
    }
  });

  it("wmma fragments multiply f16 operands with f32 accumulation", () => {
    const a = Float32Array.from({ length: 256 }, (_, i) => ((i * 7) % 13) / 8 - 0.75);
    const b = Float32Array.from({ length: 256 }, (_, i) => ((i * 5) % 11) / 4 - 1.25);
    const c = d.alloc(1024);
    d.launch(fn("t_wmma"), [1, 1, 1], [32, 1, 1], null, [arg(upload(a)), arg(upload(b)), arg(c)], "t_wmma");
    const got = new Float32Array(256);
    d.dtoh(got, c);
    for (let i = 0; i < 16; i++) {
      for (let j = 0; j < 16; j++) {
        let s = 1;
        for (let k = 0; k < 16; k++) s += a[i * 16 + k]! * b[j * 16 + k]!; // B col-major: element (k, j) at j·16 + k
        expect(got[i * 16 + j]).toBeCloseTo(s, 4);
      }
    }
  });

  it("a deadlock (a barrier in divergent code) fails the launch instead of hanging", () => {
    const out = d.alloc(256);
    expect(() => d.launch(fn("t_deadlock"), [1, 1, 1], [32, 1, 1], null, [arg(out)], "t_deadlock")).toThrow(/CUDA_ERROR_LAUNCH_FAILED.*deadlock/);
  });

  it("a kernel writing past its buffer fails with CUDA_ERROR_ILLEGAL_ADDRESS", () => {
    const out = d.alloc(32 * 4);
    expect(() => d.launch(fn("t_overflow"), [1, 1, 1], [32, 1, 1], null, [arg(out)], "t_overflow")).toThrow(/ILLEGAL_ADDRESS.*wrote after an allocation of 128 bytes/);
  });

  it("copies into a capturing stream fail as on the real driver", () => {
    expect(ctx).not.toBeNull();
    const s = d.createStream();
    d.beginCapture(s);
    expect(() => d.htodAsync(d.alloc(16), new Float32Array(4), s)).toThrow(/STREAM_CAPTURE_UNSUPPORTED/);
    d.destroyGraph(d.endCapture(s));
    d.destroyStream(s);
  });
});

// ------------------------------------------------------------------------------------------ PTX

describe("PTX selection", () => {
  it("lowers a newer PTX ISA declaration to what the driver accepts", () => {
    expect(maxPtxVersion(12020)).toEqual([8, 2]);
    expect(maxPtxVersion(11080)).toEqual([7, 8]);
    expect(maxPtxVersion(13000)).toEqual([9, 0]);
    const ptx = "//\n.version 9.0\n.target sm_80\n";
    expect(fitPtxVersion(ptx, 12040)).toEqual({ ptx: "//\n.version 8.4\n.target sm_80\n", from: "9.0", to: "8.4" });
    expect(fitPtxVersion(ptx, 13000)).toEqual({ ptx });
  });

  it("picks the newest architecture the GPU runs", () => {
    expect(pickArch(["sm_80", "sm_90"], { major: 8, minor: 9 })).toBe("sm_80");
    expect(pickArch(["sm_80", "sm_90"], { major: 9, minor: 0 })).toBe("sm_90");
    expect(pickArch(["sm_80", "sm_90"], { major: 7, minor: 5 })).toBe(null);
  });
});

// ------------------------------------------------------------------------------------------ CLI

describe("llmc compile --target cuda", () => {
  it("writes kernels.cu, plan.json, report.txt and PTX per architecture, which the runtime finds by kernel name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-cuda-cli-"));
    const io = bufferIO();
    const compiled = tinyLlama();
    expect(await runCompileCuda(dir, compiled, { archs: ["sm_80", "sm_90"], weightDType: "f16", prefillChunk: 16 }, io)).toBe(0);
    for (const f of ["kernels.cu", "plan.json", "report.txt"]) expect(existsSync(join(dir, f))).toBe(true);
    const plan = JSON.parse(readFileSync(join(dir, "plan.json"), "utf8"));
    expect(plan.format).toBe("llmc-cuda-plan/1");
    expect(plan.archs.map((a: { profile: string }) => a.profile)).toEqual(["sm80", "sm90"]);
    expect(Object.keys(plan.profiles.sm80)).toEqual(["tuning", "decode", "prefill"]);
    expect(plan.profiles.sm80.decode.launches.length).toBeGreaterThan(0);
    expect(plan.weights.find((w: { name: string }) => w.name === "layers.0.wq").format).toBe("f16");
    const report = readFileSync(join(dir, "report.txt"), "utf8");
    expect(report).toMatch(/sm_80 → profile sm80: decode \d+ launches/);
    if (!NVCC) return;
    expect(existsSync(join(dir, "kernels.sm_80.ptx")) && existsSync(join(dir, "kernels.sm_90.ptx"))).toBe(true);
    // A runtime on an sm_86 GPU needs the sm80 profile's kernels: they are in the library, and the
    // executor goes on to load its sm_80 PTX (which the fake driver, running only emulations, refuses).
    const lib = readKernelLibrary(dir)!;
    const names = compileCuda(compiled.graph, { archs: [parseArch("sm_86")], requested: "f16", prefillChunk: 16 }).module.kernels.map((k) => k.name);
    expect(libraryHas(lib, names)).toBe(true);
    const before = process.env["LLMC_FAKE_CUDA_CC"];
    process.env["LLMC_FAKE_CUDA_CC"] = "8.6";
    try {
      const ex = new CudaExecutor(compiled.graph, (n, s) => randomTensor(n, s, { seed: 1 }), { ...emulated({ weightDType: "f16", prefillChunk: 16, kernelDirs: [dir] }), image: undefined });
      await expect(ex.init()).rejects.toThrow(/fake libcuda runs only emulation modules/);
      expect(ex.info!.library).toMatch(/sm_80 PTX/);
    } finally {
      if (before === undefined) delete process.env["LLMC_FAKE_CUDA_CC"];
      else process.env["LLMC_FAKE_CUDA_CC"] = before;
    }
  });

  it("Llama-3-8B (f16 weights) emits a module nvcc compiles, with few launches per decode step", () => {
    const res = compileFile(join("models", "examples", "llama-3-8b.llm"), { overrides: new Map([["max_seq_len", "2048"]]) });
    const m = compileCuda(res.compiled!.graph, { archs: [parseArch("sm_80"), parseArch("sm_90")], requested: "f16" }).module;
    nvccCheck(m.source);
    const decode = m.steps.find((s) => s.profile === "sm90" && s.T === 1)!;
    // Per layer: attention (two launches), merged QKV with norm and RoPE, output projection, gate/up
    // with the second norm, down projection; plus the embedding and the logits.
    expect(decode.launches.length).toBeLessThanOrEqual(32 * 7 + 4);
    expect(m.weights.filter((w) => w.dtype === "f16").length).toBe(32 * 7 + 2);
  });
});

// ------------------------------------------------------------------------------------------ names

describe("generated CUDA", () => {
  it("never contains a name from the model, whatever characters it has", () => {
    const evil = ['w"); system("rm', "*/ #include <evil.h> /*", "a\\u0000\\nmarker3", "naïve∑", "x$y`z'"];
    const markers = ["system(", "evil.h", "marker3", "naïve", "x$y"];
    const b = new GraphBuilder();
    const x = b.weight(evil[0]!, [3, 8]);
    const w = b.weight(evil[1]!, [5, 8]);
    const g = b.weight(evil[2]!, [5]);
    const y = b.op("linear", [x, w, g], { weights: 1, epilogue: parseProgram("in0; in1; add(0, 1) -> 2") });
    const t = b.op("gather", [b.weight(evil[3]!, [7, 5]), b.input("tokens", [3])]);
    const out = b.op("add", [y, t]);
    b.states.set(evil[4]!, { name: evil[4]!, layers: 1, maxSeqLen: 8, heads: 1, headDim: 2 });
    const graph = { ...b.graph([out]), name: evil[4]! };
    const m = compileCuda(graph, { archs: [parseArch("sm_80"), parseArch("sm_75"), parseArch("sm_90")] }).module;
    for (const name of [...evil, ...markers]) expect(m.source).not.toContain(name);
    for (const k of m.kernels) expect(k.name).toMatch(/^llmc_[a-z_]+_[0-9a-f]{12}$/);
    expect(() => checkGenerated(m.source, "module")).not.toThrow();
    expect(() => checkGenerated(`${m.source}\nconst char* s = "x";`, "module")).toThrow(/contains a character/);
    nvccCheck(m.source);
  });
});

// Which backend "auto" picks, and why: CUDA when the driver's device passes the self-test (here the
// fake libcuda, running the self-test kernel's CPU emulation), else a hardware WebGPU adapter, else a
// software one (llvmpipe here), else the CPU; each one passed over says why. The self-test releases
// what it made whether it passes or fails.

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CudaKernel } from "../../src/compiler/emit/cuda/index.js";
import { CudaDriver } from "../../src/runtime/cuda/driver.js";
import { runCudaSelfTest, SELF_TEST_KERNEL, SELF_TEST_PTX } from "../../src/runtime/cuda/self-test.js";
import { buildEmulatedModule, buildFakeLibcuda, emulatedImage } from "../../tools/cuda-emulation/build.js";

process.env["EGL_PLATFORM"] ??= "surfaceless";

/** The self-test kernel in CUDA C for the emulation; `body` computes y[i] from x[i]. */
function selfTestImage(body: string): () => Uint8Array {
  const source = `extern "C" __global__ void ${SELF_TEST_KERNEL}(const float* __restrict__ x, float* __restrict__ y) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  y[i] = ${body};
}
`;
  const kernel: CudaKernel = { family: "self-test", name: SELF_TEST_KERNEL, code: "", helpers: [], params: ["const float* __restrict__", "float* __restrict__"] };
  const path = buildEmulatedModule(source, [kernel]);
  return () => emulatedImage(path);
}

const right = () => selfTestImage("2.0f * x[i] + 1.0f");
const wrong = () => selfTestImage("2.0f * x[i]");

const savedLibcuda = process.env["LLMC_LIBCUDA"];
function useLibcuda(path: string): void {
  process.env["LLMC_LIBCUDA"] = path;
}
afterEach(() => {
  if (savedLibcuda === undefined) delete process.env["LLMC_LIBCUDA"];
  else process.env["LLMC_LIBCUDA"] = savedLibcuda;
  vi.restoreAllMocks();
  vi.doUnmock("../../src/runtime/webgpu/device.js");
  vi.resetModules();
});

/** Counts what the driver makes and releases during `f`. */
function countingHandles(f: () => void): { made: number; released: number } {
  const counts = { made: 0, released: 0 };
  const spy = (name: keyof CudaDriver, key: keyof typeof counts) => {
    const original = CudaDriver.prototype[name] as (...args: unknown[]) => unknown;
    vi.spyOn(CudaDriver.prototype, name as "alloc").mockImplementation(function (this: CudaDriver, ...args: unknown[]) {
      const r = original.apply(this, args);
      counts[key]++;
      return r as number;
    });
  };
  spy("createContext", "made");
  spy("loadModule", "made");
  spy("alloc", "made");
  spy("destroyContext", "released");
  spy("unloadModule", "released");
  spy("free", "released");
  try {
    f();
  } catch {
    // The caller checks the error itself; here only the counts matter.
  }
  return counts;
}

describe("the CUDA self-test", () => {
  it("passes when the kernel computes 2·x + 1, and releases the context, module and buffers", () => {
    const libcuda = buildFakeLibcuda();
    const image = right();
    expect(() => runCudaSelfTest({ libcuda, image })).not.toThrow();
    expect(countingHandles(() => runCudaSelfTest({ libcuda, image }))).toEqual({ made: 4, released: 4 });
  });

  it("fails when the kernel computes something else, and still releases everything", () => {
    const libcuda = buildFakeLibcuda();
    const image = wrong();
    expect(() => runCudaSelfTest({ libcuda, image })).toThrow(/the self-test kernel computed y\[0\] = -64 where 2·x\[0\] \+ 1 = -63/);
    expect(countingHandles(() => runCudaSelfTest({ libcuda, image }))).toEqual({ made: 4, released: 4 });
  });

  it("fails when the module does not load (the fake driver takes no PTX), releasing the context", () => {
    const libcuda = buildFakeLibcuda();
    expect(() => runCudaSelfTest({ libcuda })).toThrow(/cuModuleLoadDataEx failed: .*fake libcuda runs only emulation modules/);
    expect(countingHandles(() => runCudaSelfTest({ libcuda }))).toEqual({ made: 1, released: 1 });
  });

  const ptxas = (() => {
    try {
      return execFileSync("which", ["ptxas"], { encoding: "utf8" }).trim() || null;
    } catch {
      return null;
    }
  })();
  // ptxas comes with nvcc, which CI machines have: there it never skips.
  it.skipIf(!ptxas && !process.env["CI"])("its PTX assembles with ptxas (ISA 7.0, sm_50, built for the oldest GPU ptxas knows)", () => {
    expect(ptxas, "ptxas (the CUDA toolkit's) is on the PATH").not.toBeNull();
    const dir = mkdtempSync(join(tmpdir(), "llmc-self-test-"));
    writeFileSync(join(dir, "self-test.ptx"), SELF_TEST_PTX);
    expect(SELF_TEST_PTX).toMatch(/^\.version 7\.0\n\.target sm_50\n\.address_size 64\n/);
    for (const arch of ["sm_75", "sm_90"]) {
      execFileSync(ptxas!, [`-arch=${arch}`, join(dir, "self-test.ptx"), "-o", join(dir, `${arch}.cubin`)], { stdio: ["ignore", "pipe", "pipe"] });
    }
  });
});

describe('chooseBackend("auto") with the real drivers of this machine', () => {
  async function auto(image?: () => Uint8Array) {
    const { chooseBackend } = await import("../../src/runtime/backend.js");
    const notes: string[] = [];
    let skipped: readonly string[] = [];
    const backend = await chooseBackend("auto", { cudaSelfTestImage: image, onNote: (m) => notes.push(m), onChoice: (_, s) => (skipped = s) });
    backend.release();
    return { backend, skipped, notes };
  }

  it("picks CUDA when a device passes the self-test", async () => {
    useLibcuda(buildFakeLibcuda());
    const r = await auto(right());
    expect(r.backend.name).toBe("cuda");
    expect(r.backend.description).toMatch(/^cuda \(llmc emulated GPU/);
    expect(r.skipped).toEqual([]);
    expect(r.notes).toEqual([]);
  });

  it("passes CUDA over for WebGPU when the self-test computes the wrong values, and says why", async () => {
    useLibcuda(buildFakeLibcuda());
    const r = await auto(wrong());
    expect(r.backend.name).toBe("webgpu");
    expect(r.skipped[0]).toMatch(/^cuda: cuda \(llmc emulated GPU.*\) failed the self-test: the self-test kernel computed y\[0\] = -64/);
  });

  it("passes CUDA over when the self-test's module does not load", async () => {
    useLibcuda(buildFakeLibcuda());
    const r = await auto();
    expect(r.backend.name).toBe("webgpu");
    expect(r.skipped[0]).toMatch(/^cuda: .* failed the self-test: cuModuleLoadDataEx failed: .*fake libcuda runs only emulation modules/);
  });

  it("without libcuda.so.1 picks WebGPU, saying why CUDA (and a hardware adapter, if it is the software one) was passed over", async () => {
    useLibcuda("/nonexistent/libcuda.so.1");
    const r = await auto();
    expect(r.backend.name).toBe("webgpu");
    expect(r.skipped[0]).toMatch(/^cuda: the CUDA backend needs the NVIDIA driver library libcuda\.so\.1, which was not found at \/nonexistent\/libcuda\.so\.1/);
    // Here (no GPU) Dawn's GLES adapter; on a machine with a GPU, its hardware adapter.
    if (r.backend.description.endsWith(", software)")) expect(r.skipped.slice(1)).toEqual([expect.stringMatching(/^webgpu hardware adapter: /)]);
    else expect(r.skipped).toHaveLength(1);
    expect(r.notes).toEqual([]);
  });
});

describe('chooseBackend("auto") among WebGPU adapters (Dawn mocked)', () => {
  const LLVMPIPE = { vendor: "mesa", architecture: "", device: "", description: "llvmpipe (LLVM 15.0.7, 256 bits)" };
  const NVIDIA = { vendor: "nvidia", architecture: "ada", device: "", description: "NVIDIA GeForce RTX 4090" };
  type Adapter = typeof LLVMPIPE;

  /** Dawn with the given adapter per kind (none: no adapter); records the kinds asked for. */
  async function withAdapters(adapters: { hardware?: Adapter; software?: Adapter }, vulkan = true) {
    useLibcuda("/nonexistent/libcuda.so.1");
    const asked: string[] = [];
    vi.resetModules();
    vi.doMock("../../src/runtime/webgpu/device.js", () => ({
      NO_ADAPTER_MESSAGE: "no WebGPU adapter: (mocked)",
      vulkanLoadable: () => vulkan,
      requestGpu: (kind: "hardware" | "software") => {
        asked.push(kind);
        const a = adapters[kind];
        if (!a) return Promise.reject(new Error("no WebGPU adapter: (mocked)"));
        return Promise.resolve({ adapter: { ...a, backend: kind, featureLevel: "core" }, destroy: () => undefined });
      },
    }));
    const { chooseBackend } = await import("../../src/runtime/backend.js");
    const notes: string[] = [];
    let skipped: readonly string[] = [];
    const backend = await chooseBackend("auto", { onNote: (m) => notes.push(m), onChoice: (_, s) => (skipped = s) });
    return { backend, skipped: skipped.slice(1), notes, asked };
  }

  it("a hardware adapter comes first", async () => {
    const r = await withAdapters({ hardware: NVIDIA, software: LLVMPIPE });
    expect(r.backend.description).toBe("webgpu (NVIDIA GeForce RTX 4090, hardware)");
    expect(r).toMatchObject({ skipped: [], asked: ["hardware"] });
  });

  it("a software rasteriser found through Vulkan is used, saying there was no hardware adapter", async () => {
    const r = await withAdapters({ hardware: LLVMPIPE, software: LLVMPIPE });
    expect(r.backend.description).toBe("webgpu (llvmpipe (LLVM 15.0.7, 256 bits), hardware)");
    expect(r.skipped).toEqual(["webgpu hardware adapter: Dawn's hardware backends offer only a software rasteriser"]);
    expect(r.asked).toEqual(["hardware"]);
  });

  it("without a hardware adapter, the software one", async () => {
    const none = await withAdapters({ software: LLVMPIPE });
    expect(none.backend.description).toBe("webgpu (llvmpipe (LLVM 15.0.7, 256 bits), software)");
    expect(none.skipped).toEqual(["webgpu hardware adapter: Dawn found none"]);
    const noVulkan = await withAdapters({ hardware: NVIDIA, software: LLVMPIPE }, false);
    expect(noVulkan.backend.description).toBe("webgpu (llvmpipe (LLVM 15.0.7, 256 bits), software)");
    expect(noVulkan.skipped).toEqual(["webgpu hardware adapter: the Vulkan loader (libvulkan.so.1) is not installed"]);
    expect(noVulkan.asked).toEqual(["software"]);
  });

  it("without any adapter, the CPU, with a note even without -v", async () => {
    const r = await withAdapters({});
    expect(r.backend.name).toBe("cpu");
    expect(r.skipped).toEqual(["webgpu hardware adapter: Dawn found none", "webgpu software adapter: no WebGPU adapter: (mocked)"]);
    expect(r.notes).toEqual(["running on the CPU reference interpreter (slow): no WebGPU adapter: (mocked)"]);
  });
});

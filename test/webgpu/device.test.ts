// Getting a device and turning WebGPU's failures into clear errors.

import { afterAll, describe, expect, it } from "vitest";
import { ResourceError } from "../../src/runtime/errors.js";
import { defaultSoftwareThreads, NO_ADAPTER_MESSAGE, releaseSharedGpu, requestGpu, sharedGpu, vulkanLoadable, WebGpuError } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor, WebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { isSoftwareAdapter } from "../../src/runtime/webgpu/tuning.js";
import { gpu, GraphBuilder } from "./helpers.js";

afterAll(releaseSharedGpu);

describe("WebGPU device", () => {
  it("finds an adapter (a hardware one, else llvmpipe through OpenGL ES) and shares one device per process", async () => {
    const a = await gpu();
    expect(await sharedGpu()).toBe(a);
    expect(["hardware", "software"]).toContain(a.adapter.backend);
    if (a.adapter.backend === "software") {
      expect(a.adapter.featureLevel).toBe("compatibility");
      expect(isSoftwareAdapter(a.adapter)).toBe(true);
      // Set before the adapter opened (unless the environment chose a number): Mesa reads it then.
      expect(Number(process.env["LP_NUM_THREADS"])).toBeGreaterThan(0);
    }
    // Compatibility devices default to lower limits: the ones llmc needs were requested.
    expect(a.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(10);
    expect(a.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
  });

  it("gives llvmpipe twice as many threads as cores, at most Mesa's 16", () => {
    expect([1, 2, 3, 8, 64].map((cores) => defaultSoftwareThreads(cores))).toEqual([2, 4, 6, 16, 16]);
  });

  it("asking for hardware gives a hardware adapter or the no-adapter message", async () => {
    const r = await requestGpu("hardware").then(
      (g) => {
        g.destroy();
        return g.adapter.backend;
      },
      (e: Error) => e.message,
    );
    expect(["hardware", NO_ADAPTER_MESSAGE]).toContain(r);
  });

  it("has Dawn's null backend, for measuring host overhead", async () => {
    const g = await requestGpu("null");
    expect(g.adapter.backend).toBe("null");
    g.destroy();
  });

  it("turns validation errors, uncaptured errors and a lost device into Errors that say what happened", async () => {
    const g = await requestGpu("software").catch(() => gpu());
    const huge = g.limits.maxBufferSize + 4;
    await expect(g.scoped("making a huge buffer", () => g.device.createBuffer({ size: huge, usage: GPUBufferUsage.STORAGE }))).rejects.toThrow(
      /WebGPU rejected making a huge buffer: .*max buffer size/i,
    );
    g.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await new Promise((r) => setTimeout(r, 50));
    expect(() => g.check()).toThrow(WebGpuError);
    expect(() => g.check()).not.toThrow(); // reported once
    g.device.destroy();
    await g.device.lost;
    expect(() => g.check()).toThrow(/the WebGPU device was lost \(destroyed\)/);
  });

  it("refuses a weight larger than maxStorageBufferBindingSize, naming it and the limit", async () => {
    const g = await gpu();
    const limit = g.limits.maxStorageBufferBindingSize;
    const rows = Math.floor(limit / 4 / 1024) + 1;
    const b = new GraphBuilder();
    const out = b.op("exp", [b.weight("layers.0.huge", [rows, 1024])]);
    let asked = false;
    const ex = new WebGpuExecutor(b.graph([out]), (_, shape) => {
      asked = true;
      return new Float32Array(shape[0]! * shape[1]!);
    }, g);
    await expect(ex.ready()).rejects.toThrow(`weight 'layers.0.huge' [${rows}, 1024] takes ${rows * 4096} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes`);
    expect(asked).toBe(false); // refused before reading it
    await expect(ex.step({ tokens: Int32Array.of(0) })).rejects.toThrow(/layers\.0\.huge/);
    ex.dispose();
  });

  it("names the weight, its size and what to do when the device cannot allocate it (Dawn's null backend caps memory)", async () => {
    const g = await requestGpu("null");
    try {
      const b = new GraphBuilder();
      let x = b.weight("x", [1, 4096]);
      for (let i = 0; i < 12; i++) x = b.op("linear", [x, b.weight(`layers.${i}.w`, [4096, 4096])], { weights: 1, epilogue: { nodes: [{ kind: "input", index: 0 }], outputs: [0] } });
      const ex = new WebGpuExecutor(b.graph([x]), (_, s) => new Float32Array(s[0]! * (s[1] ?? 1)), g);
      const err = await ex.ready().then(() => null, (e: unknown) => e as Error);
      expect(err).toBeInstanceOf(ResourceError);
      expect(err!.message).toMatch(/^out of GPU memory allocating weight 'layers\.\d+\.w' \[4096, 4096\] \(64\.0 MiB; \d+\.\d MiB already allocated for this model\): .*[^.]\. Use a smaller or quantized model/);
      ex.dispose();
    } finally {
      g.destroy();
    }
  });

  it("skips the hardware probe where the Vulkan loader cannot be found (Linux)", () => {
    const none = { platform: "linux", cache: () => null, exists: () => false, libraryPath: "" };
    expect(vulkanLoadable(none)).toBe(false);
    expect(vulkanLoadable({ ...none, cache: () => new TextEncoder().encode("\0libvulkan.so.1\0/usr/lib/x86_64-linux-gnu/libvulkan.so.1\0") })).toBe(true);
    expect(vulkanLoadable({ ...none, libraryPath: "/opt/vk", exists: (p) => p === "/opt/vk/libvulkan.so.1" })).toBe(true);
    expect(vulkanLoadable({ ...none, exists: (p) => p === "/usr/lib/x86_64-linux-gnu/libvulkan.so.1" })).toBe(true);
    expect(vulkanLoadable({ ...none, platform: "darwin" })).toBe(true);
  });

  it("shows the kernel's code when the WGSL does not compile", async () => {
    const g = await gpu();
    const b = new GraphBuilder();
    const out = b.op("exp", [b.weight("x", [4])]);
    const ex = await createWebGpuExecutor(b.graph([out]), () => new Float32Array(4), g);
    // A deliberately broken tuning: a workgroup size no device accepts.
    const bad = await createWebGpuExecutor(b.graph([out]), () => new Float32Array(4), g, { tuning: { ...ex.tuning, workgroupSize: 100000 } });
    await expect(bad.step({ tokens: Int32Array.of(0) })).rejects.toThrow(/elementwise #0 kernel[\s\S]*@workgroup_size\(100000\)/);
    ex.dispose();
    bad.dispose();
  });
});

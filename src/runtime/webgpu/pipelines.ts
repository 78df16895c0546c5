// Compute pipelines and bind group layouts by kernel source, shared by everything that runs kernels
// on a device (inference executors, training steps): the layers of a model, and models of one
// architecture, compile to the same kernels, so each is built once per device.

import type { KernelBinding, WgslKernel } from "../../compiler/target/wgsl.js";
import type { GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";

interface DeviceCache {
  pipelines: Map<string, Promise<GPUComputePipeline>>;
  layouts: Map<string, GPUBindGroupLayout>;
}

const caches = new WeakMap<GPUDevice, DeviceCache>();

function cacheOf(device: GPUDevice): DeviceCache {
  let c = caches.get(device);
  if (!c) caches.set(device, (c = { pipelines: new Map(), layouts: new Map() }));
  return c;
}

/** The bind group layout of a kernel's bindings (uniform, read-only or read-write storage). */
export function bindGroupLayout(device: GPUDevice, bindings: readonly KernelBinding[]): GPUBindGroupLayout {
  const layouts = cacheOf(device).layouts;
  const key = bindings.map((b) => b.access).join(",");
  let l = layouts.get(key);
  if (!l) {
    l = device.createBindGroupLayout({
      entries: bindings.map((b, i) => ({
        binding: i,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.access === "uniform" ? "uniform" : b.access === "read" ? "read-only-storage" : "storage" },
      })),
    });
    layouts.set(key, l);
  }
  return l;
}

/** One pipeline per distinct kernel source; a WGSL error names the kernel and shows its code. */
export function computePipeline(gpu: GpuContext, k: WgslKernel): Promise<GPUComputePipeline> {
  const device = gpu.device;
  const pipelines = cacheOf(device).pipelines;
  const key = `${k.bindings.map((b) => b.access).join(",")}\n${k.code}`;
  const cached = pipelines.get(key);
  if (cached) return cached;
  const layout = bindGroupLayout(device, k.bindings);
  const p = gpu
    .scoped(`the ${k.label} kernel`, () => {
      const module = device.createShaderModule({ code: k.code, label: k.label });
      return device.createComputePipeline({
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: "main" },
        label: k.label,
      });
    })
    .catch((e: unknown) => {
      pipelines.delete(key);
      const numbered = k.code.split("\n").map((l, i) => `${String(i + 1).padStart(4)} | ${l}`).join("\n");
      throw new WebGpuError(`${(e as Error).message}\n${numbered}`);
    });
  pipelines.set(key, p);
  return p;
}

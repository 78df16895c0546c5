// What every WebGPU step needs, inference or training: compute pipelines and bind group layouts by
// kernel source, cached per device (the layers of a model, and models of one architecture, compile to
// the same kernels, so each is built once), a step plan's buffers, and its kernels bound to them.

import type { PlanBuffer, StepPlan } from "../../compiler/plan/plan.js";
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

/** Where the buffers a step shares with other step shapes come from: uploaded weights, KV caches. */
export interface SharedBuffers {
  weight(name: string): GPUBuffer;
  /** A weight split into row ranges (PlanBuffer.parts): one buffer per part. */
  weightParts?(name: string): readonly GPUBuffer[];
  kv(buffer: PlanBuffer): GPUBuffer;
}

/**
 * The device buffers of a step plan, by plan buffer: weights and KV caches from `shared`, the rest
 * made with `create` and owned by the step (literals filled, inputs writable from the host); and
 * the parts of weights split into row ranges, by plan buffer (`buffers` holds their first part).
 */
export function stepBuffers(
  plan: StepPlan,
  shared: SharedBuffers,
  create: (buffer: PlanBuffer, desc: GPUBufferDescriptor) => GPUBuffer,
): { buffers: GPUBuffer[]; owned: GPUBuffer[]; inputs: Map<string, GPUBuffer>; parts: Map<number, readonly GPUBuffer[]> } {
  const owned: GPUBuffer[] = [];
  const inputs = new Map<string, GPUBuffer>();
  const parts = new Map<number, readonly GPUBuffer[]>();
  const own = (b: PlanBuffer, desc: GPUBufferDescriptor) => {
    const buf = create(b, desc);
    owned.push(buf);
    return buf;
  };
  const buffers = plan.buffers.map((b) => {
    switch (b.kind) {
      case "weight": {
        if (!b.parts) return shared.weight(b.holds);
        const ps = shared.weightParts?.(b.holds);
        if (ps?.length !== b.parts.length) throw new WebGpuError(`internal: weight '${b.holds}' was not uploaded in ${b.parts.length} parts`);
        parts.set(b.id, ps);
        return ps[0]!;
      }
      case "kv":
        return shared.kv(b);
      case "literal": {
        const buf = own(b, { label: `literal ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
        const data = b.data!;
        new (data.constructor as Float32ArrayConstructor)(buf.getMappedRange(), 0, data.length).set(data as Float32Array);
        buf.unmap();
        return buf;
      }
      case "input": {
        const buf = own(b, { label: `input ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
        inputs.set(b.holds, buf);
        return buf;
      }
      case "activation":
        return own(b, { label: `activation ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    }
  });
  return { buffers, owned, inputs, parts };
}

/** The pipelines of a step's kernels and their bind groups over the step's buffers (`params`: the
 *  per-step uniform block; `parts`: the parts of split weights, stepBuffers'). */
export async function bindKernels(
  gpu: GpuContext,
  kernels: readonly WgslKernel[],
  buffers: readonly GPUBuffer[],
  params: GPUBuffer,
  what: string,
  parts: ReadonlyMap<number, readonly GPUBuffer[]> = new Map(),
): Promise<{ pipelines: GPUComputePipeline[]; bindGroups: GPUBindGroup[] }> {
  const pipelines: GPUComputePipeline[] = [];
  for (const k of kernels) pipelines.push(await computePipeline(gpu, k));
  const device = gpu.device;
  const bindGroups = await gpu.scoped(`creating the bind groups of ${what}`, () =>
    kernels.map((k, i) =>
      device.createBindGroup({
        layout: bindGroupLayout(device, k.bindings),
        entries: k.bindings.map((b, j) => ({ binding: j, resource: { buffer: b.buffer === "params" ? params : b.part !== undefined ? parts.get(b.buffer)![b.part]! : buffers[b.buffer]! } })),
        label: `${k.label} (${i})`,
      }),
    ),
  );
  return { pipelines, bindGroups };
}

// A WebGPU device as llmc uses it, wherever it came from (Dawn in Node: device.ts; navigator.gpu in a
// browser: device.browser.ts): the limits it is asked for, and device loss, uncaptured errors and
// out-of-memory turned into plain Errors with a message that says what happened.

import { WebGpuError } from "./errors.js";

/**
 * auto      hardware adapter if any, else the software one
 * hardware  Dawn's default backends (Vulkan, Metal, D3D12), high-performance adapter
 * software  OpenGL ES in compatibility mode (llvmpipe on a Linux machine without a GPU)
 * null      Dawn's null backend: accepts every call and runs nothing — for measuring host overhead
 */
export type GpuBackend = "auto" | "hardware" | "software" | "null";

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Which of our backends found it. */
  backend: Exclude<GpuBackend, "auto">;
  featureLevel: "core" | "compatibility";
  /** adapter.info.subgroupMinSize where the adapter reports it, else 0. */
  subgroupMinSize: number;
}

/** Limits llmc asks for, up to what the adapter offers (compatibility devices default lower). */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupSizeX",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
  "maxUniformBufferBindingSize",
] as const;
/** Optional features the kernels use where the adapter has them (emit/wgsl: subgroupAdd in the
 *  linear kernels' reductions, f16 weights read as vec4<f16>). */
const WANTED_FEATURES = ["subgroups", "shader-f16"] as const;
/** Limits where a smaller value is the better one. */
const WANTED_ALIGNMENTS = ["minStorageBufferOffsetAlignment", "minUniformBufferOffsetAlignment"] as const;

export class GpuContext {
  private readonly errors: Error[] = [];
  private lostMessage: string | null = null;
  private destroyed = false;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
    /** The Dawn instance: it must stay referenced while the device is used. */
    private readonly instance: GPU,
  ) {
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const kind = ev.error instanceof GPUOutOfMemoryError ? "out of GPU memory" : "WebGPU error";
      this.errors.push(new WebGpuError(`${kind}: ${ev.error.message.trim()}`));
    };
    void device.lost.then((info) => {
      if (!this.destroyed) this.lostMessage = `the WebGPU device was lost (${info.reason}): ${info.message || "no details"}`;
    });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** False once the device is lost or destroyed: a shared device is then replaced. */
  get usable(): boolean {
    return !this.destroyed && this.lostMessage === null;
  }

  /** Throws if the device is lost or an error was reported since the last check. */
  check(): void {
    if (this.destroyed) throw new WebGpuError("the WebGPU device was released");
    if (this.lostMessage) throw new WebGpuError(this.lostMessage);
    const e = this.errors.shift();
    if (e) {
      this.errors.length = 0;
      throw e;
    }
  }

  /** Runs `f` inside out-of-memory and validation error scopes; a caught error becomes an Error
   *  naming `what`. */
  async scoped<T>(what: string, f: () => T): Promise<T> {
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    let result: T;
    try {
      result = f();
    } finally {
      // Both pops happen now, before any other scope can be pushed by an interleaved caller.
      const popped = [this.device.popErrorScope(), this.device.popErrorScope()];
      const [validation, oom] = await Promise.all(popped);
      if (oom) throw new WebGpuError(`out of GPU memory while ${what}: ${oom.message.trim()}`);
      if (validation) throw new WebGpuError(`WebGPU rejected ${what}: ${validation.message.trim()}`);
    }
    return result;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
    void this.instance;
  }
}

/** A device on `adapter` with every limit llmc plans against raised to what the adapter offers. */
export async function openDevice(gpu: GPU, adapter: GPUAdapter, backend: AdapterDescription["backend"], featureLevel: AdapterDescription["featureLevel"]): Promise<GpuContext> {
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
  for (const k of WANTED_ALIGNMENTS) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: "llmc" });
  const i = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number };
  const description = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, backend, featureLevel, subgroupMinSize: i.subgroupMinSize ?? 0 };
  return new GpuContext(device, description, gpu);
}

// Getting a WebGPU device through Dawn's Node binding (the `webgpu` package): a hardware adapter
// when there is one, otherwise Mesa's software rasteriser (llvmpipe) through Dawn's OpenGL ES
// backend in compatibility mode. Device loss, uncaptured errors and out-of-memory become plain
// Errors with a message that says what happened.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { create, globals } from "webgpu";
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
}

export { WebGpuError } from "./errors.js";

export const NO_ADAPTER_MESSAGE =
  "no WebGPU adapter: on Linux without a GPU install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri and set EGL_PLATFORM=surfaceless";

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

let globalsInstalled = false;

function installGlobals(): void {
  if (globalsInstalled) return;
  // GPUBufferUsage, GPUMapMode, GPUOutOfMemoryError, … as in a browser.
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
  globalsInstalled = true;
}

async function tryAdapter(backend: Exclude<GpuBackend, "auto">): Promise<{ gpu: GPU; adapter: GPUAdapter; featureLevel: "core" | "compatibility" } | null> {
  if (backend === "software") process.env["EGL_PLATFORM"] ??= "surfaceless";
  let gpu: GPU;
  try {
    gpu = create(backend === "hardware" ? [] : [`backend=${backend === "software" ? "opengles" : "null"}`]);
  } catch {
    return null; // this Dawn build lacks the backend
  }
  if (backend === "software") {
    const adapter = await gpu.requestAdapter({ featureLevel: "compatibility" });
    return adapter ? { gpu, adapter, featureLevel: "compatibility" } : null;
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  return adapter ? { gpu, adapter, featureLevel: "core" } : null;
}

/** Where the dynamic loader looks for libraries besides its cache. */
const LIBRARY_DIRS = ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];

/**
 * Whether the Vulkan loader (libvulkan.so.1) can be found on Linux: in /etc/ld.so.cache, a folder of
 * LD_LIBRARY_PATH or one of the usual library folders. Without it Dawn's hardware probe only prints
 * "Warning: Couldn't load Vulkan", so "auto" skips it. Other platforms: true (Metal, D3D12).
 */
export function vulkanLoadable(env: { platform?: string; cache?: () => Uint8Array | null; exists?: (path: string) => boolean; libraryPath?: string } = {}): boolean {
  if ((env.platform ?? process.platform) !== "linux") return true;
  const cache =
    env.cache ??
    (() => {
      try {
        return readFileSync("/etc/ld.so.cache");
      } catch {
        return null;
      }
    });
  if (Buffer.from(cache() ?? new Uint8Array()).includes("libvulkan.so.1")) return true;
  const exists = env.exists ?? existsSync;
  const dirs = [...(env.libraryPath ?? process.env["LD_LIBRARY_PATH"] ?? "").split(":").filter(Boolean), ...LIBRARY_DIRS];
  return dirs.some((d) => exists(join(d, "libvulkan.so.1")));
}

/** A new device on the first adapter `backend` allows. */
export async function requestGpu(backend: GpuBackend = "auto"): Promise<GpuContext> {
  installGlobals();
  // "auto" tries hardware first where a hardware backend can load (on Linux: the Vulkan loader).
  const order: Exclude<GpuBackend, "auto">[] = backend === "auto" ? (vulkanLoadable() ? ["hardware", "software"] : ["software"]) : [backend];
  for (const b of order) {
    const found = await tryAdapter(b);
    if (!found) continue;
    const { gpu, adapter, featureLevel } = found;
    const requiredLimits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
    for (const k of WANTED_ALIGNMENTS) requiredLimits[k] = adapter.limits[k];
    const device = await adapter.requestDevice({ requiredLimits, label: "llmc" });
    const i = adapter.info;
    return new GpuContext(device, { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, backend: b, featureLevel }, gpu);
  }
  throw new WebGpuError(backend === "null" ? "this build of Dawn has no null backend" : NO_ADAPTER_MESSAGE);
}

let shared: Promise<GpuContext> | null = null;

/** One device per process (tests, the CLI): created on first use. */
export function sharedGpu(): Promise<GpuContext> {
  shared ??= requestGpu("auto").catch((e: unknown) => {
    shared = null;
    throw e;
  });
  return shared;
}

/** Destroys the shared device, if any; the next sharedGpu() makes a new one. */
export async function releaseSharedGpu(): Promise<void> {
  const s = shared;
  shared = null;
  if (s) (await s.catch(() => null))?.destroy();
}

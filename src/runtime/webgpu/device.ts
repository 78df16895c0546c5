// Getting a WebGPU device through Dawn's Node binding (the `webgpu` package): a hardware adapter
// when there is one, otherwise Mesa's software rasteriser (llvmpipe) through Dawn's OpenGL ES
// backend in compatibility mode. The device itself (limits, errors, loss) is context.ts, shared
// with the browser's navigator.gpu (device.browser.ts).

import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { create, globals } from "webgpu";
import { openDevice, type GpuBackend, type GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";
import { withoutNativeStderr } from "./quiet.js";

export { WebGpuError } from "./errors.js";
export { GpuContext, type AdapterDescription, type GpuBackend } from "./context.js";

export const NO_ADAPTER_MESSAGE =
  "no WebGPU adapter: on Linux without a GPU install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri and set EGL_PLATFORM=surfaceless";

let globalsInstalled = false;

function installGlobals(): void {
  if (globalsInstalled) return;
  // GPUBufferUsage, GPUMapMode, GPUOutOfMemoryError, … as in a browser.
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
  globalsInstalled = true;
}

/**
 * llvmpipe runs each dispatch on LP_NUM_THREADS threads (Mesa's default: one per core) and waits for
 * the slowest. Node's own thread, recording and submitting the next dispatches, shares those cores,
 * so with one thread per core a dispatch often waits for a thread that was descheduled. Twice as many
 * threads as cores split each dispatch finer: the 27M LLaMA of docs/benchmarks.md decodes 15–45%
 * faster on 2 cores (4 interleaved rounds). Mesa reads the variable when the adapter opens; a value
 * the user set is kept.
 */
export function defaultSoftwareThreads(cores = availableParallelism()): number {
  return Math.min(2 * cores, 16); // llvmpipe's LP_MAX_THREADS
}

async function tryAdapter(backend: Exclude<GpuBackend, "auto">): Promise<{ gpu: GPU; adapter: GPUAdapter; featureLevel: "core" | "compatibility" } | null> {
  if (backend === "software") {
    process.env["EGL_PLATFORM"] ??= "surfaceless";
    process.env["LP_NUM_THREADS"] ??= String(defaultSoftwareThreads());
  }
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
    const opened = await withoutNativeStderr(async () => {
      const found = await tryAdapter(b);
      return found ? openDevice(found.gpu, found.adapter, b, found.featureLevel) : null;
    });
    if (opened) return opened;
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

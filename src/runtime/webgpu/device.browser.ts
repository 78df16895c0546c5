// Getting a WebGPU device in a browser: the page's navigator.gpu. The device is opened as in Node
// (context.ts: the same limits, the same error handling), so planning sees the same numbers.

import { openDevice, type GpuBackend, type GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";
import { isSoftwareAdapter } from "./tuning.js";

export { WebGpuError } from "./errors.js";
export { GpuContext, type AdapterDescription, type GpuBackend } from "./context.js";

export const NO_ADAPTER_MESSAGE = "no WebGPU adapter: this browser has no navigator.gpu, or it gave no adapter (is WebGPU enabled?)";

/** A browser brings its own Vulkan, Metal or D3D12: there is no loader to look for. */
export function vulkanLoadable(): boolean {
  return true;
}

/** A new device on the browser's adapter; "hardware" and "software" both take what the browser gives. */
export async function requestGpu(backend: GpuBackend = "auto"): Promise<GpuContext> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (backend === "null") throw new WebGpuError("a browser has no null WebGPU backend");
  const adapter = await gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!gpu || !adapter) throw new WebGpuError(NO_ADAPTER_MESSAGE);
  const software = isSoftwareAdapter(adapter.info);
  return openDevice(gpu, adapter, software ? "software" : "hardware", "core");
}

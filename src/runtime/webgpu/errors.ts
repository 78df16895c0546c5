// The WebGPU backend's error, apart from the device code so that the package entry can export it
// without loading Dawn.

/** The WebGPU device failed, ran out of memory or was lost; the message says which. */
export class WebGpuError extends Error {
  override name = "WebGpuError";
}

// Finding a CUDA device for backend.ts: koffi, the driver and nvcc are loaded only when asked for,
// so a machine without them still runs on the other backends. A browser has none of them
// (probe.browser.ts).

import { BackendError, type Backend } from "../backend.js";

/** The CUDA driver API through koffi; without a driver, a BackendError naming libcuda.so.1. */
export async function cudaBackendOrError(): Promise<Backend> {
  try {
    const { cudaBackend } = await import("./backend.js");
    return cudaBackend();
  } catch (e) {
    throw new BackendError(`the CUDA backend is unavailable: ${(e as Error).message}`);
  }
}

/** The CUDA backend, if its device runs the self-test kernel (from `image`, default the built-in PTX). */
export async function testedCudaBackend(image?: () => Uint8Array): Promise<Backend> {
  const [{ cudaBackend }, { runCudaSelfTest }, { findNvcc }] = await Promise.all([import("./backend.js"), import("./self-test.js"), import("./ptx.js")]);
  const backend = cudaBackend();
  // A model's kernels come from nvcc here or from prebuilt folders; without either, CUDA cannot run it.
  if (!image && !findNvcc() && !process.env["LLMC_CUDA_KERNELS"]) {
    throw new Error(`${backend.description} is there, but nvcc is not on the PATH and LLMC_CUDA_KERNELS names no prebuilt kernels (llmc compile --target cuda -o DIR)`);
  }
  try {
    runCudaSelfTest({ image });
  } catch (e) {
    throw new Error(`${backend.description} failed the self-test: ${(e as Error).message}`);
  }
  return backend;
}


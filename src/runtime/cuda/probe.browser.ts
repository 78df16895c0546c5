// A browser has no CUDA: "auto" passes over it with this reason, "cuda" is a BackendError.

import { BackendError, type Backend } from "../backend.js";

const WHY = "a browser cannot reach the CUDA driver";

export async function cudaBackendOrError(): Promise<Backend> {
  throw new BackendError(`the CUDA backend is unavailable: ${WHY}`);
}

export async function testedCudaBackend(): Promise<Backend> {
  throw new Error(WHY);
}

// The CUDA backend in the shape of src/runtime/backend.ts's Backend: found when the driver opens and
// reports a device (else a CudaUnavailableError that says why), making CudaExecutors. Options pass
// through to every executor (weight format, prefill chunk, prebuilt kernel folders).

import type { Graph } from "../../compiler/ir/graph.js";
import type { DeviceOptions } from "../backend.js";
import type { WeightSource } from "../executor.js";
import { CudaDriver } from "./driver.js";
import { createCudaExecutor, type CudaExecutor, type CudaExecutorOptions } from "./executor.js";

export interface CudaBackend {
  readonly name: "cuda";
  readonly description: string;
  createExecutor(graph: Graph, weights: WeightSource, opts?: DeviceOptions): Promise<CudaExecutor>;
  release(): void;
}

export function cudaBackend(opts: CudaExecutorOptions = {}): CudaBackend {
  const driver = new CudaDriver(opts.libcuda);
  const { dev, cc } = driver.openDevice(opts.device);
  return {
    name: "cuda",
    description: `cuda (${driver.deviceName(dev)}, compute capability ${cc.major}.${cc.minor})`,
    createExecutor: (graph, weights, o = {}) =>
      createCudaExecutor(graph, weights, { ...opts, ...(o.weightDType ? { weightDType: o.weightDType } : {}), ...(o.onUpload ? { onProgress: o.onUpload } : {}) }),
    release: () => undefined,
  };
}

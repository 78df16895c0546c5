// The CUDA backend in the shape of src/runtime/backend.ts's Backend: found when the driver opens and
// reports a device (else a CudaUnavailableError that says why), making CudaExecutors. Options pass
// through to every executor (weight format, prefill chunk, prebuilt kernel folders).

import type { Graph } from "../../compiler/ir/graph.js";
import type { DeviceOptions } from "../backend.js";
import type { WeightSource } from "../executor.js";
import { ATTR, CudaDriver, CudaUnavailableError } from "./driver.js";
import { createCudaExecutor, type CudaExecutor, type CudaExecutorOptions } from "./executor.js";

export interface CudaBackend {
  readonly name: "cuda";
  readonly description: string;
  createExecutor(graph: Graph, weights: WeightSource, opts?: DeviceOptions): Promise<CudaExecutor>;
  release(): void;
}

export function cudaBackend(opts: CudaExecutorOptions = {}): CudaBackend {
  const driver = new CudaDriver(opts.libcuda);
  driver.init();
  const count = driver.deviceCount();
  const ordinal = opts.device ?? 0;
  if (ordinal >= count) throw new CudaUnavailableError(count === 0 ? "the NVIDIA driver reports no CUDA device" : `CUDA device ${ordinal} does not exist (there are ${count})`);
  const dev = driver.device(ordinal);
  const cc = `${driver.attribute(dev, ATTR.ccMajor)}.${driver.attribute(dev, ATTR.ccMinor)}`;
  return {
    name: "cuda",
    description: `cuda (${driver.deviceName(dev)}, compute capability ${cc})`,
    createExecutor: (graph, weights, o = {}) =>
      createCudaExecutor(graph, weights, { ...opts, ...(o.weightDType ? { weightDType: o.weightDType } : {}), ...(o.onUpload ? { onProgress: o.onUpload } : {}) }),
    release: () => undefined,
  };
}

// Where a compiled graph runs. Every backend gives the same small Executor: step a batch of tokens
// through the model (prefill or decode), get logits, keep the KV cache between steps. The CPU
// interpreter is always there; WebGPU is loaded only when asked for (or when "auto" finds an
// adapter), so a machine without Dawn's native parts can still run on the CPU.

import type { Graph } from "../compiler/ir/graph.js";
import type { HostTensor } from "../compiler/ops/reference.js";
import { CpuInterpreter, type StepInputs, type WeightSource } from "./cpu/interpreter.js";

/** What `--backend` and `loadModel({ backend })` accept. */
export type BackendChoice = "auto" | "cpu" | "webgpu" | "cuda";
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "cpu", "webgpu", "cuda"];

/** A compiled model on one backend, with its KV cache. The CPU interpreter and the WebGPU executor both fit. */
export interface Executor {
  /** Positions already in the KV cache. */
  readonly past: number;
  /** The KV cache's capacity in positions. */
  readonly maxSeqLen: number;
  /** Runs `tokens` (at positions past…past+T-1 unless `pos` says otherwise) and returns logits [T, vocab],
   *  or with `read: "argmax"` the greedy token after the last one, i32 [1]. An executor that ignores
   *  `read` returns logits; callers check the result's dtype. */
  step(inputs: StepInputs): HostTensor | Promise<HostTensor>;
  /** Empties the KV cache. */
  reset(): void;
  /** Releases what the executor holds on its device. */
  dispose?(): void;
}

/** A backend that was found and can make executors. */
export interface Backend {
  readonly name: "cpu" | "webgpu" | "cuda";
  /** Says what runs the model, e.g. "webgpu (llvmpipe, opengles)". */
  readonly description: string;
  /** An executor for `graph` whose weights come from `weights` (uploaded before this resolves). */
  createExecutor(graph: Graph, weights: WeightSource): Promise<Executor>;
  /** Releases the device (after every executor made here is disposed). */
  release(): void;
}

/** A backend that was asked for and cannot be had; the message says why and what to do. */
export class BackendError extends Error {
  override name = "BackendError";
}

export interface ChooseBackendOptions {
  /** Where "auto" says that it fell back to the CPU, and why. Default: standard error. */
  onNote?: (message: string) => void;
}

/**
 * The backend to run on. "auto" is WebGPU when an adapter can be had, else the CPU interpreter (with
 * a note); "webgpu" without an adapter and "cuda" are errors.
 */
export async function chooseBackend(choice: BackendChoice, opts: ChooseBackendOptions = {}): Promise<Backend> {
  const note = opts.onNote ?? ((m: string) => void process.stderr.write(`llmc: ${m}\n`));
  switch (choice) {
    case "cpu":
      return cpuBackend();
    case "cuda":
      return cudaBackendOrError();
    case "webgpu":
      return webgpuBackend();
    case "auto":
      try {
        return await webgpuBackend();
      } catch (e) {
        note(`running on the CPU reference interpreter (slow): ${(e as Error).message}`);
        return cpuBackend();
      }
    default:
      throw new BackendError(`unknown backend ${JSON.stringify(choice)}; choose one of ${BACKEND_CHOICES.join(", ")}`);
  }
}

/** The CUDA driver API through koffi; without a driver, a BackendError naming libcuda.so.1. */
async function cudaBackendOrError(): Promise<Backend> {
  try {
    const { cudaBackend } = await import("./cuda/backend.js");
    return cudaBackend();
  } catch (e) {
    throw new BackendError(`the CUDA backend is unavailable: ${(e as Error).message}`);
  }
}

function cpuBackend(): Backend {
  return {
    name: "cpu",
    description: "cpu (reference interpreter)",
    createExecutor: async (graph, weights) => new CpuInterpreter(graph, weights),
    release: () => undefined,
  };
}

async function webgpuBackend(): Promise<Backend> {
  let device: typeof import("./webgpu/device.js");
  let executor: typeof import("./webgpu/executor.js");
  try {
    [device, executor] = await Promise.all([import("./webgpu/device.js"), import("./webgpu/executor.js")]);
  } catch (e) {
    throw new BackendError(`WebGPU is not available (its module did not load: ${(e as Error).message})`);
  }
  let gpu: Awaited<ReturnType<typeof device.requestGpu>>;
  try {
    gpu = await device.requestGpu("auto");
  } catch (e) {
    throw new BackendError((e as Error).message);
  }
  const a = gpu.adapter;
  return {
    name: "webgpu",
    description: `webgpu (${[a.description || a.device || a.vendor || "unknown adapter", a.backend].join(", ")})`,
    createExecutor: (graph, weights) => executor.createWebGpuExecutor(graph, weights, gpu),
    release: () => gpu.destroy(),
  };
}

// Where a compiled graph runs. Every backend gives the same small Executor: step a batch of tokens
// through the model (prefill or decode), get logits, keep the KV cache between steps. The CPU
// interpreter is always there; CUDA and WebGPU are loaded only when asked for (or when "auto" tries
// them), so a machine without their native parts can still run on the CPU.

import type { Graph } from "../compiler/ir/graph.js";
import type { HostTensor } from "../compiler/ops/reference.js";
import { CpuInterpreter } from "./cpu/interpreter.js";
import type { StorageDType } from "../compiler/target/storage.js";
import type { StepInputs, WeightSource } from "./executor.js";
import { cudaBackendOrError, testedCudaBackend } from "./cuda/probe.js";

/** What `--backend` and `loadModel({ backend })` accept. */
export type BackendChoice = "auto" | "cpu" | "webgpu" | "cuda";
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "cpu", "webgpu", "cuda"];

/** A compiled model on one backend, with its KV cache (the CPU interpreter, the WebGPU and CUDA executors). */
export interface Executor {
  /** Positions already in the KV cache. */
  readonly past: number;
  /** The KV cache's capacity in positions. */
  readonly maxSeqLen: number;
  /** Runs `tokens` (at positions past…past+T-1 unless `pos` says otherwise) and returns logits [T, vocab];
   *  with `read: "last"` only the last row, [1, vocab]; with `read: "argmax"` the greedy token after the
   *  last one, i32 [1]. An executor that ignores `read` returns logits; callers check the result. */
  step(inputs: StepInputs): HostTensor | Promise<HostTensor>;
  /** Empties the KV cache. */
  reset(): void;
  /** Keeps the first `to` cached positions and forgets the rest. */
  rewind(to: number): void;
  /** Builds ahead what steps of a `tokens`-token prompt and then decoding need (kernels, pipelines,
   *  buffers), so that the first step's time is its own. */
  prepareSteps?(tokens: number): Promise<void>;
  /** Releases what the executor holds on its device. */
  dispose?(): void;
}

/** What a device executor takes besides the graph and the weights (the CPU ignores both). */
export interface DeviceOptions {
  /** Every matrix in this dtype on the device (`--weight-dtype`); default: the file's dtype. */
  weightDType?: StorageDType;
  /** Bytes of weights uploaded so far, of `total`. */
  onUpload?: (done: number, total: number) => void;
}

/** A backend that was found and can make executors. */
export interface Backend {
  readonly name: "cpu" | "webgpu" | "cuda";
  /** Says what runs the model, e.g. "webgpu (llvmpipe, opengles)". */
  readonly description: string;
  /** An executor for `graph` whose weights come from `weights` (uploaded before this resolves). */
  createExecutor(graph: Graph, weights: WeightSource, opts?: DeviceOptions): Promise<Executor>;
  /** Releases the device (after every executor made here is disposed); WebGPU's is shared and stays. */
  release(): void;
}

/** A backend that was asked for and cannot be had; the message says why and what to do. */
export class BackendError extends Error {
  override name = "BackendError";
}

export interface ChooseBackendOptions {
  /** Where "auto" says that it fell back to the CPU, and why. Default: standard error. */
  onNote?: (message: string) => void;
  /** Told the backend chosen and, for "auto", why each one tried before it was passed over (`-v`). */
  onChoice?: (backend: Backend, skipped: readonly string[]) => void;
  /** The CUDA self-test's module image instead of its PTX (tests: the CPU emulation). */
  cudaSelfTestImage?: () => Uint8Array;
}

/**
 * The backend to run on. "auto" is CUDA when a device passes the self-test, else a hardware WebGPU
 * adapter, else a software one, else the CPU interpreter (with a note); a backend asked for by name
 * that cannot be had is a BackendError.
 */
export async function chooseBackend(choice: BackendChoice, opts: ChooseBackendOptions = {}): Promise<Backend> {
  const skipped: string[] = [];
  const backend = await pick(choice, opts, skipped);
  opts.onChoice?.(backend, skipped);
  return backend;
}

async function pick(choice: BackendChoice, opts: ChooseBackendOptions, skipped: string[]): Promise<Backend> {
  switch (choice) {
    case "cpu":
      return cpuBackend();
    case "cuda":
      return cudaBackendOrError();
    case "webgpu":
      return webgpuBackend("auto");
    case "auto":
      return autoBackend(opts, skipped);
    default:
      throw new BackendError(`unknown backend ${JSON.stringify(choice)}; choose one of ${BACKEND_CHOICES.join(", ")}`);
  }
}

/** The first backend that works, fastest first; `skipped` gets why each one before it did not. */
async function autoBackend(opts: ChooseBackendOptions, skipped: string[]): Promise<Backend> {
  const why = (e: unknown) => (e as Error).message;
  const note = opts.onNote ?? ((m: string) => void process.stderr.write(`llmc: ${m}\n`));
  try {
    return await testedCudaBackend(opts.cudaSelfTestImage);
  } catch (e) {
    skipped.push(`cuda: ${why(e)}`);
  }
  try {
    const hardware = await webgpuBackend("hardware");
    if (!hardware.software) return hardware;
    // A CPU rasteriser behind Vulkan (lavapipe, SwiftShader) is as good as the GLES one.
    skipped.push("webgpu hardware adapter: Dawn's hardware backends offer only a software rasteriser");
    return hardware;
  } catch (e) {
    skipped.push(`webgpu hardware adapter: ${why(e)}`);
  }
  try {
    return await webgpuBackend("software");
  } catch (e) {
    skipped.push(`webgpu software adapter: ${why(e)}`);
    note(`running on the CPU reference interpreter (slow): ${why(e)}`);
    return cpuBackend();
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

type WebGpuKind = "auto" | "hardware" | "software";
type DeviceModule = typeof import("./webgpu/device.js");
type GpuContext = import("./webgpu/device.js").GpuContext;

/**
 * The process's WebGPU device of each kind (by what was found: "auto" shares the hardware or software
 * one), shared by every model and never destroyed: Dawn keeps ~2.6 MB of each device made and
 * destroyed (llvmpipe), so a load/dispose loop grew without bound. Executors free their own buffers.
 */
const webgpuDevices = new Map<WebGpuKind, Promise<GpuContext>>();

async function sharedWebGpu(device: DeviceModule, kind: WebGpuKind): Promise<GpuContext> {
  const key = kind === "auto" ? ((["hardware", "software"] as const).find((k) => webgpuDevices.has(k)) ?? kind) : kind;
  const known = webgpuDevices.get(key);
  if (known) {
    const gpu = await known.catch(() => null);
    if (gpu?.usable) return gpu;
    // Lost (or its request failed): make a new one.
    if (webgpuDevices.get(key) === known) webgpuDevices.delete(key);
  }
  // Filed before it resolves, so models loaded at the same time wait for this one device.
  const request = device.requestGpu(kind);
  webgpuDevices.set(kind, request);
  try {
    const gpu = await request;
    if (kind === "auto" && webgpuDevices.get("auto") === request) {
      webgpuDevices.delete("auto");
      webgpuDevices.set(gpu.adapter.backend as WebGpuKind, request); // requestGpu("auto") finds hardware or software
    }
    return gpu;
  } catch (e) {
    if (webgpuDevices.get(kind) === request) webgpuDevices.delete(kind);
    throw e;
  }
}

/** `kind` as requestGpu takes it; "hardware" needs the Vulkan loader on Linux. */
async function webgpuBackend(kind: WebGpuKind): Promise<Backend & { software: boolean }> {
  let device: DeviceModule;
  let executor: typeof import("./webgpu/executor.js");
  let tuning: typeof import("./webgpu/tuning.js");
  try {
    [device, executor, tuning] = await Promise.all([import("./webgpu/device.js"), import("./webgpu/executor.js"), import("./webgpu/tuning.js")]);
  } catch (e) {
    throw new BackendError(`WebGPU is not available (its module did not load: ${(e as Error).message})`);
  }
  // Without the loader Dawn's Vulkan probe only prints a warning.
  if (kind === "hardware" && !device.vulkanLoadable()) throw new BackendError("the Vulkan loader (libvulkan.so.1) is not installed");
  let gpu: GpuContext;
  try {
    gpu = await sharedWebGpu(device, kind);
  } catch (e) {
    const message = (e as Error).message;
    // NO_ADAPTER_MESSAGE's advice is about the software adapter.
    throw new BackendError(kind === "hardware" && message === device.NO_ADAPTER_MESSAGE ? "Dawn found none" : message);
  }
  const a = gpu.adapter;
  return {
    name: "webgpu",
    description: `webgpu (${[a.description || a.device || a.vendor || "unknown adapter", a.backend].join(", ")})`,
    software: tuning.isSoftwareAdapter(a),
    createExecutor: (graph, weights, o = {}) => executor.createWebGpuExecutor(graph, weights, gpu, o),
    // The device stays for the next model (see webgpuDevices); the executor freed its buffers.
    release: () => undefined,
  };
}

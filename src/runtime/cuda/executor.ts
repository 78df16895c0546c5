// Runs a compiled graph on an NVIDIA GPU through the CUDA driver API, with the CPU interpreter's
// interface: constructor(graph, weights) + init(), step({tokens, pos}) → logits, reset(), past,
// dispose().
//
// init() asks the target layer (compiler/target/cuda.ts) for the program of the GPU's compute
// capability (a decode step and a prefill chunk), loads its PTX, uploads the weights in the dtypes
// the program chose (by default the file's: a q4_0 GGUF stays q4_0 on the GPU) and allocates
// the KV cache and the activation buffers of both step shapes. A decode step writes the tokens,
// positions and P, replays a CUDA graph captured on the first decode step, and reads the logits
// back. A prompt runs as prefill chunks (the last one padded, or as decode steps where padding is
// not safe — see emit/cuda/index.ts); unless every row is asked for, only the last chunk reads
// back, and only its last row. A model larger than the free GPU memory is a ResourceError.

import { evalDim } from "../../compiler/base/symbolic.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import { archName, compileCuda, type ComputeCapability, type CudaModule, type CudaProgram, type CudaStepPlan } from "../../compiler/target/cuda.js";
import { deviceWeightBytes } from "../../compiler/target/program.js";
import type { StorageDType } from "../../compiler/target/storage.js";
import { formatBytes, ResourceError } from "../errors.js";
import { ExecutorBase, lastRowArgmax, type StepInputs, type WeightSource } from "../executor.js";
import { ATTR, CudaDriver, CudaError, type DevicePtr, type Handle } from "./driver.js";
import { cachedLibrary, fitPtxVersion, libraryHas, pickArch, readKernelLibrary, type KernelLibrary } from "./ptx.js";
import { stepBuffers, stepLaunches, type PreparedLaunch, type SharedBuffers } from "./step.js";

export { CudaUnavailableError, CudaError } from "./driver.js";

export interface CudaExecutorOptions {
  /** Device ordinal (default 0). */
  device?: number;
  /** Path of libcuda.so.1 (default: $LLMC_LIBCUDA, then the loader's search). */
  libcuda?: string;
  /** Every matrix in this dtype on the GPU (`--weight-dtype`); default: the dtype the file stores
   *  (the weight source's `raw`). Weights that cannot take it stay f32 (`module.weights[].demoted`). */
  weightDType?: StorageDType;
  /** Tokens per prefill chunk (default min(128, max_seq_len)). */
  prefillChunk?: number;
  /** Replay decode steps as a CUDA graph (default true). */
  cudaGraphs?: boolean;
  /** Folders with prebuilt kernels (kernels.cu + kernels.sm_XX.ptx); default $LLMC_CUDA_KERNELS
   *  (colon-separated). Otherwise the cache, compiled there with nvcc when it is on the PATH. */
  kernelDirs?: string[];
  /** Makes the loadable image of the module for the device instead (tests: the CPU emulation). */
  image?: (module: CudaModule, arch: ComputeCapability) => Uint8Array;
  /** Prefill of f32 weights on tensor cores (f16-rounded operands) instead of exact f32. */
  f32TensorCores?: boolean;
  /** Progress while weights upload. */
  onProgress?: (done: number, total: number) => void;
}

export interface CudaDeviceInfo {
  name: string;
  ordinal: number;
  computeCapability: ComputeCapability;
  multiprocessors: number;
  totalMemory: number;
  /** Peak DRAM bandwidth from the memory clock and bus width (bytes/s); 0 when the driver does not say. */
  peakBandwidth: number;
  driverVersion: number;
  profile: string;
  library: string;
}

interface Buffer_ {
  ptr: DevicePtr;
  bytes: number;
}

interface PreparedStep {
  step: CudaStepPlan;
  buffers: Buffer_[];
  launches: PreparedLaunch[];
  inputs: Map<string, Buffer_>;
  params: Buffer_;
  graph: { graph: Handle; exec: Handle } | null;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** CUresult of a failed cuMemAlloc. */
const CUDA_ERROR_OUT_OF_MEMORY = 2;

/** Which rows of the outputs over a run's tokens come back: all, the last valid one, or none. */
type RunRead = "all" | "last" | null;

export class CudaExecutor extends ExecutorBase {
  info: CudaDeviceInfo | null = null;
  /** What runs: the target layer's program for this GPU and these weights (after init). */
  program: CudaProgram | null = null;
  /** Launches of the last step (all chunks). */
  lastStep: { tokens: number; launches: number; graphs: number } | null = null;

  private driver: CudaDriver | null = null;
  private ctx: Handle = null;
  private stream: Handle = null;
  private cuModule: Handle = null;
  private readonly allocations: DevicePtr[] = [];
  private decode: PreparedStep | null = null;
  private prefill: PreparedStep | null = null;
  private ready: Promise<void> | null = null;

  constructor(
    readonly graph: Graph,
    private readonly weights: WeightSource,
    readonly opts: CudaExecutorOptions = {},
  ) {
    super(graph);
  }

  /** The module of the program (after init). */
  get module(): CudaModule | null {
    return this.program?.module ?? null;
  }

  /** Opens the device, loads the kernels and uploads the weights (once; later calls wait for it). */
  init(): Promise<void> {
    this.ready ??= Promise.resolve().then(() => this.setup());
    return this.ready;
  }

  private setup(): void {
    const o = this.opts;
    const driver = new CudaDriver(o.libcuda);
    this.driver = driver;
    const { dev, cc } = driver.openDevice(o.device);
    this.ctx = driver.createContext(dev);
    const clock = driver.attribute(dev, ATTR.memoryClockKHz);
    const bus = driver.attribute(dev, ATTR.memoryBusWidthBits);
    const program = compileCuda(this.graph, {
      archs: [cc],
      stored: (name) => this.weights.raw?.(name)?.dtype,
      ...(o.weightDType ? { requested: o.weightDType } : {}),
      ...(o.prefillChunk !== undefined ? { prefillChunk: o.prefillChunk } : {}),
      f32TensorCores: o.f32TensorCores ?? false,
    });
    this.program = program;
    const module = program.module;
    const profile = module.profiles[0]!.profile;
    const { decode, prefill } = program.steps(profile);
    // Before kernels are compiled or loaded: a model that cannot fit fails at once.
    this.checkMemory(module, [decode, ...(prefill ? [prefill] : [])]);
    const names = [...new Set([decode, ...(prefill ? [prefill] : [])].flatMap((s) => s.launches.map((l) => l.kernel)))];
    const driverVersion = driver.driverVersion();
    const { image, library } = this.moduleImage(module, cc, names, driverVersion);
    this.info = {
      name: driver.deviceName(dev), ordinal: o.device ?? 0, computeCapability: cc, multiprocessors: driver.attribute(dev, ATTR.multiprocessors),
      totalMemory: driver.totalMemory(dev), peakBandwidth: 2 * clock * 1000 * (bus / 8), driverVersion, profile, library,
    };
    this.cuModule = driver.loadModule(image);
    const functions = new Map(names.map((n) => [n, driver.getFunction(this.cuModule, n)]));
    this.stream = driver.createStream();

    // Shared by both step shapes: weights (uploaded now) and the KV cache.
    const shared = new Map<string, Buffer_>();
    const total = module.weights.reduce((a, w) => a + w.layout.bytes, 0);
    let done = 0;
    for (const w of module.weights) {
      const data = deviceWeightBytes(w, module.weights, this.weights);
      const buf = this.alloc(w.layout.bytes);
      driver.htod(buf.ptr, data);
      shared.set(`weight:${w.name}`, buf);
      done += w.layout.bytes;
      o.onProgress?.(done, total);
    }
    this.decode = this.prepare(decode, shared, functions);
    this.prefill = prefill ? this.prepare(prefill, shared, functions) : null;
  }

  /** PTX (or an emulation image) holding every kernel in `names`, for this device. */
  private moduleImage(module: CudaModule, cc: ComputeCapability, names: string[], driverVersion: number): { image: Uint8Array; library: string } {
    if (this.opts.image) return { image: this.opts.image(module, cc), library: "provided image" };
    const dirs = this.opts.kernelDirs ?? (process.env["LLMC_CUDA_KERNELS"] ?? "").split(":").filter(Boolean);
    const libraries: KernelLibrary[] = [];
    for (const d of dirs) {
      const lib = readKernelLibrary(d);
      if (lib) libraries.push(lib);
    }
    let found = libraries.find((l) => libraryHas(l, names) && pickArch(l.ptx.keys(), cc) !== null);
    if (!found) {
      const cached = cachedLibrary(module.source, cc);
      if (cached) found = cached;
    }
    if (!found) {
      throw new CudaError(
        `no compiled kernels for this model on ${archName(cc)}: nvcc is not on the PATH and ${dirs.length ? `none of ${dirs.join(", ")} holds them` : "no kernel folder was given"}. ` +
          "Compile them on a machine with the CUDA toolkit (llmc compile MODEL.llm --target cuda -o DIR, with the same --set values and weight format) and pass DIR " +
          "(LLMC_CUDA_KERNELS=DIR), or install the CUDA toolkit here.",
        0,
      );
    }
    const arch = pickArch(found.ptx.keys(), cc)!;
    const fitted = fitPtxVersion(found.ptx.get(arch)!, driverVersion);
    const image = new TextEncoder().encode(fitted.ptx + "\0");
    return { image, library: `${found.where} (${arch} PTX${fitted.to ? `, ISA ${fitted.from} declared as ${fitted.to} for this driver` : ""})` };
  }

  private checkMemory(module: CudaModule, steps: CudaStepPlan[]): void {
    const weights = module.weights.reduce((a, w) => a + w.layout.bytes, 0);
    const kv = steps[0]!.buffers.filter((b) => b.kind === "kv").reduce((a, b) => a + b.bytes, 0);
    const other = steps.reduce((a, s) => a + s.buffers.filter((b) => b.kind !== "weight" && b.kind !== "kv").reduce((x, b) => x + b.bytes, 0), 0);
    const need = weights + kv + other;
    const { free } = this.driver!.memoryInfo();
    if (need > free) {
      throw new ResourceError(
        `the model needs ${formatBytes(need)} of GPU memory (weights ${formatBytes(weights)}, KV cache ${formatBytes(kv)}, activations ${formatBytes(other)}) but only ${formatBytes(free)} is free; ` +
          "use a shorter context (--set max_seq_len=N), a quantized model, a smaller prefill chunk or another backend",
        need,
        free,
      );
    }
  }

  private alloc(bytes: number): Buffer_ {
    let ptr: DevicePtr;
    try {
      ptr = this.driver!.alloc(Math.max(16, bytes));
    } catch (e) {
      if (!(e instanceof CudaError && e.code === CUDA_ERROR_OUT_OF_MEMORY)) throw e;
      throw new ResourceError(`out of GPU memory allocating ${formatBytes(bytes)} (${e.message}); use a shorter context (--set max_seq_len=N), a quantized model or another backend`, bytes, 0, { cause: e });
    }
    this.allocations.push(ptr);
    return { ptr, bytes };
  }

  private prepare(step: CudaStepPlan, shared: Map<string, Buffer_>, functions: Map<string, Handle>): PreparedStep {
    const d = this.driver!;
    const sharedBuffers: SharedBuffers<Buffer_> = {
      weight: (name) => shared.get(`weight:${name}`)!,
      kv: (b) => {
        const key = `kv:${b.holds}`;
        let buf = shared.get(key);
        if (!buf) {
          buf = this.alloc(b.bytes);
          d.memset(buf.ptr, 0, b.bytes);
          shared.set(key, buf);
        }
        return buf;
      },
    };
    // compileCuda has checked that the graph's inputs are tokens and pos.
    const { buffers, inputs } = stepBuffers(step, d, sharedBuffers, (bytes) => this.alloc(bytes), (b) => b.ptr);
    const launches = stepLaunches(step, (kernel) => functions.get(kernel)!, (i) => buffers[i]!.ptr);
    return { step, buffers, launches, inputs, params: buffers[step.paramsBuffer]!, graph: null };
  }

  /** Runs one step (prefill or decode) and returns the graph's first output, e.g. logits [T, vocab]. */
  async step(inputs: StepInputs): Promise<HostTensor> {
    return (await this.stepOutputs(inputs))[0]!;
  }

  /** Runs one step and returns every output of the graph. */
  async stepOutputs(inputs: StepInputs): Promise<HostTensor[]> {
    if (this.disposed) throw new Error("this CUDA executor was disposed");
    return this.exclusive(async () => {
      await this.init();
      return this.run(inputs);
    });
  }

  private run(inputs: StepInputs): HostTensor[] {
    const { T, pos } = this.checkStep(inputs, this.program!.tokenTables);
    const read = inputs.read ?? "logits";
    const module = this.module!;
    const runs: { prog: PreparedStep; tokens: Int32Array; pos: Int32Array; valid: number }[] = [];
    const chunk = this.prefill?.step.T ?? 1;
    let i = 0;
    while (i < T) {
      const left = T - i;
      if (left >= chunk && this.prefill) {
        runs.push({ prog: this.prefill, tokens: inputs.tokens.subarray(i, i + chunk), pos: pos.subarray(i, i + chunk), valid: chunk });
        i += chunk;
      } else if (left > 1 && this.prefill && module.paddingSafe) {
        const tok = new Int32Array(chunk);
        tok.set(inputs.tokens.subarray(i));
        const p = Int32Array.from({ length: chunk }, (_, j) => (j < left ? pos[i + j]! : pos[T - 1]! + 1 + j - left));
        runs.push({ prog: this.prefill, tokens: tok, pos: p, valid: left });
        i = T;
      } else {
        runs.push({ prog: this.decode!, tokens: inputs.tokens.subarray(i, i + 1), pos: pos.subarray(i, i + 1), valid: 1 });
        i += 1;
      }
    }
    const stats = { tokens: T, launches: 0, graphs: 0 };
    const outs = runs.map((r, k) => this.runStep(r.prog, r.tokens, r.pos, r.valid, stats, read === "logits" ? "all" : k === runs.length - 1 ? "last" : null));
    this.lastStep = stats;
    const last = outs[outs.length - 1]!;
    if (read === "argmax") return [lastRowArgmax(last[0]!), ...last.slice(1)];
    if (outs.length === 1 || read === "last") return last;
    // Outputs over this step's tokens are the rows of every run; others are those of the last run.
    const perToken = this.decode!.step.outputs.map((o) => o.perToken);
    return last.map((final, k) => {
      if (!perToken[k]) return final;
      const parts = outs.map((r) => r[k]!);
      const data = new (final.data.constructor as Float32ArrayConstructor)(parts.reduce((a, p) => a + p.data.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p.data as Float32Array, at);
        at += p.data.length;
      }
      return { shape: [T, ...final.shape.slice(1)], dtype: final.dtype, data };
    });
  }

  /** One launch of a step plan for `tokens` (the first `valid` real); returns every output, with
   *  those over this step's tokens cut to the rows `read` asks for (none: nothing is read back). */
  private runStep(prog: PreparedStep, tokens: Int32Array, pos: Int32Array, valid: number, stats: { launches: number; graphs: number }, read: RunRead): HostTensor[] {
    const d = this.driver!;
    const s = this.stream;
    const P = this.past;
    const tok = prog.inputs.get("tokens");
    const ps = prog.inputs.get("pos");
    if (tok) d.htodAsync(tok.ptr, tokens, s);
    if (ps) d.htodAsync(ps.ptr, pos, s);
    d.htodAsync(prog.params.ptr, Int32Array.of(P, 0, 0, 0), s);
    const useGraph = prog.step.T === 1 && this.opts.cudaGraphs !== false;
    if (useGraph) {
      if (!prog.graph) {
        d.beginCapture(s);
        try {
          for (const l of prog.launches) d.launch(l.fn, l.grid, l.block, s, l.args, l.name);
        } catch (e) {
          try {
            d.destroyGraph(d.endCapture(s));
          } catch {
            // the capture error is the one to report
          }
          throw e;
        }
        const graph = d.endCapture(s);
        prog.graph = { graph, exec: d.instantiate(graph) };
      }
      d.graphLaunch(prog.graph.exec, s);
      stats.graphs++;
    } else {
      for (const l of prog.launches) d.launch(l.fn, l.grid, l.block, s, l.args, l.name);
    }
    stats.launches += prog.launches.length;
    d.streamSynchronize(s);
    this.past = P + valid;
    if (read === null) return [];
    const env = new Map([["P", P]]);
    return prog.step.outputs.map((out): HostTensor => {
      const shape = out.shape.map((dim) => evalDim(dim, env));
      let offset = out.offsetBytes;
      if (out.perToken && read === "last") {
        offset += (valid - 1) * size(shape.slice(1)) * 4;
        shape[0] = 1;
      } else if (out.perToken) shape[0] = valid;
      const count = size(shape);
      const raw = new Uint8Array(count * 4);
      d.dtoh(raw, prog.buffers[out.buffer]!.ptr + offset);
      const data = out.dtype === "i32" ? new Int32Array(raw.buffer) : out.dtype === "bool" ? Uint8Array.from(new Uint32Array(raw.buffer), (v) => (v ? 1 : 0)) : new Float32Array(raw.buffer);
      return { shape, dtype: out.dtype, data };
    });
  }

  /** Releases the GPU memory, the module and the context. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const d = this.driver;
    if (!d) return;
    for (const p of [this.decode, this.prefill]) {
      if (p?.graph?.exec) d.destroyGraphExec(p.graph.exec);
      if (p?.graph?.graph) d.destroyGraph(p.graph.graph);
    }
    for (const ptr of this.allocations) d.free(ptr);
    this.allocations.length = 0;
    if (this.cuModule) d.unloadModule(this.cuModule);
    if (this.stream) d.destroyStream(this.stream);
    if (this.ctx) d.destroyContext(this.ctx);
  }
}

/** A CUDA executor whose device, kernels and weights are ready (errors surface here). */
export async function createCudaExecutor(graph: Graph, weights: WeightSource, opts: CudaExecutorOptions = {}): Promise<CudaExecutor> {
  const ex = new CudaExecutor(graph, weights, opts);
  await ex.init();
  return ex;
}

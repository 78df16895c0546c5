// Runs a compiled graph on an NVIDIA GPU through the CUDA driver API, with the CPU interpreter's
// interface: constructor(graph, weights) + init(), step({tokens, pos}) → logits, reset(), past,
// dispose().
//
// init() picks the tuning profile for the GPU's compute capability, emits the module (a decode step
// and a prefill chunk), loads its PTX, uploads the weights in their storage formats and allocates
// the KV cache and the activation buffers of both step shapes. A decode step writes the tokens,
// positions and P, replays a CUDA graph captured on the first decode step, and reads the logits
// back. A prompt runs as prefill chunks (the last one padded, or as decode steps where padding is
// not safe — see emit/cuda/index.ts).

import { evalDim } from "../../compiler/base/symbolic.js";
import {
  archName, emitCudaModule, stepsFor, weightLayout,
  type ComputeCapability, type CudaModule, type CudaStepPlan, type CudaWeight, type WeightFormat,
} from "../../compiler/emit/cuda/index.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import { ContextOverflowError, type StepInputs, type WeightSource } from "../cpu/interpreter.js";
import { decodeTensor, encodeTensor, type WeightDType } from "../weights/dtypes.js";
import { ATTR, CudaDriver, CudaError, CudaUnavailableError, type DevicePtr, type Handle } from "./driver.js";
import { cachedLibrary, fitPtxVersion, libraryHas, pickArch, readKernelLibrary, type KernelLibrary } from "./ptx.js";

export { CudaUnavailableError, CudaError } from "./driver.js";

/** Weights as f32 values, or as stored bytes (GGUF layout for q8_0/q4_0, 16-bit patterns for f16/bf16). */
export type CudaWeightSource = (name: string, shape: readonly number[]) => Float32Array | { dtype: WeightDType; data: Uint8Array };

export interface CudaExecutorOptions {
  /** Device ordinal (default 0). */
  device?: number;
  /** Path of libcuda.so.1 (default: $LLMC_LIBCUDA, then the loader's search). */
  libcuda?: string;
  /** How weights are stored on the GPU: one format for every matrix, or a choice per weight (default
   *  f32). Weights that cannot take a format stay f32 (see `module.weights[].demoted`). */
  weightFormat?: WeightFormat | ((name: string, shape: readonly number[]) => WeightFormat);
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

interface PreparedLaunch {
  fn: Handle;
  name: string;
  grid: [number, number, number];
  block: [number, number, number];
  args: BigUint64Array[];
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

/** GGUF q8_0 / q4_0 blocks → llmc's device layout: all quants, then all f16 scales. */
export function repackQuantized(format: "q8_0" | "q4_0", blocks: Uint8Array, shape: readonly number[]): Uint8Array {
  const layout = weightLayout(format, shape);
  const out = new Uint8Array(layout.bytes);
  const nb = size(shape) / 32;
  const blockBytes = format === "q8_0" ? 34 : 18;
  const quantBytes = blockBytes - 2;
  if (blocks.length !== nb * blockBytes) throw new Error(`a ${format} tensor of shape [${shape.join(", ")}] has ${nb * blockBytes} bytes, got ${blocks.length}`);
  for (let b = 0; b < nb; b++) {
    const o = b * blockBytes;
    out[layout.scaleOffset + 2 * b] = blocks[o]!;
    out[layout.scaleOffset + 2 * b + 1] = blocks[o + 1]!;
    out.set(blocks.subarray(o + 2, o + blockBytes), b * quantBytes);
  }
  return out;
}

/** The bytes of a weight in its device format, from whatever the source gives. */
export function deviceBytes(w: CudaWeight, value: ReturnType<CudaWeightSource>): Uint8Array {
  let f32: Float32Array;
  if (value instanceof Float32Array) f32 = value;
  else if (value.dtype === w.format && w.format !== "q8_0" && w.format !== "q4_0") return value.data;
  else if (value.dtype === w.format) return repackQuantized(w.format as "q8_0" | "q4_0", value.data, w.shape);
  else f32 = decodeTensor(value.dtype, value.data);
  if (f32.length !== size(w.shape)) throw new Error(`weight '${w.name}' has ${f32.length} values, expected ${size(w.shape)} for shape [${w.shape.join(", ")}]`);
  const bytes = encodeTensor(w.format, f32);
  return w.format === "q8_0" || w.format === "q4_0" ? repackQuantized(w.format, bytes, w.shape) : bytes;
}

export class CudaExecutor {
  /** Positions already in the KV cache (P). */
  past = 0;
  readonly maxSeqLen: number;
  info: CudaDeviceInfo | null = null;
  module: CudaModule | null = null;
  /** Launches of the last step (all chunks). */
  lastStep: { tokens: number; launches: number; graphs: number } | null = null;

  private driver: CudaDriver | null = null;
  private ctx: Handle = null;
  private stream: Handle = null;
  private cuModule: Handle = null;
  private readonly allocations: DevicePtr[] = [];
  private decode: PreparedStep | null = null;
  private prefill: PreparedStep | null = null;
  private tokenRows: number[] = [];
  private ready: Promise<void> | null = null;
  private running = false;
  private disposed = false;

  constructor(
    readonly graph: Graph,
    private readonly weights: WeightSource | CudaWeightSource,
    readonly opts: CudaExecutorOptions = {},
  ) {
    this.maxSeqLen = Math.min(...[...graph.states.values()].map((s) => s.maxSeqLen), Number.MAX_SAFE_INTEGER);
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
    driver.init();
    const count = driver.deviceCount();
    if (count === 0) throw new CudaUnavailableError("the NVIDIA driver reports no CUDA device");
    const ordinal = o.device ?? 0;
    if (ordinal < 0 || ordinal >= count) throw new CudaUnavailableError(`CUDA device ${ordinal} does not exist (there are ${count})`);
    const dev = driver.device(ordinal);
    const cc = { major: driver.attribute(dev, ATTR.ccMajor), minor: driver.attribute(dev, ATTR.ccMinor) };
    this.ctx = driver.createContext(dev);
    const clock = driver.attribute(dev, ATTR.memoryClockKHz);
    const bus = driver.attribute(dev, ATTR.memoryBusWidthBits);
    const wanted = o.weightFormat;
    const module = emitCudaModule(this.graph, {
      archs: [cc],
      weightFormat: typeof wanted === "function" ? wanted : (_, shape) => (shape.length === 2 ? wanted ?? "f32" : "f32"),
      ...(o.prefillChunk !== undefined ? { prefillChunk: o.prefillChunk } : {}),
      f32TensorCores: o.f32TensorCores ?? false,
    });
    this.module = module;
    const profile = module.profiles[0]!.profile;
    const { decode, prefill } = stepsFor(module, profile);
    const names = [...new Set([decode, ...(prefill ? [prefill] : [])].flatMap((s) => s.launches.map((l) => l.kernel)))];
    const driverVersion = driver.driverVersion();
    const { image, library } = this.moduleImage(module, cc, names, driverVersion);
    this.info = {
      name: driver.deviceName(dev), ordinal, computeCapability: cc, multiprocessors: driver.attribute(dev, ATTR.multiprocessors),
      totalMemory: driver.totalMemory(dev), peakBandwidth: 2 * clock * 1000 * (bus / 8), driverVersion, profile, library,
    };
    this.cuModule = driver.loadModule(image);
    const functions = new Map(names.map((n) => [n, driver.getFunction(this.cuModule, n)]));
    this.stream = driver.createStream();
    this.checkMemory(module, [decode, ...(prefill ? [prefill] : [])]);

    // Shared by both step shapes: weights (uploaded now) and the KV cache.
    const shared = new Map<string, Buffer_>();
    const total = module.weights.reduce((a, w) => a + w.layout.bytes, 0);
    let done = 0;
    for (const w of module.weights) {
      const data = deviceBytes(w, (this.weights as CudaWeightSource)(w.name, w.shape));
      const buf = this.alloc(w.layout.bytes);
      driver.htod(buf.ptr, data);
      shared.set(`weight:${w.name}`, buf);
      done += w.layout.bytes;
      o.onProgress?.(done, total);
    }
    this.decode = this.prepare(decode, shared, functions);
    this.prefill = prefill ? this.prepare(prefill, shared, functions) : null;
    const nodes = new Map(decode.plan.graph.nodes.map((n) => [n.id, n]));
    this.tokenRows = decode.plan.dispatches
      .filter((d) => d.kernel === "gather" && nodes.get(d.inputs[1]!)?.op === "input" && nodes.get(d.inputs[1]!)?.attrs["name"] === "tokens")
      .map((d) => evalDim(nodes.get(d.inputs[0]!)!.ty.shape[0]!, new Map()));
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
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
      throw new CudaError(`the model needs ${gib(need)} of GPU memory (weights ${gib(weights)}, KV cache ${gib(kv)}, activations ${gib(other)}) but only ${gib(free)} is free; try a smaller max_seq_len, a quantized weight format or a smaller prefill chunk`, 2);
    }
  }

  private alloc(bytes: number): Buffer_ {
    const ptr = this.driver!.alloc(Math.max(16, bytes));
    this.allocations.push(ptr);
    return { ptr, bytes };
  }

  private prepare(step: CudaStepPlan, shared: Map<string, Buffer_>, functions: Map<string, Handle>): PreparedStep {
    const d = this.driver!;
    const inputs = new Map<string, Buffer_>();
    const buffers = step.buffers.map((b): Buffer_ => {
      switch (b.kind) {
        case "weight":
          return shared.get(`weight:${b.holds}`)!;
        case "kv": {
          const key = `kv:${b.holds}`;
          let buf = shared.get(key);
          if (!buf) {
            buf = this.alloc(b.bytes);
            d.memset(buf.ptr, 0, b.bytes);
            shared.set(key, buf);
          }
          return buf;
        }
        case "literal": {
          const buf = this.alloc(b.bytes);
          d.htod(buf.ptr, b.data!);
          return buf;
        }
        case "input": {
          const buf = this.alloc(b.bytes);
          inputs.set(b.holds, buf);
          return buf;
        }
        default:
          return this.alloc(b.bytes);
      }
    });
    for (const name of inputs.keys()) {
      if (name !== "tokens" && name !== "pos") throw new Error(`the graph has an input '${name}' that the runtime does not provide (it provides tokens and pos)`);
    }
    const launches = step.launches.map((l): PreparedLaunch => ({
      fn: functions.get(l.kernel)!,
      name: l.kernel,
      grid: l.grid,
      block: l.block,
      args: l.args.map((a) => BigUint64Array.of(BigInt(buffers[a.buffer]!.ptr) + BigInt(a.offsetBytes))),
    }));
    return { step, buffers, launches, inputs, params: buffers[step.paramsBuffer]!, graph: null };
  }

  /** Forgets the cached positions (the buffers are reused). */
  reset(): void {
    this.past = 0;
  }

  /** Runs one step (prefill or decode) and returns the graph's first output, e.g. logits [T, vocab]. */
  async step(inputs: StepInputs): Promise<HostTensor> {
    return (await this.stepOutputs(inputs))[0]!;
  }

  /** Runs one step and returns every output of the graph. */
  async stepOutputs(inputs: StepInputs): Promise<HostTensor[]> {
    if (this.disposed) throw new Error("this CUDA executor was disposed");
    if (this.running) throw new Error("step() was called while another step is running; await each step before the next");
    await this.init();
    this.running = true;
    try {
      return this.run(inputs);
    } finally {
      this.running = false;
    }
  }

  private run(inputs: StepInputs): HostTensor[] {
    const T = inputs.tokens.length;
    if (T === 0) throw new Error("a step needs at least one token");
    const P = this.past;
    if (P + T > this.maxSeqLen) throw new ContextOverflowError(`context overflow: ${P} cached + ${T} new tokens exceed max_seq_len ${this.maxSeqLen}`);
    const pos = inputs.pos ?? Int32Array.from({ length: T }, (_, i) => P + i);
    if (pos.length !== T) throw new Error(`pos has ${pos.length} entries for ${T} tokens`);
    for (const rows of this.tokenRows) {
      const bad = inputs.tokens.findIndex((t) => t < 0 || t >= rows);
      if (bad >= 0) throw new RangeError(`token id ${inputs.tokens[bad]} (at index ${bad}) is out of range for a vocabulary of ${rows}`);
    }
    const module = this.module!;
    const runs: HostTensor[][] = [];
    const stats = { tokens: T, launches: 0, graphs: 0 };
    const chunk = this.prefill?.step.T ?? 1;
    let i = 0;
    while (i < T) {
      const left = T - i;
      if (left >= chunk && this.prefill) {
        runs.push(this.runStep(this.prefill, inputs.tokens.subarray(i, i + chunk), pos.subarray(i, i + chunk), chunk, stats));
        i += chunk;
      } else if (left > 1 && this.prefill && module.paddingSafe) {
        const tok = new Int32Array(chunk);
        tok.set(inputs.tokens.subarray(i));
        const p = Int32Array.from({ length: chunk }, (_, j) => (j < left ? pos[i + j]! : pos[T - 1]! + 1 + j - left));
        runs.push(this.runStep(this.prefill, tok, p, left, stats));
        i = T;
      } else {
        runs.push(this.runStep(this.decode!, inputs.tokens.subarray(i, i + 1), pos.subarray(i, i + 1), 1, stats));
        i += 1;
      }
    }
    this.lastStep = stats;
    if (runs.length === 1) return runs[0]!;
    // Outputs over this step's tokens are the rows of every run; others are those of the last run.
    const perToken = this.decode!.step.outputs.map((o) => o.perToken);
    return runs[0]!.map((first, k) => {
      if (!perToken[k]) return runs[runs.length - 1]![k]!;
      const parts = runs.map((r) => r[k]!);
      const data = new (first.data.constructor as Float32ArrayConstructor)(parts.reduce((a, p) => a + p.data.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p.data as Float32Array, at);
        at += p.data.length;
      }
      return { shape: [T, ...first.shape.slice(1)], dtype: first.dtype, data };
    });
  }

  /** One launch of a step plan for `tokens` (the first `valid` real); returns every output (the
   *  valid rows of those over this step's tokens). */
  private runStep(prog: PreparedStep, tokens: Int32Array, pos: Int32Array, valid: number, stats: { launches: number; graphs: number }): HostTensor[] {
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
    const env = new Map([["P", P]]);
    const outs = prog.step.outputs.map((out): HostTensor => {
      const shape = out.shape.map((dim) => evalDim(dim, env));
      if (out.perToken) shape[0] = valid;
      const count = size(shape);
      const raw = new Uint8Array(count * 4);
      d.dtoh(raw, prog.buffers[out.buffer]!.ptr + out.offsetBytes);
      const data = out.dtype === "i32" ? new Int32Array(raw.buffer) : out.dtype === "bool" ? Uint8Array.from(new Uint32Array(raw.buffer), (v) => (v ? 1 : 0)) : new Float32Array(raw.buffer);
      return { shape, dtype: out.dtype, data };
    });
    this.past = P + valid;
    return outs;
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
export async function createCudaExecutor(graph: Graph, weights: WeightSource | CudaWeightSource, opts: CudaExecutorOptions = {}): Promise<CudaExecutor> {
  const ex = new CudaExecutor(graph, weights, opts);
  await ex.init();
  return ex;
}

// One training step on CUDA: the training graph (compiler/autodiff) compiled by the same target
// layer as inference (compileCuda: plans, kernels.cu, launches), with the weights as plain f32
// buffers that the trainer rewrites after each optimiser step (CUDA weights never have norm gains
// folded in, so the gradient is of each weight as it is). A module is compiled and loaded per
// sequence length, on first use. A step writes the inputs (tokens, pos, targets), launches every
// kernel on one stream and reads back the loss and every gradient.

import { evalDim } from "../../compiler/base/symbolic.js";
import type { TrainingGraph } from "../../compiler/autodiff/index.js";
import { compileCuda, type ComputeCapability, type CudaModule } from "../../compiler/target/cuda.js";
import { checkTrainingStep, trainingWeightShapes, type TrainingStepResult } from "../cpu/train-step.js";
import { formatBytes, ResourceError } from "../errors.js";
import { ATTR, CudaDriver, CudaError, CudaUnavailableError, type DevicePtr, type Handle } from "./driver.js";
import { cachedLibrary, fitPtxVersion, pickArch } from "./ptx.js";
import { stepBuffers, stepLaunches, type PreparedLaunch, type SharedBuffers } from "./step.js";

export interface CudaTrainingOptions {
  /** Device ordinal (default 0). */
  device?: number;
  /** Path of libcuda.so.1 (default: $LLMC_LIBCUDA, then the loader's search). */
  libcuda?: string;
  /** Makes the loadable image of a module for the device instead of nvcc's PTX (tests: the CPU
   *  emulation). */
  image?: (module: CudaModule, arch: ComputeCapability) => Uint8Array;
}

/** The inputs a training step provides. */
const TRAINING_INPUTS = ["tokens", "pos", "targets"] as const;

/** CUresult of a failed cuMemAlloc. */
const CUDA_ERROR_OUT_OF_MEMORY = 2;

/** The loaded module and device buffers of one sequence length. */
interface StepProgram {
  cuModule: Handle;
  launches: PreparedLaunch[];
  inputs: Map<string, DevicePtr>;
  params: DevicePtr;
  /** Where each graph output is and how many f32 it has. */
  outputs: { ptr: DevicePtr; count: number }[];
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export class CudaTrainingStep {
  private readonly driver: CudaDriver;
  private readonly ctx: Handle;
  private readonly stream: Handle;
  private readonly cc: ComputeCapability;
  private readonly shapes: Map<string, number[]>;
  private readonly weights = new Map<string, DevicePtr>();
  private readonly allocations: DevicePtr[] = [];
  private readonly programs = new Map<number, StepProgram>();
  private disposed = false;

  constructor(
    readonly training: TrainingGraph,
    readonly opts: CudaTrainingOptions = {},
  ) {
    const d = new CudaDriver(opts.libcuda);
    this.driver = d;
    d.init();
    const count = d.deviceCount();
    if (count === 0) throw new CudaUnavailableError("the NVIDIA driver reports no CUDA device");
    const ordinal = opts.device ?? 0;
    if (ordinal < 0 || ordinal >= count) throw new CudaUnavailableError(`CUDA device ${ordinal} does not exist (there are ${count})`);
    const dev = d.device(ordinal);
    this.cc = { major: d.attribute(dev, ATTR.ccMajor), minor: d.attribute(dev, ATTR.ccMinor) };
    this.ctx = d.createContext(dev);
    this.stream = d.createStream();
    this.shapes = trainingWeightShapes(training);
    for (const [name, shape] of this.shapes) this.weights.set(name, this.alloc(size(shape) * 4));
  }

  /** Replaces the weights on the device (every weight of the training graph, by name). */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    this.live();
    for (const [name, shape] of this.shapes) {
      const data = weights.get(name);
      if (!data) throw new Error(`no weight '${name}' was given`);
      if (data.length !== size(shape)) throw new Error(`weight '${name}' has ${data.length} values, expected ${size(shape)} for shape [${shape.join(", ")}]`);
      this.driver.htod(this.weights.get(name)!, data);
    }
  }

  /** The loss and gradients of one sequence with the weights last set: `targets[i]` is the token
   *  expected after `tokens[i]` (negative: ignored); `pos` defaults to 0 … T−1. */
  async run(tokens: Int32Array, targets: Int32Array, pos?: Int32Array): Promise<TrainingStepResult> {
    this.live();
    const positions = checkTrainingStep(this.training, tokens, targets, pos);
    const prog = this.prepared(tokens.length);
    const d = this.driver;
    const s = this.stream;
    for (const [name, ptr] of prog.inputs) d.htodAsync(ptr, name === "tokens" ? tokens : name === "targets" ? targets : positions, s);
    d.htodAsync(prog.params, Int32Array.of(0, 0, 0, 0), s);
    for (const l of prog.launches) d.launch(l.fn, l.grid, l.block, s, l.args, l.name);
    d.streamSynchronize(s);
    const values = prog.outputs.map((o) => {
      const v = new Float32Array(o.count);
      d.dtoh(v, o.ptr);
      return v;
    });
    const grads = new Map(this.training.weightNames.map((name, i) => [name, values[i + 1]!]));
    return { loss: values[0]![0]!, grads };
  }

  /** Releases the GPU memory, the modules and the context. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const d = this.driver;
    d.setCurrent(this.ctx);
    for (const ptr of this.allocations) d.free(ptr);
    this.allocations.length = 0;
    for (const p of this.programs.values()) d.unloadModule(p.cuModule);
    d.destroyStream(this.stream);
    d.destroyContext(this.ctx);
  }

  /** Fails once disposed; makes this step's context current (other executors may have theirs). */
  private live(): void {
    if (this.disposed) throw new CudaError("this training step was disposed", 0);
    this.driver.setCurrent(this.ctx);
  }

  private alloc(bytes: number): DevicePtr {
    let ptr: DevicePtr;
    try {
      ptr = this.driver.alloc(Math.max(16, bytes));
    } catch (e) {
      if (!(e instanceof CudaError && e.code === CUDA_ERROR_OUT_OF_MEMORY)) throw e;
      throw new ResourceError(`out of GPU memory allocating ${formatBytes(bytes)} for a training step (${e.message}); use a shorter --context, a smaller batch or another backend`, bytes, 0, { cause: e });
    }
    this.allocations.push(ptr);
    return ptr;
  }

  private prepared(T: number): StepProgram {
    let p = this.programs.get(T);
    if (!p) {
      p = this.prepare(T);
      this.programs.set(T, p);
    }
    return p;
  }

  /** The program of a T-token step (its one step shape: T is the "prefill chunk", or decode at
   *  T = 1), its module loaded and its buffers allocated. */
  private prepare(T: number): StepProgram {
    const d = this.driver;
    const program = compileCuda(this.training.graph, { archs: [this.cc], prefillChunk: T, inputs: TRAINING_INPUTS });
    const module = program.module;
    for (const w of module.weights) {
      const shape = this.shapes.get(w.name);
      if (w.dtype !== "f32" || !shape || shape.join() !== w.shape.join()) throw new Error(`internal: training weight '${w.name}' is ${w.dtype} [${w.shape.join(", ")}] on the device, not f32 [${shape?.join(", ")}]`);
    }
    const { decode, prefill } = program.steps(module.profiles[0]!.profile);
    const step = T === 1 ? decode : prefill!;
    const cuModule = d.loadModule(this.moduleImage(module));
    const shared: SharedBuffers<DevicePtr> = {
      weight: (name) => this.weights.get(name)!,
      kv: () => {
        throw new Error("internal: a training graph has no KV cache");
      },
    };
    const { buffers, inputs } = stepBuffers(step, d, shared, (bytes) => this.alloc(bytes), (ptr) => ptr);
    const functions = new Map<string, Handle>();
    const fn = (name: string) => {
      if (!functions.has(name)) functions.set(name, d.getFunction(cuModule, name));
      return functions.get(name)!;
    };
    const launches = stepLaunches(step, fn, (i) => buffers[i]!);
    const env = new Map([["T", T], ["P", 0]]);
    const outputs = step.outputs.map((o) => {
      if (o.dtype !== "f32") throw new Error(`internal: training output ${o.node} is ${o.dtype}, not f32`);
      return { ptr: buffers[o.buffer]! + o.offsetBytes, count: size(o.shape.map((dim) => evalDim(dim, env))) };
    });
    return { cuModule, launches, inputs, params: buffers[step.paramsBuffer]!, outputs };
  }

  /** The emulation's image when given, else PTX that nvcc compiles into the kernel cache. */
  private moduleImage(module: CudaModule): Uint8Array {
    if (this.opts.image) return this.opts.image(module, this.cc);
    const lib = cachedLibrary(module.source, this.cc);
    const arch = lib && pickArch(lib.ptx.keys(), this.cc);
    if (!lib || !arch) throw new CudaError("training on CUDA compiles its kernels with nvcc, which is not on the PATH; install the CUDA toolkit, or train on another backend (--backend webgpu|cpu)", 0);
    return new TextEncoder().encode(fitPtxVersion(lib.ptx.get(arch)!, this.driver.driverVersion()).ptx + "\0");
  }
}

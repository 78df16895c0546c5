// One training step on CUDA: the training graph (compiler/autodiff) compiled by the same target
// layer as inference (compileCuda: plans, kernels.cu, launches), with the weights as plain f32
// buffers that the trainer rewrites after each optimiser step (CUDA weights never have norm gains
// folded in, so the gradient is of each weight as it is). A module is compiled and loaded per
// sequence length, on first use. A step writes the inputs (tokens, pos, targets, dropout masks),
// launches every kernel on one stream and reads back the loss and every gradient. CudaTraining
// (below) runs the optimiser on the device instead: gradients never leave it.

import { evalDim } from "../../compiler/base/symbolic.js";
import { packedTrainingGraph, type TrainingGraph, type TrainingPack } from "../../compiler/autodiff/index.js";
import { compileCuda, type ComputeCapability, type CudaModule, type CudaStepPlan } from "../../compiler/target/cuda.js";
import {
  checkSavedOptimizer, cudaOptimizerModule, flatLayout, optimizerSlots, packUpdateScalars, UPDATE_SCALARS_FLOATS,
  type CudaOptimizerModule, type DeviceOptimizerConfig, type FlatLayout,
} from "../../compiler/target/optimizer.js";
import { checkTrainingStep, packableRun, packedInputs, trainingInputNames, trainingInputs, trainingWeightShapes, type DeviceOptimizerState, type TrainingSequence, type TrainingStepResult } from "../cpu/train-step.js";
import type { DropoutKey } from "../../compiler/autodiff/index.js";
import { formatBytes, ResourceError } from "../errors.js";
import { CudaDriver, CudaError, type DevicePtr, type Handle } from "./driver.js";
import { cachedLibrary, fitPtxVersion, pickArch } from "./ptx.js";
import { stepBuffers, stepLaunches, type PreparedLaunch, type SharedBuffers } from "./step.js";

export interface CudaTrainingOptions {
  /** Device ordinal (default 0). */
  device?: number;
  /** Path of libcuda.so.1 (default: $LLMC_LIBCUDA, then the loader's search). */
  libcuda?: string;
  /** Makes the loadable image of a module for the device instead of nvcc's PTX (tests: the CPU
   *  emulation). */
  image?(module: Pick<CudaModule, "source" | "kernels">, arch: ComputeCapability): Uint8Array;
  /** CudaTraining runs sequences of one length as one packed step of up to this many tokens
   *  (compiler/autodiff/pack.ts; default 1024; 1 never packs). */
  packTokens?: number;
}

/** CUresult of a failed cuMemAlloc. */
const CUDA_ERROR_OUT_OF_MEMORY = 2;

/** The loaded module and device buffers of one sequence length. */
export interface StepProgram {
  cuModule: Handle;
  launches: PreparedLaunch[];
  inputs: Map<string, DevicePtr>;
  params: DevicePtr;
  /** Where each graph output is and how many f32 it has. */
  outputs: { ptr: DevicePtr; count: number }[];
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export class CudaTrainingStep {
  readonly driver: CudaDriver;
  private readonly ctx: Handle;
  /** The stream every launch goes to. */
  readonly stream: Handle;
  private readonly cc: ComputeCapability;
  private readonly shapes: Map<string, number[]>;
  private readonly weights = new Map<string, DevicePtr>();
  private readonly allocations: DevicePtr[] = [];
  /** Per step kind ("T" tokens, or "k×L" packed) its program. */
  private readonly programs = new Map<string, StepProgram>();
  /** The packed variants of the training graph, by "k×L". */
  private readonly packs = new Map<string, TrainingGraph>();
  private readonly modules: Handle[] = [];
  private disposed = false;
  /** The most tokens a packed step takes: opts.packTokens, halved each time a packed step's
   *  buffers do not fit in the GPU's memory. */
  packTokens: number;

  constructor(
    readonly training: TrainingGraph,
    readonly opts: CudaTrainingOptions = {},
  ) {
    this.packTokens = opts.packTokens ?? 1024;
    const d = new CudaDriver(opts.libcuda);
    this.driver = d;
    const { dev, cc } = d.openDevice(opts.device);
    this.cc = cc;
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
   *  expected after `tokens[i]` (negative: ignored); `pos` defaults to 0 … T−1; `dropout` draws the
   *  masks (none: no dropout). */
  async run(tokens: Int32Array, targets: Int32Array, pos?: Int32Array, dropout?: DropoutKey): Promise<TrainingStepResult> {
    const prog = this.enqueue(tokens, targets, pos, dropout);
    const d = this.driver;
    d.streamSynchronize(this.stream);
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
    for (const m of this.modules) d.unloadModule(m);
    d.destroyStream(this.stream);
    d.destroyContext(this.ctx);
  }

  /**
   * Moves the weights the optimiser trains into `flat` (each at its segment), so the kernels read the
   * optimiser's parameters themselves; before the first step.
   */
  placeWeights(flat: DevicePtr, layout: FlatLayout): void {
    this.live();
    if (this.programs.size > 0) throw new Error("internal: weights are placed before the first step");
    for (const seg of layout.segments) {
      const own = this.weights.get(seg.name);
      if (own === undefined) throw new Error(`internal: the training graph has no weight '${seg.name}'`);
      this.driver.free(own);
      this.allocations.splice(this.allocations.indexOf(own), 1);
      this.weights.set(seg.name, flat + seg.offset * 4);
    }
  }

  /** Device memory the step owns until disposed. */
  alloc(bytes: number): DevicePtr {
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

  /** Queues one sequence's inputs and kernels on the stream (nothing waits); its program. */
  enqueue(tokens: Int32Array, targets: Int32Array, pos?: Int32Array, dropout?: DropoutKey): StepProgram {
    this.live();
    const positions = checkTrainingStep(this.training, tokens, targets, pos);
    const prog = this.prepared(String(tokens.length), this.training, tokens.length);
    return this.launch(prog, trainingInputs(this.training, tokens, targets, positions, dropout));
  }

  /** Queues the first sequences of `sequences` that pack (pack.ts) as one step, or the first alone;
   *  how many it took and the step's program, whose loss and gradients are the sums of theirs. */
  enqueueRun(sequences: readonly TrainingSequence[]): { taken: number; prog: StepProgram } {
    const first = sequences[0]!;
    for (;;) {
      const k = packableRun(this.training, sequences, this.packTokens);
      if (k === 1) return { taken: 1, prog: this.enqueue(first.tokens, first.targets, undefined, first.dropout) };
      this.live();
      const pack: TrainingPack = { segment: first.tokens.length, sequences: k };
      const key = `${k}x${pack.segment}`;
      let tg = this.packs.get(key);
      if (!tg) this.packs.set(key, (tg = packedTrainingGraph(this.training, pack)));
      let prog: StepProgram;
      try {
        prog = this.prepared(key, tg, k * pack.segment);
      } catch (e) {
        // Out of GPU memory for this many tokens at once: pack half as many from now on.
        if (!(e instanceof ResourceError)) throw e;
        this.packs.delete(key);
        this.packTokens = (k * pack.segment) >> 1;
        continue;
      }
      return { taken: k, prog: this.launch(prog, packedInputs(tg, sequences.slice(0, k))) };
    }
  }

  private launch(prog: StepProgram, inputs: ReadonlyMap<string, Int32Array | Float32Array>): StepProgram {
    const d = this.driver;
    const s = this.stream;
    for (const [name, ptr] of prog.inputs) d.htodAsync(ptr, inputs.get(name)!, s);
    d.htodAsync(prog.params, Int32Array.of(0, 0, 0, 0), s);
    for (const l of prog.launches) d.launch(l.fn, l.grid, l.block, s, l.args, l.name);
    return prog;
  }

  /** Loads a module's image (the emulation's when the options give one, else nvcc's PTX). */
  load(module: Pick<CudaModule, "source" | "kernels">): Handle {
    this.live();
    const m = this.driver.loadModule(this.moduleImage(module));
    this.modules.push(m);
    return m;
  }

  /** Fails once disposed; makes this step's context current (other executors may have theirs). */
  live(): void {
    if (this.disposed) throw new CudaError("this training step was disposed", 0);
    this.driver.setCurrent(this.ctx);
  }

  private prepared(key: string, training: TrainingGraph, T: number): StepProgram {
    let p = this.programs.get(key);
    if (!p) {
      p = this.prepare(training, T);
      this.programs.set(key, p);
    }
    return p;
  }

  /** The program of a T-token step of `training` (its one step shape: T is the "prefill chunk", or
   *  decode at T = 1), its module loaded and its buffers allocated. */
  private prepare(training: TrainingGraph, T: number): StepProgram {
    const d = this.driver;
    const program = compileCuda(training.graph, { archs: [this.cc], prefillChunk: T, inputs: trainingInputNames(training) });
    const module = program.module;
    for (const w of module.weights) {
      const shape = this.shapes.get(w.name);
      if (w.dtype !== "f32" || !shape || shape.join() !== w.shape.join()) throw new Error(`internal: training weight '${w.name}' is ${w.dtype} [${w.shape.join(", ")}] on the device, not f32 [${shape?.join(", ")}]`);
    }
    const { decode, prefill } = program.steps(module.profiles[0]!.profile);
    const step = T === 1 ? decode : prefill!;
    const cuModule = d.loadModule(this.moduleImage(module));
    const held = this.allocations.length;
    try {
      return this.program(step, cuModule, T);
    } catch (e) {
      // A program that could not get its buffers gives back those it got, and its module.
      for (const ptr of this.allocations.splice(held)) d.free(ptr);
      d.unloadModule(cuModule);
      throw e;
    }
  }

  private program(step: CudaStepPlan, cuModule: Handle, T: number): StepProgram {
    const d = this.driver;
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
  private moduleImage(module: Pick<CudaModule, "source" | "kernels">): Uint8Array {
    if (this.opts.image) return this.opts.image(module, this.cc);
    const lib = cachedLibrary(module.source, this.cc);
    const arch = lib && pickArch(lib.ptx.keys(), this.cc);
    if (!lib || !arch) throw new CudaError("training on CUDA compiles its kernels with nvcc, which is not on the PATH; install the CUDA toolkit, or train on another backend (--backend webgpu|cpu)", 0);
    return new TextEncoder().encode(fitPtxVersion(lib.ptx.get(arch)!, this.driver.driverVersion()).ptx + "\0");
  }
}

/** The accumulate kernel's table for one sequence length: each output's address, its offset in the
 *  flat layout and its size. */
interface AccumulateTable {
  sources: DevicePtr;
  segments: DevicePtr;
  entries: number;
  largest: number;
}

/**
 * Training with the optimiser on CUDA: the trained parameters, the step's gradient sums and the
 * optimiser's moments live in flat device buffers (compiler/target/optimizer.ts) for the whole run;
 * the kernels of the training graph read the weights inside the flat parameter buffer. A step queues
 * every sequence (inputs, the graph's kernels, one launch adding its loss and gradients to the sums),
 * then the sum of squares for the global norm, and waits once; the update is one launch.
 */
export class CudaTraining {
  readonly layout: FlatLayout;
  private readonly module: CudaOptimizerModule;
  private readonly fns: { accumulate: Handle; sumOfSquares: Handle; update: Handle };
  private readonly sums: DevicePtr;
  private readonly flat: DevicePtr;
  private readonly slots: DevicePtr[];
  private readonly partials: DevicePtr;
  private readonly hyper: DevicePtr;
  private readonly slotNames: string[];
  private readonly tables = new Map<StepProgram, AccumulateTable>();
  private t = 0;

  /** `params`: the trained weights; `frozen`: weights the graph reads but the run does not train. */
  constructor(
    readonly step: CudaTrainingStep,
    params: ReadonlyMap<string, Float32Array>,
    frozen: ReadonlyMap<string, Float32Array>,
    readonly optimizer: DeviceOptimizerConfig,
  ) {
    const shapes = new Map([...params].map(([name, v]) => [name, [v.length]]));
    this.layout = flatLayout(shapes, optimizer.decayed);
    this.module = cudaOptimizerModule(this.layout, optimizer.rule);
    this.slotNames = optimizerSlots(optimizer.rule);
    const bytes = this.layout.total * 4;
    const zeroed = (n: number) => {
      const p = step.alloc(n);
      step.driver.memset(p, 0, n);
      return p;
    };
    this.sums = zeroed(bytes);
    this.flat = zeroed(bytes);
    this.slots = this.slotNames.map(() => zeroed(bytes));
    this.partials = step.alloc(this.module.blocks * 4);
    this.hyper = step.alloc(UPDATE_SCALARS_FLOATS * 4);
    step.placeWeights(this.flat, this.layout);
    step.setWeights(new Map([...frozen, ...params]));
    const cuModule = step.load({ source: this.module.source, kernels: Object.values(this.module.kernels) });
    const k = this.module.kernels;
    const d = step.driver;
    this.fns = { accumulate: d.getFunction(cuModule, k.accumulate.name), sumOfSquares: d.getFunction(cuModule, k.sumOfSquares.name), update: d.getFunction(cuModule, k.update.name) };
  }

  /** Runs the sequences (all of one optimiser step), summing losses and gradients on the device:
   *  the sum of their losses and the L2 norm of the summed gradients. */
  async accumulate(sequences: readonly TrainingSequence[]): Promise<{ lossSum: number; gradSumNorm: number }> {
    const d = this.step.driver;
    const s = this.step.stream;
    for (let i = 0; i < sequences.length; ) {
      const { taken, prog } = this.step.enqueueRun(sequences.slice(i));
      i += taken;
      const table = this.table(prog);
      const blocks = Math.max(1, Math.min(64, Math.ceil(table.largest / this.module.blockSize)));
      d.launch(this.fns.accumulate, [blocks, table.entries, 1], [this.module.blockSize, 1, 1], s, [ptrArg(this.sums), ptrArg(table.sources), ptrArg(table.segments)], "optimizer accumulate");
    }
    d.launch(this.fns.sumOfSquares, [this.module.blocks, 1, 1], [this.module.blockSize, 1, 1], s, [ptrArg(this.sums), ptrArg(this.partials)], "optimizer sum of squares");
    d.streamSynchronize(s);
    const loss = new Float32Array(1);
    d.dtoh(loss, this.sums);
    const partials = new Float32Array(this.module.blocks);
    d.dtoh(partials, this.partials);
    let squares = 0;
    for (const p of partials) squares += p;
    return { lossSum: loss[0]!, gradSumNorm: Math.sqrt(squares) };
  }

  /** One optimiser step at rate `lr` on the gradient sums times `gradScale`; the sums start over. */
  update(lr: number, gradScale: number): void {
    this.step.live();
    this.t++;
    const d = this.step.driver;
    const s = this.step.stream;
    d.htodAsync(this.hyper, packUpdateScalars(this.optimizer.scalars(this.t, lr, gradScale)), s);
    const args = [this.hyper, this.sums, this.flat, ...this.slots].map(ptrArg);
    d.launch(this.fns.update, [this.module.blocks, 1, 1], [this.module.blockSize, 1, 1], s, args, `optimizer ${this.optimizer.rule.kind}`);
  }

  /** The mean loss of the sequences (validation), the sums untouched. */
  async loss(sequences: readonly TrainingSequence[]): Promise<number> {
    let sum = 0;
    for (let i = 0; i < sequences.length; ) {
      // Validation draws no dropout; a packed step's loss is the sum of its sequences' means.
      const { taken, prog } = this.step.enqueueRun(sequences.slice(i).map((seq) => ({ tokens: seq.tokens, targets: seq.targets })));
      i += taken;
      this.step.driver.streamSynchronize(this.step.stream);
      const loss = new Float32Array(1);
      this.step.driver.dtoh(loss, prog.outputs[0]!.ptr);
      sum += loss[0]!;
    }
    return sum / sequences.length;
  }

  /** The parameters, read back into `into` (by name). */
  async readParams(into: Map<string, Float32Array>): Promise<void> {
    const flat = this.readFlat(this.flat);
    for (const seg of this.layout.segments) into.get(seg.name)?.set(flat.subarray(seg.offset, seg.offset + seg.count));
  }

  /** The optimiser's step count and moments, read back. */
  async readState(): Promise<DeviceOptimizerState> {
    const slots = new Map<string, Map<string, Float32Array>>();
    this.slotNames.forEach((slot, i) => {
      const flat = this.readFlat(this.slots[i]!);
      slots.set(slot, new Map(this.layout.segments.map((seg) => [seg.name, flat.slice(seg.offset, seg.offset + seg.count)])));
    });
    return { kind: this.optimizer.rule.kind, step: this.t, slots };
  }

  /** Continues from saved optimiser state (the parameters were given to the constructor). */
  restore(state: DeviceOptimizerState): void {
    this.t = checkSavedOptimizer(state, this.optimizer.rule, this.layout);
    this.step.live();
    this.slotNames.forEach((slot, i) => {
      const flat = new Float32Array(this.layout.total);
      for (const seg of this.layout.segments) flat.set(state.slots.get(slot)!.get(seg.name)!, seg.offset);
      this.step.driver.htod(this.slots[i]!, flat);
    });
  }

  /** Releases the step, which owns this training's memory too. */
  dispose(): void {
    this.step.dispose();
  }

  private readFlat(ptr: DevicePtr): Float32Array {
    this.step.live();
    this.step.driver.streamSynchronize(this.step.stream);
    const out = new Float32Array(this.layout.total);
    this.step.driver.dtoh(out, ptr);
    return out;
  }

  /** The accumulate table of a step program: the loss to float 0, each trained weight's gradient
   *  to its segment (frozen weights' gradients are left out). */
  private table(prog: StepProgram): AccumulateTable {
    let t = this.tables.get(prog);
    if (t) return t;
    const offsets = new Map(this.layout.segments.map((seg) => [seg.name, seg.offset]));
    const targets = [0, ...this.step.training.weightNames.map((name) => offsets.get(name))];
    const sources: bigint[] = [];
    const segments: number[] = [];
    prog.outputs.forEach((o, i) => {
      const offset = targets[i];
      if (offset === undefined) return;
      sources.push(BigInt(o.ptr));
      segments.push(offset, o.count);
    });
    const sourcesPtr = this.step.alloc(sources.length * 8);
    this.step.driver.htod(sourcesPtr, BigUint64Array.from(sources));
    const segmentsPtr = this.step.alloc(segments.length * 4);
    this.step.driver.htod(segmentsPtr, Uint32Array.from(segments));
    t = { sources: sourcesPtr, segments: segmentsPtr, entries: sources.length, largest: Math.max(...segments.filter((_, i) => i % 2 === 1)) };
    this.tables.set(prog, t);
    return t;
  }
}

const ptrArg = (p: DevicePtr) => BigUint64Array.of(BigInt(p));

// One training step on WebGPU: the training graph (compiler/autodiff) compiled by the same target
// layer as inference (plan, WGSL kernels), with the weights as plain f32 buffers that the trainer
// rewrites after each optimiser step (no norm gains folded in: the gradient is of each weight as it
// is). A step writes the inputs (tokens, pos, targets, dropout masks), records every kernel in one
// command buffer and reads back the loss and every gradient in one copy. WebGpuTraining (below) runs
// the optimiser on the device instead: gradients never leave it.

import { evalDim } from "../../compiler/base/symbolic.js";
import { packedTrainingGraph, type TrainingGraph, type TrainingPack } from "../../compiler/autodiff/index.js";
import { BindingSizeError, compileWgsl, describeBuffer, PARAMS_BYTES, wgslProfile, type WgslProgram, type WgslStep, type WgslTuning } from "../../compiler/target/wgsl.js";
import { checkTrainingStep, packableRun, packedInputs, trainingInputNames, trainingInputs, type DeviceOptimizerState, type TrainingSequence, type TrainingStepResult } from "../cpu/train-step.js";
import type { DropoutKey } from "../../compiler/autodiff/index.js";
import { ResourceError } from "../errors.js";
import type { GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";
import { checkSavedOptimizer, flatLayout, optimizerSlots, packUpdateScalars, UPDATE_SCALARS_FLOATS, wgslOptimizerKernels, type DeviceOptimizerConfig, type FlatLayout, type WgslOptimizerKernels } from "../../compiler/target/optimizer.js";
import { bindKernels, stepBuffers, type SharedBuffers } from "./pipelines.js";
import { isSoftwareAdapter } from "./tuning.js";

export interface WebGpuTrainingOptions {
  /** Kernel shapes; by default chosen for the adapter. */
  tuning?: WgslTuning;
  /** WebGpuTraining runs sequences of one length as one packed step of up to this many tokens
   *  (compiler/autodiff/pack.ts; default 1024; 1 never packs). */
  packTokens?: number;
}

/** The program of one kind of step: the training graph, or a packed variant of it. */
interface StepVariant {
  training: TrainingGraph;
  program: WgslProgram;
  /** The device objects of each step length. */
  steps: Map<number, Promise<StepProgram>>;
}

/** The device objects of one sequence length. */
export interface StepProgram {
  step: WgslStep;
  pipelines: GPUComputePipeline[];
  bindGroups: GPUBindGroup[];
  owned: GPUBuffer[];
  inputs: Map<string, GPUBuffer>;
  /** Where each graph output is (buffer, element offset) and how many f32 it has. */
  outputs: { buffer: GPUBuffer; offset: number; count: number }[];
  readback: GPUBuffer;
  readbackBytes: number;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Records a step's kernels in one compute pass. */
function encodeKernels(encoder: GPUCommandEncoder, prog: StepProgram): void {
  const pass = encoder.beginComputePass();
  prog.step.kernels.forEach((k, i) => {
    pass.setPipeline(prog.pipelines[i]!);
    pass.setBindGroup(0, prog.bindGroups[i]!);
    pass.dispatchWorkgroups(...k.workgroups);
  });
  pass.end();
}

export class WebGpuTrainingStep {
  readonly program: WgslProgram;
  /** The most tokens WebGpuTraining packs into one step (1: none). */
  packTokens: number;
  private readonly device: GPUDevice;
  private readonly profile: ReturnType<typeof wgslProfile>;
  private readonly weights = new Map<string, GPUBuffer>();
  /** The per-step uniform block of the graph's kernels. */
  readonly params: GPUBuffer;
  /** The unpacked step (key "") and each packed one ("k×L"). */
  private readonly variants = new Map<string, StepVariant>();
  private disposed = false;

  constructor(
    readonly training: TrainingGraph,
    readonly gpu: GpuContext,
    opts: WebGpuTrainingOptions = {},
  ) {
    this.device = gpu.device;
    this.packTokens = opts.packTokens ?? 1024;
    this.profile = wgslProfile(isSoftwareAdapter(gpu.adapter), this.device.limits, opts.tuning ? { tuning: opts.tuning } : {});
    this.program = this.compile(training);
    this.variants.set("", { training, program: this.program, steps: new Map() });
    for (const w of this.program.weights) {
      if (w.dtype !== "f32") throw new Error(`internal: training weight '${w.name}' is ${w.dtype} on the device, not f32`);
      if (w.layout.bytes > this.device.limits.maxStorageBufferBindingSize) {
        throw new ResourceError(`weight '${w.name}' [${w.shape.join(", ")}] takes ${w.layout.bytes} bytes, more than this adapter's maxStorageBufferBindingSize; train on another backend (--backend cpu)`, w.layout.bytes, this.device.limits.maxStorageBufferBindingSize);
      }
      this.weights.set(w.name, this.device.createBuffer({ label: `weight ${w.name}`, size: Math.max(16, w.layout.bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }));
    }
    this.params = this.device.createBuffer({ label: "llmc params", size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  /** The device buffer of a weight (the device training updates them in place). */
  weightBuffer(name: string): GPUBuffer {
    const b = this.weights.get(name);
    if (!b) throw new Error(`internal: the training graph has no weight '${name}'`);
    return b;
  }

  /** Replaces the weights on the device (every weight of the program, by name). */
  setWeights(weights: ReadonlyMap<string, Float32Array>): void {
    for (const w of this.program.weights) {
      const data = weights.get(w.name);
      if (!data) throw new Error(`no weight '${w.name}' was given`);
      if (data.length !== size(w.shape)) throw new Error(`weight '${w.name}' has ${data.length} values, expected ${size(w.shape)} for shape [${w.shape.join(", ")}]`);
      this.device.queue.writeBuffer(this.weights.get(w.name)!, 0, data.buffer, data.byteOffset, data.byteLength);
    }
  }

  /** The loss and gradients of one sequence with the weights last set: `targets[i]` is the token
   *  expected after `tokens[i]` (negative: ignored); `pos` defaults to 0 … T−1; `dropout` draws the
   *  masks (none: no dropout). */
  async run(tokens: Int32Array, targets: Int32Array, pos?: Int32Array, dropout?: DropoutKey): Promise<TrainingStepResult> {
    if (this.disposed) throw new WebGpuError("this training step was disposed");
    const T = tokens.length;
    const positions = checkTrainingStep(this.training, tokens, targets, pos);
    const prog = await this.prepared(T);
    this.gpu.check();
    const q = this.device.queue;
    q.writeBuffer(this.params, 0, Uint32Array.of(0, 0, 0, 0));
    const inputs = trainingInputs(this.training, tokens, targets, positions, dropout);
    for (const [name, buf] of prog.inputs) {
      const data = inputs.get(name)!;
      q.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    const encoder = this.device.createCommandEncoder({ label: `llmc training step T=${T}` });
    encodeKernels(encoder, prog);
    let at = 0;
    for (const o of prog.outputs) {
      encoder.copyBufferToBuffer(o.buffer, o.offset * 4, prog.readback, at, o.count * 4);
      at += o.count * 4;
    }
    q.submit([encoder.finish()]);
    await prog.readback.mapAsync(GPUMapMode.READ, 0, prog.readbackBytes);
    const all = new Float32Array(prog.readback.getMappedRange(0, prog.readbackBytes).slice(0));
    prog.readback.unmap();
    this.gpu.check();
    const values: Float32Array[] = [];
    at = 0;
    for (const o of prog.outputs) {
      values.push(all.subarray(at, at + o.count));
      at += o.count;
    }
    const grads = new Map(this.training.weightNames.map((name, i) => [name, values[i + 1]!.slice()]));
    return { loss: values[0]![0]!, grads };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variants.values()) {
      for (const p of v.steps.values()) {
        void p.then((prog) => {
          for (const b of prog.owned) b.destroy();
          prog.readback.destroy();
        }, () => undefined);
      }
    }
    for (const b of [...this.weights.values(), this.params]) b.destroy();
  }

  /** The device objects of a T-token step (the device training records them itself); with `pack`,
   *  of the step that runs pack.sequences sequences of pack.segment tokens (T = their total). */
  prepared(T: number, pack?: TrainingPack): Promise<StepProgram> {
    const v = this.variant(pack);
    let p = v.steps.get(T);
    if (!p) {
      p = this.prepare(v.program, T);
      v.steps.set(T, p);
      p.catch(() => v.steps.delete(T));
    }
    return p;
  }

  /** The training graph of a packed step (or the graph itself). */
  trainingOf(pack?: TrainingPack): TrainingGraph {
    return this.variant(pack).training;
  }

  private variant(pack?: TrainingPack): StepVariant {
    const key = pack && pack.sequences > 1 ? `${pack.sequences}x${pack.segment}` : "";
    let v = this.variants.get(key);
    if (!v) {
      const training = packedTrainingGraph(this.training, pack!);
      const program = this.compile(training);
      const names = (p: WgslProgram) => p.weights.map((w) => `${w.name}:${w.layout.bytes}`).join(",");
      if (names(program) !== names(this.program)) throw new Error("internal: a packed training step reads other weights than the unpacked one");
      v = { training, program, steps: new Map() };
      this.variants.set(key, v);
    }
    return v;
  }

  private compile(training: TrainingGraph): WgslProgram {
    try {
      return compileWgsl(training.graph, { profile: this.profile, inputs: trainingInputNames(training), foldGains: false });
    } catch (e) {
      throw new WebGpuError((e as Error).message);
    }
  }

  private async prepare(program: WgslProgram, T: number): Promise<StepProgram> {
    let step: WgslStep;
    try {
      step = program.step(T);
    } catch (e) {
      if (e instanceof BindingSizeError) {
        throw new ResourceError(`${describeBuffer(e.buffer)} of a ${T}-token training step takes ${e.buffer.bytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${e.limit} bytes; use a shorter --context`, e.buffer.bytes, e.limit);
      }
      throw e instanceof Error && e.name === "TargetError" ? new WebGpuError(e.message) : e;
    }
    const { plan, kernels } = step;
    const shared: SharedBuffers = {
      weight: (name) => this.weights.get(name)!,
      kv: () => {
        throw new WebGpuError("internal: a training graph has no KV cache");
      },
    };
    const { buffers, owned, inputs } = await this.gpu.scoped(`creating the buffers of a ${T}-token training step`, () =>
      stepBuffers(plan, shared, (_, desc) => this.device.createBuffer(desc)),
    );
    const env = new Map([["T", T], ["P", 0]]);
    const outputs = plan.outputs.map((id) => {
      const node = plan.graph.nodes.find((n) => n.id === id)!;
      if (node.ty.dtype !== "f32") throw new WebGpuError(`internal: training output ${id} is ${node.ty.dtype}, not f32`);
      const p = plan.placement.get(id)!;
      return { buffer: buffers[p.buffer]!, offset: p.offset, count: size(node.ty.shape.map((d) => evalDim(d, env))) };
    });
    const readbackBytes = Math.max(4, outputs.reduce((a, o) => a + o.count * 4, 0));
    const readback = this.device.createBuffer({ label: "llmc training readback", size: Math.ceil(readbackBytes / 16) * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const { pipelines, bindGroups } = await bindKernels(this.gpu, kernels, buffers, this.params, `a ${T}-token training step`);
    return { step, pipelines, bindGroups, owned, inputs, outputs, readback, readbackBytes };
  }
}

/** Bindings of the optimiser kernels, as indices into WebGpuTraining's buffer list. */
const SUMS = 0, SEQUENCE = 1, PARTIALS = 2, PARAMS = 3, SLOTS = 4;

/**
 * Training with the optimiser on WebGPU: the trained parameters, the step's gradient sums and the
 * optimiser's moments live in flat device buffers (compiler/target/optimizer.ts) from the start to
 * the end of a run. A step records every sequence of its micro-batches in one command buffer (each
 * sequence: its inputs copied from one upload, the training graph's kernels, its loss and gradients
 * copied into one flat buffer and added to the sums), then the sum of squares for the global norm,
 * and reads back the loss sum and the norm's partial sums; the update (a second submit) is one
 * kernel over all parameters, then copies into the weight buffers the graph reads.
 */
export class WebGpuTraining {
  readonly layout: FlatLayout;
  private readonly device: GPUDevice;
  private readonly kernels: WgslOptimizerKernels;
  private readonly buffers: GPUBuffer[];
  private readonly hyper: GPUBuffer;
  private readonly readback: GPUBuffer;
  private readonly slotNames: string[];
  private bound?: Promise<{ pipelines: GPUComputePipeline[]; bindGroups: GPUBindGroup[] }>;
  private ready?: { pipelines: GPUComputePipeline[]; bindGroups: GPUBindGroup[] };
  private staging: GPUBuffer | null = null;
  private t = 0;
  private disposed = false;

  /** `params`: the trained weights (in training order); `frozen`: weights the graph reads but the
   *  run does not train. Both are uploaded once. */
  constructor(
    readonly step: WebGpuTrainingStep,
    params: ReadonlyMap<string, Float32Array>,
    frozen: ReadonlyMap<string, Float32Array>,
    readonly optimizer: DeviceOptimizerConfig,
  ) {
    const gpu = step.gpu;
    this.device = gpu.device;
    step.setWeights(new Map([...frozen, ...params]));
    const shapes = new Map([...params].map(([name, v]) => [name, [v.length]]));
    this.layout = flatLayout(shapes, optimizer.decayed);
    const bytes = this.layout.total * 4;
    if (bytes > this.device.limits.maxStorageBufferBindingSize) {
      throw new ResourceError(`the trained parameters take ${bytes} bytes, more than this adapter's maxStorageBufferBindingSize; train on another backend (--backend cpu)`, bytes, this.device.limits.maxStorageBufferBindingSize);
    }
    this.kernels = wgslOptimizerKernels(this.layout, optimizer.rule, 256);
    this.slotNames = optimizerSlots(optimizer.rule);
    const flat = (label: string) => this.device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.buffers = [
      flat("llmc gradient sums"),
      flat("llmc sequence gradients"),
      this.device.createBuffer({ label: "llmc norm partials", size: this.kernels.groups * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
      flat("llmc parameters"),
      ...this.slotNames.map((slot) => flat(`llmc optimiser ${slot}`)),
    ];
    this.hyper = this.device.createBuffer({ label: "llmc optimiser scalars", size: UPDATE_SCALARS_FLOATS * 4, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.readback = this.device.createBuffer({ label: "llmc step readback", size: 16 + this.kernels.groups * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(this.buffers[PARAMS]!, 0, this.toFlat(params));
  }

  /** Runs the sequences (all of one optimiser step), summing losses and gradients on the device:
   *  the sum of their losses and the L2 norm of the summed gradients. */
  async accumulate(sequences: readonly TrainingSequence[]): Promise<{ lossSum: number; gradSumNorm: number }> {
    const { pipelines, bindGroups } = await this.live();
    const target = this.outputTargets();
    const encoder = await this.encodeSequences(sequences, (enc, prog) => {
      // The loss to float 0, each trained weight's gradient to its place; frozen weights' are dropped.
      prog.outputs.forEach((o, i) => {
        const offset = target[i];
        if (offset !== undefined) enc.copyBufferToBuffer(o.buffer, o.offset * 4, this.buffers[SEQUENCE]!, offset * 4, o.count * 4);
      });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipelines[0]!);
      pass.setBindGroup(0, bindGroups[0]!);
      pass.dispatchWorkgroups(this.kernels.groups);
      pass.end();
    });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipelines[1]!);
    pass.setBindGroup(0, bindGroups[1]!);
    pass.dispatchWorkgroups(this.kernels.groups);
    pass.end();
    encoder.copyBufferToBuffer(this.buffers[SUMS]!, 0, this.readback, 0, 16);
    encoder.copyBufferToBuffer(this.buffers[PARTIALS]!, 0, this.readback, 16, this.kernels.groups * 4);
    this.device.queue.submit([encoder.finish()]);
    const values = await this.read(this.readback, 16 + this.kernels.groups * 4);
    let squares = 0;
    for (let i = 4; i < values.length; i++) squares += values[i]!;
    return { lossSum: values[0]!, gradSumNorm: Math.sqrt(squares) };
  }

  /** One optimiser step at rate `lr` on the gradient sums times `gradScale`; the sums start over. */
  update(lr: number, gradScale: number): void {
    if (this.disposed) throw new WebGpuError("this training was disposed");
    if (!this.ready) throw new Error("internal: an optimiser step before any gradients were summed");
    this.t++;
    this.device.queue.writeBuffer(this.hyper, 0, packUpdateScalars(this.optimizer.scalars(this.t, lr, gradScale)));
    // accumulate() came first, so the kernels are bound.
    const { pipelines, bindGroups } = this.ready!;
    const encoder = this.device.createCommandEncoder({ label: "llmc optimiser step" });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipelines[2]!);
    pass.setBindGroup(0, bindGroups[2]!);
    pass.dispatchWorkgroups(this.kernels.groups);
    pass.end();
    for (const seg of this.layout.segments) encoder.copyBufferToBuffer(this.buffers[PARAMS]!, seg.offset * 4, this.step.weightBuffer(seg.name), 0, seg.count * 4);
    this.device.queue.submit([encoder.finish()]);
  }

  /** The mean loss of the sequences (validation): their losses read back, the sums untouched. */
  async loss(sequences: readonly TrainingSequence[]): Promise<number> {
    await this.live();
    const out = this.device.createBuffer({ label: "llmc losses", size: Math.max(16, sequences.length * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      let s = 0;
      const encoder = await this.encodeSequences(sequences, (enc, prog) => {
        const o = prog.outputs[0]!;
        enc.copyBufferToBuffer(o.buffer, o.offset * 4, out, 4 * s++, 4);
      });
      this.device.queue.submit([encoder.finish()]);
      // A packed step's loss is the sum of its sequences' mean losses.
      const losses = await this.read(out, Math.max(1, s) * 4);
      return losses.reduce((a, b) => a + b, 0) / sequences.length;
    } finally {
      out.destroy();
    }
  }

  /** The parameters, read back into `into` (by name). */
  async readParams(into: Map<string, Float32Array>): Promise<void> {
    const flat = await this.readFlat(this.buffers[PARAMS]!);
    for (const seg of this.layout.segments) into.get(seg.name)?.set(flat.subarray(seg.offset, seg.offset + seg.count));
  }

  /** The optimiser's step count and moments, read back. */
  async readState(): Promise<DeviceOptimizerState> {
    const slots = new Map<string, Map<string, Float32Array>>();
    for (const [i, slot] of this.slotNames.entries()) {
      const flat = await this.readFlat(this.buffers[SLOTS + i]!);
      slots.set(slot, new Map(this.layout.segments.map((seg) => [seg.name, flat.slice(seg.offset, seg.offset + seg.count)])));
    }
    return { kind: this.optimizer.rule.kind, step: this.t, slots };
  }

  /** Continues from saved optimiser state (the parameters were given to the constructor). */
  restore(state: DeviceOptimizerState): void {
    this.t = checkSavedOptimizer(state, this.optimizer.rule, this.layout);
    this.slotNames.forEach((slot, i) => this.device.queue.writeBuffer(this.buffers[SLOTS + i]!, 0, this.toFlat(state.slots.get(slot)!)));
  }

  /** Releases its buffers and the step's. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of [...this.buffers, this.hyper, this.readback]) b.destroy();
    this.staging?.destroy();
    this.step.dispose();
  }

  /** Where each output of the training graph goes in the flat layout (loss: 0; frozen: none). */
  private outputTargets(): (number | undefined)[] {
    const offsets = new Map(this.layout.segments.map((seg) => [seg.name, seg.offset]));
    return [0, ...this.step.training.weightNames.map((name) => offsets.get(name))];
  }

  /** The optimiser kernels, bound to their buffers (once). */
  private live(): Promise<{ pipelines: GPUComputePipeline[]; bindGroups: GPUBindGroup[] }> {
    if (this.disposed) return Promise.reject(new WebGpuError("this training was disposed"));
    const k = this.kernels;
    const workgroups: [number, number, number] = [k.groups, 1, 1];
    this.bound ??= bindKernels(
      this.step.gpu,
      [
        { label: "optimizer accumulate", code: k.accumulate, workgroups, bindings: [{ buffer: SUMS, access: "read_write" }, { buffer: SEQUENCE, access: "read" }] },
        { label: "optimizer sum of squares", code: k.sumOfSquares, workgroups, bindings: [{ buffer: SUMS, access: "read" }, { buffer: PARTIALS, access: "read_write" }] },
        {
          label: `optimizer ${this.optimizer.rule.kind}`,
          code: k.update,
          workgroups,
          bindings: [
            { buffer: "params", access: "uniform" },
            { buffer: SUMS, access: "read_write" },
            { buffer: PARAMS, access: "read_write" },
            ...this.slotNames.map((_, i) => ({ buffer: SLOTS + i, access: "read_write" as const })),
          ],
        },
      ],
      this.buffers,
      this.hyper,
      "the optimiser",
    ).then((b) => (this.ready = b));
    return this.bound;
  }

  /** One command encoder with every sequence: its inputs copied from one upload, its kernels, then
   *  `after` (what to do with its outputs before the next sequence overwrites them). Sequences of one
   *  length run packed, several to a step: `after` sees each step once, whose loss and gradients
   *  are then the sums of its sequences'. */
  private async encodeSequences(sequences: readonly TrainingSequence[], after: (enc: GPUCommandEncoder, prog: StepProgram) => void): Promise<GPUCommandEncoder> {
    if (sequences.length === 0) throw new RangeError("a training step needs at least one sequence");
    const progs: StepProgram[] = [];
    const upload: Map<string, Int32Array | Float32Array>[] = [];
    for (let i = 0; i < sequences.length; ) {
      // Sequences of one length run packed (pack.ts): one step's kernels for k of them.
      const k = packableRun(this.step.training, sequences.slice(i), this.step.packTokens);
      if (k > 1) {
        const pack = { segment: sequences[i]!.tokens.length, sequences: k };
        try {
          progs.push(await this.step.prepared(pack.segment * k, pack));
        } catch (e) {
          // A packed step's buffers over the adapter's binding limit: pack fewer from now on.
          if (!(e instanceof ResourceError)) throw e;
          this.step.packTokens = (pack.segment * k) >> 1;
          continue;
        }
        upload.push(packedInputs(this.step.trainingOf(pack), sequences.slice(i, i + k)));
        i += k;
        continue;
      }
      const seq = sequences[i++]!;
      const pos = checkTrainingStep(this.step.training, seq.tokens, seq.targets);
      progs.push(await this.step.prepared(seq.tokens.length));
      upload.push(trainingInputs(this.step.training, seq.tokens, seq.targets, pos, seq.dropout));
    }
    const total = upload.reduce((a, u) => a + [...u.values()].reduce((b, v) => b + v.length, 0), 0);
    if (!this.staging || this.staging.size < total * 4) {
      this.staging?.destroy();
      this.staging = this.device.createBuffer({ label: "llmc training inputs", size: Math.ceil((total * 4) / 16) * 16, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    }
    // Every input is 4 bytes an element: one upload of their bits, and where each one starts.
    const data = new Uint32Array(total);
    const starts: Map<string, number>[] = [];
    let at = 0;
    for (const u of upload) {
      const start = new Map<string, number>();
      for (const [name, v] of u) {
        data.set(new Uint32Array(v.buffer, v.byteOffset, v.length), at);
        start.set(name, at);
        at += v.length;
      }
      starts.push(start);
    }
    const q = this.device.queue;
    q.writeBuffer(this.staging, 0, data);
    q.writeBuffer(this.step.params, 0, Uint32Array.of(0, 0, 0, 0));
    this.step.gpu.check();
    const encoder = this.device.createCommandEncoder({ label: `llmc training step of ${sequences.length} sequences` });
    progs.forEach((prog, s) => {
      for (const [name, buf] of prog.inputs) encoder.copyBufferToBuffer(this.staging!, starts[s]!.get(name)! * 4, buf, 0, upload[s]!.get(name)!.length * 4);
      encodeKernels(encoder, prog);
      after(encoder, prog);
    });
    return encoder;
  }

  private async read(buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
    await buffer.mapAsync(GPUMapMode.READ, 0, bytes);
    const values = new Float32Array(buffer.getMappedRange(0, bytes).slice(0));
    buffer.unmap();
    this.step.gpu.check();
    return values;
  }

  private async readFlat(source: GPUBuffer): Promise<Float32Array> {
    if (this.disposed) throw new WebGpuError("this training was disposed");
    const bytes = this.layout.total * 4;
    const out = this.device.createBuffer({ label: "llmc parameter readback", size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = this.device.createCommandEncoder({ label: "llmc parameter readback" });
      encoder.copyBufferToBuffer(source, 0, out, 0, bytes);
      this.device.queue.submit([encoder.finish()]);
      return await this.read(out, bytes);
    } finally {
      out.destroy();
    }
  }

  private toFlat(tensors: ReadonlyMap<string, Float32Array>): Float32Array<ArrayBuffer> {
    const flat = new Float32Array(this.layout.total);
    for (const seg of this.layout.segments) {
      const v = tensors.get(seg.name);
      if (!v || v.length !== seg.count) throw new Error(`no values of the right size (${seg.count}) for '${seg.name}'`);
      flat.set(v, seg.offset);
    }
    return flat;
  }
}

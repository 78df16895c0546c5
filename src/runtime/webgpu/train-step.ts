// One training step on WebGPU: the training graph (compiler/autodiff) compiled by the same target
// layer as inference (plan, WGSL kernels), with the weights as plain f32 buffers that the trainer
// rewrites after each optimiser step (no norm gains folded in: the gradient is of each weight as it
// is). A step writes the inputs (tokens, pos, targets), records every kernel in one command buffer
// and reads back the loss and every gradient in one copy.

import { evalDim } from "../../compiler/base/symbolic.js";
import type { TrainingGraph } from "../../compiler/autodiff/index.js";
import { BindingSizeError, compileWgsl, describeBuffer, PARAMS_BYTES, wgslProfile, type WgslProgram, type WgslStep, type WgslTuning } from "../../compiler/target/wgsl.js";
import { checkTrainingStep, type TrainingStepResult } from "../cpu/train-step.js";
import { ResourceError } from "../errors.js";
import type { GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";
import { bindKernels, stepBuffers, type SharedBuffers } from "./pipelines.js";
import { isSoftwareAdapter } from "./tuning.js";

export interface WebGpuTrainingOptions {
  /** Kernel shapes; by default chosen for the adapter. */
  tuning?: WgslTuning;
}

/** The device objects of one sequence length. */
interface StepProgram {
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

export class WebGpuTrainingStep {
  readonly program: WgslProgram;
  private readonly device: GPUDevice;
  private readonly weights = new Map<string, GPUBuffer>();
  private readonly params: GPUBuffer;
  private readonly programs = new Map<number, Promise<StepProgram>>();
  private disposed = false;

  constructor(
    readonly training: TrainingGraph,
    readonly gpu: GpuContext,
    opts: WebGpuTrainingOptions = {},
  ) {
    this.device = gpu.device;
    const profile = wgslProfile(isSoftwareAdapter(gpu.adapter), this.device.limits, opts.tuning ? { tuning: opts.tuning } : {});
    try {
      this.program = compileWgsl(training.graph, { profile, inputs: ["tokens", "pos", "targets"], foldGains: false });
    } catch (e) {
      throw new WebGpuError((e as Error).message);
    }
    for (const w of this.program.weights) {
      if (w.dtype !== "f32") throw new Error(`internal: training weight '${w.name}' is ${w.dtype} on the device, not f32`);
      if (w.layout.bytes > this.device.limits.maxStorageBufferBindingSize) {
        throw new ResourceError(`weight '${w.name}' [${w.shape.join(", ")}] takes ${w.layout.bytes} bytes, more than this adapter's maxStorageBufferBindingSize; train on another backend (--backend cpu)`, w.layout.bytes, this.device.limits.maxStorageBufferBindingSize);
      }
      this.weights.set(w.name, this.device.createBuffer({ label: `weight ${w.name}`, size: Math.max(16, w.layout.bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }));
    }
    this.params = this.device.createBuffer({ label: "llmc params", size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
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
   *  expected after `tokens[i]` (negative: ignored); `pos` defaults to 0 … T−1. */
  async run(tokens: Int32Array, targets: Int32Array, pos?: Int32Array): Promise<TrainingStepResult> {
    if (this.disposed) throw new WebGpuError("this training step was disposed");
    const T = tokens.length;
    const positions = checkTrainingStep(this.training, tokens, targets, pos);
    const prog = await this.prepared(T);
    this.gpu.check();
    const q = this.device.queue;
    q.writeBuffer(this.params, 0, Uint32Array.of(0, 0, 0, 0));
    for (const [name, buf] of prog.inputs) {
      const data = name === "tokens" ? tokens : name === "targets" ? targets : positions;
      q.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    const encoder = this.device.createCommandEncoder({ label: `llmc training step T=${T}` });
    const pass = encoder.beginComputePass();
    prog.step.kernels.forEach((k, i) => {
      pass.setPipeline(prog.pipelines[i]!);
      pass.setBindGroup(0, prog.bindGroups[i]!);
      pass.dispatchWorkgroups(...k.workgroups);
    });
    pass.end();
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
    for (const p of this.programs.values()) {
      void p.then((prog) => {
        for (const b of prog.owned) b.destroy();
        prog.readback.destroy();
      }, () => undefined);
    }
    for (const b of [...this.weights.values(), this.params]) b.destroy();
  }

  private prepared(T: number): Promise<StepProgram> {
    let p = this.programs.get(T);
    if (!p) {
      p = this.prepare(T);
      this.programs.set(T, p);
      p.catch(() => this.programs.delete(T));
    }
    return p;
  }

  private async prepare(T: number): Promise<StepProgram> {
    let step: WgslStep;
    try {
      step = this.program.step(T);
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

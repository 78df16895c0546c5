// The loss of a model on a batch and its gradients: the compiler's training graph (the forward graph
// with a cross-entropy head, differentiated) run one sequence at a time on the CPU interpreter or on
// WebGPU or CUDA (the same graph through the target layer), the batch's loss and gradients the mean over its
// sequences (each sequence's loss is already the mean over its tokens, and every sequence has the
// same number of them). With the host optimiser every backend takes the same steps; on WebGPU and CUDA
// the optimiser can run on the device instead (deviceTraining), keeping parameters, gradients and
// moments in device memory.

import { cpuTrainingStep, type TrainingStepResult } from "../runtime/cpu/train-step.js";
import type { GpuContext } from "../runtime/webgpu/context.js";
import { WebGpuTraining, WebGpuTrainingStep, type WebGpuTrainingOptions } from "../runtime/webgpu/train-step.js";
import { CudaTraining, CudaTrainingStep, type CudaTrainingOptions } from "../runtime/cuda/train-step.js";
import type { Batch } from "./data.js";
import type { DropoutKey } from "../compiler/autodiff/index.js";
import type { TrainingModel } from "./model.js";
import type { DeviceOptimizerConfig, OptimizerState, Tensors } from "./optimizer.js";
import type { DeviceTraining, LossAndGrad } from "./train.js";

/** The CPU reference's: the graph reads the trained and frozen weights in place, so the optimiser's
 *  updates show at once. */
export function modelLossAndGrad(model: TrainingModel): LossAndGrad & { dispose(): void } {
  let weights: ReadonlyMap<string, Float32Array> = new Map();
  return stepLossAndGrad(model, {
    setWeights: (w) => (weights = w),
    run: async (tokens, targets, dropout) => cpuTrainingStep(model.training, weights, tokens, targets, undefined, dropout),
    dispose: () => undefined,
  });
}

/** The same on WebGPU: the weights are written to the device before each batch (the optimiser
 *  changed them), then each sequence's loss and gradients are read back. */
export function webGpuLossAndGrad(model: TrainingModel, gpu: GpuContext): LossAndGrad & { dispose(): void } {
  return stepLossAndGrad(model, webGpuStep(new WebGpuTrainingStep(model.training, gpu)));
}

/** The same on CUDA (the training graph's CUDA program; `opts` as CudaTrainingStep's). */
export function cudaLossAndGrad(model: TrainingModel, opts: CudaTrainingOptions = {}): LossAndGrad & { dispose(): void } {
  return stepLossAndGrad(model, cudaStep(new CudaTrainingStep(model.training, opts)));
}

/** A model on a device: the host-optimiser path (lossAndGrad) or the device optimiser's (device), one
 *  or the other in a run (they share the device's weights). */
export interface ModelDeviceTraining {
  lossAndGrad: LossAndGrad;
  device: (optimizer: DeviceOptimizerConfig) => DeviceTraining;
  dispose(): void;
}

/** The model on WebGPU with the optimiser on the device (see WebGpuTraining; `opts` as
 *  WebGpuTrainingStep's: kernel shapes, how many tokens a packed step may take). */
export function webGpuTraining(model: TrainingModel, gpu: GpuContext, opts: WebGpuTrainingOptions = {}): ModelDeviceTraining {
  const step = new WebGpuTrainingStep(model.training, gpu, opts);
  return deviceTraining(model, webGpuStep(step), (opt) => new WebGpuTraining(step, model.params, model.frozen, opt));
}

/** The model on CUDA with the optimiser on the device (see CudaTraining). */
export function cudaTraining(model: TrainingModel, opts: CudaTrainingOptions = {}): ModelDeviceTraining {
  const step = new CudaTrainingStep(model.training, opts);
  return deviceTraining(model, cudaStep(step), (opt) => new CudaTraining(step, model.params, model.frozen, opt));
}

/** What WebGpuTraining and CudaTraining share. */
interface DeviceOptimizerRun {
  accumulate(sequences: readonly { tokens: Int32Array; targets: Int32Array; dropout?: DropoutKey }[]): Promise<{ lossSum: number; gradSumNorm: number }>;
  update(lr: number, gradScale: number): void;
  loss(sequences: readonly { tokens: Int32Array; targets: Int32Array }[]): Promise<number>;
  readParams(into: Tensors): Promise<void>;
  readState(): Promise<OptimizerState>;
  restore(state: OptimizerState): void;
  dispose(): void;
}

function deviceTraining(model: TrainingModel, step: TrainingStep, open: (opt: DeviceOptimizerConfig) => DeviceOptimizerRun): ModelDeviceTraining {
  let run: DeviceOptimizerRun | undefined;
  return {
    lossAndGrad: stepLossAndGrad(model, step),
    device: (opt) => {
      if (run) throw new Error("internal: one device training per model");
      const r = (run = open(opt));
      return {
        accumulate: (batches) => r.accumulate(batches.flatMap(sequencesOf)),
        update: (lr, gradScale) => r.update(lr, gradScale),
        loss: (batch) => r.loss(sequencesOf(batch)),
        readParams: (into) => r.readParams(into),
        readState: () => r.readState(),
        restore: (state) => r.restore(state),
      };
    },
    dispose: () => {
      run?.dispose();
      step.dispose();
    },
  };
}

/** A batch's sequences (views of its tokens and targets), each with its dropout draw. */
function sequencesOf(batch: Batch): { tokens: Int32Array; targets: Int32Array; dropout?: DropoutKey }[] {
  const T = batch.context;
  const key = batch.dropout;
  return Array.from({ length: batch.batch }, (_, s) => ({
    tokens: batch.tokens.subarray(s * T, (s + 1) * T),
    targets: batch.targets.subarray(s * T, (s + 1) * T),
    ...(key ? { dropout: { seed: key.seed, serial: key.serial + s } } : {}),
  }));
}

const webGpuStep = (step: WebGpuTrainingStep): TrainingStep => ({
  setWeights: (w) => step.setWeights(w),
  run: (tokens, targets, dropout) => step.run(tokens, targets, undefined, dropout),
  dispose: () => step.dispose(),
});

const cudaStep = (step: CudaTrainingStep): TrainingStep => ({
  setWeights: (w) => step.setWeights(w),
  run: (tokens, targets, dropout) => step.run(tokens, targets, undefined, dropout),
  dispose: () => step.dispose(),
});

/** A training step of one sequence on some backend. */
interface TrainingStep {
  setWeights(weights: ReadonlyMap<string, Float32Array>): void;
  run(tokens: Int32Array, targets: Int32Array, dropout?: DropoutKey): Promise<TrainingStepResult>;
  dispose(): void;
}

/** A backend's training step as a LossAndGrad: the weights set before each batch, then each
 *  sequence's loss and gradients, averaged. */
function stepLossAndGrad(model: TrainingModel, step: TrainingStep): LossAndGrad & { dispose(): void } {
  const weights = new Map([...model.frozen, ...model.params]);
  const run = async (batch: Batch) => {
    step.setWeights(weights);
    const mean = new BatchMean(model.params, batch.batch);
    for (const seq of sequencesOf(batch)) mean.add(await step.run(seq.tokens, seq.targets, seq.dropout));
    return mean.result();
  };
  return Object.assign(run, { dispose: () => step.dispose() });
}

/** The mean loss and gradients of a batch's sequences, summed in f64. */
class BatchMean {
  private loss = 0;
  private readonly sums: Map<string, Float64Array>;

  constructor(params: Tensors, private readonly count: number) {
    this.sums = new Map([...params].map(([n, p]) => [n, new Float64Array(p.length)]));
  }

  add(step: TrainingStepResult): void {
    this.loss += step.loss;
    for (const [name, sum] of this.sums) {
      const g = step.grads.get(name);
      if (!g) throw new Error(`the training graph gives no gradient for weight '${name}'`);
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + g[i]!;
    }
  }

  result(): { loss: number; grads: Tensors } {
    const grads: Tensors = new Map();
    for (const [name, sum] of this.sums) grads.set(name, Float32Array.from(sum, (v) => v / this.count));
    return { loss: this.loss / this.count, grads };
  }
}

// The loss of a model on a batch and its gradients: the compiler's training graph (the forward graph
// with a cross-entropy head, differentiated) run one sequence at a time on the CPU interpreter or on
// WebGPU or CUDA (the same graph through the target layer), the batch's loss and gradients the mean over its
// sequences (each sequence's loss is already the mean over its tokens, and every sequence has the
// same number of them). The optimiser runs on the host, so both backends take identical steps.

import { cpuTrainingStep, type TrainingStepResult } from "../runtime/cpu/train-step.js";
import type { GpuContext } from "../runtime/webgpu/context.js";
import { WebGpuTrainingStep } from "../runtime/webgpu/train-step.js";
import { CudaTrainingStep, type CudaTrainingOptions } from "../runtime/cuda/train-step.js";
import type { Batch } from "./data.js";
import type { TrainingModel } from "./model.js";
import type { Tensors } from "./optimizer.js";
import type { LossAndGrad } from "./train.js";

/** The CPU reference's: the graph reads the trained and frozen weights in place, so the optimiser's
 *  updates show at once. */
export function modelLossAndGrad(model: TrainingModel): LossAndGrad & { dispose(): void } {
  let weights: ReadonlyMap<string, Float32Array> = new Map();
  return stepLossAndGrad(model, {
    setWeights: (w) => (weights = w),
    run: async (tokens, targets) => cpuTrainingStep(model.training, weights, tokens, targets),
    dispose: () => undefined,
  });
}

/** The same on WebGPU: the weights are written to the device before each batch (the optimiser
 *  changed them), then each sequence's loss and gradients are read back. */
export function webGpuLossAndGrad(model: TrainingModel, gpu: GpuContext): LossAndGrad & { dispose(): void } {
  return stepLossAndGrad(model, new WebGpuTrainingStep(model.training, gpu));
}

/** The same on CUDA (the training graph's CUDA program; `opts` as CudaTrainingStep's). */
export function cudaLossAndGrad(model: TrainingModel, opts: CudaTrainingOptions = {}): LossAndGrad & { dispose(): void } {
  return stepLossAndGrad(model, new CudaTrainingStep(model.training, opts));
}

/** A training step of one sequence on some backend. */
interface TrainingStep {
  setWeights(weights: ReadonlyMap<string, Float32Array>): void;
  run(tokens: Int32Array, targets: Int32Array): Promise<TrainingStepResult>;
  dispose(): void;
}

/** A backend's training step as a LossAndGrad: the weights set before each batch, then each
 *  sequence's loss and gradients, averaged. */
function stepLossAndGrad(model: TrainingModel, step: TrainingStep): LossAndGrad & { dispose(): void } {
  const weights = new Map([...model.frozen, ...model.params]);
  const run = async (batch: Batch) => {
    step.setWeights(weights);
    const mean = new BatchMean(model.params, batch.batch);
    const T = batch.context;
    for (let s = 0; s < batch.batch; s++) {
      mean.add(await step.run(batch.tokens.subarray(s * T, (s + 1) * T), batch.targets.subarray(s * T, (s + 1) * T)));
    }
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

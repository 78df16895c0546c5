// The training loop: `train(opts)` yields one record per optimiser step. A step draws B·K windows
// (K micro-batches of B), averages their gradients, clips them to a global norm, and lets the
// optimiser update the parameters at the schedule's rate: on the host, or on the device when the
// model trains there (DeviceTraining: the same steps, with parameters, gradients and moments kept in
// device memory and read back only for checkpoints). Validation loss every `evalEvery` steps;
// a checkpoint every `checkpointEvery` steps, at the end, and when the signal aborts (after the step
// that is running). Everything a step depends on (parameters, optimiser state, data order, step
// number) is in the checkpoint, so a resumed run takes bit for bit the steps the first would have.

import { validationBatches, WindowSampler, type Batch, type DataOrderState } from "./data.js";
import {
  clipGradNorm, clipScale, createOptimizer, deviceOptimizerConfig, GradientAccumulator, type DeviceOptimizerConfig, type OptimizerConfig, type OptimizerState, type Tensors,
} from "./optimizer.js";
import { learningRate, type ScheduleConfig } from "./schedule.js";

/** The mean next-token loss of a batch and its gradient for every trained parameter (on a device:
 *  asynchronously). */
export type LossAndGrad = (batch: Batch) => LossAndGrads | Promise<LossAndGrads>;

export interface LossAndGrads {
  loss: number;
  grads: ReadonlyMap<string, Float32Array>;
}

/** What is trained: parameters (updated in place), their shapes, and the loss. */
export interface Trainable {
  params: Tensors;
  shapes: ReadonlyMap<string, readonly number[]>;
  lossAndGrad: LossAndGrad;
  /** The loss alone, for validation; lossAndGrad's loss when not given. */
  loss?: (batch: Batch) => number | Promise<number>;
  /** Training on a device instead of lossAndGrad and the host optimiser: given the optimiser, the
   *  device's training (its parameters start as `params`). */
  device?: (optimizer: DeviceOptimizerConfig) => DeviceTraining;
}

/**
 * Training whose optimiser runs on the device: parameters, the step's gradient sums and the moments
 * stay in device memory between steps; the host sees a loss and a norm per step, and the parameters
 * and moments only at checkpoints.
 */
export interface DeviceTraining {
  /** Runs every sequence of the step's micro-batches, summing their losses and gradients on the
   *  device: the sum of the sequences' losses and the global L2 norm of the summed gradients. */
  accumulate(batches: readonly Batch[]): Promise<{ lossSum: number; gradSumNorm: number }>;
  /** One optimiser step at rate `lr` on the gradient sums times `gradScale`; the sums start over. */
  update(lr: number, gradScale: number): void;
  /** The mean loss of a batch (validation), without touching the sums. */
  loss(batch: Batch): Promise<number>;
  /** Copies the device's parameters into `into` (by name). */
  readParams(into: Tensors): Promise<void>;
  /** The optimiser's state, read back. */
  readState(): Promise<OptimizerState>;
  /** Continues from saved optimiser state. */
  restore(state: OptimizerState): void;
}

/** One optimiser step. */
export interface TrainStep {
  /** 1-based: the number of steps taken. */
  step: number;
  /** Mean training loss of the step's batch (before the update). */
  loss: number;
  /** Mean validation loss after the update, on steps that evaluate. */
  val_loss?: number;
  lr: number;
  tokens_per_s: number;
  /** Global gradient norm before clipping. */
  grad_norm: number;
}

/** Where a run is: what a checkpoint saves beside the weights. */
export interface TrainState {
  step: number;
  optimizer: OptimizerState;
  data: DataOrderState;
  /** The curves so far, for the loss plot: [step, loss]. */
  history: { train: [number, number][]; val: [number, number][] };
}

export type CheckpointReason = "interval" | "end" | "abort";

export interface TrainOptions {
  model: Trainable;
  /** Training and validation token streams (data.ts). */
  train: Int32Array;
  val?: Int32Array;
  /** Total optimiser steps (a resumed run continues up to this). */
  steps: number;
  /** Sequences per micro-batch, tokens per sequence, micro-batches per step (default 1). */
  batch: number;
  context: number;
  gradAccum?: number;
  optimizer: OptimizerConfig;
  schedule: Omit<ScheduleConfig, "steps">;
  /** Global gradient-norm threshold; 0 (default) leaves gradients as they are. */
  clip?: number;
  /** Seeds the data order (default 0). */
  seed?: number;
  /** Validation every this many steps and at the last step; 0 never (default). */
  evalEvery?: number;
  /** At most this many validation batches per evaluation (default 8). */
  evalBatches?: number;
  /** A checkpoint every this many steps; 0 only at the end and on abort (default). */
  checkpointEvery?: number;
  checkpoint?: (params: Tensors, state: TrainState, reason: CheckpointReason) => Promise<void>;
  /** Continue from a checkpoint's state (its parameters are already in model.params). */
  resume?: TrainState;
  /** Stops after the running step, with a checkpoint. */
  signal?: AbortSignal;
}

export async function* train(opts: TrainOptions): AsyncGenerator<TrainStep> {
  const { model, steps, batch, context } = opts;
  const accum = opts.gradAccum ?? 1;
  const evalEvery = opts.evalEvery ?? 0;
  const checkpointEvery = opts.checkpointEvery ?? 0;
  const optimizer = createOptimizer(opts.optimizer, model.shapes);
  const schedule: ScheduleConfig = { ...opts.schedule, steps };
  const resume = opts.resume;
  const device = model.device?.(deviceOptimizerConfig(opts.optimizer, model.shapes));
  if (resume) (device ?? optimizer).restore(resume.optimizer);
  const seed = resume?.data.seed ?? opts.seed ?? 0;
  const sampler = new WindowSampler(opts.train, context, seed, resume ? resume.data : undefined);
  const valBatches = opts.val ? validationBatches(opts.val, context, batch, opts.evalBatches ?? 8) : [];
  const history: TrainState["history"] = { train: [...(resume?.history.train ?? [])], val: [...(resume?.history.val ?? [])] };
  const lossOf = device ? (b: Batch) => device.loss(b) : (model.loss ?? (async (b: Batch) => (await model.lossAndGrad(b)).loss));
  const accumulator = new GradientAccumulator();

  let step = resume?.step ?? 0;
  // On a device, the parameters (model.params) and moments come back only here.
  const save = async (reason: CheckpointReason) => {
    if (device) await device.readParams(model.params);
    if (!opts.checkpoint) return;
    const state: TrainState = { step, optimizer: device ? await device.readState() : optimizer.state(), data: sampler.state(), history };
    await opts.checkpoint(model.params, state, reason);
  };

  while (step < steps) {
    // Signal handlers (SIGINT) run between macrotasks; a CPU step never yields on its own.
    await new Promise((r) => setImmediate(r));
    if (opts.signal?.aborted) {
      await save("abort");
      return;
    }
    const started = performance.now();
    const lr = learningRate(schedule, step);
    let loss: number;
    let gradNorm: number;
    if (device) {
      // The mean over the step's sequences (each sequence's loss is the mean over its tokens).
      const sequences = batch * accum;
      const sums = await device.accumulate(Array.from({ length: accum }, () => sampler.next(batch)));
      loss = sums.lossSum / sequences;
      gradNorm = sums.gradSumNorm / sequences;
      device.update(lr, clipScale(gradNorm, opts.clip ?? 0) / sequences);
    } else {
      for (let k = 0; k < accum; k++) {
        const micro = await model.lossAndGrad(sampler.next(batch));
        accumulator.add(micro.loss, micro.grads);
      }
      const mean = accumulator.take();
      loss = mean.loss;
      gradNorm = clipGradNorm(mean.grads, opts.clip ?? 0);
      optimizer.step(model.params, mean.grads, lr);
    }
    step++;
    const seconds = (performance.now() - started) / 1000;
    const record: TrainStep = { step, loss, lr, tokens_per_s: (batch * context * accum) / Math.max(seconds, 1e-9), grad_norm: gradNorm };
    history.train.push([step, loss]);
    if (valBatches.length > 0 && evalEvery > 0 && (step % evalEvery === 0 || step === steps)) {
      record.val_loss = await meanLoss(valBatches, lossOf);
      history.val.push([step, record.val_loss]);
    }
    if (step === steps) await save("end");
    else if (checkpointEvery > 0 && step % checkpointEvery === 0) await save("interval");
    yield record;
  }
}

/** The mean per-token loss over batches (weighted by their sequences). */
async function meanLoss(batches: readonly Batch[], lossOf: (b: Batch) => number | Promise<number>): Promise<number> {
  let sum = 0;
  let sequences = 0;
  for (const b of batches) {
    sum += (await lossOf(b)) * b.batch;
    sequences += b.batch;
  }
  return sum / sequences;
}

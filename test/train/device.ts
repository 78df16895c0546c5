// Shared pieces of the device-optimiser tests (WebGPU, CUDA): the micro LLaMA as a trainable model,
// and runs of the training loop with the optimiser on the host (the reference) and on the device.

import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { compileTrainingFile, type DropoutKey, type TrainingGraph } from "../../src/compiler/autodiff/index.js";
import { cpuTrainingStep, initialWeights, trainingWeightShapes, type TrainingStepResult } from "../../src/runtime/cpu/train-step.js";
import { compare } from "../helpers/graph.js";
import type { ModelDeviceTraining } from "../../src/train/loss.js";
import type { TrainingModel } from "../../src/train/model.js";
import type { OptimizerConfig, Tensors } from "../../src/train/optimizer.js";
import { train, type TrainOptions, type TrainState, type TrainStep } from "../../src/train/train.js";
import { microTraining } from "../helpers/training.js";

const MICRO = fileURLToPath(new URL("../autodiff/fixtures/micro-llama.llm", import.meta.url));

/** The micro LLaMA's training graph with residual and attention-probability dropout p. */
export function microWithDropout(p: number) {
  const r = compileTrainingFile(MICRO, { overrides: new Map([["resid_dropout", String(p)], ["attn_dropout", String(p)]]) });
  if (!r.training || !r.model) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return { training: r.training, model: r.model };
}

/** A device step with dropout drawn by a key against the CPU reference with the same key: the same
 *  masks, so the same loss and gradients (and not those of the step without dropout). `open` makes
 *  the device's step of `training` holding `weights`. */
export async function expectDropoutStepEqualsCpu(open: (training: TrainingGraph, weights: Tensors) => { run(tokens: Int32Array, targets: Int32Array, pos?: Int32Array, dropout?: DropoutKey): Promise<TrainingStepResult> }): Promise<void> {
  const { training, model } = microWithDropout(0.3);
  const weights = initialWeights(model, 5);
  const step = open(training, weights);
  const tokens = Int32Array.from({ length: 10 }, (_, i) => (i * 11 + 2) % 64);
  const targets = Int32Array.from({ length: 10 }, (_, i) => (i * 23 + 9) % 64);
  const key = { seed: 4, serial: 17 };
  const want = cpuTrainingStep(training, weights, tokens, targets, undefined, key);
  const got = await step.run(tokens, targets, undefined, key);
  const plain = cpuTrainingStep(training, weights, tokens, targets);
  expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-5 * want.loss);
  expect(Math.abs(plain.loss - want.loss)).toBeGreaterThan(1e-3);
  for (const [name, g] of want.grads) {
    const { maxDiff, scale } = compare(got.grads.get(name)!, g);
    expect(maxDiff, name).toBeLessThanOrEqual(2e-4 * Math.max(scale, 1e-6));
  }
}

/** The micro LLaMA's weights as a TrainingModel (what webGpuTraining / cudaTraining read of it);
 *  `dropout`: its residual dropout. */
export function microModel(seed = 3, dropout = 0): TrainingModel {
  const { training, model } = dropout > 0 ? microWithDropout(dropout) : microTraining();
  const params = initialWeights(model, seed);
  const shapes = trainingWeightShapes(training);
  return { training, params, shapes, frozen: new Map() } as unknown as TrainingModel;
}

/** A token stream with structure (so steps move the loss), ids below the vocabulary of 64. */
export function tokenStream(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => ((i * 7) % 13) * 3 + (i % 5));
}

export const copyTensors = (t: Tensors): Tensors => new Map([...t].map(([n, v]) => [n, v.slice()]));

export function runOptions(model: { params: Tensors; shapes: ReadonlyMap<string, readonly number[]> }, training: ModelDeviceTraining, optimizer: OptimizerConfig, onDevice: boolean, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: { params: model.params, shapes: model.shapes, lossAndGrad: training.lossAndGrad, ...(onDevice ? { device: training.device } : {}) },
    train: tokenStream(300),
    val: tokenStream(40),
    steps: 4,
    batch: 2,
    context: 7,
    gradAccum: 2,
    optimizer,
    schedule: { kind: "cosine", lr: 0.01, warmup: 1 },
    // Small enough that every step clips.
    clip: 0.05,
    seed: 5,
    evalEvery: 2,
    ...over,
  };
}

export async function collect(it: AsyncIterable<TrainStep>): Promise<TrainStep[]> {
  const out: TrainStep[] = [];
  for await (const r of it) out.push(r);
  return out;
}

/** Every parameter within `tol` of the reference, relative to the tensor's largest value; returns
 *  the worst relative difference. */
export function expectParamsClose(got: Tensors, want: Tensors, tol: number): number {
  let worst = 0;
  for (const [name, w] of want) {
    const g = got.get(name)!;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < w.length; i++) {
      scale = Math.max(scale, Math.abs(w[i]!));
      diff = Math.max(diff, Math.abs(g[i]! - w[i]!));
    }
    expect(diff, name).toBeLessThanOrEqual(tol * Math.max(scale, 1e-6));
    worst = Math.max(worst, diff / Math.max(scale, 1e-6));
  }
  return worst;
}

/** The host optimiser's records and parameters against the device optimiser's (the same gradients
 *  from the same device kernels): equal to f32 rounding, every step clipped. */
export async function expectDeviceOptimizerMatchesHost(open: (model: TrainingModel) => ModelDeviceTraining, optimizer: OptimizerConfig, over: Partial<TrainOptions> = {}, dropout = 0): Promise<void> {
  const hostModel = microModel(3, dropout);
  const deviceModel = microModel(3, dropout);
  const hostTraining = open(hostModel);
  const deviceTraining = open(deviceModel);
  try {
    const host = await collect(train(runOptions(hostModel, hostTraining, optimizer, false, over)));
    const device = await collect(train(runOptions(deviceModel, deviceTraining, optimizer, true, over)));
    expect(device.length).toBe(host.length);
    host.forEach((h, i) => {
      const d = device[i]!;
      expect(h.grad_norm).toBeGreaterThan(0.05);
      expect(Math.abs(d.loss - h.loss)).toBeLessThan(1e-5 * h.loss);
      expect(Math.abs(d.grad_norm - h.grad_norm)).toBeLessThan(1e-4 * h.grad_norm);
      expect(d.val_loss === undefined).toBe(h.val_loss === undefined);
      if (h.val_loss !== undefined) expect(Math.abs(d.val_loss! - h.val_loss)).toBeLessThan(1e-5 * h.val_loss);
    });
    // The parameters moved, and the device's moved as the host's did.
    const start = microModel().params;
    let moved = 0;
    for (const [name, p] of hostModel.params) moved = Math.max(moved, Math.max(...p.map((v, i) => Math.abs(v - start.get(name)![i]!))));
    expect(moved).toBeGreaterThan(1e-3);
    expectParamsClose(deviceModel.params, hostModel.params, 2e-5);
  } finally {
    hostTraining.dispose();
    deviceTraining.dispose();
  }
}

/** A device run stopped after 2 of 4 steps and resumed from its checkpoint (parameters and state
 *  read back) takes bit for bit the uninterrupted run's steps. */
export async function expectDeviceResumeExact(open: (model: TrainingModel) => ModelDeviceTraining, optimizer: OptimizerConfig, dropout = 0): Promise<void> {
  const whole = microModel(3, dropout);
  const wholeTraining = open(whole);
  const first = microModel(3, dropout);
  const firstTraining = open(first);
  let saved: { params: Tensors; state: TrainState } | undefined;
  try {
    const all = await collect(train(runOptions(whole, wholeTraining, optimizer, true)));
    const head = await collect(
      train(runOptions(first, firstTraining, optimizer, true, {
        checkpointEvery: 2,
        checkpoint: async (params, state) => {
          saved ??= { params: copyTensors(params), state: structuredClone(state) };
        },
      })),
    );
    expect(head.map((r) => r.loss)).toEqual(all.map((r) => r.loss));
    const resumed = { ...microModel(3, dropout), params: saved!.params } as TrainingModel;
    const resumedTraining = open(resumed);
    try {
      const tail = await collect(train(runOptions(resumed, resumedTraining, optimizer, true, { resume: saved!.state })));
      expect(tail.map((r) => [r.step, r.loss, r.grad_norm, r.lr])).toEqual(all.slice(2).map((r) => [r.step, r.loss, r.grad_norm, r.lr]));
      for (const [name, p] of whole.params) expect(resumed.params.get(name), name).toEqual(p);
    } finally {
      resumedTraining.dispose();
    }
  } finally {
    wholeTraining.dispose();
    firstTraining.dispose();
  }
}

export type { TrainingGraph };

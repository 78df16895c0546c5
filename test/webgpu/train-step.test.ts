// The training graph on WebGPU (llvmpipe) against the CPU reference: the same loss and the same
// gradient of every weight, for a LLaMA with grouped-query attention, untied and tied embeddings,
// and ignored targets. The device step goes through the ordinary target layer (plan, WGSL).

import { afterAll, describe, expect, it } from "vitest";
import { cpuTrainingStep, initialWeights } from "../../src/runtime/cpu/train-step.js";
import { GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { WebGpuTrainingStep } from "../../src/runtime/webgpu/train-step.js";
import { expectStepEqualsCpu, microTraining } from "../helpers/training.js";
import { gpu } from "./helpers.js";
import { expectDropoutStepEqualsCpu } from "../train/device.js";

const steps: WebGpuTrainingStep[] = [];
afterAll(() => steps.forEach((s) => s.dispose()));

describe("a training step on WebGPU", () => {
  for (const tied of [false, true]) {
    it(`equals the CPU reference: loss and every gradient (${tied ? "tied" : "untied"} embeddings)`, async () => {
      const { training, model } = microTraining(tied);
      const weights = initialWeights(model, 3);
      const step = new WebGpuTrainingStep(training, await gpu());
      steps.push(step);
      step.setWeights(weights);
      await expectStepEqualsCpu(step, training, weights);
    });
  }

  it("equals the CPU reference with a GPU's kernel shapes (weight gradients read their operands transposed)", async () => {
    const { training, model } = microTraining();
    const weights = initialWeights(model, 4);
    expect(GPU_TUNING.matmul.readTransposed).toBe(true);
    const step = new WebGpuTrainingStep(training, await gpu(), { tuning: GPU_TUNING });
    steps.push(step);
    step.setWeights(weights);
    await expectStepEqualsCpu(step, training, weights);
  });

  it("draws the CPU reference's dropout masks", async () => {
    const dev = await gpu();
    await expectDropoutStepEqualsCpu((training, weights) => {
      const step = new WebGpuTrainingStep(training, dev);
      steps.push(step);
      step.setWeights(weights);
      return step;
    });
  });

  it("sees new weights after setWeights", async () => {
    const { training, model } = microTraining();
    const weights = initialWeights(model, 1);
    const step = new WebGpuTrainingStep(training, await gpu());
    steps.push(step);
    const tokens = Int32Array.of(1, 2, 3, 4);
    const targets = Int32Array.of(2, 3, 4, 5);
    step.setWeights(weights);
    const before = await step.run(tokens, targets);
    const changed = new Map([...weights].map(([k, v]) => [k, v.map((x) => x * 0.5)]));
    step.setWeights(changed);
    const after = await step.run(tokens, targets);
    expect(after.loss).not.toBeCloseTo(before.loss, 4);
    expect(Math.abs(after.loss - cpuTrainingStep(training, changed, tokens, targets).loss)).toBeLessThan(1e-4);
  });
});

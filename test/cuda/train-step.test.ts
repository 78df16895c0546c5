// The training graph on the CUDA backend (the CPU emulation: g++ and the fake libcuda) against the
// CPU reference: the same loss and the same gradient of every weight, for a LLaMA with
// grouped-query attention, untied and tied embeddings, and ignored targets. The device step goes
// through the ordinary target layer (compileCuda: plan, kernels.cu, launches).

import { afterAll, describe, expect, it } from "vitest";
import { compileCuda } from "../../src/compiler/target/cuda.js";
import { cpuTrainingStep, initialWeights } from "../../src/runtime/cpu/train-step.js";
import { CudaTrainingStep, type StepProgram } from "../../src/runtime/cuda/train-step.js";
import { compare, emulated } from "./helpers.js";
import { expectStepEqualsCpu, microTraining } from "../helpers/training.js";
import { cudaTraining } from "../../src/train/loss.js";
import { expectDeviceOptimizerMatchesHost, expectDeviceResumeExact, expectDropoutStepEqualsCpu } from "../train/device.js";

const steps: CudaTrainingStep[] = [];
afterAll(() => steps.forEach((s) => s.dispose()));

function newStep(training: Parameters<typeof cpuTrainingStep>[0]): CudaTrainingStep {
  const step = new CudaTrainingStep(training, emulated());
  steps.push(step);
  return step;
}

describe("a training step on CUDA (emulated)", () => {
  for (const tied of [false, true]) {
    it(`equals the CPU reference: loss and every gradient (${tied ? "tied" : "untied"} embeddings)`, async () => {
      const { training, model } = microTraining(tied);
      const weights = initialWeights(model, 3);
      const step = newStep(training);
      step.setWeights(weights);
      await expectStepEqualsCpu(step, training, weights);
    });
  }

  it("draws the CPU reference's dropout masks", async () => {
    await expectDropoutStepEqualsCpu((training, weights) => {
      const step = newStep(training);
      step.setWeights(weights);
      return step;
    });
  });

  it("sees new weights after setWeights, and positions other than 0 … T−1", async () => {
    const { training, model } = microTraining();
    const weights = initialWeights(model, 1);
    const step = newStep(training);
    const tokens = Int32Array.of(1, 2, 3, 4, 5, 6, 7);
    const targets = Int32Array.of(2, 3, 4, 5, 6, 7, 8);
    step.setWeights(weights);
    const before = await step.run(tokens, targets);
    const changed = new Map([...weights].map(([k, v]) => [k, v.map((x) => x * 0.5)]));
    step.setWeights(changed);
    const after = await step.run(tokens, targets);
    expect(after.loss).not.toBeCloseTo(before.loss, 4);
    expect(Math.abs(after.loss - cpuTrainingStep(training, changed, tokens, targets).loss)).toBeLessThan(1e-4);
    // Not a uniform shift, which rotary attention would not see. At these small initial weights
    // positions barely move the loss; the queries' gradients show them.
    const pos = Int32Array.of(0, 3, 4, 9, 10, 20, 21);
    const shifted = await step.run(tokens, targets, pos);
    const want = cpuTrainingStep(training, changed, tokens, targets, pos);
    expect(Math.abs(shifted.loss - want.loss)).toBeLessThan(1e-4);
    for (const [name, g] of want.grads) {
      const { maxDiff, scale } = compare(shifted.grads.get(name)!, g);
      expect(maxDiff, name).toBeLessThanOrEqual(2e-4 * Math.max(scale, 1e-6));
    }
    const moved = compare(shifted.grads.get("layers.0.wq")!, after.grads.get("layers.0.wq")!);
    expect(moved.maxDiff).toBeGreaterThan(1e-2 * moved.scale);
  });

  it("rejects bad inputs, and a graph whose inputs the runtime does not name", async () => {
    const { training, model } = microTraining();
    const step = newStep(training);
    step.setWeights(initialWeights(model, 1));
    await expect(step.run(Int32Array.of(1, 64), Int32Array.of(2, 3))).rejects.toThrow(/token 64 \(at 1\) is outside the vocabulary of 64/);
    await expect(step.run(Int32Array.of(1, 2), Int32Array.of(2))).rejects.toThrow(/2 tokens need 2 targets, got 1/);
    expect(() => step.setWeights(new Map())).toThrow(/no weight 'embed' was given/);
    expect(() => compileCuda(training.graph, { archs: [{ major: 8, minor: 0 }], prefillChunk: 4 })).toThrow(/input 'targets' that the runtime does not provide \(it provides tokens, pos\)/);
    step.dispose();
    await expect(step.run(Int32Array.of(1), Int32Array.of(2))).rejects.toThrow(/disposed/);
  });
});

// The optimiser on CUDA (CudaTraining: parameters, gradient sums and moments in device memory, the
// graph's kernels reading the weights inside the flat parameter buffer) against the host optimiser.
describe("a packed step on CUDA (emulated) out of GPU memory", () => {
  it("packs half as many tokens, gives back what the failed step allocated, and sums the same loss", async () => {
    const { training, model } = microTraining();
    const weights = initialWeights(model, 5);
    const L = 8;
    const sequences = [0, 1, 2, 3].map((s) => ({
      tokens: Int32Array.from({ length: L }, (_, i) => (i * 13 + s * 7 + 1) % 64),
      targets: Int32Array.from({ length: L }, (_, i) => (i * 31 + s * 5 + 2) % 64),
    }));
    const live = (step: CudaTrainingStep) => {
      const m = step.driver.memoryInfo();
      return m.total - m.free;
    };
    const lossOf = (step: CudaTrainingStep, prog: StepProgram) => {
      step.driver.streamSynchronize(step.stream);
      const v = new Float32Array(1);
      step.driver.dtoh(v, prog.outputs[0]!.ptr);
      return v[0]!;
    };
    const before = process.env["LLMC_FAKE_CUDA_MEMORY"];
    process.env["LLMC_FAKE_CUDA_MEMORY"] = String(2 ** 40); // counted, never short
    try {
      // What a step of 2 sequences and one of 4 take, on steps of their own.
      const probe = (k: number) => {
        const step = newStep(training);
        const base = live(step);
        step.packTokens = k * L;
        step.setWeights(weights);
        const { taken, prog } = step.enqueueRun(sequences);
        expect(taken).toBe(k);
        return { bytes: live(step) - base, loss: lossOf(step, prog), base };
      };
      const two = probe(2);
      const four = probe(4);
      expect(four.bytes).toBeGreaterThan(two.bytes);
      // Room for the 2-sequence step but not the 4-sequence one (the fake driver counts every
      // step's memory, the probes' too).
      const step = newStep(training);
      const base = live(step);
      process.env["LLMC_FAKE_CUDA_MEMORY"] = String(base + two.bytes + Math.floor((four.bytes - two.bytes) / 2));
      step.packTokens = 4 * L;
      step.setWeights(weights);
      const { taken, prog } = step.enqueueRun(sequences);
      expect(taken).toBe(2);
      expect(step.packTokens).toBe(2 * L);
      expect(live(step) - base).toBe(two.bytes);
      expect(lossOf(step, prog)).toBe(two.loss);
      // The sum of the first two sequences' mean losses, as the CPU reference gives them.
      const want = sequences.slice(0, 2).reduce((a, q) => a + cpuTrainingStep(training, weights, q.tokens, q.targets).loss, 0);
      expect(Math.abs(two.loss - want)).toBeLessThan(1e-4 * want);
    } finally {
      if (before === undefined) delete process.env["LLMC_FAKE_CUDA_MEMORY"];
      else process.env["LLMC_FAKE_CUDA_MEMORY"] = before;
    }
  });
});

describe("the optimiser on CUDA (emulated)", () => {
  const open = (model: Parameters<typeof cudaTraining>[0]) => cudaTraining(model, emulated());

  it("takes the host AdamW's steps (decay on matrices, clipping, accumulation)", async () => {
    await expectDeviceOptimizerMatchesHost(open, { kind: "adamw", weightDecay: 0.1 });
  });

  it("takes the host SGD's steps (Nesterov momentum, L2 decay)", async () => {
    await expectDeviceOptimizerMatchesHost(open, { kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.05 }, { schedule: { kind: "constant", lr: 1 } });
  });

  it("resumes from the state it reads back, bit for bit", async () => {
    await expectDeviceResumeExact(open, { kind: "sgd", momentum: 0.5 });
  });
});

// The training graph on WebGPU (llvmpipe) against the CPU reference: the same loss and the same
// gradient of every weight, for a LLaMA with grouped-query attention, untied and tied embeddings,
// and ignored targets. The device step goes through the ordinary target layer (plan, WGSL).

import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compileTrainingFile } from "../../src/compiler/autodiff/index.js";
import { cpuTrainingStep, initialWeights } from "../../src/runtime/cpu/train-step.js";
import { WebGpuTrainingStep } from "../../src/runtime/webgpu/train-step.js";
import { compare, gpu } from "./helpers.js";

const MICRO = fileURLToPath(new URL("../autodiff/fixtures/micro-llama.llm", import.meta.url));

const steps: WebGpuTrainingStep[] = [];
afterAll(() => steps.forEach((s) => s.dispose()));

describe("a training step on WebGPU", () => {
  for (const tied of [false, true]) {
    it(`equals the CPU reference: loss and every gradient (${tied ? "tied" : "untied"} embeddings)`, async () => {
      const r = compileTrainingFile(MICRO, { overrides: new Map([["tie_embeddings", String(tied)]]) });
      if (!r.training || !r.model) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
      const weights = initialWeights(r.model, 3);
      const step = new WebGpuTrainingStep(r.training, await gpu());
      steps.push(step);
      step.setWeights(weights);
      for (const T of [7, 12]) {
        const tokens = Int32Array.from({ length: T }, (_, i) => (i * 17 + 5) % 64);
        // Two ignored targets: they must drop out of the loss on both backends.
        const targets = Int32Array.from({ length: T }, (_, i) => (i === 2 || i === T - 1 ? -1 : (i * 29 + 3) % 64));
        const want = cpuTrainingStep(r.training, weights, tokens, targets);
        const got = await step.run(tokens, targets);
        expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want.loss)));
        expect(got.grads.size).toBe(want.grads.size);
        for (const [name, g] of want.grads) {
          const { maxDiff, scale } = compare(got.grads.get(name)!, g);
          expect(maxDiff, `${name} (T=${T})`).toBeLessThanOrEqual(2e-4 * Math.max(scale, 1e-6));
        }
      }
    });
  }

  it("sees new weights after setWeights", async () => {
    const r = compileTrainingFile(MICRO);
    const weights = initialWeights(r.model!, 1);
    const step = new WebGpuTrainingStep(r.training!, await gpu());
    steps.push(step);
    const tokens = Int32Array.of(1, 2, 3, 4);
    const targets = Int32Array.of(2, 3, 4, 5);
    step.setWeights(weights);
    const before = await step.run(tokens, targets);
    const changed = new Map([...weights].map(([k, v]) => [k, v.map((x) => x * 0.5)]));
    step.setWeights(changed);
    const after = await step.run(tokens, targets);
    expect(after.loss).not.toBeCloseTo(before.loss, 4);
    expect(Math.abs(after.loss - cpuTrainingStep(r.training!, changed, tokens, targets).loss)).toBeLessThan(1e-4);
  });
});

// Shared pieces of the device training-step tests (WebGPU, CUDA): the micro LLaMA's training graph
// and the comparison of a device step with the CPU reference on its loss and every gradient.

import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { compileTrainingFile, type TrainingGraph } from "../../src/compiler/autodiff/index.js";
import { cpuTrainingStep, type TrainingStepResult } from "../../src/runtime/cpu/train-step.js";
import { compare } from "./graph.js";

const MICRO = fileURLToPath(new URL("../autodiff/fixtures/micro-llama.llm", import.meta.url));

/** The training graph and model of test/autodiff/fixtures/micro-llama.llm (2 layers, GQA, vocab 64). */
export function microTraining(tied?: boolean) {
  const r = compileTrainingFile(MICRO, tied === undefined ? {} : { overrides: new Map([["tie_embeddings", String(tied)]]) });
  if (!r.training || !r.model) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return { training: r.training, model: r.model };
}

/** Sequences of 7 and 12 tokens, each with two ignored targets (which must drop out of the loss on
 *  both sides): the device step's loss and every gradient equal the CPU reference's. */
export async function expectStepEqualsCpu(
  step: { run(tokens: Int32Array, targets: Int32Array): Promise<TrainingStepResult> },
  training: TrainingGraph,
  weights: ReadonlyMap<string, Float32Array>,
): Promise<void> {
  for (const T of [7, 12]) {
    const tokens = Int32Array.from({ length: T }, (_, i) => (i * 17 + 5) % 64);
    const targets = Int32Array.from({ length: T }, (_, i) => (i === 2 || i === T - 1 ? -1 : (i * 29 + 3) % 64));
    const want = cpuTrainingStep(training, weights, tokens, targets);
    const got = await step.run(tokens, targets);
    expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want.loss)));
    expect([...got.grads.keys()]).toEqual([...want.grads.keys()]);
    for (const [name, g] of want.grads) {
      const { maxDiff, scale } = compare(got.grads.get(name)!, g);
      expect(scale, `${name} (T=${T}) is not all zero`).toBeGreaterThan(0);
      expect(maxDiff, `${name} (T=${T})`).toBeLessThanOrEqual(2e-4 * Math.max(scale, 1e-6));
    }
  }
}

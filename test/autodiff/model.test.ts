// The training graph of a whole LLaMA (2 layers, GQA, RoPE, SwiGLU, RMSNorm; untied and tied
// embeddings) against finite differences of the loss on sampled coordinates of every weight, and
// plain SGD on one short sequence lowering the loss.

import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { compileTrainingFile, type TrainingCompileResult } from "../../src/compiler/autodiff/index.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { cpuTrainingStep, evaluateGraph, initialWeights, modelWeightShapes, trainingWeightShapes } from "../../src/runtime/cpu/train-step.js";
import { rand } from "./gradcheck.js";

const MICRO = fileURLToPath(new URL("./fixtures/micro-llama.llm", import.meta.url));

function compileMicro(tied: boolean): TrainingCompileResult & { training: NonNullable<TrainingCompileResult["training"]> } {
  const r = compileTrainingFile(MICRO, { overrides: new Map([["tie_embeddings", String(tied)]]) });
  if (!r.training) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r as ReturnType<typeof compileMicro>;
}

/** Mean cross-entropy over targets ≥ 0, in f64 from the forward graph's f32 logits: the oracle the
 *  training graph's loss is compared with, and the function finite differences are taken of. */
function referenceLoss(forward: Graph, weights: Map<string, Float32Array>, tokens: Int32Array, targets: Int32Array): number {
  const T = tokens.length;
  const pos = Int32Array.from({ length: T }, (_, i) => i);
  const [logits] = evaluateGraph(forward, new Map([["T", T], ["P", 0]]), new Map([["tokens", tokens], ["pos", pos]]), (name) => weights.get(name)!);
  const v = logits!.shape[1]!;
  let total = 0;
  let count = 0;
  for (let t = 0; t < T; t++) {
    if (targets[t]! < 0) continue;
    const row = logits!.data.subarray(t * v, (t + 1) * v);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    total += Math.log(sum) + max - row[targets[t]!]!;
    count++;
  }
  return total / Math.max(count, 1);
}

const T = 8;
const tokens = Int32Array.from([3, 17, 42, 5, 63, 0, 17, 29]);
// Position 4 is ignored (ignore_index), like padding.
const targets = Int32Array.from([17, 42, 5, -1, 0, 17, 29, 8]);

describe.each([false, true])("micro LLaMA, tie_embeddings = %s", (tied) => {
  const compiled = compileMicro(tied);
  const { training, forward, model } = compiled;

  test("weights: the model's tensors, a tied lm_head under embed's name", () => {
    expect(new Set(training.weightNames)).toEqual(new Set(modelWeightShapes(model!).keys()));
    expect(training.weightNames.includes("lm_head")).toBe(!tied);
    expect(trainingWeightShapes(training).get("layers.1.wk")).toEqual([16, 32]);
    expect(training.graph.outputs.length).toBe(1 + training.weightNames.length);
  });

  test("the loss is the mean cross-entropy of the forward logits over the targets kept", () => {
    const weights = initialWeights(model!, 7);
    const { loss } = cpuTrainingStep(training, weights, tokens, targets);
    expect(loss).toBeCloseTo(referenceLoss(forward!, weights, tokens, targets), 5);
    // All ignored: no tokens count, the loss is 0 and so is every gradient.
    const none = cpuTrainingStep(training, weights, tokens, new Int32Array(T).fill(-1));
    expect(Math.abs(none.loss)).toBe(0);
    expect(Math.max(...[...none.grads.values()].map((g) => Math.max(...g.map(Math.abs))))).toBe(0);
  });

  test("every weight's gradient matches finite differences at sampled coordinates", () => {
    const weights = initialWeights(model!, 3);
    const { grads } = cpuTrainingStep(training, weights, tokens, targets);
    const r = rand(tied ? 11 : 12);
    const eps = 1e-2;
    const failures: string[] = [];
    for (const name of training.weightNames) {
      const w = weights.get(name)!;
      const g = grads.get(name)!;
      expect(g.length).toBe(w.length);
      let largest = 0;
      for (let j = 1; j < g.length; j++) if (Math.abs(g[j]!) > Math.abs(g[largest]!)) largest = j;
      const coords = [largest, Math.floor(r() * g.length), Math.floor(r() * g.length)];
      for (const j of coords) {
        const keep = w[j]!;
        w[j] = keep + eps;
        const up = w[j]!;
        const lossUp = referenceLoss(forward!, weights, tokens, targets);
        w[j] = keep - eps;
        const down = w[j]!;
        const lossDown = referenceLoss(forward!, weights, tokens, targets);
        w[j] = keep;
        const numeric = (lossUp - lossDown) / (up - down);
        // f32 activations make the loss good to ~1e-6, i.e. ~5e-5 after dividing by 2ε; the rest is
        // relative (truncation, O(ε²)).
        if (!(Math.abs(numeric - g[j]!) <= 1e-4 + 2e-2 * Math.abs(numeric))) failures.push(`${name}[${j}]: gradient ${g[j]}, finite difference ${numeric}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

test("plain SGD on one short sequence lowers the loss", () => {
  const { training, model } = compileMicro(true);
  const weights = initialWeights(model!, 5);
  const seq = Int32Array.from({ length: 17 }, (_, i) => (i * 13 + 5) % 64);
  const input = seq.subarray(0, 16);
  const next = seq.subarray(1);
  const losses: number[] = [];
  for (let step = 0; step < 12; step++) {
    const { loss, grads } = cpuTrainingStep(training, weights, input, next);
    losses.push(loss);
    for (const [name, g] of grads) {
      const w = weights.get(name)!;
      for (let j = 0; j < w.length; j++) w[j] -= 0.2 * g[j]!;
    }
  }
  expect(losses[0]).toBeGreaterThan(3.5); // about ln 64 at initialisation
  expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
  for (let i = 1; i < losses.length; i++) expect(losses[i]!).toBeLessThan(losses[i - 1]!);
});

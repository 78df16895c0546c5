// The training graph's shape as a graph (no KV cache, its inputs and outputs, the standard passes and
// fusion over it), tied weights read through two weight nodes, and the CPU step's input checks.

import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { buildTrainingGraph, compileTrainingFile } from "../../src/compiler/autodiff/index.js";
import { dimSymbols, symDim } from "../../src/compiler/base/symbolic.js";
import { verifyGraph } from "../../src/compiler/ir/verify.js";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { cpuTrainingStep, evaluateGraph, initialWeights } from "../../src/runtime/cpu/train-step.js";
import { GraphBuilder } from "../helpers/graph.js";
import { rand } from "./gradcheck.js";

const MICRO = fileURLToPath(new URL("./fixtures/micro-llama.llm", import.meta.url));
const model = (name: string) => fileURLToPath(new URL(`../../models/${name}.llm`, import.meta.url));
const micro = (extra: Record<string, string> = {}) => new Map(Object.entries({ vocab_size: "64", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "48", max_seq_len: "64", ...extra }));
const opsOf = (g: { nodes: { op: string }[] }, prefix: string) => g.nodes.filter((n) => n.op.startsWith(prefix)).map((n) => n.op);
const tokens = Int32Array.from([1, 9, 33, 4, 4, 60]);
const targets = Int32Array.from([9, 33, 4, -1, 60, 2]);

describe("the training graph of a LLaMA", () => {
  const { training, model } = compileTrainingFile(MICRO);

  test("has no KV cache, no past length, and inputs tokens, pos and targets", () => {
    const g = training!.graph;
    verifyGraph(g, "test");
    expect(g.states.size).toBe(0);
    expect(g.nodes.some((n) => n.op === "kv_append")).toBe(false);
    expect(g.nodes.every((n) => n.ty.shape.every((d) => !dimSymbols(d).includes("P")))).toBe(true);
    const inputs = g.nodes.filter((n) => n.op === "input").map((n) => n.attrs["name"]).sort();
    expect(inputs).toEqual(["pos", "targets", "tokens"]);
    expect(g.nodes.find((n) => n.id === g.outputs[0])!.ty.shape).toEqual([]);
    expect(training!.vocabSize).toBe(64);
  });

  test("fusion over it gives the same loss and gradients on the CPU reference", () => {
    const fused = compileTrainingFile(MICRO, { pipeline: DEFAULT_PIPELINE }).training!;
    expect(fused.graph.nodes.some((n) => n.op === "fused" || n.op === "linear")).toBe(true);
    const weights = initialWeights(model!, 2);
    const a = cpuTrainingStep(training!, weights, tokens, targets);
    const b = cpuTrainingStep(fused, weights, tokens, targets);
    expect(b.loss).toBeCloseTo(a.loss, 6);
    for (const [name, g] of a.grads) {
      const h = b.grads.get(name)!;
      const worst = g.reduce((m, v, i) => Math.max(m, Math.abs(v - h[i]!)), 0);
      expect(worst, name).toBeLessThan(1e-5);
    }
  });

  test("every row reduction of the backward sits inside a fused kernel (RMSNorm's backward: one row kernel for dx)", () => {
    // The default TRAINING_PIPELINE; dead gradients (of RMSNorm's ε) must not keep a norm's row
    // scalars out of their region. (The forward's means stay kernels of their own: the backward
    // reads their rsqrt too.)
    const g = training!.graph;
    const rowSums = g.nodes.filter((n) => n.op === "sum" && n.attrs["keepdim"] === true);
    expect(rowSums.map((n) => `%${n.id} ${n.op}`)).toEqual([]);
    // Each RMSNorm's dx is one fused node with a reduction in its program.
    const rowKernels = g.nodes.filter((n) => n.op === "fused" && JSON.stringify(n.attrs["program"]).includes('"reduce"'));
    expect(rowKernels.length).toBeGreaterThanOrEqual(2 * 2 + 1);
  });

  test("positions default to 0 … T−1, and the step checks its inputs", () => {
    const weights = initialWeights(model!, 2);
    const a = cpuTrainingStep(training!, weights, tokens, targets);
    const b = cpuTrainingStep(training!, weights, tokens, targets, Int32Array.from([0, 1, 2, 3, 4, 5]));
    // A constant shift would not do: RoPE's scores depend on the distance between positions only.
    const spread = cpuTrainingStep(training!, weights, tokens, targets, Int32Array.from([0, 2, 4, 6, 8, 10]));
    expect(b.loss).toBe(a.loss);
    expect(spread.loss).not.toBe(a.loss);
    expect(() => cpuTrainingStep(training!, weights, tokens, targets.subarray(1))).toThrow(/targets/);
    expect(() => cpuTrainingStep(training!, weights, tokens, Int32Array.from([1, 2, 3, 64, 0, 0]))).toThrow(/vocabulary of 64/);
  });
});

describe("attention in training", () => {
  const cases: [string, string, Map<string, string>][] = [
    ["LLaMA (causal, grouped-query)", MICRO, new Map()],
    ["Mistral (a sliding window of 3)", model("mistral"), micro({ sliding_window: "3" })],
  ];
  for (const [what, file, overrides] of cases) {
    test(`${what}: one attention node forward, the four gradient kernels backward, the written-out graph's loss and gradients`, () => {
      const fused = compileTrainingFile(file, { overrides }).training!;
      const layers = 2;
      expect(opsOf(fused.graph, "attention").sort()).toEqual(
        ["attention", "attention_dk", "attention_dq", "attention_dv", "attention_lse"].flatMap((op) => Array(layers).fill(op)).sort(),
      );
      const written = compileTrainingFile(file, { overrides, forwardPipeline: UNFUSED_PIPELINE });
      expect(opsOf(written.training!.graph, "attention")).toEqual([]);
      const weights = initialWeights(written.model!, 3);
      const a = cpuTrainingStep(written.training!, weights, tokens, targets);
      const b = cpuTrainingStep(fused, weights, tokens, targets);
      expect(b.loss).toBeCloseTo(a.loss, 6);
      for (const [name, g] of a.grads) {
        const h = b.grads.get(name)!;
        const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-12);
        const worst = g.reduce((m, v, i) => Math.max(m, Math.abs(v - h[i]!)), 0);
        expect(worst / scale, name).toBeLessThan(1e-5);
      }
    });
  }

  test("attention with a score program (Gemma 2's soft-capping) stays written out and is differentiated op by op", () => {
    const overrides = new Map(Object.entries({ vocab_size: "64", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", head_dim: "8", ffn_dim: "48", max_seq_len: "64", sliding_window: "4" }));
    const { training, model: m } = compileTrainingFile(model("gemma2"), { overrides });
    expect(opsOf(training!.graph, "attention")).toEqual([]);
    const { loss, grads } = cpuTrainingStep(training!, initialWeights(m!, 1), tokens, targets);
    expect(Number.isFinite(loss)).toBe(true);
    expect([...grads.values()].every((g) => g.every(Number.isFinite))).toBe(true);
  });
});

test("a weight read through two weight nodes gets the sum of both uses' gradients", () => {
  // A bigram model whose output layer is its embedding: logits = E[tokens] · Eᵀ, with E named twice.
  const b = new GraphBuilder();
  const T = symDim("T");
  const ids = b.input("tokens", [T]);
  b.input("pos", [T]);
  const h = b.op("gather", [b.weight("embed", [5, 3]), ids]);
  const logits = b.op("matmul", [h, b.op("transpose", [b.weight("embed", [5, 3])], { perm: [1, 0] })]);
  const forward = b.graph([logits]);
  const tg = buildTrainingGraph(forward);
  expect(tg.weightNames).toEqual(["embed"]);

  const r = rand(4);
  const e = Float32Array.from({ length: 15 }, () => r() * 2 - 1);
  const ts = Int32Array.from([0, 3, 3, 1]);
  const next = Int32Array.from([3, 3, 1, 4]);
  const { grads } = cpuTrainingStep(tg, new Map([["embed", e]]), ts, next);
  const loss = (w: Float32Array) => {
    const [out] = evaluateGraph(forward, new Map([["T", 4]]), new Map([["tokens", ts], ["pos", new Int32Array(4)]]), () => w);
    let total = 0;
    for (let t = 0; t < 4; t++) {
      const row = Array.from(out!.data.subarray(t * 5, t * 5 + 5));
      total += Math.log(row.reduce((s, x) => s + Math.exp(x), 0)) - row[next[t]!]!;
    }
    return total / 4;
  };
  const g = grads.get("embed")!;
  for (let j = 0; j < 15; j++) {
    const plus = e.slice();
    const minus = e.slice();
    plus[j] += 1e-2;
    minus[j] -= 1e-2;
    const numeric = (loss(plus) - loss(minus)) / (plus[j]! - minus[j]!);
    expect(Math.abs(g[j]! - numeric), `embed[${j}]`).toBeLessThan(1e-4 + 1e-2 * Math.abs(numeric));
  }
});

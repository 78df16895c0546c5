// Packing training sequences (compiler/autodiff/pack.ts): k sequences as one step of k·L tokens give
// the sum of their losses and gradients, dropout included, and models whose rows mix are refused.

import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { compileTrainingFile, packedTrainingGraph, packingBlocker } from "../../src/compiler/autodiff/index.js";
import { cpuTrainingStep, initialWeights, packableRun, packedInputs, type TrainingSequence } from "../../src/runtime/cpu/train-step.js";
import { evaluateGraph } from "../../src/runtime/cpu/evaluate.js";
import { rand } from "./gradcheck.js";
import { GraphBuilder } from "../helpers/graph.js";
import { addDim, constDim, symDim } from "../../src/compiler/base/symbolic.js";

const MICRO = fileURLToPath(new URL("./fixtures/micro-llama.llm", import.meta.url));
const model = (name: string) => fileURLToPath(new URL(`../../models/${name}.llm`, import.meta.url));
const micro = (extra: Record<string, string> = {}) => new Map(Object.entries({ vocab_size: "64", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "48", max_seq_len: "64", ...extra }));

function sequences(n: number, L: number, seed: number, dropout = false): TrainingSequence[] {
  const r = rand(seed);
  return Array.from({ length: n }, (_, s) => ({
    tokens: Int32Array.from({ length: L }, () => Math.floor(r() * 64)),
    targets: Int32Array.from({ length: L }, () => Math.floor(r() * 64)),
    ...(dropout ? { dropout: { seed: 7, serial: s } } : {}),
  }));
}

/** The packed step's loss and gradients against the sum of the sequences' own. */
function expectPackedEqualsSum(file: string, overrides: Map<string, string>, k: number, L: number, dropout = false) {
  const { training, model: m } = compileTrainingFile(file, { overrides });
  const tg = training!;
  expect(tg.packingBlocker).toBeNull();
  const packed = packedTrainingGraph(tg, { segment: L, sequences: k });
  expect(packed.graph.nodes.filter((n) => n.op.startsWith("attention")).every((n) => n.attrs["segment"] === L)).toBe(true);
  const weights = initialWeights(m!, 5);
  const seqs = sequences(k, L, 11, dropout);
  let loss = 0;
  const sums = new Map<string, Float64Array>();
  for (const s of seqs) {
    const r = cpuTrainingStep(tg, weights, s.tokens, s.targets, undefined, s.dropout);
    loss += r.loss;
    for (const [name, g] of r.grads) {
      const acc = sums.get(name) ?? new Float64Array(g.length);
      g.forEach((v, i) => (acc[i] += v));
      sums.set(name, acc);
    }
  }
  const inputs = packedInputs(packed, seqs);
  const [pl, ...pg] = evaluateGraph(packed.graph, new Map([["T", k * L], ["P", 0]]), inputs, (name) => weights.get(name)!);
  expect(pl!.data[0]!).toBeCloseTo(loss, 4);
  packed.weightNames.forEach((name, i) => {
    const want = sums.get(name)!;
    const got = pg[i]!.data;
    const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 1e-12);
    const worst = want.reduce((a, v, j) => Math.max(a, Math.abs(v - got[j]!)), 0);
    expect(worst / scale, name).toBeLessThan(2e-5);
  });
}

describe("packed training steps", () => {
  test("LLaMA: 3 sequences of 5 tokens in one step are the sum of the three steps", () => expectPackedEqualsSum(MICRO, new Map(), 3, 5));
  test("Mistral with a window of 3, and residual dropout drawn per sequence", () =>
    expectPackedEqualsSum(model("mistral"), micro({ sliding_window: "3", resid_dropout: "0.2" }), 4, 4, true));

  test("models whose rows mix are not packed: attention written out (Gemma 2's soft-capping, attention dropout)", () => {
    const gemma = compileTrainingFile(model("gemma2"), { overrides: new Map(Object.entries({ vocab_size: "64", dim: "32", n_layers: "1", n_heads: "4", n_kv_heads: "2", head_dim: "8", ffn_dim: "48", max_seq_len: "64" })) }).training!;
    expect(gemma.packingBlocker).toMatch(/^%\d+ (transpose|matmul): /);
    const dropped = compileTrainingFile(MICRO, { overrides: new Map([["attn_dropout", "0.1"]]) }).training!;
    expect(dropped.packingBlocker).not.toBeNull();
    expect(() => packedTrainingGraph(dropped, { segment: 4, sequences: 2 })).toThrow(/cannot pack training sequences/);
    expect(packableRun(dropped, sequences(3, 4, 1), 1024)).toBe(1);
  });

  test("a run packs sequences of one length and one count of targets, up to the token budget", () => {
    const tg = compileTrainingFile(MICRO).training!;
    const seqs = [...sequences(3, 4, 1), ...sequences(1, 6, 2), ...sequences(2, 4, 3)];
    expect(packableRun(tg, seqs, 1024)).toBe(3);
    expect(packableRun(tg, seqs, 8)).toBe(2);
    expect(packableRun(tg, seqs.slice(3), 1024)).toBe(1);
    const ignored = sequences(2, 4, 4);
    ignored[1]!.targets[0] = -1;
    expect(packableRun(tg, ignored, 1024)).toBe(1);
  });

  test("the check itself: a shift along the tokens or a sum over them mixes rows; per-token work does not", () => {
    const T = symDim("T");
    const forward = (mix: "none" | "shift" | "pool") => {
      const b = new GraphBuilder();
      const ids = b.input("tokens", [T]);
      b.input("pos", [T]);
      let h = b.op("gather", [b.weight("embed", [8, 4]), ids]);
      if (mix === "shift") h = b.op("concat", [b.op("slice", [h], { axis: 0, start: constDim(0), end: constDim(1) }), h], { axis: 0 });
      if (mix === "pool") h = b.op("add", [h, b.op("sum", [h], { axis: 0, keepdim: true })]);
      const logits = b.op("matmul", [b.op("silu", [h]), b.op("transpose", [b.weight("out", [8, 4])], { perm: [1, 0] })]);
      return b.graph([mix === "shift" ? b.op("slice", [logits], { axis: 0, start: constDim(1), end: addDim(T, constDim(1)) }) : logits]);
    };
    expect(packingBlocker(forward("none"))).toBeNull();
    expect(packingBlocker(forward("shift"))).toMatch(/slice: /);
    expect(packingBlocker(forward("pool"))).toMatch(/sum: (it reduces over the tokens|its first axis)/);
  });
});

// Dropout: `dropout(x, p)` in a .llm is the identity in inference graphs and x·mask in the training
// graph, the mask an input drawn from a counter-based hash of (seed, serial, site, element). The
// mask keeps 1−p of the elements at scale 1/(1−p), is the same for the same key and differs for
// another; the gradient with the mask held fixed matches finite differences of the loss; p = 0 (and
// validation, which draws no mask) is the model without dropout; training draws a mask per sequence.

import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compileTrainingFile, dropoutMask, type DropoutSite } from "../../src/compiler/autodiff/index.js";
import { constDim, formatDim } from "../../src/compiler/base/symbolic.js";
import { cpuTrainingStep, initialWeights } from "../../src/runtime/cpu/train-step.js";
import { compileFile } from "../../src/compiler/compile.js";
import { printGraph } from "../../src/compiler/ir/text.js";

const MICRO = fileURLToPath(new URL("./fixtures/micro-llama.llm", import.meta.url));

function micro(p: number, config = "resid_dropout") {
  const r = compileTrainingFile(MICRO, { overrides: new Map([[config, String(p)]]) });
  if (!r.training || !r.model) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return { training: r.training, model: r.model, forward: r.forward! };
}

const site = (p: number, n: number): DropoutSite => ({ input: "dropout.0", p, shape: [constDim(n)] });

describe("the dropout mask", () => {
  it("keeps 1 − p of the elements, scaled by 1/(1 − p)", () => {
    for (const p of [0.1, 0.5, 0.9]) {
      const mask = dropoutMask(site(p, 200_000), 0, 1, { seed: 3, serial: 11 });
      const kept = mask.filter((v) => v !== 0);
      expect(new Set(kept)).toEqual(new Set([Math.fround(1 / (1 - p))]));
      // 200k Bernoulli draws: the standard deviation of the rate is at most 0.0012.
      expect(Math.abs(kept.length / mask.length - (1 - p))).toBeLessThan(0.006);
      // Neighbours are not correlated: P(both kept) ≈ (1 − p)².
      let both = 0;
      for (let i = 1; i < mask.length; i++) if (mask[i] && mask[i - 1]) both++;
      expect(Math.abs(both / (mask.length - 1) - (1 - p) ** 2)).toBeLessThan(0.006);
    }
  });

  it("is a function of (seed, serial, site): the same key gives the same mask, another key another", () => {
    const s = site(0.5, 4096);
    const a = dropoutMask(s, 0, 1, { seed: 1, serial: 7 });
    expect(dropoutMask(s, 0, 1, { seed: 1, serial: 7 })).toEqual(a);
    for (const other of [dropoutMask(s, 0, 1, { seed: 2, serial: 7 }), dropoutMask(s, 0, 1, { seed: 1, serial: 8 }), dropoutMask(s, 1, 1, { seed: 1, serial: 7 })]) {
      const same = a.filter((v, i) => v === other[i]).length / a.length;
      expect(same).toBeGreaterThan(0.45);
      expect(same).toBeLessThan(0.55);
    }
  });

  it("without a key (validation) or at p = 0 keeps everything at scale 1", () => {
    expect(dropoutMask(site(0.5, 100), 0, 1, undefined)).toEqual(new Float32Array(100).fill(1));
    expect(dropoutMask(site(0, 100), 0, 1, { seed: 1, serial: 1 })).toEqual(new Float32Array(100).fill(1));
  });
});

describe("dropout in the training graph", () => {
  const tokens = Int32Array.from({ length: 9 }, (_, i) => (i * 17 + 5) % 64);
  const targets = Int32Array.from({ length: 9 }, (_, i) => (i * 29 + 3) % 64);

  it("is a mask input per residual branch, none at p = 0, and never in the inference graph", () => {
    const off = micro(0);
    expect(off.training.dropout).toEqual([]);
    const on = micro(0.25);
    expect(on.training.dropout.map((s) => [s.input, s.p])).toEqual([0, 1, 2, 3].map((k) => [`dropout.${k}`, 0.25]));
    expect(on.training.graph.nodes.some((n) => n.op === "dropout")).toBe(false);
    // The forward graph keeps the op (the identity), the inference lowering drops it.
    expect(on.forward.nodes.filter((n) => n.op === "dropout")).toHaveLength(4);
  });

  it("attn_dropout masks each layer's attention probabilities, [kv heads, group, T, S]", () => {
    const on = micro(0.25, "attn_dropout");
    expect(on.training.dropout.map((s) => [s.input, s.p, s.shape.map(formatDim)])).toEqual([0, 1].map((k) => [`dropout.${k}`, 0.25, ["2", "2", "T", "T"]]));
  });

  it("leaves the inference graph as it is without dropout (residual and attention dropout)", () => {
    const ir = (p: number, config = "resid_dropout") => {
      const r = compileFile(MICRO, { overrides: new Map([[config, String(p)]]) });
      if (!r.compiled) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
      return printGraph(r.compiled.graph);
    };
    expect(ir(0.25)).toBe(ir(0));
    expect(ir(0.25)).not.toMatch(/dropout/);
    expect(ir(0.25, "attn_dropout")).toBe(ir(0));
  });

  it("without a draw (validation) gives the loss and gradients of the model without dropout", () => {
    const off = micro(0);
    const on = micro(0.25);
    const weights = initialWeights(off.model, 2);
    const a = cpuTrainingStep(off.training, weights, tokens, targets);
    const b = cpuTrainingStep(on.training, weights, tokens, targets);
    expect(b.loss).toBe(a.loss);
    for (const [name, g] of a.grads) expect(b.grads.get(name), name).toEqual(g);
    const drawn = cpuTrainingStep(on.training, weights, tokens, targets, undefined, { seed: 1, serial: 0 });
    expect(drawn.loss).not.toBe(a.loss);
  });

  it("has the gradient of its loss with the mask held fixed (finite differences)", () => {
    const { training, model } = micro(0.3);
    const weights = initialWeights(model, 4);
    const key = { seed: 9, serial: 5 };
    const lossAt = (w: Map<string, Float32Array>) => cpuTrainingStep(training, w, tokens, targets, undefined, key).loss;
    const { grads } = cpuTrainingStep(training, weights, tokens, targets, undefined, key);
    const plain = cpuTrainingStep(training, weights, tokens, targets).grads;
    let differs = 0;
    // The weights right before a dropout (wo, w_down) and one before them (wv), at their largest gradients.
    for (const name of ["layers.0.wo", "layers.1.w_down", "layers.0.wv"]) {
      const g = grads.get(name)!;
      const order = [...g.keys()].sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!)).slice(0, 3);
      for (const i of order) {
        const eps = 1e-2;
        const shifted = (d: number) => new Map([...weights].map(([n, v]) => [n, n === name ? v.map((x, j) => (j === i ? x + d : x)) : v]));
        const fd = (lossAt(shifted(eps)) - lossAt(shifted(-eps))) / (2 * eps);
        expect(Math.abs(fd - g[i]!), `${name}[${i}]`).toBeLessThan(2e-2 * Math.abs(g[i]!) + 2e-4);
        if (Math.abs(plain.get(name)![i]! - g[i]!) > 0.1 * Math.abs(g[i]!)) differs++;
      }
    }
    // The mask matters: without it most of these gradients are different.
    expect(differs).toBeGreaterThan(4);
  });
});

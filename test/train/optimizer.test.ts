// Optimisers, clipping and accumulation: hand-derived Adam steps, known facts (a bias-corrected first
// step moves each weight by ≈ lr; clipping leaves exactly the threshold), and three steps of AdamW and
// SGD against numbers torch.optim printed (test/train/torch_reference.py).

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { clipGradNorm, createOptimizer, globalNorm, GradientAccumulator, type OptimizerConfig, type Tensors } from "../../src/train/optimizer.js";

const shapes = new Map<string, readonly number[]>([
  ["w", [2, 2]],
  ["b", [2]],
]);
const params = (): Tensors =>
  new Map([
    ["w", new Float32Array([0.5, -1.0, 2.0, 0.0])],
    ["b", new Float32Array([1.0, 0.25])],
  ]);
const grads = (w: number[], b: number[]): Tensors => new Map([["w", new Float32Array(w)], ["b", new Float32Array(b)]]);

function expectClose(actual: Float32Array, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe("AdamW", () => {
  it("first step: bias correction makes each move lr · g/(|g| + ε), ≈ lr in size", () => {
    const p = params();
    const opt = createOptimizer({ kind: "adamw" }, shapes);
    opt.step(p, grads([0.1, -0.2, 3, 1e-3], [5, -0.01]), 0.01);
    // m̂ = g and v̂ = g², so the step is lr·g/(|g| + 1e-8).
    expectClose(p.get("w")!, [0.5 - 0.01, -1.0 + 0.01, 2.0 - 0.01, 0 - 0.01 * (1e-3 / (1e-3 + 1e-8))]);
    expectClose(p.get("b")!, [1.0 - 0.01, 0.25 + 0.01]);
  });

  it("second step follows the moment recurrences written out", () => {
    const [b1, b2, eps, lr] = [0.9, 0.999, 1e-8, 0.1];
    const g1 = 0.3;
    const g2 = -0.1;
    const m1 = (1 - b1) * g1;
    const v1 = (1 - b2) * g1 * g1;
    const x1 = 1 - (lr * (m1 / (1 - b1))) / (Math.sqrt(v1 / (1 - b2)) + eps);
    const m2 = b1 * m1 + (1 - b1) * g2;
    const v2 = b2 * v1 + (1 - b2) * g2 * g2;
    const x2 = x1 - (lr * (m2 / (1 - b1 ** 2))) / (Math.sqrt(v2 / (1 - b2 ** 2)) + eps);
    const s = new Map<string, readonly number[]>([["x", [1]]]);
    const p: Tensors = new Map([["x", new Float32Array([1])]]);
    const opt = createOptimizer({ kind: "adamw" }, s);
    opt.step(p, new Map([["x", new Float32Array([g1])]]), lr);
    expect(p.get("x")![0]).toBeCloseTo(x1, 6);
    opt.step(p, new Map([["x", new Float32Array([g2])]]), lr);
    expect(p.get("x")![0]).toBeCloseTo(x2, 6);
    expect(opt.state().step).toBe(2);
  });

  it("decays matrices, not 1-D tensors, by default; decays both when told", () => {
    const zero = grads([0, 0, 0, 0], [0, 0]);
    const p = params();
    createOptimizer({ kind: "adamw", weightDecay: 0.5 }, shapes).step(p, zero, 0.1);
    expectClose(p.get("w")!, [0.5 * 0.95, -1.0 * 0.95, 2.0 * 0.95, 0]);
    expectClose(p.get("b")!, [1.0, 0.25]);
    const q = params();
    createOptimizer({ kind: "adamw", weightDecay: 0.5, decays: () => true }, shapes).step(q, zero, 0.1);
    expectClose(q.get("b")!, [0.95, 0.25 * 0.95]);
  });

  it("matches torch.optim.AdamW over three steps (lr 0.1, 0.05, 0.02; wd 0.1 on the matrix)", () => {
    const p = run({ kind: "adamw", weightDecay: 0.1 });
    expectClose(p.get("w")!, [0.422361656521, -0.875942623031, 1.835140252224, -0.053137253026]);
    expectClose(p.get("b")!, [0.865597031057, 0.365724746101]);
  });
});

describe("SGD", () => {
  it("with momentum and L2 decay matches torch.optim.SGD over three steps", () => {
    const p = run({ kind: "sgd", momentum: 0.9, weightDecay: 0.1 });
    expectClose(p.get("w")!, [0.49473035, -0.9539307, 1.9083045, -0.0779]);
    expectClose(p.get("b")!, [0.9326, 0.311]);
  });

  it("with Nesterov momentum matches torch.optim.SGD(nesterov=True)", () => {
    const p = run({ kind: "sgd", momentum: 0.9, weightDecay: 0.1, nesterov: true });
    expectClose(p.get("w")!, [0.49297892615, -0.9311705523, 1.8605831205, -0.129839]);
    expectClose(p.get("b")!, [0.90434, 0.3389]);
  });

  it("without momentum is p − lr·g", () => {
    const p = params();
    createOptimizer({ kind: "sgd" }, shapes).step(p, grads([1, 2, 3, 4], [-1, 0]), 0.5);
    expectClose(p.get("w")!, [0, -2, 0.5, -2]);
    expectClose(p.get("b")!, [1.5, 0.25]);
  });
});

/** The parameters after torch_reference.py's three steps. */
function run(config: OptimizerConfig): Tensors {
  const p = params();
  const opt = createOptimizer(config, shapes);
  const steps: [number[], number[], number][] = [
    [[0.1, -0.2, 0.3, 0.0], [0.5, -0.5], 0.1],
    [[-0.4, 0.1, 0.0, 1.0], [0.1, 0.2], 0.05],
    [[0.2, 0.2, -0.3, 0.5], [-1.0, 0.3], 0.02],
  ];
  for (const [w, b, lr] of steps) opt.step(p, grads(w, b), lr);
  return p;
}

describe("saved state", () => {
  it("restoring it continues exactly as an uninterrupted optimiser", () => {
    for (const kind of ["adamw", "sgd"] as const) {
      const config: OptimizerConfig = { kind, momentum: 0.9, weightDecay: 0.01 };
      const straight = params();
      const a = createOptimizer(config, shapes);
      const gs = [grads([0.1, 0.2, -0.3, 0.4], [1, 2]), grads([-1, 0.5, 0.25, 0], [0.3, -0.3]), grads([2, -2, 1, -1], [0, 1])];
      for (const g of gs) a.step(straight, g, 0.01);

      const resumed = params();
      const b = createOptimizer(config, shapes);
      b.step(resumed, gs[0]!, 0.01);
      const saved = b.state();
      const copy = { ...saved, slots: new Map([...saved.slots].map(([k, v]) => [k, new Map([...v].map(([n, t]) => [n, t.slice()]))])) };
      const c = createOptimizer(config, shapes);
      c.restore(copy);
      for (const g of gs.slice(1)) c.step(resumed, g, 0.01);
      expect(resumed).toEqual(straight);
    }
  });

  it("refuses another optimiser's state", () => {
    const sgd = createOptimizer({ kind: "sgd" }, shapes);
    expect(() => createOptimizer({ kind: "adamw" }, shapes).restore(sgd.state())).toThrow(/sgd.*adamw/);
  });
});

describe("gradient clipping", () => {
  it("scales the global norm exactly to the threshold and returns the norm before", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 20 }), fc.float({ min: Math.fround(0.01), max: 10, noNaN: true }), (values, max) => {
        const g: Tensors = new Map([["a", new Float32Array(values)], ["b", new Float32Array(values.map((v) => v / 2))]]);
        const before = Math.sqrt(values.reduce((s, v) => s + Math.fround(v) ** 2 * 1.25, 0));
        const norm = clipGradNorm(g, max);
        expect(norm).toBeCloseTo(before, 3);
        const after = globalNorm(g);
        if (before > max) expect(Math.abs(after - max) / max).toBeLessThan(1e-5);
        else expect(after).toBeCloseTo(before, 3);
      }),
    );
  });

  it("0 leaves the gradients alone", () => {
    const g: Tensors = new Map([["a", new Float32Array([30, 40])]]);
    expect(clipGradNorm(g, 0)).toBe(50);
    expect([...g.get("a")!]).toEqual([30, 40]);
  });
});

describe("gradient accumulation", () => {
  it("averages micro-batch losses and gradients, then starts over", () => {
    const acc = new GradientAccumulator();
    acc.add(1, new Map([["w", new Float32Array([1, 2])]]));
    acc.add(3, new Map([["w", new Float32Array([3, -2])]]));
    const { loss, grads: g } = acc.take();
    expect(loss).toBe(2);
    expect([...g.get("w")!]).toEqual([2, 0]);
    expect(() => acc.take()).toThrow(/no micro-batch/);
  });
});

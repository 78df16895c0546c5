// The training loop on a hand-differentiated model (synthetic.ts): the loss falls, validation runs
// when asked, accumulation equals a bigger batch, and a run resumed from a checkpoint's state takes
// bit for bit the steps of the uninterrupted run.

import { describe, expect, it } from "vitest";
import type { Tensors } from "../../src/train/optimizer.js";
import { train, type TrainOptions, type TrainState, type TrainStep } from "../../src/train/train.js";
import { bigramLossAndGrad, bigramModel, patternStream } from "./synthetic.js";

const V = 6;

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model: bigramModel(V),
    train: patternStream(400),
    val: patternStream(60),
    steps: 30,
    batch: 2,
    context: 8,
    optimizer: { kind: "adamw", weightDecay: 0.01 },
    schedule: { kind: "cosine", lr: 0.05, warmup: 3 },
    clip: 1,
    seed: 7,
    ...over,
  };
}

async function collect(it: AsyncIterable<TrainStep>): Promise<TrainStep[]> {
  const out: TrainStep[] = [];
  for await (const r of it) out.push(r);
  return out;
}

const copyTensors = (t: Tensors): Tensors => new Map([...t].map(([n, v]) => [n, v.slice()]));
function copyState(s: TrainState): TrainState {
  return {
    step: s.step,
    optimizer: { ...s.optimizer, slots: new Map([...s.optimizer.slots].map(([k, v]) => [k, copyTensors(v)])) },
    data: { ...s.data },
    history: { train: s.history.train.map((p) => [...p] as [number, number]), val: s.history.val.map((p) => [...p] as [number, number]) },
  };
}

describe("the synthetic model's gradients", () => {
  it("agree with finite differences (so the tests below test the trainer, not the model)", async () => {
    const m = bigramModel(V, 3);
    const batch = { batch: 1, context: 6, tokens: Int32Array.from([1, 2, 3, 4, 5, 0]), targets: Int32Array.from([2, 3, 4, 5, 0, 1]) };
    const { grads } = await m.lossAndGrad(batch);
    for (const [name, index] of [["W", 1 * V + 2], ["W", 5 * V + 1], ["b", 4]] as const) {
      const p = m.params.get(name)!;
      const h = 1e-2;
      const orig = p[index]!;
      p[index] = orig + h;
      const up = bigramLossAndGrad(m.params, V, batch).loss;
      p[index] = orig - h;
      const down = bigramLossAndGrad(m.params, V, batch).loss;
      p[index] = orig;
      expect(grads.get(name)![index]).toBeCloseTo((up - down) / (2 * h), 4);
    }
  });
});

describe("train()", () => {
  it("lowers the loss, reports each step, and evaluates every K steps and at the last", async () => {
    const records = await collect(train(options({ evalEvery: 10, steps: 25, schedule: { kind: "cosine", lr: 0.3, warmup: 3 } })));
    expect(records.map((r) => r.step)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(records.filter((r) => r.val_loss !== undefined).map((r) => r.step)).toEqual([10, 20, 25]);
    expect(records.at(-1)!.loss).toBeLessThan(records[0]!.loss * 0.5);
    expect(records.at(-1)!.val_loss!).toBeLessThan(records[0]!.loss * 0.5);
    expect(records[0]!.lr).toBeCloseTo(0.3 / 3, 12);
    for (const r of records) {
      expect(r.grad_norm).toBeGreaterThan(0);
      expect(r.tokens_per_s).toBeGreaterThan(0);
    }
  });

  it("accumulating 2 micro-batches of 2 steps as one batch of 4", async () => {
    const a = options({ batch: 4, gradAccum: 1, steps: 5 });
    const b = options({ batch: 2, gradAccum: 2, steps: 5 });
    const ra = await collect(train(a));
    const rb = await collect(train(b));
    ra.forEach((r, i) => expect(rb[i]!.loss).toBeCloseTo(r.loss, 6));
    const wa = a.model.params.get("W")!;
    const wb = b.model.params.get("W")!;
    wa.forEach((v, i) => expect(wb[i]).toBeCloseTo(v, 5));
  });

  for (const kind of ["adamw", "sgd"] as const) {
    it(`${kind}: N steps straight equal K steps, a checkpoint, then N − K resumed steps, bit for bit`, async () => {
      const straightOpts = options({ optimizer: { kind, momentum: 0.9, weightDecay: 0.01 }, evalEvery: 4 });
      const straight = await collect(train(straightOpts));

      let saved: { params: Tensors; state: TrainState } | undefined;
      const first = options({
        optimizer: { kind, momentum: 0.9, weightDecay: 0.01 },
        evalEvery: 4,
        checkpointEvery: 11,
        checkpoint: async (params, state, reason) => {
          if (reason === "interval" && state.step === 11) saved = { params: copyTensors(params), state: copyState(state) };
        },
      });
      await collect(train(first));
      expect(saved!.state.step).toBe(11);

      // A fresh model holding the checkpoint's weights, and a different seed that the saved data state overrides.
      const model = bigramModel(V, 99);
      for (const [n, v] of saved!.params) model.params.get(n)!.set(v);
      const resumed = await collect(train(options({ model, seed: 12345, optimizer: { kind, momentum: 0.9, weightDecay: 0.01 }, evalEvery: 4, resume: saved!.state })));
      expect(resumed.map((r) => r.step)).toEqual(straight.slice(11).map((r) => r.step));
      expect(resumed.map((r) => [r.loss, r.val_loss, r.lr, r.grad_norm])).toEqual(straight.slice(11).map((r) => [r.loss, r.val_loss, r.lr, r.grad_norm]));
      expect(model.params).toEqual(straightOpts.model.params);
    });
  }

  it("stops after the running step on abort, with a checkpoint of that step", async () => {
    const controller = new AbortController();
    const reasons: [string, number][] = [];
    const opts = options({
      steps: 50,
      checkpointEvery: 3,
      signal: controller.signal,
      checkpoint: async (_p, state, reason) => void reasons.push([reason, state.step]),
    });
    const records: TrainStep[] = [];
    for await (const r of train(opts)) {
      records.push(r);
      if (r.step === 4) controller.abort();
    }
    expect(records.at(-1)!.step).toBe(4);
    expect(reasons).toEqual([["interval", 3], ["abort", 4]]);
  });

  it("checkpoints at the end, and the history holds every step's loss", async () => {
    let last: TrainState | undefined;
    const records = await collect(train(options({ steps: 6, evalEvery: 3, checkpoint: async (_p, s, reason) => void (reason === "end" && (last = copyState(s))) })));
    expect(last!.step).toBe(6);
    expect(last!.history.train).toEqual(records.map((r) => [r.step, r.loss]));
    expect(last!.history.val.map(([s]) => s)).toEqual([3, 6]);
  });
});

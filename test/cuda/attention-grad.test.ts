// The attention's backward kernels in CUDA (run by the host emulation) against the CPU reference:
// attention_lse, attention_dq, attention_dk and attention_dv on random shapes, GQA, causal or not,
// sliding windows, packed sequences (segment), pasts (training has none) and value heads narrower or
// wider than the key heads.

import { describe, it } from "vitest";
import fc from "fast-check";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { CI, dims, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, union, unionWeights, withSeed, type UnionCase } from "./helpers.js";

const N = (local: number) => (CI ? local * 3 : local);
const GRAD_OPS = ["attention_lse", "attention_dq", "attention_dk", "attention_dv"] as const;

interface Shape {
  t: number;
  past: number;
  hkv: number;
  group: number;
  d: number;
  e: number;
  causal: boolean;
  window: number;
  /** Packed training sequences of this many positions (0: one sequence). */
  segment: number;
  scale: number;
  seed: number;
}

/** One case per gradient op; lse comes from attention_lse as in a training graph, o is any tensor of its shape. */
function cases(s: Shape): UnionCase[] {
  const hq = s.hkv * s.group;
  const attrs = { causal: s.causal, window: s.window, scale: s.scale, ...(s.segment ? { segment: s.segment } : {}) };
  const what = `T ${s.t} S ${s.t + s.past} heads ${hq}/${s.hkv} D ${s.d} E ${s.e} causal ${s.causal} window ${s.window} segment ${s.segment} scale ${s.scale}`;
  return GRAD_OPS.map((op) => {
    const b = new GraphBuilder();
    const q = b.weight("q", [s.t, hq, s.d]);
    const k = b.weight("k", [s.t + s.past, s.hkv, s.d]);
    const v = b.weight("v", [s.t + s.past, s.hkv, s.e]);
    const o = b.weight("o", [s.t, hq, s.e]);
    const dO = b.weight("dO", [s.t, hq, s.e]);
    const lse = b.op("attention_lse", [q, k], attrs);
    const out = op === "attention_lse" ? lse : b.op(op, op === "attention_dv" ? [q, k, dO, lse] : [q, k, v, o, dO, lse], attrs);
    return { graph: b.graph([out]), weights: testWeights(s.seed), what: `${op} ${what}` };
  });
}

describe("CUDA attention gradient kernels", () => {
  it("lse, dq, dk and dv: GQA, causal or not, sliding windows, pasts, value head_dim apart from the key's", () =>
    withSeed(50, async () => {
      const arb = fc.record({
        t: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 40 })),
        past: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 })),
        hkv: fc.constantFrom(1, 2, 4),
        group: fc.constantFrom(1, 2, 4),
        d: fc.constantFrom(4, 8, 16, 6),
        e: fc.constantFrom(0, 5, 8),
        causal: fc.boolean(),
        window: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })),
        segment: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 12 })),
        scale: fc.double({ min: 0.05, max: 1, noNaN: true }),
        seed: fc.integer({ min: 0, max: 1 << 30 }),
      });
      const shapes: Shape[] = draw(arb, N(16), 50).map((s) => ({ ...s, e: s.e || s.d }));
      // A training step's shape (no past, causal), and heads wider than a warp with one ragged.
      shapes.push({ t: 37, past: 0, hkv: 2, group: 2, d: 16, e: 16, causal: true, window: 0, segment: 0, scale: 0.25, seed: 1 });
      shapes.push({ t: 9, past: 3, hkv: 1, group: 2, d: 40, e: 72, causal: true, window: 4, segment: 0, scale: 0.15, seed: 2 });
      // Packed training sequences: 4 of 9 tokens, one of them ragged against the warp.
      shapes.push({ t: 36, past: 0, hkv: 2, group: 2, d: 8, e: 8, causal: true, window: 0, segment: 9, scale: 0.35, seed: 3 });
      await runUnion(shapes.flatMap(cases));
    }));

  it("over a KV cache: keys from the step parameters (S = P + T) across prefill chunks and decode steps", () =>
    withSeed(51, async () => {
      const [hkv, group, d, vocab] = [2, 2, 8, 11];
      const graphs = GRAD_OPS.map((op, c) => {
        const b = new GraphBuilder();
        const tokens = b.input("tokens", [symDim("T")]);
        const rows = (name: string, h: number, w: number) => b.op("reshape", [b.op("gather", [b.weight(name, [vocab, h * w]), tokens])], { shape: dims([symDim("T"), h, w]) });
        b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 24, heads: hkv, headDim: d });
        const k = b.op("kv_append", [rows("wk", hkv, d)], { state: "kv", layer: 0, which: "k" });
        const v = b.op("kv_append", [rows("wv", hkv, d)], { state: "kv", layer: 0, which: "v" });
        const attrs = { causal: true, window: c % 2 === 1 ? 3 : 0, scale: 0.3 };
        const [q, o, dO] = [rows("wq", hkv * group, d), rows("wo", hkv * group, d), rows("wdo", hkv * group, d)];
        const lse = b.op("attention_lse", [q, k], attrs);
        const out = op === "attention_lse" ? lse : b.op(op, op === "attention_dv" ? [q, k, dO, lse] : [q, k, v, o, dO, lse], attrs);
        // dk and dv have a row per key: kv heads first, so the executor reads back all P + T rows.
        return b.graph([op === "attention_dk" || op === "attention_dv" ? b.op("transpose", [out], { perm: [1, 0, 2] }) : out]);
      });
      const weights = graphs.map((_, i) => testWeights(60 + i));
      const ex = new CudaExecutor(union(graphs), unionWeights(weights), emulated({ prefillChunk: 4 }));
      const cpus = graphs.map((g, i) => new CpuInterpreter(g, weights[i]!));
      try {
        // Whole chunks: dk and dv sum over the queries of one step, so a prompt split in two differs.
        for (const step of [[1, 2, 3, 4], [5, 6, 7, 8], [9], [3]]) {
          const tokens = Int32Array.from(step);
          const outs = await ex.stepOutputs({ tokens });
          graphs.forEach((_, i) => expectClose(outs[i]!, cpus[i]!.step({ tokens }), 1e-4, `${GRAD_OPS[i]} over the cache at P ${ex.past - step.length}, T ${step.length}`));
        }
      } finally {
        ex.dispose();
      }
    }));
});

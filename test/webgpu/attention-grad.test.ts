// The attention's backward kernels (attention_lse, attention_dq, attention_dk, attention_dv) on
// WebGPU against the CPU reference, on random shapes: prefill-style (P = 0, as in training) and over
// a past, GQA, causal or not, sliding windows, vec4 and scalar head dims, and inputs packed at
// unaligned offsets into one buffer.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { constDim } from "../../src/compiler/base/symbolic.js";
import { CPU_TUNING, emitPlan, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { CI, compareRuns, GraphBuilder, ONE_STEP, useGpu } from "./helpers.js";

const RUNS = CI ? 48 : 24;
const OPS = ["attention_lse", "attention_dq", "attention_dk", "attention_dv"] as const;

useGpu();

interface Case {
  t: number;
  /** Keys before the first query: S = T + past (0 in training; negative: fewer keys than queries). */
  past: number;
  hkv: number;
  group: number;
  d: number;
  causal: boolean;
  window: number;
  /** Packed training sequences of this many positions (0: one sequence). */
  segment: number;
  scale: number;
  /** q, k, v and dO as views at `pad`-element gaps into one weight, instead of a weight each. */
  packed: boolean;
  pad: number;
  gpuTuning: boolean;
}

/** The graph of `op` over q, k, v, dO, with o and lse made as training makes them. */
function gradGraph(c: Case, op: (typeof OPS)[number]) {
  const b = new GraphBuilder();
  const s = c.t + c.past;
  const hq = c.hkv * c.group;
  const shapes = { q: [c.t, hq, c.d], k: [s, c.hkv, c.d], v: [s, c.hkv, c.d], dO: [c.t, hq, c.d] };
  const size = (shape: number[]) => shape.reduce((x, y) => x * y, 1);
  const tensors: Record<string, number> = {};
  if (c.packed) {
    const total = Object.values(shapes).reduce((n, sh) => n + c.pad + size(sh), 0);
    const all = b.weight("packed", [total]);
    let at = 0;
    for (const [name, shape] of Object.entries(shapes)) {
      at += c.pad;
      const flat = b.op("slice", [all], { axis: 0, start: constDim(at), end: constDim(at + size(shape)) });
      tensors[name] = b.op("reshape", [flat], { shape: shape.map(constDim) });
      at += size(shape);
    }
  } else {
    for (const [name, shape] of Object.entries(shapes)) tensors[name] = b.weight(name, shape);
  }
  const { q, k, v, dO } = tensors as Record<keyof typeof shapes, number>;
  const attrs = { causal: c.causal, window: c.window, scale: c.scale, ...(c.segment ? { segment: c.segment } : {}) };
  const o = b.op("attention", [q, k, v], attrs);
  const lse = b.op("attention_lse", [q, k], attrs);
  const inputs = { attention_lse: [q, k], attention_dq: [q, k, v, o, dO, lse], attention_dk: [q, k, v, o, dO, lse], attention_dv: [q, k, dO, lse] }[op];
  return b.graph([op === "attention_lse" ? lse : b.op(op, inputs, attrs)]);
}

async function gradCase(c: Case, seed: number): Promise<void> {
  const tuning = c.gpuTuning ? GPU_TUNING : CPU_TUNING;
  for (const op of OPS) {
    try {
      await compareRuns(gradGraph(c, op), { steps: ONE_STEP, seed, opts: { tuning } });
    } catch (e) {
      throw new Error(`${op}: ${(e as Error).message}`);
    }
  }
}

const caseArb = (past: fc.Arbitrary<number>, t: fc.Arbitrary<number>): fc.Arbitrary<Case> =>
  fc.record({
    t,
    past,
    hkv: fc.constantFrom(1, 2, 4),
    group: fc.constantFrom(1, 2, 4),
    d: fc.constantFrom(4, 8, 16, 6),
    causal: fc.boolean(),
    window: fc.constantFrom(0, 0, 1, 3, 7),
    segment: fc.constantFrom(0, 0, 1, 4, 9),
    scale: fc.double({ min: 0.05, max: 1, noNaN: true }),
    packed: fc.boolean(),
    pad: fc.constantFrom(0, 1, 4),
    gpuTuning: fc.boolean(),
  });

const seedArb = fc.integer({ min: 0, max: 1 << 30 });

describe("attention gradient kernels (WebGPU)", () => {
  it("lse, dq, dk and dv match the reference: training (P = 0) and over a past", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })), fc.integer({ min: 1, max: 40 })), seedArb, gradCase),
      { numRuns: RUNS },
    );
  });

  it("with fewer keys than queries: causal rows that see no key have lse 3e38 and a zero gradient", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb(fc.integer({ min: -3, max: -1 }), fc.integer({ min: 4, max: 8 })), seedArb, gradCase),
      { numRuns: RUNS / 4 },
    );
  });

  it("refuses a value head_dim other than the key head_dim, naming the dispatch", () => {
    const b = new GraphBuilder();
    const q = b.weight("q", [2, 2, 8]);
    const k = b.weight("k", [3, 1, 8]);
    const attrs = { causal: true, window: 0, scale: 0.5 };
    const dv = b.op("attention_dv", [q, k, b.weight("dO", [2, 2, 4]), b.op("attention_lse", [q, k], attrs)], attrs);
    expect(() => emitPlan(buildStepPlan(b.graph([dv]), { T: 1 }), CPU_TUNING)).toThrow(/^attention_grad #\d+: .*value head_dim/);
  });
});

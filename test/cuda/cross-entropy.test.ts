// The training loss's kernels (cross_entropy_rows and cross_entropy_rows_grad) in CUDA, run by the
// host emulation, against the CPU reference: vocabularies narrower and wider than a warp up to LLaMA
// 3's, targets out of range (−1 and V, ignored), logits with large magnitudes and at unaligned
// offsets, and targets from the step's tokens (rows a dim of T).

import { describe, it } from "vitest";
import fc from "fast-check";
import { constDim, symDim } from "../../src/compiler/base/symbolic.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { rng } from "../../src/runtime/weights/random.js";
import { CI, dims, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, withSeed, type UnionCase } from "./helpers.js";

const N = (local: number) => (CI ? local * 3 : local);
/** f32 sums against the reference's f64 ones. */
const TOL = 1e-5;
const OPS = ["cross_entropy_rows", "cross_entropy_rows_grad"] as const;

interface Case {
  t: number;
  v: number;
  /** In −1…V: the ends are out of range and the row is ignored. */
  targets: number[];
  /** Logits as a view `pad` elements into a literal. */
  pad: number;
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    t: fc.integer({ min: 1, max: 40 }),
    v: fc.constantFrom(1, 3, 4, 7, 64, 1000),
    pad: fc.constantFrom(0, 0, 1, 4),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .chain((c) => fc.array(fc.integer({ min: -1, max: c.v }), { minLength: c.t, maxLength: c.t }).map((targets) => ({ ...c, targets })));

/** Uniform in ±2, a quarter of the rows in ±50, and now and then one logit of ±50 standing out. */
function logitValues(n: number, v: number, seed: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  let scale = 2;
  for (let i = 0; i < n; i++) {
    if (i % v === 0) scale = next() < 0.25 ? 50 : 2;
    out[i] = (next() < 0.02 ? 50 : scale) * (2 * next() - 1);
  }
  return out;
}

/** One case per op over the same logits, targets and dy. */
function lossCases(c: Case): UnionCase[] {
  const size = c.t * c.v;
  const logitData = logitValues(c.pad + size, c.v, c.seed);
  return OPS.map((op) => {
    const b = new GraphBuilder();
    const all = b.literal(logitData, [c.pad + size]);
    const flat = b.op("slice", [all], { axis: 0, start: constDim(c.pad), end: constDim(c.pad + size) });
    const logits = b.op("reshape", [flat], { shape: dims([c.t, c.v]) });
    const targets = b.literal(Int32Array.from(c.targets), [c.t]);
    const inputs = op === "cross_entropy_rows" ? [logits, targets] : [logits, targets, b.weight("dy", [c.t])];
    return { graph: b.graph([b.op(op, inputs)]), weights: testWeights(c.seed), what: `${op} T ${c.t} V ${c.v} pad ${c.pad} targets [${c.targets}]`, tol: TOL };
  });
}

describe("CUDA cross-entropy kernels", () => {
  it("the rows' loss and its gradient match the reference: any vocabulary, ignored targets, large and unaligned logits", () =>
    withSeed(80, async () => {
      const cases = draw(caseArb, N(16), 80);
      // Every target ignored; one logit a row; rows wider than a warp, LLaMA 3's vocabulary.
      cases.push({ t: 5, v: 64, targets: [-1, 64, -1, 64, -1], pad: 1, seed: 1 });
      cases.push({ t: 3, v: 1, targets: [0, 1, 0], pad: 0, seed: 2 });
      cases.push({ t: 2, v: 1000, targets: [999, 0], pad: 4, seed: 3 });
      cases.push({ t: 3, v: 128256, targets: [128255, -1, 70001], pad: 1, seed: 4 });
      await runUnion(cases.flatMap(lossCases));
    }));

  it("over the step's tokens: the tokens as targets (some outside the vocabulary), in prefill chunks and decode steps", () =>
    withSeed(81, async () => {
      const [tokens, v, chunk] = [12, 7, 8]; // tokens 7…11 are ignored
      const b = new GraphBuilder();
      const ids = b.input("tokens", [symDim("T")]);
      const logits = b.op("mul", [b.op("gather", [b.weight("table", [tokens, v]), ids]), b.literal(Float32Array.of(20), [])]);
      const rows = b.op("cross_entropy_rows", [logits, ids]);
      const weights = testWeights(82);
      for (const out of [rows, b.op("cross_entropy_rows_grad", [logits, ids, rows])]) {
        const graph = b.graph([out]);
        const ex = new CudaExecutor(graph, weights, emulated({ prefillChunk: chunk }));
        const cpu = new CpuInterpreter(graph, weights);
        try {
          for (const step of [[1, 2, 1, 11, 3, 1, 0, 9], [5], [8, 7, 10, 2, 2, 0, 7, 8]]) {
            const t = Int32Array.from(step);
            expectClose(await ex.step({ tokens: t }), cpu.step({ tokens: t }), TOL, `${graph.nodes[out]!.op} tokens [${step}]`);
          }
        } finally {
          ex.dispose();
        }
      }
    }));
});

// The training loss's kernels (cross_entropy_rows and cross_entropy_rows_grad) in CUDA, run by the
// host emulation, against the CPU reference: vocabularies narrower and wider than a warp up to LLaMA
// 3's, targets out of range (−1 and V, ignored), logits with large magnitudes and at unaligned
// offsets, and targets from the step's tokens (rows a dim of T).

import { describe, it } from "vitest";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { CI, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, withSeed, type UnionCase } from "./helpers.js";
import { LOSS_OPS, lossCase, lossGraph, TRAINING_KERNEL_TOL, type LossCase } from "../helpers/training-kernels.js";

const N = (local: number) => (CI ? local * 3 : local);
const TOL = TRAINING_KERNEL_TOL;

/** One case per op over the same logits, targets and dy. */
const lossCases = (c: LossCase): UnionCase[] =>
  LOSS_OPS.map((op) => ({ graph: lossGraph(c, op), weights: testWeights(c.seed), what: `${op} T ${c.t} V ${c.v} pad ${c.pad} targets [${c.targets}]`, tol: TOL }));

describe("CUDA cross-entropy kernels", () => {
  it("the rows' loss and its gradient match the reference: any vocabulary, ignored targets, large and unaligned logits", () =>
    withSeed(80, async () => {
      const cases = draw(lossCase, N(16), 80);
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

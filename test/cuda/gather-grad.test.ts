// gather_grad (an embedding's gradient) in CUDA, run by the host emulation, against the CPU
// reference: ids of rank 1 and 2, out-of-range ids (−1 and V), repeated ids, rows no id hits, rows
// narrower and wider than a warp, dy at unaligned offsets, and ids and dy over the step's tokens.

import { describe, it } from "vitest";
import fc from "fast-check";
import { constDim, symDim } from "../../src/compiler/base/symbolic.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { CI, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, withSeed, type UnionCase } from "./helpers.js";
import { gatherGradCase, gatherGradGraph, TRAINING_KERNEL_TOL, type GatherGradCase } from "../helpers/training-kernels.js";

const N = (local: number) => (CI ? local * 3 : local);
const TOL = TRAINING_KERNEL_TOL;

const gradCase = (c: GatherGradCase, seed: number): UnionCase =>
  ({ graph: gatherGradGraph(c), weights: testWeights(seed), what: `ids [${c.idShape}] rows ${c.rows} D ${c.d} pad ${c.pad}`, tol: TOL });

describe("CUDA gather_grad", () => {
  it("sums the rows of dy by id: any ids shape, out-of-range ids, rows narrower and wider than a warp", () =>
    withSeed(70, async () => {
      const cases = draw(fc.tuple(gatherGradCase, fc.integer({ min: 0, max: 1 << 30 })), N(12), 70);
      // Every id in one row; a one-row table; a ragged row wider than a warp.
      cases.push([{ idShape: [40], ids: Array<number>(40).fill(2), rows: 3, d: 64, pad: 1 }, 1]);
      cases.push([{ idShape: [5], ids: [0, -1, 1, 0, 0], rows: 1, d: 3, pad: 0 }, 2]);
      cases.push([{ idShape: [6, 7], ids: Array.from({ length: 42 }, (_, i) => (i * 7) % 11 - 1), rows: 10, d: 72, pad: 4 }, 3]);
      await runUnion(cases.map(([c, seed]) => gradCase(c, seed)));
    }));

  it("over the step's tokens: ids and dy with T rows, in prefill chunks and decode steps", () =>
    withSeed(71, async () => {
      const [vocab, rows, d, chunk] = [12, 9, 40, 8]; // tokens 9…11 are outside the gradient's table
      const b = new GraphBuilder();
      const tokens = b.input("tokens", [symDim("T")]);
      const dy = b.op("gather", [b.weight("table", [vocab, d]), tokens]);
      const graph = b.graph([b.op("gather_grad", [tokens, dy], { rows: constDim(rows) })]);
      const weights = testWeights(72);
      const ex = new CudaExecutor(graph, weights, emulated({ prefillChunk: chunk }));
      const cpu = new CpuInterpreter(graph, weights);
      try {
        for (const step of [[1, 2, 1, 11, 3, 1, 0, 9], [5], [8, 8, 10, 2, 2, 0, 7, 8]]) {
          const t = Int32Array.from(step);
          const [got] = await ex.stepOutputs({ tokens: t });
          expectClose(got!, cpu.step({ tokens: t }), TOL, `tokens [${step}]`);
        }
      } finally {
        ex.dispose();
      }
    }));
});

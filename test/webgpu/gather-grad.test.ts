// gather_grad (an embedding's gradient) on WebGPU against the CPU reference: ids of rank 1 and 2,
// out-of-range ids (−1 and V), repeated ids, rows no id hits, vec4 and scalar rows, dy at unaligned
// offsets, and ids and dy over the step's tokens (dims of T).

import { describe, it } from "vitest";
import fc from "fast-check";
import { constDim, symDim } from "../../src/compiler/base/symbolic.js";
import { CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { CI, compareRuns, GraphBuilder, ONE_STEP, useGpu } from "./helpers.js";
import { gatherGradCase, gatherGradGraph, TRAINING_KERNEL_TOL } from "../helpers/training-kernels.js";

const RUNS = CI ? 48 : 24;
const TOL = TRAINING_KERNEL_TOL;

useGpu();

describe("gather_grad (WebGPU)", () => {
  it("sums the rows of dy by id: any ids shape, out-of-range ids, vec4 and scalar rows, unaligned dy", async () => {
    await fc.assert(
      fc.asyncProperty(gatherGradCase, fc.boolean(), fc.integer({ min: 0, max: 1 << 30 }), async (c, gpuTuning, seed) => {
        await compareRuns(gatherGradGraph(c), { steps: ONE_STEP, seed, tol: TOL, opts: { tuning: gpuTuning ? GPU_TUNING : CPU_TUNING } });
      }),
      { numRuns: RUNS },
    );
  });

  it("over the step's tokens: ids and dy with T rows, across steps of several lengths", async () => {
    const [vocab, rows] = [12, 9]; // tokens 9…11 are outside the gradient's table
    for (const d of [3, 8]) {
      const b = new GraphBuilder();
      const tokens = b.input("tokens", [symDim("T")]);
      const dy = b.op("gather", [b.weight("table", [vocab, d]), tokens]);
      const graph = b.graph([b.op("gather_grad", [tokens, dy], { rows: constDim(rows) })]);
      const steps = [[1, 2, 1, 11, 3, 1, 0, 9], [5], [8, 8, 10, 2]].map((s) => Int32Array.from(s));
      await compareRuns(graph, { steps, seed: d, tol: TOL });
    }
  });
});

// The training loss's kernels (cross_entropy_rows and cross_entropy_rows_grad) on WebGPU against the
// CPU reference: vocabularies narrower than a vec4, vec4-wide and odd, up to LLaMA 3's (past
// llvmpipe's 65535 loop iterations one element at a time), targets out of range (−1 and V, ignored),
// logits with large magnitudes and at unaligned offsets, and targets from the step's tokens (rows a
// dim of T).

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { CPU_TUNING, emitPlan, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { CI, compareRuns, GraphBuilder, ONE_STEP, useGpu } from "./helpers.js";
import { LOSS_OPS, lossCase, lossGraph, TRAINING_KERNEL_TOL, type LossCase } from "../helpers/training-kernels.js";

const RUNS = CI ? 48 : 24;
const TOL = TRAINING_KERNEL_TOL;

useGpu();

describe("cross-entropy kernels (WebGPU)", () => {
  it("the rows' loss and its gradient match the reference: any vocabulary, ignored targets, large and unaligned logits", async () => {
    await fc.assert(
      fc.asyncProperty(lossCase, fc.boolean(), async (c, gpuTuning) => {
        const tuning = gpuTuning ? GPU_TUNING : CPU_TUNING;
        for (const op of LOSS_OPS) {
          try {
            await compareRuns(lossGraph(c, op), { steps: ONE_STEP, seed: c.seed, tol: TOL, opts: { tuning } });
          } catch (e) {
            throw new Error(`${op}: ${(e as Error).message}`);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("a vocabulary of LLaMA 3's size (128256), as vec4 and as f32: within llvmpipe's 65535 loop iterations", async () => {
    for (const pad of [0, 1]) {
      const c: LossCase = { t: 4, v: 128256, targets: [128255, -1, 0, 70001], pad, seed: 5 };
      for (const op of LOSS_OPS) await compareRuns(lossGraph(c, op), { steps: ONE_STEP, seed: c.seed, tol: TOL });
    }
  });

  it("refuses a vocabulary past llvmpipe's loop limit, naming the dispatch", () => {
    const b = new GraphBuilder();
    const rows = b.op("cross_entropy_rows", [b.weight("logits", [2, 400_001]), b.literal(Int32Array.of(0, 1), [2])]);
    expect(() => emitPlan(buildStepPlan(b.graph([rows]), { T: 1 }), CPU_TUNING)).toThrow(/^cross_entropy #\d+: a vocabulary of 400001/);
  });

  it("over the step's tokens: the tokens as targets (some outside the vocabulary), across steps of several lengths", async () => {
    const tokens = 12;
    for (const v of [7, 8]) { // tokens v…11 are ignored
      const b = new GraphBuilder();
      const ids = b.input("tokens", [symDim("T")]);
      const logits = b.op("mul", [b.op("gather", [b.weight("table", [tokens, v]), ids]), b.literal(Float32Array.of(20), [])]);
      const rows = b.op("cross_entropy_rows", [logits, ids]);
      const steps = [[1, 2, 1, 11, 3, 1, 0, 9], [5], [8, 7, 10, 2]].map((s) => Int32Array.from(s));
      for (const out of [rows, b.op("cross_entropy_rows_grad", [logits, ids, rows])]) {
        await compareRuns(b.graph([out]), { steps, seed: v, tol: TOL });
      }
    }
  });
});

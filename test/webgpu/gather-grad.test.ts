// gather_grad (an embedding's gradient) on WebGPU against the CPU reference: ids of rank 1 and 2,
// out-of-range ids (−1 and V), repeated ids, rows no id hits, vec4 and scalar rows, dy at unaligned
// offsets, and ids and dy over the step's tokens (dims of T).

import { afterAll, beforeAll, describe, it } from "vitest";
import fc from "fast-check";
import { constDim, symDim } from "../../src/compiler/base/symbolic.js";
import { CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { CI, compareRuns, gpu, GraphBuilder } from "./helpers.js";

const RUNS = CI ? 48 : 24;
const ONE_STEP = [Int32Array.of(0)];
/** f32 sums in id order against the reference's f64 ones. */
const TOL = 1e-5;

beforeAll(async () => {
  await gpu(); // no adapter: every test here fails, none is skipped
});
afterAll(releaseSharedGpu);

interface Case {
  idShape: number[];
  /** In −1…rows: the ends are out of range and add to no row. */
  ids: number[];
  rows: number;
  d: number;
  /** dy as a view `pad` elements into a weight. */
  pad: number;
  gpuTuning: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    idShape: fc.oneof(fc.tuple(fc.integer({ min: 1, max: 200 })), fc.tuple(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 14 }))),
    rows: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
    d: fc.constantFrom(1, 3, 4, 8, 64),
    pad: fc.constantFrom(0, 0, 1, 4),
    gpuTuning: fc.boolean(),
  })
  .chain((c) => {
    const n = c.idShape.reduce((a, b) => a * b, 1);
    return fc.array(fc.integer({ min: -1, max: c.rows }), { minLength: n, maxLength: n }).map((ids) => ({ ...c, ids }));
  });

function gradGraph(c: Case) {
  const b = new GraphBuilder();
  const ids = b.literal(Int32Array.from(c.ids), c.idShape);
  const dyShape = [...c.idShape, c.d];
  const size = dyShape.reduce((a, x) => a * x, 1);
  const flat = b.op("slice", [b.weight("dy", [c.pad + size])], { axis: 0, start: constDim(c.pad), end: constDim(c.pad + size) });
  const dy = b.op("reshape", [flat], { shape: dyShape.map(constDim) });
  return b.graph([b.op("gather_grad", [ids, dy], { rows: constDim(c.rows) })]);
}

describe("gather_grad (WebGPU)", () => {
  it("sums the rows of dy by id: any ids shape, out-of-range ids, vec4 and scalar rows, unaligned dy", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, fc.integer({ min: 0, max: 1 << 30 }), async (c, seed) => {
        await compareRuns(gradGraph(c), { steps: ONE_STEP, seed, tol: TOL, opts: { tuning: c.gpuTuning ? GPU_TUNING : CPU_TUNING } });
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

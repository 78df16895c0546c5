// gather_grad (an embedding's gradient) in CUDA, run by the host emulation, against the CPU
// reference: ids of rank 1 and 2, out-of-range ids (−1 and V), repeated ids, rows no id hits, rows
// narrower and wider than a warp, dy at unaligned offsets, and ids and dy over the step's tokens.

import { describe, it } from "vitest";
import fc from "fast-check";
import { constDim, symDim } from "../../src/compiler/base/symbolic.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { CI, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, withSeed, type UnionCase } from "./helpers.js";

const N = (local: number) => (CI ? local * 3 : local);
/** f32 sums in id order against the reference's f64 ones. */
const TOL = 1e-5;

interface Case {
  idShape: number[];
  /** In −1…rows: the ends are out of range and add to no row. */
  ids: number[];
  rows: number;
  d: number;
  /** dy as a view `pad` elements into a weight. */
  pad: number;
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    idShape: fc.oneof(fc.tuple(fc.integer({ min: 1, max: 200 })), fc.tuple(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 1, max: 14 }))),
    rows: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
    d: fc.constantFrom(1, 3, 4, 8, 64),
    pad: fc.constantFrom(0, 0, 1, 4),
    seed: fc.integer({ min: 0, max: 1 << 30 }),
  })
  .chain((c) => {
    const n = c.idShape.reduce((a, b) => a * b, 1);
    return fc.array(fc.integer({ min: -1, max: c.rows }), { minLength: n, maxLength: n }).map((ids) => ({ ...c, ids }));
  });

function gradCase(c: Case): UnionCase {
  const b = new GraphBuilder();
  const ids = b.literal(Int32Array.from(c.ids), c.idShape);
  const dyShape = [...c.idShape, c.d];
  const size = dyShape.reduce((a, x) => a * x, 1);
  const flat = b.op("slice", [b.weight("dy", [c.pad + size])], { axis: 0, start: constDim(c.pad), end: constDim(c.pad + size) });
  const dy = b.op("reshape", [flat], { shape: dyShape.map(constDim) });
  const out = b.op("gather_grad", [ids, dy], { rows: constDim(c.rows) });
  return { graph: b.graph([out]), weights: testWeights(c.seed), what: `ids [${c.idShape}] rows ${c.rows} D ${c.d} pad ${c.pad}`, tol: TOL };
}

describe("CUDA gather_grad", () => {
  it("sums the rows of dy by id: any ids shape, out-of-range ids, rows narrower and wider than a warp", () =>
    withSeed(70, async () => {
      const cases = draw(caseArb, N(12), 70);
      // Every id in one row; a one-row table; a ragged row wider than a warp.
      cases.push({ idShape: [40], ids: Array<number>(40).fill(2), rows: 3, d: 64, pad: 1, seed: 1 });
      cases.push({ idShape: [5], ids: [0, -1, 1, 0, 0], rows: 1, d: 3, pad: 0, seed: 2 });
      cases.push({ idShape: [6, 7], ids: Array.from({ length: 42 }, (_, i) => (i * 7) % 11 - 1), rows: 10, d: 72, pad: 4, seed: 3 });
      await runUnion(cases.map(gradCase));
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

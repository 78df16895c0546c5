// Shared pieces of the WebGPU tests: the process's device (a missing adapter fails the test, never
// skips it) and a runner that compares the WebGPU executor with the CPU interpreter step by step;
// the graph builder, seeded weights and comparison come from test/helpers/graph.ts.

import fc from "fast-check";
import { afterAll, beforeAll } from "vitest";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { parseProgram } from "../../src/compiler/ops/expr.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { releaseSharedGpu, sharedGpu, type GpuContext } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor, type WebGpuExecutorOptions } from "../../src/runtime/webgpu/executor.js";
import { expectClose, testWeights, type GraphBuilder } from "../helpers/graph.js";

export { CI, compare, dims, expectClose, GraphBuilder, testWeights } from "../helpers/graph.js";

/** The process's device. No adapter is a failure: llvmpipe is installed wherever these tests run. */
export function gpu(): Promise<GpuContext> {
  return sharedGpu();
}

/** A test file's hold on the shared device: taken before its tests (no adapter: every test fails,
 *  none is skipped) and released after them. */
export function useGpu(): void {
  beforeAll(async () => {
    await gpu();
  });
  afterAll(releaseSharedGpu);
}

/** The steps of a graph with no step inputs: one run. */
export const ONE_STEP = [Int32Array.of(0)];

export interface Steps {
  /** Token ids per step; a graph without inputs still runs one "token" per step. */
  steps: Int32Array[];
  seed: number;
  tol?: number;
  opts?: WebGpuExecutorOptions;
}

/** Runs `graph` on WebGPU and on the CPU interpreter for each step and compares every output. */
export async function compareRuns(graph: Graph, { steps, seed, tol = 1e-4, opts }: Steps): Promise<number> {
  const weights = testWeights(seed);
  const ex = await createWebGpuExecutor(graph, weights, await gpu(), opts);
  const cpu = new CpuInterpreter(graph, weights);
  try {
    for (const [i, tokens] of steps.entries()) {
      const want = cpu.step({ tokens });
      const got = await ex.step({ tokens });
      expectClose(got, want, tol, `step ${i} (T=${tokens.length}, P=${ex.past - tokens.length})`);
    }
    return ex.lastStep?.dispatches ?? 0;
  } finally {
    ex.dispose();
  }
}

/** Linear prologues (programs over x and a gain g) that factor as (row scale) × (elementwise):
 *  RMSNorm, Gemma's (1 + g) norm, an absmax scaling (amax: a max reduction); then none. */
export const NORM_PROLOGUES = [
  "in0; mul(0, 0); mean(1); 0.00001:f32; add(2, 3); rsqrt(4); mul(0, 5); in1; mul(6, 7) -> 8",
  "in0; mul(0, 0); mean(1); 0.000001:f32; add(2, 3); rsqrt(4); mul(0, 5); 1:f32; in1; add(7, 8); mul(6, 9) -> 10",
  "in0; abs(0); amax(1); in1; mul(0, 3); div(4, 2) -> 5",
] as const;
export const NO_PROLOGUE = "in0 -> 0";

/** One linear of a fused_linear property case: one or two weights (gate·up, SiLU), a bias, and either
 *  n outputs or heads × headDim outputs rotated in pairs (RoPE). */
export interface LinearSegment {
  weights: number;
  bias: boolean;
  rotate: boolean;
  headDim: number;
  heads: number;
  n: number;
}
export const linearSegment: fc.Arbitrary<LinearSegment> = fc.record({
  weights: fc.integer({ min: 1, max: 2 }),
  bias: fc.boolean(),
  rotate: fc.boolean(),
  headDim: fc.constantFrom(2, 4, 8),
  heads: fc.integer({ min: 1, max: 3 }),
  n: fc.integer({ min: 1, max: 9 }),
});

/** The fused linears `segs` over `sources` (x [m, k], then the prologue's other inputs) with
 *  `prologue`, their outputs concatenated along the last axis. */
export function fusedLinears(b: GraphBuilder, sources: number[], prologue: string, m: number, k: number, segs: readonly LinearSegment[]): number {
  const outs = segs.map((sg, si) => {
    const n = sg.rotate ? sg.heads * sg.headDim : sg.n;
    const ws = Array.from({ length: sg.weights }, (_, i) => b.weight(`w${si}_${i}`, [n, k]));
    const extras = sg.bias ? [b.weight(`bias${si}`, [n])] : [];
    const acc = Array.from({ length: sg.weights }, (_, i) => `in${i}`);
    const epilogue = sg.weights === 2 ? `${acc.join("; ")}; silu(0); mul(2, 1)${sg.bias ? "; in2; add(3, 4) -> 5" : " -> 3"}` : sg.bias ? "in0; in1; add(0, 1) -> 2" : "in0 -> 0";
    const rot = sg.rotate ? [b.weight(`angle${si}`, [m, 1]), b.weight(`freq${si}`, [sg.headDim / 2])] : [];
    return b.op("fused_linear", [...sources, ...ws, ...extras, ...rot], {
      prologue: parseProgram(prologue),
      x_inputs: sources.length,
      weights: sg.weights,
      epilogue: parseProgram(epilogue),
      extras: extras.length,
      head_dim: sg.rotate ? sg.headDim : 0,
      rotation: parseProgram(sg.rotate ? "in0; in1; mul(0, 1); cos(2); sin(2) -> 3, 4" : "1:f32; 0:f32 -> 0, 1"),
    });
  });
  return outs.slice(1).reduce((a, o) => b.op("concat", [a, o], { axis: -1 }), outs[0]!);
}

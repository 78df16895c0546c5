// Shared pieces of the WebGPU tests: the process's device (a missing adapter fails the test, never
// skips it) and a runner that compares the WebGPU executor with the CPU interpreter step by step;
// the graph builder, seeded weights and comparison come from test/helpers/graph.ts.

import type { Graph } from "../../src/compiler/ir/graph.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { sharedGpu, type GpuContext } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor, type WebGpuExecutorOptions } from "../../src/runtime/webgpu/executor.js";
import { expectClose, testWeights } from "../helpers/graph.js";

export { CI, compare, dims, expectClose, GraphBuilder, testWeights } from "../helpers/graph.js";

/** The process's device. No adapter is a failure: llvmpipe is installed wherever these tests run. */
export function gpu(): Promise<GpuContext> {
  return sharedGpu();
}

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

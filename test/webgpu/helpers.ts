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

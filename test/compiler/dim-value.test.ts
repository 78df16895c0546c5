// `dim_value` (a symbolic dim as a rank-0 tensor, e.g. `arange(T) + P`) on the device targets: the
// plan writes a value T alone decides as a constant, inlines a P-dependent one into the programs
// that read it (read from the step parameters), and computes it into a one-element buffer for any
// other reader. WebGPU (llvmpipe) and the CUDA emulation are compared with the CPU interpreter over
// prefill and decode steps, so P changes between steps.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { evalProgramRow, formatProgram, parseProgram, type ExprProgram } from "../../src/compiler/ops/expr.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import type { StepInputs } from "../../src/runtime/executor.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { emulated } from "../cuda/helpers.js";
import { expectClose, testWeights } from "../helpers/graph.js";
import { gpu } from "../webgpu/helpers.js";

const dir = mkdtempSync(join(tmpdir(), "llmc-dim-value-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A model whose forward returns `body` ([T, width]); `x` is the tokens' embeddings [T, 2]. */
function model(name: string, body: string, width: number): Graph {
  const path = join(dir, `${name}.llm`);
  writeFileSync(path, `model ${name} {
  config {
    max_seq_len: int = 12
    vocab_size: int = 4
  }
  state kv: KVCache[1, max_seq_len, 1, 2]
  weights { embed: [vocab_size, 2]  gguf "e" }

  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, ${width}] {
    x = embed[tokens]
    h = heads(x, 1)
    k_all, v_all = kv[0].append(h, h)
    return ${body}
  }
}
`);
  const res = compileFile(path);
  expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => formatDiagnostic(d, res.sources))).toEqual([]);
  return res.compiled!.graph;
}

const CASES: { name: string; body: string; width: number }[] = [
  { name: "positions", body: "reshape(arange(T) + P, [T, 1])", width: 1 },
  { name: "positions_i32", body: "reshape(to_f32(pos + P), [T, 1])", width: 1 },
  { name: "scaled", body: "x * (P * 0.5)", width: 2 },
  { name: "past_and_count", body: "reshape(arange(T) * 0.0 + (P + T) + T * 0.25, [T, 1])", width: 1 },
  { name: "row_program", body: "x * (P + 1.0) - mean(x * (P + 1.0), keepdim: true) * P", width: 2 },
  { name: "through_matmul", body: "reshape(arange(T) + 1.0, [T, 1]) @ reshape(P, [1, 1])", width: 1 },
];

const graphs = new Map(CASES.map((c) => [c.name, model(c.name, c.body, c.width)]));

// Prefill, decodes, then a longer prefill: P is 0, 2, 3, 4 and 8. CUDA runs prompts in chunks of
// PREFILL_CHUNK tokens (a value of T is the chunk's), as the CPU interpreter does when told to.
const STEPS = [[0, 1], [3], [1], [2, 0, 3, 1], [2]].map((t) => Int32Array.from(t));
const PREFILL_CHUNK = 2;

async function compareSteps(ex: { step(inputs: StepInputs): Promise<HostTensor> }, cpu: CpuInterpreter, what: string): Promise<void> {
  let P = 0;
  for (const tokens of STEPS) {
    // Positions that are not P, P + 1, …: `pos + P` must read the input and P both.
    const pos = Int32Array.from(tokens, (_, t) => 10 * (P + t) + 1);
    expectClose(await ex.step({ tokens, pos }), cpu.step({ tokens, pos }), 1e-5, `${what} at P = ${P}, T = ${tokens.length}`);
    P += tokens.length;
  }
}

describe("dim_value on the device targets", () => {
  it("plans as a constant once T decides it, inline where P does, and a computed buffer for other readers", () => {
    const kinds = (name: string, T: number) => {
      const plan = buildStepPlan(graphs.get(name)!, { T });
      const dims = plan.graph.nodes.filter((n) => n.op === "dim_value").map((n) => plan.storage.get(n.id) ?? plan.dispatches.find((d) => d.node === n.id)?.kernel);
      const programs = plan.dispatches.flatMap((d) => (d.program ? [formatProgram(d.program)] : []));
      return { dims, programs };
    };
    expect(kinds("positions", 3).dims).toEqual(["inlined"]);
    expect(kinds("positions", 3).programs.some((p) => p.includes("[P]:f32"))).toBe(true);
    expect(kinds("positions_i32", 1).programs.some((p) => p.includes("[P]:i32"))).toBe(true);
    // T is a constant once the plan knows it; P + T is not.
    expect(kinds("past_and_count", 2).programs).toEqual(["in0; 0:f32; mul(0, 1); [P + 2]:f32; add(2, 3); 2:f32; 0.25:f32; mul(5, 6); add(4, 7) -> 8"]);
    expect(kinds("through_matmul", 2).dims).toEqual(["elementwise"]);
  });

  it("programs with dims have a text form and evaluate with P", () => {
    const p: ExprProgram = { nodes: [{ kind: "input", index: 0 }, { kind: "dim", value: new Map([["P", 2], ["", -3]]), dtype: "i32" }, { kind: "op", op: "add", args: [0, 1] }], outputs: [2] };
    const text = formatProgram(p);
    expect(text).toBe("in0; [2*P - 3]:i32; add(0, 1) -> 2");
    expect(formatProgram(parseProgram(text))).toBe(text);
    expect(parseProgram("[P]:f32 -> 0").nodes[0]).toEqual({ kind: "dim", value: symDim("P"), dtype: "f32" });
    const [out] = evalProgramRow(p, 2, () => Float64Array.of(1, 2), ["i32", "i32", "i32"], new Map([["P", 5]]));
    expect(Array.from(out!)).toEqual([8, 9]);
  });

  for (const c of CASES) {
    it(`${c.name} (${c.body}) on WebGPU matches the CPU interpreter as P grows`, async () => {
      const graph = graphs.get(c.name)!;
      const ex = await createWebGpuExecutor(graph, testWeights(3), await gpu());
      try {
        await compareSteps(ex, new CpuInterpreter(graph, testWeights(3)), `WebGPU ${c.name}`);
      } finally {
        ex.dispose();
      }
    });

    it(`${c.name} (${c.body}) on CUDA (emulated) matches the CPU interpreter as P grows`, async () => {
      const graph = graphs.get(c.name)!;
      const ex = new CudaExecutor(graph, testWeights(3), emulated({ prefillChunk: PREFILL_CHUNK }));
      try {
        await ex.init();
        // A padded chunk's T is not the step's: a value of T forbids padding.
        if (c.name === "past_and_count") expect(ex.module!.paddingSafe).toBe(false);
        await compareSteps(ex, new CpuInterpreter(graph, testWeights(3), { prefillChunk: PREFILL_CHUNK }), `CUDA ${c.name}`);
      } finally {
        ex.dispose();
      }
    }, 120_000);
  }
});

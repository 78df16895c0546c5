// Symbolic dimensions as tensor values: `arange(T) + P` (this step's positions) and `S - T` (the past
// length, S = P + T) lower to `dim_value` nodes whose polynomial the CPU reference evaluates with
// each step's T and P — across prefill, decode and chunked passes.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkFile } from "../../src/compiler/check/index.js";
import { compileFile } from "../../src/compiler/compile.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { parseGraph, printGraph } from "../../src/compiler/ir/text.js";
import { verifyGraph } from "../../src/compiler/ir/verify.js";
import { reference } from "../../src/compiler/ops/reference.js";
import { getOp } from "../../src/compiler/ops/table.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { testWeights } from "../helpers/graph.js";

const dir = mkdtempSync(join(tmpdir(), "llmc-dims-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each row t of the output: [P + t, S - T + t, pos[t] + P (i32 arithmetic), P / 2].
const POSITIONS = `model positions {
  config {
    vocab_size: int = 4
    max_seq_len: int = 16
  }
  weights {
    embed: [vocab_size, 2]  gguf "e"
  }
  state kv: KVCache[1, max_seq_len, 1, 2]

  // Query t of T is at position S - T + t, as attention's mask has it.
  fn query_positions(q: [N, H, D], k: [S, H, D]) -> [N] {
    return arange(N) + (S - N)
  }

  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size] {
    x = heads(embed[tokens], 1)
    k_all, v_all = kv[0].append(x, x)
    a = reshape(arange(T) + P, [T, 1])
    b = reshape(query_positions(x, k_all), [T, 1])
    c = reshape(to_f32(pos + P), [T, 1])
    d = reshape(arange(T) * 0.0 + P * 0.5, [T, 1])
    return concat(concat(a, b), concat(c, d))
  }
}
`;

const path = join(dir, "positions.llm");
writeFileSync(path, POSITIONS);

function compile(pipeline?: string[]) {
  const res = compileFile(path, pipeline ? { pipeline } : {});
  expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => formatDiagnostic(d, res.sources))).toEqual([]);
  return res.compiled!.graph;
}

const expectedRows = (P: number, pos: Int32Array) => Array.from(pos, (p, t) => [P + t, P + t, p + P, P / 2]).flat();

describe("symbolic dims as tensor values", () => {
  it("check and lower to dim_value nodes (f32, and i32 beside an i32 tensor)", () => {
    expect(checkFile(path).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const text = printGraph(compile([]));
    expect(text).toContain("dim_value {dtype = f32, value = P} : [] f32");
    expect(text).toContain("dim_value {dtype = i32, value = P} : [] i32");
  });

  it("have an IR text form that parses back and verifies", () => {
    for (const g of [compile([]), compile()]) {
      const text = printGraph(g);
      const back = parseGraph(text);
      verifyGraph(back);
      expect(printGraph(back)).toBe(text);
    }
  });

  it("take each step's P on the CPU interpreter: prefill, decode, another prefill", () => {
    for (const graph of [compile([]), compile()]) {
      const cpu = new CpuInterpreter(graph, testWeights(1));
      let P = 0;
      for (const pos of [Int32Array.of(0, 1, 2), Int32Array.of(3), Int32Array.of(4, 5)]) {
        const out = cpu.step({ tokens: Int32Array.from(pos, (p) => p % 4), pos });
        expect(out.shape).toEqual([pos.length, 4]);
        expect(Array.from(out.data)).toEqual(expectedRows(P, pos));
        P += pos.length;
      }
    }
  });

  it("take each chunk's P when a long step runs in chunks", () => {
    const cpu = new CpuInterpreter(compile(), testWeights(1), { prefillChunk: 2 });
    const pos = Int32Array.of(0, 1, 2, 3, 4);
    const out = cpu.step({ tokens: Int32Array.of(0, 1, 2, 3, 0), pos });
    // Chunks of 2, 2 and 1 tokens after 0, 2 and 4 cached positions.
    expect(Array.from(out.data)).toEqual([0, 2, 4].flatMap((P) => expectedRows(P, pos.subarray(P, P + 2))));
  });

  it("are f32 or i32 tensors in the op table, and the reference gives the evaluated value", () => {
    expect(getOp("dim_value").infer([], { value: symDim("P"), dtype: "i32" })).toEqual({ shape: [], dtype: "i32" });
    expect(() => getOp("dim_value").infer([], { value: symDim("P"), dtype: "bool" })).toThrow(/f32 or i32 tensor, not bool/);
    expect(Array.from(reference["dim_value"]!([], { value: 7, dtype: "f32" }).data)).toEqual([7]);
  });

  it("stay dimensions where a dimension is expected (a slice bound)", () => {
    const p2 = join(dir, "slice.llm");
    writeFileSync(p2, POSITIONS.replace("return arange(N) + (S - N)", "return arange(S)[S - N:S]"));
    const res = compileFile(p2);
    expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => d.message)).toEqual([]);
    expect(printGraph(res.compiled!.graph)).toContain("slice %");
    const pos = Int32Array.of(0, 1, 2);
    expect(Array.from(new CpuInterpreter(res.compiled!.graph, testWeights(1)).step({ tokens: pos, pos }).data)).toEqual(expectedRows(0, pos));
  });
});

// The IR text form: a golden example written by hand from test/fixtures/ir/mini.llm, and round trips
// (print → parse → print) of every bundled architecture.

import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { parseGraph, printGraph, parseDim } from "../../src/compiler/ir/text.js";
import { verifyGraph } from "../../src/compiler/ir/verify.js";
import { formatDim } from "../../src/compiler/base/symbolic.js";
import { UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";

describe("IR text", () => {
  it("prints the golden IR of a small model (after fusion)", () => {
    const res = compileFile(join("test", "fixtures", "ir", "mini.llm"));
    expect(res.diagnostics).toEqual([]);
    expect(printGraph(res.compiled!.graph)).toBe(
      [
        "graph mini {",
        '  %0 = input {name = "tokens"} : [T] i32',
        '  %1 = weight {name = "embed"} : [8, 4] f32',
        "  %2 = gather %1, %0 : [T, 4] f32",
        '  %3 = weight {name = "w"} : [4, 4] f32',
        '  %4 = linear %2, %3, %2 {epilogue = "in1; in0; silu(1); 2:f32; mul(2, 3); add(0, 4) -> 5", weights = 1} : [T, 4] f32',
        '  %5 = linear %4, %1 {epilogue = "in0 -> 0", weights = 1} : [T, 8] f32',
        "  return %5",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("prints the golden IR without fusion", () => {
    const res = compileFile(join("test", "fixtures", "ir", "mini.llm"), { pipeline: UNFUSED_PIPELINE });
    expect(printGraph(res.compiled!.graph)).toBe(
      [
        "graph mini {",
        '  %0 = input {name = "tokens"} : [T] i32',
        '  %1 = weight {name = "embed"} : [8, 4] f32',
        "  %2 = gather %1, %0 : [T, 4] f32",
        '  %3 = weight {name = "w"} : [4, 4] f32',
        "  %4 = transpose %3 {perm = [1, 0]} : [4, 4] f32",
        "  %5 = matmul %2, %4 : [T, 4] f32",
        "  %6 = silu %5 : [T, 4] f32",
        "  %7 = const {dtype = f32, value = 2} : [] f32",
        "  %8 = mul %6, %7 : [T, 4] f32",
        "  %9 = add %2, %8 : [T, 4] f32",
        "  %10 = transpose %1 {perm = [1, 0]} : [4, 8] f32",
        "  %11 = matmul %9, %10 : [T, 8] f32",
        "  return %11",
        "}",
        "",
      ].join("\n"),
    );
  });

  for (const [arch, extra] of [["llama", {}], ["mistral", {}], ["qwen2", {}], ["gemma", { head_dim: "8" }]] as const) {
    it(`round-trips ${arch} (fused and unfused)`, () => {
      for (const pipeline of [undefined, UNFUSED_PIPELINE]) {
        const overrides = new Map(Object.entries({ vocab_size: "32", dim: "16", n_layers: "2", n_heads: "2", ffn_dim: "24", rope_scaling: "llama3", ...extra }));
        const res = compileFile(join("models", `${arch}.llm`), { overrides, ...(pipeline ? { pipeline } : {}) });
        expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
        const text = printGraph(res.compiled!.graph);
        const back = parseGraph(text);
        verifyGraph(back, "parse");
        expect(printGraph(back)).toBe(text);
      }
    });
  }

  it("parses dims in normal form", () => {
    for (const s of ["P + T", "2*T", "4096", "T*T + 3", "P - 1"]) expect(formatDim(parseDim(s))).toBe(s);
    expect(formatDim(parseDim("T + P"))).toBe("P + T");
  });

  it("rejects malformed IR with the line number", () => {
    expect(() => parseGraph("graph g {\n  %0 = bogus : [1] f32\n  return %0\n}\n")).toThrow(/line 2: unknown op 'bogus'/);
    expect(() => parseGraph("graph g {\n  %0 = const {dtype = f32, value = 1} : [] f32\n}\n")).toThrow(/no 'return'/);
  });

  it("the verifier catches a wrong type", () => {
    const g = parseGraph("graph g {\n  %0 = const {dtype = f32, value = 1} : [] f32\n  %1 = exp %0 : [2] f32\n  return %1\n}\n");
    expect(() => verifyGraph(g, "test")).toThrow(/its type should be \[\] f32/);
  });
});

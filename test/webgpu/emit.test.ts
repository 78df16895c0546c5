// WGSL emission: the shared expression renderer's structure, literals, per-adapter kernel shapes,
// and that nothing from a model's names can reach generated code.

import { afterAll, describe, expect, it } from "vitest";
import { addDim, constDim, symDim, type Dim } from "../../src/compiler/base/symbolic.js";
import { renderExpr } from "../../src/compiler/emit/shared/expr.js";
import { CPU_TUNING, emitPlan, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { dimExprWith } from "../../src/compiler/emit/shared/context.js";
import { offsetExpr as sharedOffsetExpr } from "../../src/compiler/emit/shared/indexing.js";
import { checkGenerated } from "../../src/compiler/emit/wgsl/kernel.js";
import { f32Literal, u32Literal, wgsl } from "../../src/compiler/emit/wgsl/lang.js";
import { parseGraph } from "../../src/compiler/ir/text.js";
import type { ExprProgram } from "../../src/compiler/ops/expr.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { planToJson } from "../../src/compiler/plan/json.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { isSoftwareAdapter } from "../../src/runtime/webgpu/tuning.js";
import { wgslProfile } from "../../src/compiler/target/wgsl.js";
import { compareRuns, dims, GraphBuilder } from "./helpers.js";

afterAll(releaseSharedGpu);

const inputs = (n: number): ExprProgram["nodes"] => Array.from({ length: n }, (_, i) => ({ kind: "input", index: i }));

describe("the shared expression renderer", () => {
  it("renders an elementwise program as per-element lets, constants inline", () => {
    const p: ExprProgram = { nodes: [...inputs(2), { kind: "const", value: 0.5, dtype: "f32" }, { kind: "op", op: "mul", args: [0, 2] }, { kind: "op", op: "add", args: [3, 1] }], outputs: [4] };
    const r = renderExpr(p, wgsl, (i) => `x${i}[i]`);
    expect(r.pre).toEqual([]);
    expect(r.body).toEqual(["let v0: f32 = x0[i];", "let v1: f32 = x1[i];", "let v3: f32 = (v0 * 0.5f);", "let v4: f32 = (v3 + v1);"]);
    expect(r.outputs).toEqual(["v4"]);
    expect(r.helpers).toEqual([]);
  });

  it("renders one loop per reduction stage: independent reductions share a loop, dependent ones follow", () => {
    // mean(x), sum(x*x) in one loop; then amax(x - mean) in a second; the output loop last.
    const p: ExprProgram = {
      nodes: [
        ...inputs(1),
        { kind: "reduce", op: "mean", arg: 0 },
        { kind: "op", op: "mul", args: [0, 0] },
        { kind: "reduce", op: "sum", arg: 2 },
        { kind: "op", op: "sub", args: [0, 1] },
        { kind: "reduce", op: "amax", arg: 4 },
        { kind: "op", op: "add", args: [3, 5] }, // row-uniform: hoisted out of the output loop
        { kind: "op", op: "mul", args: [4, 6] },
      ],
      outputs: [7],
    };
    const r = renderExpr(p, wgsl, () => "x[rb + k]", { index: "k", length: "8u" });
    const loops = r.pre.filter((l) => l.startsWith("for "));
    expect(loops).toHaveLength(2);
    const firstLoop = r.pre.slice(r.pre.indexOf(loops[0]!), r.pre.indexOf("}") + 1).join("\n");
    expect(firstLoop).toContain("v1 = v1 + v0;");
    expect(firstLoop).toContain("v3 = v3 + v2;");
    expect(r.pre).toContain("v1 = (v1 / f32(8u));");
    expect(r.pre[r.pre.length - 1]).toBe("let v6: f32 = (v3 + v5);");
    expect(r.body).toEqual(["let v0: f32 = x[rb + k];", "let v4: f32 = (v0 - v1);", "let v7: f32 = (v4 * v6);"]);
    expect(r.outputVaries).toEqual([true]);
    expect(r.helpers.join()).toContain("fn llmc_inf"); // amax starts at -inf
  });

  it("includes helper functions only when used, with the helpers they call", () => {
    const p: ExprProgram = { nodes: [...inputs(2), { kind: "op", op: "pow", args: [0, 1] }], outputs: [2] };
    const h = renderExpr(p, wgsl, (i) => `x${i}`).helpers.join("\n");
    expect(h).toContain("fn llmc_pow");
    expect(h).toContain("fn llmc_inf"); // called by llmc_pow
    expect(h).not.toContain("fn llmc_erf");
  });

  it("writes f32 literals exactly and never as const-evaluated infinities", () => {
    expect(f32Literal(1e-5)).toBe("0.00001f");
    expect(f32Literal(0.1)).toBe("0.1f");
    expect(f32Literal(2)).toBe("2.0f");
    expect(f32Literal(-3.5)).toBe("(-3.5f)");
    expect(f32Literal(1e30)).toBe("1e+30f");
    expect(f32Literal(Infinity)).toBe("llmc_inf()");
    expect(f32Literal(-Infinity)).toBe("(-llmc_inf())");
    expect(f32Literal(1e39)).toBe("llmc_inf()"); // past the f32 range
  });

  const u = (d: Dim) => dimExprWith(d, () => "P", u32Literal);
  const offsetExpr = (i: string, shape: (number | Dim)[], strides: (number | Dim)[], base = 0) => sharedOffsetExpr(i, dims(shape), dims(strides), u, constDim(base));

  it("simplifies index arithmetic for contiguous, broadcast and strided reads", () => {
    expect(offsetExpr("i", [4, 8], [8, 1])).toBe("i");
    expect(offsetExpr("i", [4, 8], [0, 1])).toBe("(i % 8u)");
    expect(offsetExpr("i", [4, 8], [1, 0])).toBe("(i / 8u)");
    expect(offsetExpr("i", [4, 8], [0, 0], 12)).toBe("12u");
    expect(offsetExpr("i", [2, 3, 4], [1, 8, 2])).toBe("(i / 12u) + (i % 12u) * 2u"); // dims 1, 2 merge
    expect(offsetExpr("i", [2, 3, 4], [1, 9, 2])).toBe("(i / 12u) + ((i / 4u) % 3u) * 9u + (i % 4u) * 2u");
  });

  it("writes sizes and strides that depend on P as expressions of P, merging contiguous dims alike", () => {
    const S = addDim(symDim("P"), constDim(2));
    expect(u(S)).toBe("(P + 2u)");
    expect(u(new Map([["P*P", 1], ["P", 3], ["", -1]]))).toBe("(P * P + P * 3u - 1u)");
    expect(offsetExpr("i", [S, 8], [8, 1])).toBe("i");
    expect(offsetExpr("i", [4, S], [S, 1])).toBe("i");
    expect(offsetExpr("i", [4, S], [0, 1])).toBe("(i % (P + 2u))");
    expect(offsetExpr("i", [S, 4], [1, S])).toBe("(i / 4u) + (i % 4u) * (P + 2u)"); // a transpose of [4, P + 2]
  });
});

describe("kernel shapes per adapter", () => {
  const limits = { maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 8 };
  const chooseTuning = (a: typeof llvmpipe, l: Omit<typeof limits, "maxStorageBuffersPerShaderStage">) => wgslProfile(isSoftwareAdapter(a), { ...l, maxStorageBuffersPerShaderStage: 8 }).tuning;
  const llvmpipe = { vendor: "", architecture: "", device: "llvmpipe-llvm-15-0-6-256-bits-", description: "OpenGL version OpenGL ES 3.2 Mesa 22.3.6" };
  const nvidia = { vendor: "nvidia", architecture: "ampere", device: "NVIDIA GeForce RTX 3090", description: "" };

  it("chooses the CPU profile for software rasterisers and the GPU profile otherwise, within the limits", () => {
    expect(chooseTuning(llvmpipe, limits).profile).toBe("cpu");
    expect(chooseTuning(nvidia, limits).profile).toBe("gpu");
    expect(chooseTuning(nvidia, { maxComputeWorkgroupSizeX: 128, maxComputeInvocationsPerWorkgroup: 128 }).workgroupSize).toBe(128);
  });

  it("templates read the shapes as parameters: the decode matvec takes rowsPerInvocation rows", () => {
    const b = new GraphBuilder();
    const out = b.op("matmul", [b.weight("x", [1, 64]), b.op("transpose", [b.weight("w", [32, 64])], { perm: [1, 0] })]);
    const plan = buildStepPlan(b.graph([out]), { T: 1 });
    const [cpu] = emitPlan(plan, CPU_TUNING);
    const [gpu] = emitPlan(plan, GPU_TUNING);
    expect(cpu!.code).toContain(`@workgroup_size(${CPU_TUNING.linear.workgroupSize})`);
    expect(gpu!.code).toContain(`@workgroup_size(${GPU_TUNING.linear.workgroupSize})`);
    expect(cpu!.code.match(/var g0_acc0_0_\d+/g)).toHaveLength(CPU_TUNING.linear.rowsPerInvocation);
    expect(gpu!.code.match(/var g0_acc0_0_\d+/g)).toHaveLength(GPU_TUNING.linear.rowsPerInvocation);
    expect(cpu!.code).toContain("array<vec4<f32>>");
  });
});

describe("names from a model never reach generated WGSL", () => {
  const evil = ["w */ } @compute fn evil() { /*", "x\n@group(0) @binding(9) var<storage> y: array<f32>;", "kv\"; alias u = f32; //", "π\u0000"];

  function evilGraph() {
    // Weights and a state named with WGSL fragments (the IR text form allows any string).
    const text = [
      "graph g {",
      `  state ${"kv"}: KVCache[1, 8, 1, 4]`,
      `  %0 = input {name = "tokens"} : [T] i32`,
      `  %1 = weight {name = ${JSON.stringify(evil[0])}} : [6, 4] f32`,
      `  %2 = gather %1, %0 : [T, 4] f32`,
      `  %3 = weight {name = ${JSON.stringify(evil[1])}} : [4] f32`,
      `  %4 = mul %2, %3 : [T, 4] f32`,
      `  %5 = reshape %4 {shape = [T, 1, 4]} : [T, 1, 4] f32`,
      `  %6 = kv_append %5 {layer = 0, state = "kv", which = "k"} : [P + T, 1, 4] f32`,
      `  %7 = attention %5, %6, %6 {causal = true, scale = 0.5, window = 0} : [T, 1, 4] f32`,
      `  %8 = weight {name = ${JSON.stringify(evil[3])}} : [4, 4] f32`,
      `  %9 = reshape %7 {shape = [T, 4]} : [T, 4] f32`,
      `  %10 = transpose %8 {perm = [1, 0]} : [4, 4] f32`,
      `  %11 = matmul %9, %10 : [T, 4] f32`,
      "  return %11",
      "}",
    ].join("\n");
    return parseGraph(text);
  }

  it("emits only generated identifiers (the names stay in plan.json, as JSON strings)", () => {
    const g = evilGraph();
    for (const T of [1, 3]) {
      const plan = buildStepPlan(g, { T });
      for (const k of emitPlan(plan, CPU_TUNING)) {
        checkGenerated(k.code, k.label);
        for (const name of evil) expect(k.code).not.toContain(name.slice(0, 6));
        expect(k.code).not.toContain("evil");
        expect(k.label).toMatch(/^[a-z_]+ #\d+$/);
      }
      const json = JSON.parse(planToJson(plan)) as { buffers: { holds: string }[] };
      expect(json.buffers.map((b) => b.holds)).toEqual(expect.arrayContaining([evil[0], evil[1], evil[3]]));
    }
  });

  it("runs such a model correctly", async () => {
    const g = evilGraph();
    g.states.get("kv")!.name = "kv";
    await compareRuns(g, { steps: [Int32Array.of(1, 2, 3), Int32Array.of(4), Int32Array.of(5)], seed: 3 });
  });

  it("rejects generated code with characters WGSL never needs", () => {
    expect(() => checkGenerated('let a = "x";', "test")).toThrow(/never has/);
    expect(() => checkGenerated("let a = 1; // é", "test")).toThrow(/never has/);
    expect(() => checkGenerated("let a = 1;\n", "test")).not.toThrow();
  });

  it("a state named with WGSL fragments stays out of the code", () => {
    const b = new GraphBuilder();
    const name = "s */ fn x() {";
    b.states.set(name, { name, layers: 1, maxSeqLen: 4, heads: 1, headDim: 4 });
    const x = b.op("reshape", [b.op("gather", [b.weight("t", [3, 4]), b.input("tokens", [symDim("T")])])], { shape: [symDim("T"), new Map([["", 1]]), new Map([["", 4]])] });
    const all = b.op("kv_append", [x], { state: name, layer: 0, which: "v" });
    const plan = buildStepPlan(b.graph([b.op("attention", [x, all, all], { causal: true, window: 0 })]), { T: 1 });
    for (const k of emitPlan(plan, CPU_TUNING)) expect(k.code).not.toContain("fn x");
  });
});

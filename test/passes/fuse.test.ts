// Fusion rules against the CPU reference: fused and unfused graphs compute the same values, for
// random elementwise DAGs and for whole models; and each rule fires where it should.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { constDim } from "../../src/compiler/check/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph, Node } from "../../src/compiler/ir/graph.js";
import { verifyGraph } from "../../src/compiler/ir/verify.js";
import { getOp } from "../../src/compiler/ops/table.js";
import { reference, type HostTensor } from "../../src/compiler/ops/reference.js";
import { concreteAttrs } from "../../src/compiler/ir/concrete.js";
import { fuseLinear, fuseRegions } from "../../src/compiler/passes/fuse.js";
import { dce } from "../../src/compiler/passes/dce.js";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { randomTensor } from "../../src/runtime/weights/random.js";

const runs = process.env["CI"] ? 1000 : 200;

/** Evaluates a graph of pure ops whose inputs are weights (given). */
function evaluate(g: Graph, weights: Map<string, HostTensor>): HostTensor {
  const vals = new Map<number, HostTensor>();
  for (const n of g.nodes) {
    if (n.op === "weight") vals.set(n.id, weights.get(n.attrs["name"] as string)!);
    else vals.set(n.id, reference[n.op]!(n.inputs.map((i) => vals.get(i)!), concreteAttrs(n.op, n.attrs, new Map())));
  }
  return vals.get(g.outputs[0]!)!;
}

const R = 3;
const C = 5;
const UNARY = ["neg", "exp", "tanh", "sigmoid", "silu", "gelu", "abs", "sin", "cos"];
const BINARY = ["add", "sub", "mul", "max", "min"];

type Step = { kind: "unary"; op: string; a: number } | { kind: "binary"; op: string; a: number; b: number } | { kind: "reduce"; op: string; a: number } | { kind: "const"; v: number; a: number };

/** Builds a random DAG over three weights of shapes [R, C], [C], [R, 1]; steps pick earlier nodes. */
function buildGraph(steps: Step[]): Graph {
  const nodes: Node[] = [];
  const add = (op: string, inputs: number[], attrs: Node["attrs"]) => {
    const def = getOp(op);
    const ty = def.infer(inputs.map((i) => nodes[i]!.ty), attrs);
    nodes.push({ id: nodes.length, op, inputs, attrs, ty });
    return nodes.length - 1;
  };
  nodes.push({ id: 0, op: "weight", inputs: [], attrs: { name: "x" }, ty: { shape: [constDim(R), constDim(C)], dtype: "f32" } });
  nodes.push({ id: 1, op: "weight", inputs: [], attrs: { name: "y" }, ty: { shape: [constDim(C)], dtype: "f32" } });
  nodes.push({ id: 2, op: "weight", inputs: [], attrs: { name: "z" }, ty: { shape: [constDim(R), constDim(1)], dtype: "f32" } });
  for (const s of steps) {
    const pick = (k: number) => k % nodes.length;
    if (s.kind === "unary") add(s.op, [pick(s.a)], {});
    else if (s.kind === "binary") add(s.op, [pick(s.a), pick(s.b)], {});
    else if (s.kind === "const") {
      const c = add("const", [], { value: s.v, dtype: "f32" });
      add("mul", [pick(s.a), c], {});
    } else {
      // Reductions over rows of the full [R, C] shape only (others would be rank-changing).
      const src = pick(s.a);
      const full = add("add", [src, 0], {});
      add(s.op, [full], { axis: -1, keepdim: true });
    }
  }
  // The output combines the last node with x so it has the full shape.
  const out = add("add", [nodes.length - 1, 0], {});
  return { name: "random", nodes, outputs: [out], literals: new Map(), states: new Map() };
}

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("unary" as const), op: fc.constantFrom(...UNARY), a: fc.nat() }),
  fc.record({ kind: fc.constant("binary" as const), op: fc.constantFrom(...BINARY), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant("reduce" as const), op: fc.constantFrom("sum", "mean", "amax"), a: fc.nat() }),
  fc.record({ kind: fc.constant("const" as const), v: fc.double({ min: -2, max: 2, noNaN: true }), a: fc.nat() }),
);

describe("fusion", () => {
  it("random elementwise/row DAGs give the same values fused and unfused", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 1 << 20 }), (steps, seed) => {
        const g = buildGraph(steps);
        const weights = new Map<string, HostTensor>([
          ["x", { shape: [R, C], dtype: "f32", data: randomTensor("x", [R, C], { seed }) }],
          ["y", { shape: [C], dtype: "f32", data: randomTensor("y", [C, C], { seed }).subarray(0, C) }],
          ["z", { shape: [R, 1], dtype: "f32", data: randomTensor("z", [R, 1], { seed }) }],
        ]);
        const fused = dce(fuseRegions(g));
        verifyGraph(fused, "fuse");
        const a = evaluate(g, weights).data;
        const b = evaluate(fused, weights).data;
        for (let i = 0; i < a.length; i++) {
          const tol = 1e-5 * Math.max(1, Math.abs(a[i]!));
          if (!(Math.abs(a[i]! - b[i]!) <= tol || (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)))) {
            throw new Error(`element ${i}: unfused ${a[i]} vs fused ${b[i]}`);
          }
        }
      }),
      { numRuns: runs },
    );
  });

  const compile = (pipeline: string[], arch = "llama", extra: Record<string, string> = {}) => {
    const overrides = new Map(Object.entries({ vocab_size: "48", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "40", max_seq_len: "32", ...extra }));
    const res = compileFile(join("models", `${arch}.llm`), { overrides, pipeline });
    expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    return res.compiled!.graph;
  };

  it("whole models give the same logits fused and unfused (prefill and decode)", () => {
    for (const [arch, extra] of [["llama", {}], ["qwen2", {}], ["gemma", { head_dim: "8" }], ["mistral", { sliding_window: "3" }]] as const) {
      const runs2 = [compile(DEFAULT_PIPELINE, arch, extra), compile(UNFUSED_PIPELINE, arch, extra)].map((g) => {
        const it = new CpuInterpreter(g, (name, shape) => randomTensor(name, shape, { seed: 7 }));
        const pre = it.step({ tokens: Int32Array.of(3, 1, 4, 1) }).data as Float32Array;
        const dec = it.step({ tokens: Int32Array.of(5) }).data as Float32Array;
        return [...pre, ...dec];
      });
      const [f, u] = runs2;
      let m = 0;
      for (let i = 0; i < f!.length; i++) m = Math.max(m, Math.abs(f![i]! - u![i]!));
      expect(m, arch).toBeLessThan(1e-4);
    }
  });

  it("rules fire: norms become one kernel, matmuls by weights become linears with epilogues", () => {
    const g = compile(DEFAULT_PIPELINE);
    const ops = g.nodes.map((n) => n.op);
    expect(ops).not.toContain("matmul");
    expect(ops).not.toContain("mean");
    expect(ops).not.toContain("silu");
    const linears = g.nodes.filter((n) => n.op === "linear");
    // Per layer: q, k, v, o (+residual), gate·up (two accumulators), down (+residual); plus the LM head.
    expect(linears.length).toBe(2 * 6 + 1);
    expect(linears.filter((n) => n.attrs["weights"] === 2).length).toBe(2);
    const norms = g.nodes.filter((n) => n.op === "fused" && JSON.stringify(n.attrs["program"]).includes("mean"));
    expect(norms.length).toBe(2 * 2 + 1);
  });

  it("the linear rule needs a weight: activations times activations stay matmuls", () => {
    const g = compile(UNFUSED_PIPELINE);
    const matmuls = g.nodes.filter((n) => n.op === "matmul").length;
    expect(fuseLinear(g).nodes.filter((n) => n.op === "matmul").length).toBe(0);
    expect(matmuls).toBeGreaterThan(0);
  });
});

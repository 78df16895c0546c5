// Fusion rules against the CPU reference: fused and unfused graphs compute the same values, for
// random elementwise DAGs and for whole models; and each rule fires where it should.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { constDim, constValue } from "../../src/compiler/base/symbolic.js";

const constValueOf = (d: Parameters<typeof constValue>[0]): number => constValue(d)!;
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph, Node } from "../../src/compiler/ir/graph.js";
import { verifyGraph } from "../../src/compiler/ir/verify.js";
import { getOp } from "../../src/compiler/ops/table.js";
import { reference, type HostTensor } from "../../src/compiler/ops/reference.js";
import { evalProgramRow, factorRowScale, formatProgram, parseProgram, type ExprNode, type ExprProgram } from "../../src/compiler/ops/expr.js";
import { concreteAttrs } from "../../src/compiler/ir/concrete.js";
import { fuseLinear, fuseRegions } from "../../src/compiler/passes/fuse.js";
import { dce } from "../../src/compiler/passes/dce.js";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { gainFolds, scaleWeight } from "../../src/compiler/plan/fold.js";
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

  const ARCHS = [["llama", {}], ["qwen2", {}], ["gemma", { head_dim: "8" }], ["mistral", { sliding_window: "3" }]] as const;
  const compile = (pipeline: string[], arch = "llama", extra: Readonly<Record<string, string>> = {}) => {
    const overrides = new Map(Object.entries({ vocab_size: "48", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "40", max_seq_len: "32", ...extra }));
    const res = compileFile(join("models", `${arch}.llm`), { overrides, pipeline });
    expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    return res.compiled!.graph;
  };

  it("whole models give the same logits fused and unfused (prefill and decode)", () => {
    for (const [arch, extra] of ARCHS) {
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

  it("rules fire: norms become prologues, RoPE goes into the q/k projections, matmuls by weights become linears", () => {
    for (const [arch, extra] of ARCHS) {
      const g = compile(DEFAULT_PIPELINE, arch, extra);
      const ops = g.nodes.map((n) => n.op);
      // No kernel is left for a norm, a rotation or RoPE's angle, cos and sin.
      for (const op of ["matmul", "mean", "silu", "rotary", "cos", "sin", "fused"]) expect(ops, `${arch}: ${op}`).not.toContain(op);
      const fl = g.nodes.filter((n) => n.op === "fused_linear");
      // Per layer q, k, v and gate·up read the normed x; plus the LM head after the final norm.
      expect(fl.length, arch).toBe(2 * 4 + 1);
      expect(fl.every((n) => formatProgram(n.attrs["prologue"] as ExprProgram).includes("rsqrt")), arch).toBe(true);
      expect(fl.filter((n) => (n.attrs["head_dim"] as number) > 0).length, arch).toBe(2 * 2);
      expect(fl.filter((n) => n.attrs["weights"] === 2).length, arch).toBe(2);
      // o and down keep plain linears with the residual in their epilogue.
      expect(g.nodes.filter((n) => n.op === "linear").length, arch).toBe(2 * 2);
    }
  });

  it("each new rule keeps every architecture's logits (CPU reference, prefill and decode)", () => {
    for (const [arch, extra] of ARCHS) {
      const logits = (pipeline: string[]) => {
        const it = new CpuInterpreter(compile(pipeline, arch, extra), (name, shape) => randomTensor(name, shape, { seed: 11 }));
        const pre = it.step({ tokens: Int32Array.of(3, 1, 4) }).data as Float32Array;
        const dec = it.step({ tokens: Int32Array.of(5) }).data as Float32Array;
        const dec2 = it.step({ tokens: Int32Array.of(9), pos: Int32Array.of(7) }).data as Float32Array;
        return [...pre, ...dec, ...dec2];
      };
      const all = logits(DEFAULT_PIPELINE);
      for (const rule of ["fuse-rotary", "fuse-prologue"]) {
        const other = logits(DEFAULT_PIPELINE.filter((p) => p !== rule));
        let m = 0;
        for (let i = 0; i < all.length; i++) m = Math.max(m, Math.abs(all[i]! - other[i]!));
        expect(m, `${arch} with and without ${rule}`).toBeLessThan(1e-4);
      }
    }
  });

  it("the linear rule needs a weight: activations times activations stay matmuls", () => {
    const g = compile(UNFUSED_PIPELINE);
    const matmuls = g.nodes.filter((n) => n.op === "matmul").length;
    // Left: attention's scores and values (std/nn.llm writes them out), two per layer.
    expect(fuseLinear(g).nodes.filter((n) => n.op === "matmul").length).toBe(2 * 2);
    expect(matmuls).toBeGreaterThan(2 * 2);
  });
});

describe("rule `prologue`: factoring a row program as (row scale) × (elementwise)", () => {
  const W = 6;
  /** Evaluates the factoring on one row: s(reductions) · e(inputs). */
  function evalFactored(f: NonNullable<ReturnType<typeof factorRowScale>>, rows: Float64Array[]): Float64Array {
    const types = rows.map(() => "f32" as const);
    const [e] = evalProgramRow(f.elementwise, W, (i) => rows[i]!, types);
    const reds = f.reductions.map((r) => {
      const [v] = evalProgramRow(r.arg, W, (i) => rows[i]!, types);
      let acc = r.op === "amax" ? -Infinity : 0;
      for (const x of v!) acc = r.op === "amax" ? Math.max(acc, x) : acc + x;
      return r.op === "mean" ? acc / W : acc;
    });
    const [s] = evalProgramRow(f.scale, 1, (j) => Float64Array.of(reds[j]!), reds.map(() => "f32" as const));
    return e!.map((x) => x * s![0]!);
  }

  // Factors over in0 (x, the row) and in1 (a gain); uniform factors reduce over x.
  const ELEMENTWISE = ["in0", "in1", "add(in1, 1)", "exp(in0)", "mul(in0, in1)"];
  const UNIFORM = ["rsqrt(add(mean(mul(in0, in0)), 0.00001))", "recip(add(sum(abs(in0)), 1))", "amax(abs(in0))", "sqrt(add(mean(mul(in0, in1)), 9))"];

  /** A tiny expression syntax → program nodes (shared subterms are not merged: that is fine). */
  function build(terms: string[], divisors: string[]): ExprProgram {
    const nodes: ExprNode[] = [];
    const parse = (t: string): number => {
      t = t.trim();
      const m = /^([a-z]+)\((.*)\)$/.exec(t);
      if (!m) {
        if (/^in\d$/.test(t)) return nodes.push({ kind: "input", index: Number(t.slice(2)) }) - 1;
        return nodes.push({ kind: "const", value: Number(t), dtype: "f32" }) - 1;
      }
      let depth = 0;
      const args: string[] = [];
      let cur = "";
      for (const ch of m[2]!) {
        if (ch === "," && depth === 0) (args.push(cur), (cur = ""));
        else {
          depth += ch === "(" ? 1 : ch === ")" ? -1 : 0;
          cur += ch;
        }
      }
      args.push(cur);
      const ids = args.map(parse);
      const op = m[1]!;
      if (op === "sum" || op === "mean" || op === "amax") return nodes.push({ kind: "reduce", op, arg: ids[0]! }) - 1;
      return nodes.push({ kind: "op", op, args: ids }) - 1;
    };
    let acc = parse(terms[0]!);
    for (const t of terms.slice(1)) acc = nodes.push({ kind: "op", op: "mul", args: [acc, parse(t)] }) - 1;
    for (const d of divisors) acc = nodes.push({ kind: "op", op: "div", args: [acc, parse(d)] }) - 1;
    return { nodes, outputs: [acc] };
  }

  it("any product of elementwise and single-stage row-uniform factors factors, and the factoring computes the same row", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...ELEMENTWISE), { minLength: 0, maxLength: 3 }),
        fc.array(fc.constantFrom(...UNIFORM), { minLength: 1, maxLength: 2 }),
        fc.array(fc.constantFrom(...UNIFORM), { maxLength: 1 }),
        // Away from 0, where reassociating 0 · ∞ gives NaN either way round.
        fc.array(fc.oneof(fc.double({ min: -2, max: -0.25, noNaN: true }), fc.double({ min: 0.25, max: 2, noNaN: true })), { minLength: 2 * W, maxLength: 2 * W }),
        (el, un, div, data) => {
          const terms = fc.sample(fc.shuffledSubarray([...el, ...un], { minLength: el.length + un.length }), { numRuns: 1, seed: data.length })[0]!;
          const p = build(terms, div);
          const f = factorRowScale(p);
          expect(f, formatProgram(p)).not.toBeNull();
          const rows = [Float64Array.from(data.slice(0, W)), Float64Array.from(data.slice(W))];
          const [want] = evalProgramRow(p, W, (i) => rows[i]!, ["f32", "f32"]);
          const got = evalFactored(f!, rows);
          for (let i = 0; i < W; i++) {
            if (Number.isFinite(want![i]!)) expect(Math.abs(got[i]! - want![i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want![i]!)));
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it("refuses what does not factor: LayerNorm's centring, softmax, sums with the row, two-stage reductions, no reduction", () => {
    for (const text of [
      "in0; mean(0); sub(0, 1); mul(2, 2); mean(3); rsqrt(4); mul(2, 5) -> 6", // (x − mean) · rsqrt(var)
      "in0; amax(0); sub(0, 1); exp(2); sum(3); div(3, 4) -> 5", // softmax
      "in0; mean(0); add(0, 1) -> 2", // x + mean(x)
      "in0; mean(0); sub(0, 1); mul(2, 2); mean(3); rsqrt(4); mul(0, 5) -> 6", // x · rsqrt(var(x)): two stages
      "in0; in1; mul(0, 1) -> 2", // no reduction
      "in0; mean(0); div(1, 0) -> 2", // divides by the row
    ]) {
      expect(factorRowScale(parseProgram(text)), text).toBeNull();
    }
  });
});

describe("rule `gain`: a norm's gain folded into the weights of the linears it feeds", () => {
  const ARCHS = [["llama", {}], ["qwen2", {}], ["gemma", { head_dim: "8" }], ["mistral", { sliding_window: "3" }]] as const;
  const compileArch = (arch: string, extra: Readonly<Record<string, string>>) => {
    const overrides = new Map(Object.entries({ vocab_size: "48", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "40", max_seq_len: "32", ...extra }));
    return compileFile(join("models", `${arch}.llm`), { overrides }).compiled!.graph;
  };

  /** The graph as the folded plan runs it: prologues without the gain, over fewer sources. */
  function applyFolds(g: Graph, folds: ReturnType<typeof gainFolds>): Graph {
    const nodes = g.nodes.map((n) => {
      const f = folds.prologues.get(n.id);
      if (!f) return n;
      const p = n.attrs["x_inputs"] as number;
      return { ...n, inputs: [...f.sources, ...n.inputs.slice(p)], attrs: { ...n.attrs, x_inputs: f.sources.length, prologue: f.prologue } };
    });
    return { ...g, nodes };
  }

  it("folds every projection's gain except into weights used otherwise (a tied embedding), and computes the same logits on the CPU reference", () => {
    for (const [arch, extra] of ARCHS) {
      const g = compileArch(arch, extra);
      const folds = gainFolds(g);
      const folded = [...folds.weights.keys()].sort();
      const perLayer = ["w_gate", "w_up", "wk", "wq", "wv"];
      const expected = [0, 1].flatMap((l) => perLayer.map((w) => `layers.${l}.${w}`));
      // Gemma ties the LM head to the embedding, which the gather reads unscaled.
      expect(folded, arch).toEqual([...expected, ...(arch === "gemma" ? [] : ["lm_head"])].sort());
      expect(folds.prologues.size, arch).toBe(arch === "gemma" ? 8 : 9);
      const byId = new Map(g.nodes.map((n) => [n.id, n]));
      for (const f of folds.prologues.values()) expect(f.sources.map((s) => byId.get(s)!.op), arch).not.toContain("weight"); // the gain is gone
      const h = applyFolds(g, folds);
      verifyGraph(h, "gain");
      const base = (name: string, shape: readonly number[]) => randomTensor(name, shape, { seed: 13 });
      const shapes = new Map(g.nodes.filter((n) => n.op === "weight").map((n) => [String(n.attrs["name"]), n.ty.shape.map((d) => constValueOf(d))]));
      const scaled = (name: string, shape: readonly number[]) => {
        const s = folds.weights.get(name);
        return s ? scaleWeight(base(name, shape), shape[shape.length - 1]!, s, (v) => base(v, shapes.get(v)!)) : base(name, shape);
      };
      const run = (graph: Graph, weights: typeof base) => {
        const it = new CpuInterpreter(graph, weights);
        return [...(it.step({ tokens: Int32Array.of(3, 1, 4) }).data as Float32Array), ...(it.step({ tokens: Int32Array.of(5) }).data as Float32Array)];
      };
      const a = run(g, base);
      const b = run(h, scaled);
      let m = 0;
      for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
      expect(m, arch).toBeLessThan(1e-4);
    }
  });
});

describe("canonicalize: reshapes sink below unary elementwise ops", () => {
  it("reshape(cast(pos)) becomes cast(reshape(pos)), so RoPE's angle is one elementwise region over a view", () => {
    const overrides = new Map(Object.entries({ vocab_size: "48", dim: "32", n_layers: "1", n_heads: "4", n_kv_heads: "2", ffn_dim: "40", max_seq_len: "32" }));
    const g = compileFile(join("models", "llama.llm"), { overrides, pipeline: ["canonicalize", "dce"] }).compiled!.graph;
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    for (const n of g.nodes.filter((x) => x.op === "reshape")) expect(byId.get(n.inputs[0]!)!.op, "a reshape of a cast").not.toBe("cast");
    const cast = g.nodes.find((n) => n.op === "cast")!;
    expect(byId.get(cast.inputs[0]!)!.op).toBe("reshape");
    expect(byId.get(byId.get(cast.inputs[0]!)!.inputs[0]!)!.attrs["name"]).toBe("pos");
    // Without the rotary rule the angle is one kernel feeding cos and sin.
    const fused = compileFile(join("models", "llama.llm"), { overrides, pipeline: DEFAULT_PIPELINE.filter((p) => p !== "fuse-rotary") }).compiled!.graph;
    const angle = fused.nodes.filter((n) => n.op === "fused" && formatProgram(n.attrs["program"] as ExprProgram).includes("cast.f32"));
    expect(angle).toHaveLength(1);
  });
});

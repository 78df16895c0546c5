// Checking a gradient against central finite differences, for the rule tests and the model test.
//
// Precision: the reference stores every value as f32 (it computes each op in f64 and rounds once),
// and has no f64 mode. So the objective is formed here in f64 from the f32 outputs, L = Σ yᵢ·rᵢ with
// a random cotangent r, and the check is on a directional derivative: with a random direction u,
// (L(x + εu) − L(x − εu)) / 2ε against Σ (∂L/∂x)·u. The rounding of y costs at most
// 2⁻²⁴·Σ|yᵢrᵢ|/ε and the truncation O(ε²); with ε = 1e-2 both stay well under the tolerance below,
// while a wrong rule (a missing term, a wrong sign, a wrong axis) is off by O(|Σ gᵢuᵢ|).

import { constValue } from "../../src/compiler/base/symbolic.js";
import { differentiate } from "../../src/compiler/autodiff/reverse.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { runPasses, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { evaluateGraph } from "../../src/runtime/cpu/train-step.js";
import { GraphBuilder } from "../helpers/graph.js";
import { rng } from "../../src/runtime/weights/random.js";

export const EPS = 1e-2;

/** Seeded uniform numbers (mulberry32, as weight initialisation draws them). */
export const rand = rng;

export interface Operand {
  shape: number[];
  values: Float32Array;
  /** Default true; false for operands the rule need not differentiate (cos/sin tables, say). */
  differentiable?: boolean;
}

export interface RuleCase {
  operands: Operand[];
  /** Builds the op under test from the operands' nodes (weights named x0, x1, …). */
  build(b: GraphBuilder, xs: number[]): number;
}

const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);
const noInputs = new Map<string, Int32Array>();

function run(g: Graph, values: Map<string, Float32Array>): Float32Array[] {
  return evaluateGraph(g, new Map(), noInputs, (name) => values.get(name)!).map((t) => t.data as Float32Array);
}

export interface DirectionalCheck {
  operand: number;
  analytic: number;
  numeric: number;
  tolerance: number;
}

/** For each differentiable operand, the analytic and numeric directional derivative of Σ y·r. */
export function checkRule(c: RuleCase, seed: number): DirectionalCheck[] {
  const r = rand(seed);
  const b = new GraphBuilder();
  const xs = c.operands.map((o, i) => b.weight(`x${i}`, o.shape));
  const y = c.build(b, xs);
  const yShape = b.shape(y).map((d) => constValue(d)!);
  const cot = b.weight("cotangent", yShape);
  let loss = b.op("mul", [y, cot]);
  while (b.shape(loss).length > 0) loss = b.op("sum", [loss], { axis: 0, keepdim: false });

  const values = new Map<string, Float32Array>(c.operands.map((o, i) => [`x${i}`, o.values]));
  const cotangent = Float32Array.from({ length: size(yShape) }, () => 2 * r() - 1);
  values.set("cotangent", cotangent);
  const wrt = c.operands.map((o, i) => (o.differentiable === false ? -1 : i)).filter((i) => i >= 0);
  const forward = b.graph([y]);
  const d = differentiate(b.graph([loss]), loss, wrt.map((i) => xs[i]!));
  d.grads.forEach((g, k) => {
    if (g === null) throw new Error(`no gradient for operand ${wrt[k]}`);
  });
  // The backward graph goes through the standard passes, as a training graph does.
  const backward = runPasses({ ...d.graph, outputs: d.grads as number[] }, { pipeline: UNFUSED_PIPELINE });
  const grads = run(backward, values);

  const objective = (vals: Map<string, Float32Array>) => {
    const [out] = run(forward, vals);
    let s = 0;
    let mag = 0;
    for (let i = 0; i < out!.length; i++) {
      s += out![i]! * cotangent[i]!;
      mag += Math.abs(out![i]! * cotangent[i]!);
    }
    return { s, mag };
  };
  return wrt.map((i, k) => {
    const x = c.operands[i]!.values;
    const u = Float64Array.from({ length: x.length }, () => 2 * r() - 1);
    const g = grads[k]!;
    // x ± εu rounded to f32: the step actually taken, Δ = x₊ − x₋, is what the difference measures.
    const plus = Float32Array.from(x, (v, j) => v + EPS * u[j]!);
    const minus = Float32Array.from(x, (v, j) => v - EPS * u[j]!);
    let analytic = 0;
    let spread = 0;
    for (let j = 0; j < x.length; j++) {
      const step = (plus[j]! - minus[j]!) / (2 * EPS);
      analytic += g[j]! * step;
      spread += Math.abs(g[j]! * step);
    }
    const up = objective(new Map(values).set(`x${i}`, plus));
    const down = objective(new Map(values).set(`x${i}`, minus));
    const numeric = (up.s - down.s) / (2 * EPS);
    const tolerance = 2e-3 * spread + 1e-4 * (up.mag + down.mag) + 1e-6;
    return { operand: i, analytic, numeric, tolerance };
  });
}

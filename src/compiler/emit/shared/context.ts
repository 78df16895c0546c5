// Reading a dispatch's tensors out of the step plan, for every target: nodes, shapes (constant, or
// polynomials of P), placements, and dims as index expressions. Each target's DispatchContext
// extends PlanContext with what it adds (CUDA: launch arguments, weight formats, tuning).
//
// T is known in a step plan; P is not. A kernel over a P-dependent shape is launched for the largest
// P the plan is sized for (P + T = max_seq_len) and reads the real P from the step parameters: its
// sizes, strides and offsets are index expressions of P, and it bounds itself by them.

import { evalDim, formatShape, type Dim } from "../../base/symbolic.js";
import type { Node } from "../../ir/graph.js";
import type { Dispatch, Placement, StepPlan } from "../../plan/plan.js";

/** Each plan's nodes by id, made once however many dispatches read them. */
const nodesOf = new WeakMap<StepPlan, Map<number, Node>>();

export class PlanContext {
  private readonly nodes: Map<number, Node>;

  constructor(
    readonly plan: StepPlan,
    readonly dispatch: Dispatch,
  ) {
    let nodes = nodesOf.get(plan);
    if (!nodes) nodesOf.set(plan, (nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]))));
    this.nodes = nodes;
  }

  node(id: number): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`internal: no node %${id} in the plan`);
    return n;
  }

  get outputNode(): Node {
    return this.node(this.dispatch.node);
  }

  /** Concrete shape, for tensors that never depend on P (weights, attention's queries). */
  shape(id: number): number[] {
    const n = this.node(id);
    return n.ty.shape.map((d) => {
      const c = constOf(d);
      if (c === null) throw new Error(`internal: ${this.dispatch.kernel} kernel for %${this.dispatch.node}: %${id} has a P-dependent shape ${formatShape(n.ty.shape)}`);
      return c;
    });
  }

  /** The shape, each dim a constant or a polynomial of P. */
  dims(id: number): readonly Dim[] {
    return this.node(id).ty.shape;
  }

  /** A dim that must not depend on P here (a head count, a head size). */
  constant(d: Dim): number {
    const c = constOf(d);
    if (c === null) throw new Error(`internal: ${this.label()}: dimension ${formatShape([d])} depends on P`);
    return c;
  }

  /** The largest P of this step shape: what grids are sized for. */
  get maxPast(): number {
    return this.plan.maxSeqLen - this.plan.T;
  }

  /** A dim's value at the largest P. */
  atMax(d: Dim): number {
    return evalDim(d, new Map([["P", this.maxPast]]));
  }

  placement(id: number): Placement {
    const p = this.plan.placement.get(id);
    if (!p) throw new Error(`internal: %${id} has no storage in the plan`);
    return p;
  }

  label(): string {
    return `${this.dispatch.kernel} #${this.dispatch.index}`;
  }
}

/** The value of a constant dim; null when it depends on P. */
export function constOf(d: Dim): number | null {
  if (d.size === 0) return 0;
  if (d.size === 1 && d.has("")) return d.get("")!;
  return null;
}

/** The power of P of a monomial key ("" = P⁰, "P", "P*P"); anything else is an error. */
function powerOfPast(key: string, d: Dim): number {
  if (key === "") return 0;
  const vars = key.split("*");
  if (vars.some((v) => v !== "P")) throw new Error(`internal: dimension ${formatShape([d])} has symbols other than P in a step plan`);
  return vars.length;
}

/** A dim as an integer expression of the target: a literal, or a polynomial of P with `past()`
 *  naming P (called only then: it may bind the step parameters), in parentheses unless one name or
 *  literal. Negative terms are subtracted last, so an unsigned result never wraps on the way. */
export function dimExprWith(d: Dim, past: () => string, literal: (v: number) => string): string {
  const k = constOf(d);
  if (k !== null) return literal(k);
  const terms = [...d.entries()].map(([key, c]) => ({ power: powerOfPast(key, d), c })).sort((a, b) => b.power - a.power || b.c - a.c);
  const term = (power: number, c: number) => {
    const factors = [...Array<string>(power).fill(past()), ...(c === 1 && power > 0 ? [] : [literal(c)])];
    return factors.join(" * ");
  };
  let s = "";
  for (const { power, c } of terms) {
    if (c > 0) s += (s ? " + " : "") + term(power, c);
  }
  if (!s) throw new Error(`internal: dimension ${formatShape([d])} is never positive`);
  for (const { power, c } of terms) {
    if (c < 0) s += ` - ${term(power, -c)}`;
  }
  return s === past() ? s : `(${s})`;
}

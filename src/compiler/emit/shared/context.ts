// Reading a dispatch's tensors out of the step plan, for every target: nodes, concrete shapes,
// placements, and P-dependent dims split into a·P + c. Each target's DispatchContext extends
// PlanContext with what it adds (CUDA: launch arguments, weight formats, tuning).

import { formatDim, formatShape, type Dim } from "../../base/symbolic.js";
import type { Node } from "../../ir/graph.js";
import type { Dispatch, Placement, StepPlan } from "../../plan/plan.js";

export class PlanContext {
  private readonly nodes: Map<number, Node>;

  constructor(
    readonly plan: StepPlan,
    readonly dispatch: Dispatch,
  ) {
    this.nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  }

  node(id: number): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`internal: no node %${id} in the plan`);
    return n;
  }

  get outputNode(): Node {
    return this.node(this.dispatch.node);
  }

  /** Concrete shape; P-dependent shapes are an error here (kernels that take P read `dimExpr`). */
  shape(id: number): number[] {
    const n = this.node(id);
    return n.ty.shape.map((d) => {
      const c = constOf(d);
      if (c === null) throw new Error(`internal: ${this.dispatch.kernel} kernel for %${this.dispatch.node}: %${id} has a P-dependent shape ${formatShape(n.ty.shape)}`);
      return c;
    });
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

/** A P-dependent dim as a·P + c (a > 0, c ≥ 0); anything else is an error. */
export function affineInPast(d: Dim): { a: number; c: number } {
  const keys = [...d.keys()];
  if (keys.some((k) => k !== "" && k !== "P") || (d.get("P") ?? 0) <= 0 || (d.get("") ?? 0) < 0) {
    throw new Error(`internal: dimension ${formatDim(d)} is not of the form a*P + c`);
  }
  return { a: d.get("P")!, c: d.get("") ?? 0 };
}

/** A dim as an integer expression of the target: a constant, or a·P + c with `past()` naming P
 *  (called only then: it may bind the step parameters). */
export function dimExprWith(d: Dim, past: () => string, literal: (v: number) => string): string {
  const k = constOf(d);
  if (k !== null) return literal(k);
  const { a, c } = affineInPast(d);
  const p = a === 1 ? past() : `${past()} * ${literal(a)}`;
  return c === 0 ? p : `(${p} + ${literal(c)})`;
}

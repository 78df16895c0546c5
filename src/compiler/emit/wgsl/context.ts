// Reading a dispatch's tensors out of the step plan: concrete shapes, placements, element types.

import { formatDim, formatShape, type Dim } from "../../check/symbolic.js";
import type { Node } from "../../ir/graph.js";
import type { Dispatch, Placement, StepPlan } from "../../plan/plan.js";
import { u32Literal } from "./lang.js";

export class DispatchContext {
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

  get output(): Node {
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

/** A dim as a WGSL u32 expression: a constant, or a·P + c read from the per-step parameters. */
export function dimExpr(d: Dim, params: string): string {
  const c = constOf(d);
  if (c !== null) return u32Literal(c);
  const keys = [...d.keys()];
  if (keys.some((k) => k !== "" && k !== "P") || (d.get("P") ?? 0) <= 0 || (d.get("") ?? 0) < 0) {
    throw new Error(`internal: dimension ${formatDim(d)} is not of the form a*P + c`);
  }
  const a = d.get("P")!;
  const k = d.get("") ?? 0;
  const p = a === 1 ? `${params}.past` : `${params}.past * ${u32Literal(a)}`;
  return k === 0 ? p : `(${p} + ${u32Literal(k)})`;
}

/** `"16u + "` for an offset of 16, `""` for 0: prefixes an index expression. */
export function plus(offset: number): string {
  return offset === 0 ? "" : `${u32Literal(offset)} + `;
}

export const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

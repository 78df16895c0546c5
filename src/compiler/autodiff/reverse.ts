// Reverse mode over the graph IR: walks the nodes between the chosen leaves and a scalar loss from the
// loss back, asking each op's gradient rule (ops/gradients.ts) for the gradients of its inputs and
// summing them where a value is used more than once. The result is more nodes in the same graph.

import { LEAF_OPS, nextId, type Graph, type Node } from "../ir/graph.js";
import { checkGradientType, gradientRule, type GradientBuilder } from "../ops/gradients.js";
import { getOp, type Attrs, type TensorTy } from "../ops/table.js";

export interface Differentiated {
  /** The input graph with the backward nodes appended (outputs unchanged). */
  graph: Graph;
  /** The gradient of the loss by each of `wrt`, null where the loss does not depend on it. */
  grads: (number | null)[];
}

export interface DifferentiateOptions {
  /** Values the gradient does not flow through (a max subtracted for stability only). */
  stopGradient?: ReadonlySet<number>;
}

/** Appends nodes to a graph, typed by the op table; keeps the forward node's layer on its backward. */
export class GraphAppender implements GradientBuilder {
  readonly nodes: Node[];
  private readonly types = new Map<number, TensorTy>();
  private fresh: number;
  layer: number | undefined;

  constructor(g: Graph) {
    this.nodes = [...g.nodes];
    for (const n of g.nodes) this.types.set(n.id, n.ty);
    this.fresh = nextId(g);
  }

  op(name: string, inputs: number[], attrs: Attrs = {}): number {
    const ty = getOp(name).infer(inputs.map((i) => this.ty(i)), attrs);
    const node: Node = { id: this.fresh++, op: name, inputs, attrs, ty };
    if (this.layer !== undefined) node.layer = this.layer;
    this.nodes.push(node);
    this.types.set(node.id, ty);
    return node.id;
  }

  /** A graph input (the runtime provides it by name). */
  input(name: string, ty: TensorTy): number {
    const node: Node = { id: this.fresh++, op: "input", inputs: [], attrs: { name }, ty };
    this.nodes.push(node);
    this.types.set(node.id, ty);
    return node.id;
  }

  graph(g: Graph): Graph {
    return { ...g, nodes: this.nodes };
  }

  ty(id: number): TensorTy {
    const t = this.types.get(id);
    if (!t) throw new Error(`internal: autodiff refers to %${id}, which is not in the graph`);
    return t;
  }
}

const isFloat = (t: TensorTy) => t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16";

/** The gradients of the rank-0 value `loss` by the values `wrt` (leaves or not). */
export function differentiate(g: Graph, loss: number, wrt: readonly number[], opts: DifferentiateOptions = {}): Differentiated {
  const b = new GraphAppender(g);
  const lossTy = b.ty(loss);
  if (lossTy.shape.length !== 0 || !isFloat(lossTy)) throw new Error(`internal: the loss must be a floating-point scalar, got %${loss}`);
  const stop = opts.stopGradient ?? new Set<number>();

  // Values on a path from one of `wrt` to the loss: only they need a gradient.
  const fromWrt = new Set(wrt);
  for (const n of g.nodes) {
    if (!fromWrt.has(n.id) && !stop.has(n.id) && isFloat(n.ty) && n.inputs.some((i) => fromWrt.has(i))) fromWrt.add(n.id);
  }
  const onPath = new Set<number>();
  if (fromWrt.has(loss)) onPath.add(loss);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (onPath.has(n.id)) for (const x of n.inputs) if (fromWrt.has(x)) onPath.add(x);
  }

  const grad = new Map<number, number>();
  const accumulate = (id: number, gi: number) => {
    const prev = grad.get(id);
    grad.set(id, prev === undefined ? gi : b.op("add", [prev, gi]));
  };
  b.layer = undefined;
  accumulate(loss, b.op("const", [], { value: 1, dtype: lossTy.dtype }));
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    const dy = grad.get(n.id);
    if (dy === undefined || !onPath.has(n.id) || LEAF_OPS.has(n.op)) continue;
    b.layer = n.layer;
    const rule = gradientRule(n.op);
    const dx = rule(b, { inputs: n.inputs, output: n.id, attrs: n.attrs }, dy);
    n.inputs.forEach((x, k) => {
      const gx = dx[k];
      if (gx === null || gx === undefined || !onPath.has(x)) return;
      checkGradientType(n.op, b.ty(x), b.ty(gx));
      accumulate(x, gx);
    });
  }
  b.layer = undefined;
  return { graph: b.graph(g), grads: wrt.map((w) => grad.get(w) ?? null) };
}

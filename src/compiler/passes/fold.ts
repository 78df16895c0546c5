// Constant folding: a subgraph that depends only on constants (arange, const, literals) is evaluated
// once at compile time with the CPU reference and becomes a literal. The RoPE inverse frequencies —
// written in .llm as arithmetic on arange(head_dim / 2), with the LLaMA 3.1 scaling — fold this way.

import { constValue } from "../base/symbolic.js";
import { LEAF_OPS, type Graph, type LiteralData, type Node } from "../ir/graph.js";
import { concreteAttrs } from "../ir/concrete.js";
import { reference, type HostTensor } from "../ops/reference.js";

/** Larger results stay as computation: a literal is stored in plan.json and in memory. */
const MAX_FOLDED_ELEMENTS = 1 << 16;

const CONSTANT_SOURCES = new Set(["const", "arange", "literal"]);

export function foldConstants(g: Graph): Graph {
  const values = new Map<number, HostTensor>();
  const literals = new Map(g.literals);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (n.op === "literal") {
      const data = g.literals.get(n.id)!;
      values.set(n.id, { shape: n.ty.shape.map((d) => constValue(d)!), dtype: n.ty.dtype, data });
      nodes.push(n);
      continue;
    }
    const foldable =
      !LEAF_OPS.has(n.op) &&
      n.op !== "kv_append" &&
      n.ty.shape.every((d) => constValue(d) !== null) &&
      // Never evaluate what would be too big to keep: an absurd config must not cost minutes here.
      n.ty.shape.reduce((a, d) => a * constValue(d)!, 1) <= MAX_FOLDED_ELEMENTS &&
      n.inputs.every((i) => values.has(i)) &&
      (CONSTANT_SOURCES.has(n.op) || n.inputs.length > 0);
    if (!foldable) {
      nodes.push(n);
      continue;
    }
    const result = reference[n.op]!(n.inputs.map((i) => values.get(i)!), concreteAttrs(n.op, n.attrs, new Map()));
    values.set(n.id, result);
    // Sources stay as they are (a const is already minimal); ops become literals when small enough.
    if (n.op === "const" || n.op === "arange" || (n.ty.dtype !== "f32" && n.ty.dtype !== "i32")) {
      nodes.push(n);
      continue;
    }
    const data: LiteralData = n.ty.dtype === "i32" ? Int32Array.from(result.data) : Float32Array.from(result.data);
    literals.set(n.id, data);
    nodes.push({ id: n.id, op: "literal", inputs: [], attrs: {}, ty: n.ty });
  }
  return { ...g, nodes, literals };
}

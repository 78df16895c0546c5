// Common-subexpression elimination: two nodes with the same op, inputs and attributes are one value.
// (Each layer's `rope_freqs()` call, for instance, lowers to the same nodes.)

import { formatDim, type Dim } from "../base/symbolic.js";
import { EFFECT_OPS, nodeMap, type Graph, type Node } from "../ir/graph.js";

function withoutLayer(n: Node): Node {
  const { layer: _shared, ...rest } = n;
  return rest;
}
import { applyAliases } from "../ir/rewrite.js";

function attrKey(v: unknown): string {
  if (v instanceof Map) return `dim(${formatDim(v as Dim)})`;
  if (Array.isArray(v)) return `[${v.map(attrKey).join(",")}]`;
  return JSON.stringify(v);
}

export function cse(g: Graph): Graph {
  const seen = new Map<string, number>();
  const alias = new Map<number, number>();
  const byId = nodeMap(g);
  const unlayered = new Set<number>();
  for (const n of g.nodes) {
    if (EFFECT_OPS.has(n.op) || n.op === "input") continue;
    const inputs = n.inputs.map((i) => alias.get(i) ?? i);
    const attrs = Object.keys(n.attrs).sort().map((k) => `${k}=${attrKey(n.attrs[k])}`).join(";");
    // A literal's data does not fix its shape: ones [2, 1] and ones [1, 2] are different values.
    const lit = n.op === "literal" ? `${Array.from(g.literals.get(n.id) ?? []).join(",")}[${n.ty.shape.map((d) => formatDim(d)).join(",")}]` : "";
    const key = `${n.op}(${inputs.join(",")}){${attrs}}${lit}:${n.ty.dtype}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      alias.set(n.id, prev);
      // A value shared by several layers belongs to none of them.
      if (byId.get(prev)!.layer !== n.layer) unlayered.add(prev);
    } else seen.set(key, n.id);
  }
  const merged = applyAliases(g, alias);
  const out = unlayered.size ? { ...merged, nodes: merged.nodes.map((n) => (unlayered.has(n.id) ? withoutLayer(n) : n)) } : merged;
  return { ...out, literals: new Map([...g.literals].filter(([id]) => !alias.has(id))) };
}

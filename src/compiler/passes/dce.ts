// Dead-code elimination: keep what the outputs need and every node with an effect (KV-cache writes).

import { EFFECT_OPS, nodeMap, type Graph } from "../ir/graph.js";

export function dce(g: Graph): Graph {
  const byId = nodeMap(g);
  const live = new Set<number>();
  const stack = [...g.outputs, ...g.nodes.filter((n) => EFFECT_OPS.has(n.op)).map((n) => n.id)];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    for (const i of byId.get(id)?.inputs ?? []) stack.push(i);
  }
  const literals = new Map([...g.literals].filter(([id]) => live.has(id)));
  return { ...g, nodes: g.nodes.filter((n) => live.has(n.id)), literals };
}

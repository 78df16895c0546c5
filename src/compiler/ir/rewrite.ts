// Shared plumbing for passes: replace a node's uses with another value, then drop what is dead.

import type { Graph, Node } from "./graph.js";

/** Rebuilds the graph with `alias` applied to every use (a → b means uses of a read b instead). */
export function applyAliases(g: Graph, alias: ReadonlyMap<number, number>): Graph {
  if (alias.size === 0) return g;
  const resolve = (id: number): number => {
    let cur = id;
    for (let guard = 0; alias.has(cur) && guard < 1_000_000; guard++) cur = alias.get(cur)!;
    return cur;
  };
  return {
    ...g,
    nodes: g.nodes.filter((n) => !alias.has(n.id)).map((n) => ({ ...n, inputs: n.inputs.map(resolve) })),
    outputs: g.outputs.map(resolve),
  };
}

export function usersOf(g: Graph): Map<number, Node[]> {
  const users = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) (users.get(i) ?? users.set(i, []).get(i)!).push(n);
  return users;
}

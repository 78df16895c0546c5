// The graph IR: a list of SSA nodes in topological order. Every value is a node (inputs, weights,
// constants and ops alike), typed with symbolic dims (`T` tokens this step, `P` past length).

import type { Attrs, DType, TensorTy } from "../ops/table.js";

export interface Node {
  id: number;
  op: string; // "input", "weight", "literal", or an op of the op table
  inputs: number[];
  attrs: Attrs;
  ty: TensorTy;
  /** Provenance, not semantics: the layer of a `for … in <weight group>` loop the node was made in.
   *  Reports count dispatches per layer with it; passes keep it on the nodes they rewrite. */
  layer?: number;
}

/** Literal tensor data (folded constants), f32 or i32. */
export type LiteralData = Float32Array | Int32Array;

export interface Graph {
  name: string;
  nodes: Node[]; // topological order; ids are unique but need not be dense after passes
  outputs: number[];
  /** Data of "literal" nodes, by node id. */
  literals: Map<number, LiteralData>;
  /** KV-cache states the graph writes, by name. */
  states: Map<string, StateSpec>;
}

export interface StateSpec {
  name: string;
  layers: number;
  maxSeqLen: number;
  heads: number;
  headDim: number;
}

/** The context of a graph without a KV cache (it keeps no past; this bounds its steps). */
export const DEFAULT_MAX_SEQ_LEN = 4096;

/** Positions the model's context holds (P + T of any step): the smallest KV cache's capacity. The
 *  one place this is computed; planners, targets and executors all ask it. */
export function maxSeqLenOf(g: Graph): number {
  const states = [...g.states.values()];
  return states.length ? Math.min(...states.map((s) => s.maxSeqLen)) : DEFAULT_MAX_SEQ_LEN;
}

/** Pseudo-ops that are not in the op table: graph inputs, weights and folded literals. */
export const LEAF_OPS = new Set(["input", "weight", "literal"]);

/** Ops with an effect beyond their result: never removed or merged by passes. */
export const EFFECT_OPS = new Set(["kv_append"]);

export function nodeMap(g: Graph): Map<number, Node> {
  return new Map(g.nodes.map((n) => [n.id, n]));
}

export function nextId(g: Graph): number {
  let max = -1;
  for (const n of g.nodes) if (n.id > max) max = n.id;
  return max + 1;
}

/** Renumbers nodes densely in order (0, 1, 2, …), so printed IR reads top to bottom. */
export function renumber(g: Graph): Graph {
  const map = new Map<number, number>();
  g.nodes.forEach((n, i) => map.set(n.id, i));
  const literals = new Map<number, LiteralData>();
  for (const [id, d] of g.literals) if (map.has(id)) literals.set(map.get(id)!, d);
  return {
    ...g,
    nodes: g.nodes.map((n, i) => ({ ...n, id: i, inputs: n.inputs.map((x) => map.get(x)!) })),
    outputs: g.outputs.map((x) => map.get(x)!),
    literals,
  };
}

export function weightNodes(g: Graph): Node[] {
  return g.nodes.filter((n) => n.op === "weight");
}

export type { Attrs, DType, TensorTy };

// Greedy decoding on the device: appends argmax(logits[last row]) as a second graph output, so an
// executor can read back one i32 (4 bytes) per decode step instead of the [1, vocab] logits. The
// logits stay output 0 and are computed either way; the weights are shared, so one executor serves
// both reads. Applied where a runtime builds an executor, not by `compile` (the printed IR and the
// compile report keep their single output).

import { addDim, constDim, constValue, dimEquals, symDim } from "../base/symbolic.js";
import { nextId, type Graph, type Node } from "../ir/graph.js";
import { getOp } from "../ops/table.js";

/** Graph output index of the greedy token, once `withArgmaxOutput` has run. */
export const ARGMAX_OUTPUT = 1;

/** The index of the greedy-token output `withArgmaxOutput` appended, or null when there is none. */
export function greedyOutput(graph: Graph): number | null {
  if (graph.outputs.length !== 2) return null;
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const arg = byId.get(graph.outputs[ARGMAX_OUTPUT]!);
  const last = arg?.op === "argmax" ? byId.get(arg.inputs[0]!) : undefined;
  return last?.op === "slice" && last.inputs[0] === graph.outputs[0] ? ARGMAX_OUTPUT : null;
}

/**
 * `graph` with output 1 = argmax over the last axis of output 0's last row: [1] i32, when its one
 * output is logits-shaped ([T, vocab], floating point). Any other graph (another shape, several
 * outputs, or the greedy output already there) is returned as it is.
 */
export function withArgmaxOutput(graph: Graph): Graph {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  if (greedyOutput(graph) !== null || graph.outputs.length !== 1) return graph;
  const logits = byId.get(graph.outputs[0]!)!;
  const [rows, vocab] = logits.ty.shape;
  const isLogits = logits.ty.shape.length === 2 && dimEquals(rows!, symDim("T")) && constValue(vocab!) !== null && ["f32", "f16", "bf16"].includes(logits.ty.dtype);
  if (!isLogits) return graph;
  let id = nextId(graph);
  const sliceAttrs = { axis: 0, start: addDim(symDim("T"), constDim(-1)), end: symDim("T") };
  const last: Node = { id: id++, op: "slice", inputs: [logits.id], attrs: sliceAttrs, ty: getOp("slice").infer([logits.ty], sliceAttrs) };
  const argAttrs = { axis: -1, keepdim: false };
  const arg: Node = { id: id++, op: "argmax", inputs: [last.id], attrs: argAttrs, ty: getOp("argmax").infer([last.ty], argAttrs) };
  return { ...graph, nodes: [...graph.nodes, last, arg], outputs: [graph.outputs[0]!, arg.id] };
}

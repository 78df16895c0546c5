// Evaluating a graph on the host with the op table's reference kernels: the one loop the CPU
// interpreter (inference steps, with its KV cache) and the CPU training step share.

import { evalDim } from "../../compiler/base/symbolic.js";
import { concreteAttrs } from "../../compiler/ir/concrete.js";
import { EFFECT_OPS, type Graph, type Node } from "../../compiler/ir/graph.js";
import { reference, type HostTensor } from "../../compiler/ops/reference.js";

/**
 * Runs every node of `g` once for the step's sizes (`env`: T, and P where the graph has it) and
 * returns its outputs. Graph inputs come from `inputs` by name, weights from `weight`, and an op with
 * an effect beyond its result (kv_append: the interpreter's KV cache) from `effect`. Values are
 * dropped after their last use, so memory follows the graph's live set, not its size.
 */
export function evaluateGraph(
  g: Graph,
  env: ReadonlyMap<string, number>,
  inputs: ReadonlyMap<string, HostTensor["data"]>,
  weight: (name: string, shape: number[]) => Float32Array,
  effect?: (node: Node, inputs: HostTensor[]) => HostTensor,
): HostTensor[] {
  const lastUse = new Map<number, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((x) => lastUse.set(x, i)));
  for (const o of g.outputs) lastUse.set(o, Infinity);
  const values = new Map<number, HostTensor>();
  g.nodes.forEach((n, i) => {
    const shape = n.ty.shape.map((d) => evalDim(d, env));
    let out: HostTensor;
    if (n.op === "input") {
      const name = n.attrs["name"] as string;
      const data = inputs.get(name);
      if (!data) throw new Error(`the graph has an input '${name}' that was not given (given: ${[...inputs.keys()].join(", ")})`);
      if (data.length !== shape.reduce((a, d) => a * d, 1)) throw new Error(`input '${name}' has ${data.length} values, the graph wants [${shape.join(", ")}]`);
      out = { shape, dtype: n.ty.dtype, data };
    } else if (n.op === "weight") {
      out = { shape, dtype: "f32", data: weight(n.attrs["name"] as string, shape) };
    } else if (n.op === "literal") {
      out = { shape, dtype: n.ty.dtype, data: g.literals.get(n.id)! };
    } else if (EFFECT_OPS.has(n.op)) {
      if (!effect) throw new Error(`op '${n.op}' needs state (a KV cache) that this evaluation does not keep`);
      out = effect(n, n.inputs.map((x) => values.get(x)!));
    } else {
      const op = reference[n.op];
      if (!op) throw new Error(`no CPU reference for op '${n.op}'`);
      out = op(n.inputs.map((x) => values.get(x)!), concreteAttrs(n.op, n.attrs, env));
    }
    values.set(n.id, out);
    for (const x of n.inputs) if (lastUse.get(x) === i) values.delete(x);
  });
  return g.outputs.map((o) => values.get(o)!);
}

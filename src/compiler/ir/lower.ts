// Lowering: the checked model → graph IR. The elaborator walks `forward` exactly as the checker
// does; this domain records each tensor it makes as a node.

import type { Diagnostic } from "../base/diagnostics.js";
import { Elaborator, type Program } from "../check/elaborate.js";
import type { ResolvedModel } from "../check/model.js";
import type { Domain } from "../check/values.js";
import type { Attrs, TensorTy } from "../ops/table.js";
import type { Graph, Node } from "./graph.js";
import { applyAliases } from "./rewrite.js";

class GraphBuilder implements Domain<number> {
  readonly nodes: Node[] = [];
  private currentLayer: number | null = null;

  private add(op: string, inputs: number[], attrs: Attrs, ty: TensorTy): number {
    const id = this.nodes.length;
    const node: Node = { id, op, inputs, attrs, ty };
    if (this.currentLayer !== null && op !== "weight" && op !== "input") node.layer = this.currentLayer;
    this.nodes.push(node);
    return id;
  }

  layer(index: number | null): void {
    this.currentLayer = index;
  }

  input(name: string, ty: TensorTy): number {
    return this.add("input", [], { name }, ty);
  }

  weight(path: string, ty: TensorTy): number {
    return this.add("weight", [], { name: path }, ty);
  }

  op(name: string, inputs: number[], attrs: Attrs, ty: TensorTy): number {
    return this.add(name, inputs, attrs, ty);
  }

  placeholder(): number {
    return -1; // only ever made after an error, and a program with errors is not lowered
  }
}

export interface LowerResult {
  graph: Graph | null;
  diagnostics: Diagnostic[];
}

/** `training`: keep dropout nodes (the training graph turns them into masks); otherwise dropout is the
 *  identity and leaves the graph here. */
export function lowerModel(program: Program, model: ResolvedModel, opts: { training?: boolean } = {}): LowerResult {
  const diagnostics: Diagnostic[] = [];
  const builder = new GraphBuilder();
  const result = new Elaborator(program, model, builder, diagnostics).run();
  if (!result.output || diagnostics.some((d) => d.severity === "error")) return { graph: null, diagnostics };
  const states = new Map(
    [...model.state.values()].map((s) => [s.name, { name: s.name, layers: s.layers, maxSeqLen: s.maxSeqLen, heads: s.heads, headDim: s.headDim }]),
  );
  const graph: Graph = { name: model.name, nodes: builder.nodes, outputs: [result.output.v], literals: new Map(), states };
  const dropouts = opts.training ? [] : graph.nodes.filter((n) => n.op === "dropout");
  return { graph: applyAliases(graph, new Map(dropouts.map((n) => [n.id, n.inputs[0]!]))), diagnostics };
}

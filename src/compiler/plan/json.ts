// plan.json: the step plan in a stable, readable form — one record per line, keys in a fixed order,
// shapes and programs in the IR's own notation. Names from the model appear only as JSON strings.

import { evalDim, formatShape } from "../base/symbolic.js";
import { formatProgram } from "../ops/expr.js";
import { dispatchOutputs, type StepPlan } from "./plan.js";

export const PLAN_FORMAT = "llmc-plan/1";

export interface PlanSummary {
  dispatches: number;
  buffers: number;
  bytes: { weights: number; kv: number; literals: number; inputs: number; activations: number };
  /** Bytes all activations would take without reuse. */
  activation_bytes_without_reuse: number;
}

export function summarizePlan(plan: StepPlan): PlanSummary {
  const bytes = { weights: 0, kv: 0, literals: 0, inputs: 0, activations: 0 };
  for (const b of plan.buffers) {
    if (b.kind === "weight") bytes.weights += b.bytes;
    else if (b.kind === "kv") bytes.kv += b.bytes;
    else if (b.kind === "literal") bytes.literals += b.bytes;
    else if (b.kind === "input") bytes.inputs += b.bytes;
    else bytes.activations += b.bytes;
  }
  let noReuse = 0;
  const maxP = new Map([["P", plan.maxSeqLen - plan.T]]);
  const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  for (const d of plan.dispatches) {
    if (d.kernel === "kv_append") continue;
    for (const o of dispatchOutputs(d)) {
      if (plan.buffers[plan.placement.get(o)!.buffer]!.kind !== "activation") continue; // KV rows written in place
      const n = nodes.get(o)!;
      const elems = n.ty.shape.reduce((a, dim) => a * evalDim(dim, maxP), 1);
      noReuse += Math.max(16, Math.ceil((elems * 4) / 16) * 16);
    }
  }
  return { dispatches: plan.dispatches.length, buffers: plan.buffers.length, bytes, activation_bytes_without_reuse: noReuse };
}

/** The plan as JSON text: deterministic for a given graph and T. */
export function planToJson(plan: StepPlan): string {
  const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  const line = (o: unknown) => "    " + JSON.stringify(o);
  const section = (name: string, rows: unknown[], last = false) =>
    `  ${JSON.stringify(name)}: [\n${rows.map(line).join(",\n")}\n  ]${last ? "" : ","}`;
  const buffers = plan.buffers.map((b) => ({ id: b.id, kind: b.kind, bytes: b.bytes, holds: b.holds, ...(b.parts ? { rows_per_binding: b.parts } : {}) }));
  const tensors = plan.graph.nodes
    .filter((n) => plan.placement.has(n.id) || plan.storage.has(n.id))
    .map((n) => {
      const p = plan.placement.get(n.id);
      const how = plan.storage.get(n.id) ?? "dispatch";
      return { node: n.id, op: n.op, shape: formatShape(n.ty.shape), dtype: n.ty.dtype, storage: how, buffer: p?.buffer ?? null, offset: p?.offset ?? null };
    });
  const dispatches = plan.dispatches.map((d) => ({
    index: d.index,
    kernel: d.kernel,
    node: d.node,
    op: nodes.get(d.node)!.op,
    reads: d.inputs,
    writes: plan.placement.get(d.node)!.buffer,
    ...(d.weights !== undefined ? { weights: d.weights } : {}),
    ...(d.program ? { program: formatProgram(d.program) } : {}),
    ...(d.kernel === "fused_linear" && d.linear
      ? {
          sources: d.linear.sources,
          prologue: formatProgram(d.linear.prologue),
          segments: d.linear.segments.map((s) => {
            const p = plan.placement.get(s.node)!;
            return {
              node: s.node,
              writes: p.buffer,
              ...(p.perPast ? { at_past: p.perPast } : {}),
              weights: s.weights,
              extras: s.extras,
              epilogue: formatProgram(s.epilogue),
              ...(s.rotation ? { rotation: { head_dim: s.rotation.headDim, inputs: s.rotation.inputs, program: formatProgram(s.rotation.program) } } : {}),
            };
          }),
        }
      : {}),
  }));
  const head = {
    format: PLAN_FORMAT,
    model: plan.model,
    step: { T: plan.T, P: "runtime parameter", max_seq_len: plan.maxSeqLen },
    inputs: plan.inputs.map((i) => ({ name: i.name, node: i.node, buffer: i.buffer })),
    outputs: plan.outputs,
    summary: summarizePlan(plan),
  };
  const headLines = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  return ["{", ...headLines, section("buffers", buffers), section("tensors", tensors), section("dispatches", dispatches, true), "}"].join("\n") + "\n";
}

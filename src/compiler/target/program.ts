// What every target decides the same way: which weights keep a packed dtype on the device, which
// are uploaded scaled by a norm gain, the bytes a weight has on the device, and the facts about a
// step plan that a runtime checks before it runs (token tables, greedy-only dispatches).

import { evalDim } from "../base/symbolic.js";
import { EFFECT_OPS, nodeMap, weightNodes, type Graph } from "../ir/graph.js";
import { gainFolds, scaleWeight, type WeightScale } from "../plan/fold.js";
import { dispatchOutputs, type StepPlan } from "../plan/plan.js";
import { deviceBytes, deviceDType, deviceLayout, deviceRows, rowsWithin, type DeviceLayout, type StorageDType, type StoredTensor } from "./storage.js";

/**
 * The weight-source contract every executor takes: f32 values by IR weight name ("embed",
 * "layers.3.wq"); `raw`, where the source has it, gives the bytes as the file stores them, so a
 * quantized weight can stay quantized on the device.
 */
export type WeightSource = ((name: string, shape: readonly number[]) => Float32Array) & {
  raw?: (name: string) => { dtype: StorageDType; bytes: Uint8Array } | null | undefined;
  /** A weight's bytes already in its device layout (`w.layout`), uploaded as they are: benchmarks'
   *  generated weights, which would take longer to repack than to run. Not asked for weights
   *  uploaded scaled by a folded gain. */
  device?: (w: DeviceWeight) => Uint8Array | null | undefined;
};

/** Which dtype each weight should have on the device before the graph's needs are considered. */
export interface WeightPolicy {
  /** The dtype the weight file stores a weight in (by IR name); undefined: f32. */
  stored?: (name: string) => StorageDType | undefined;
  /** What the user asked for (`--weight-dtype`): every matrix in this dtype. */
  requested?: StorageDType;
}

/** A weight as it lives on the device, decided once per program. */
export interface DeviceWeight {
  name: string;
  shape: number[];
  dtype: StorageDType;
  layout: DeviceLayout;
  /** Rule `gain` (plan/fold.ts): uploaded scaled along its rows (f32 weights only). */
  scale?: WeightScale;
  /** Why the dtype the policy wanted is not used. */
  demoted?: string;
  /** Rows of each part, for a matrix larger than one binding (`splitWeights`): uploaded as row
   *  ranges, each a tensor of its own (storage.ts `deviceRows`). */
  parts?: number[];
}

export class TargetError extends Error {
  override name = "TargetError";
}

/** The policy's dtypes where every read of a weight can take them: only linear kernels (as weights)
 *  and gathers (as the table) read packed weights, and the weights of one linear share a dtype. */
export function deviceWeights(graph: Graph, policy: WeightPolicy, opts: { foldGains: boolean }): DeviceWeight[] {
  const weights = new Map<string, DeviceWeight>();
  for (const n of weightNodes(graph)) {
    const name = String(n.attrs["name"]);
    if (weights.has(name)) continue;
    const shape = n.ty.shape.map((d) => evalDim(d, new Map()));
    const { dtype, demoted } = deviceDType(shape, policy.stored?.(name), policy.requested);
    weights.set(name, { name, shape, dtype, layout: deviceLayout(dtype, shape), ...(demoted ? { demoted } : {}) });
  }
  const demote = (name: string, why: string) => {
    const w = weights.get(name)!;
    if (w.dtype !== "f32") Object.assign(w, { dtype: "f32", layout: deviceLayout("f32", w.shape), demoted: why });
  };
  const byId = nodeMap(graph);
  const nameOf = (id: number) => {
    const w = byId.get(id);
    return w?.op === "weight" ? String(w.attrs["name"]) : null;
  };
  for (const id of graph.outputs) {
    const name = nameOf(id);
    if (name) demote(name, "it is an output of the graph");
  }
  const linearWeights: string[][] = [];
  for (const u of graph.nodes) {
    const [lo, hi] = rowReads(u);
    u.inputs.forEach((id, i) => {
      const name = nameOf(id);
      if (name && (i < lo || i >= hi)) demote(name, `it is read by a ${u.op} as an f32 tensor`);
    });
    if (u.op !== "gather" && hi > lo) linearWeights.push(u.inputs.slice(lo, hi).map((id) => nameOf(id)!).filter(Boolean));
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const names of linearWeights) {
      if (new Set(names.map((nm) => weights.get(nm)!.dtype)).size <= 1) continue;
      for (const nm of names) if (weights.get(nm)!.dtype !== "f32") {
        demote(nm, "the weights computed together with it have other dtypes");
        changed = true;
      }
    }
  }
  if (opts.foldGains) {
    const folds = gainFolds(graph, (name) => weights.get(name)?.dtype !== "f32");
    for (const [name, scale] of folds.weights) weights.get(name)!.scale = scale;
  }
  return [...weights.values()];
}

/** The inputs [lo, hi) that `u` reads row by row: a linear's weights, a gather's table. */
function rowReads(u: Graph["nodes"][number]): [number, number] {
  if (u.op === "linear") return [1, 1 + (u.attrs["weights"] as number)];
  if (u.op === "gather") return [0, 1];
  if (u.op === "fused_linear") {
    const p = u.attrs["x_inputs"] as number;
    return [p, p + (u.attrs["weights"] as number)];
  }
  return [0, 0];
}

/**
 * Splits each matrix whose device bytes exceed `limit` (one binding) into row ranges of at most
 * that many bytes (`parts`), which the linear and gather kernels bind one by one. Only weights read
 * solely row by row (as linear weights and gather tables, not a graph output) can be split; parts
 * hold an even number of rows, so a rotated pair of outputs stays in one part. Others are left
 * whole, and refused for their size by the target.
 */
export function splitWeights(graph: Graph, weights: readonly DeviceWeight[], limit: number): void {
  const byId = nodeMap(graph);
  const wholeReads = new Set<string>();
  const nameOf = (id: number) => (byId.get(id)?.op === "weight" ? String(byId.get(id)!.attrs["name"]) : null);
  for (const id of graph.outputs) wholeReads.add(nameOf(id) ?? "");
  for (const u of graph.nodes) {
    const [lo, hi] = rowReads(u);
    u.inputs.forEach((id, i) => {
      const name = nameOf(id);
      if (name && (i < lo || i >= hi)) wholeReads.add(name);
    });
  }
  for (const w of weights) {
    if (w.layout.bytes <= limit || w.shape.length !== 2 || wholeReads.has(w.name)) continue;
    const [N, K] = w.shape as [number, number];
    const rows = rowsWithin(w.dtype, K, limit, 2);
    if (rows < 2) continue; // not even a pair of rows fits: refused whole
    w.parts = Array.from({ length: Math.ceil(N / rows) }, (_, j) => Math.min(rows, N - j * rows));
  }
}

/** Device bytes of `w`: of its one buffer, or of its parts together. */
export function deviceWeightSize(w: DeviceWeight): number {
  if (!w.parts) return w.layout.bytes;
  return w.parts.reduce((a, rows) => a + deviceLayout(w.dtype, [rows, w.shape[1]!]).bytes, 0);
}

/** The device bytes of each part of `w` (one whole part when it is not split). */
export function deviceWeightParts(w: DeviceWeight, all: readonly DeviceWeight[], source: WeightSource): Uint8Array[] {
  const bytes = deviceWeightBytes(w, all, source);
  if (!w.parts) return [bytes];
  let first = 0;
  return w.parts.map((rows) => {
    const part = deviceRows(w.dtype, w.shape as [number, number], bytes, first, rows);
    first += rows;
    return part;
  });
}

/** The weights that stay packed (not f32), by name: what the planner is told. */
export function packedWeights(weights: readonly DeviceWeight[]): Map<string, StorageDType> {
  return new Map(weights.filter((w) => w.dtype !== "f32").map((w) => [w.name, w.dtype]));
}

/** The bytes to upload for `w` (one of `all`, the program's weights): the file's bytes repacked, or
 *  f32 values (scaled by its folded gain) converted to its dtype. */
export function deviceWeightBytes(w: DeviceWeight, all: readonly DeviceWeight[], source: WeightSource): Uint8Array {
  const ready = w.scale ? undefined : source.device?.(w);
  if (ready) {
    if (ready.length !== w.layout.bytes) throw new Error(`weight '${w.name}' has ${ready.length} device bytes, expected ${w.layout.bytes}`);
    return ready;
  }
  const raw = w.dtype !== "f32" ? source.raw?.(w.name) : undefined;
  let value: StoredTensor;
  if (raw) value = raw;
  else {
    value = source(w.name, w.shape);
    const count = w.shape.reduce((a, b) => a * b, 1);
    if (value.length !== count) throw new Error(`weight '${w.name}' has ${value.length} values, expected ${count} for shape [${w.shape.join(", ")}]`);
    if (w.scale) {
      const shapeOf = (name: string) => all.find((x) => x.name === name)!.shape;
      value = scaleWeight(value, w.shape[w.shape.length - 1]!, w.scale, (v) => source(v, shapeOf(v)));
    }
  }
  return deviceBytes(w.dtype, w.shape, value);
}

/** Vocabulary sizes of the gathers indexed by the token ids: every id must be below each. */
export function tokenTables(graph: Graph): number[] {
  const nodes = nodeMap(graph);
  return graph.nodes
    .filter((n) => n.op === "gather" && nodes.get(n.inputs[1]!)?.op === "input" && nodes.get(n.inputs[1]!)?.attrs["name"] === "tokens")
    .map((n) => evalDim(nodes.get(n.inputs[0]!)!.ty.shape[0]!, new Map()));
}

/** For each dispatch: whether only `output` needs it, not the plan's first output (the logits). */
export function onlyForOutput(plan: StepPlan, output: number): boolean[] {
  const logits = ancestors(plan.graph, [plan.outputs[0]!]);
  const only = new Set([...ancestors(plan.graph, [plan.outputs[output]!])].filter((id) => !logits.has(id)));
  return plan.dispatches.map((d) => only.has(d.node));
}

/** The nodes `roots` are computed from, themselves included. */
function ancestors(graph: Graph, roots: number[]): Set<number> {
  const byId = nodeMap(graph);
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(byId.get(id)?.inputs ?? []));
  }
  return seen;
}

/**
 * Dispatches that only compute graph outputs (the final norm and LM head of logits, the greedy
 * token): a step whose outputs nobody reads, such as a prefill chunk before the last, skips them.
 * The rest feed an effect (the KV cache writes) and always run.
 */
export function onlyForOutputs(plan: StepPlan): boolean[] {
  const needed = ancestors(plan.graph, plan.graph.nodes.filter((n) => EFFECT_OPS.has(n.op)).map((n) => n.id));
  return plan.dispatches.map((d) => dispatchOutputs(d).every((id) => !needed.has(id)));
}

/** A packed weight is read only as a linear kernel's weight or a gather's table (else a kernel would
 *  read it as f32): an internal check of the plan against the weights' dtypes. */
export function checkPackedReads(plan: StepPlan): void {
  const packed = (id: number) => {
    const p = plan.placement.get(id);
    return p !== undefined && plan.buffers[p.buffer]?.format !== undefined;
  };
  for (const d of plan.dispatches) {
    const asWeight = new Set(d.kernel === "gather" ? [d.inputs[0]!] : (d.linear?.segments.flatMap((s) => s.weights) ?? []));
    const reads = d.linear ? [...d.linear.sources, ...d.linear.segments.flatMap((s) => [...s.weights, ...s.extras, ...(s.rotation?.inputs ?? [])])] : d.inputs;
    for (const id of reads) {
      if (packed(id) && !asWeight.has(id)) throw new TargetError(`internal: the ${d.kernel} dispatch #${d.index} reads packed weight %${id} as f32`);
    }
  }
}

// The compile report: what a model costs. Parameters, weight bytes, FLOPs per token for decode and
// prefill, bytes moved per decode token, KV-cache bytes per token and peak activation memory — all
// computed from the IR (so they describe what will run), at a stated context length.

import { evalDim } from "./base/symbolic.js";
import { opFlops } from "./ops/table.js";
import { LEAF_OPS, type Graph } from "./ir/graph.js";
import { concreteAttrs, concreteShape } from "./ir/concrete.js";
import { specialize } from "./passes/specialize.js";
import { usersOf } from "./ir/rewrite.js";

/** Storage bytes per element (block formats averaged over their block). */
export const BYTES_PER_ELEMENT: Record<string, number> = { f32: 4, f16: 2, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

export interface StepCost {
  tokens: number; // T
  past: number; // P
  flops: number;
  flops_per_token: number;
  peak_activation_bytes: number;
  /** Bytes read and written in the step: weights once, the KV cache, activations. */
  bytes: { weights: number; kv_read: number; kv_write: number; activations: number; total: number };
}

export interface CompileReport {
  model: string;
  params: number;
  weight_bytes: Record<string, number>; // if every weight were stored in this dtype
  kv_bytes_per_token: number; // f32 K and V, all layers
  literal_bytes: number;
  nodes: number;
  decode: StepCost;
  prefill: StepCost;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const elementBytes = (dtype: string) => (dtype === "bool" ? 1 : dtype === "f16" || dtype === "bf16" ? 2 : 4);

function stepCost(g: Graph, tokens: number, past: number): StepCost {
  const spec = specialize(g, { T: tokens });
  const env = new Map([["T", tokens], ["P", past]]);
  const shapes = new Map<number, number[]>();
  const lastUse = new Map<number, number>();
  spec.nodes.forEach((n, i) => n.inputs.forEach((x) => lastUse.set(x, i)));
  for (const o of spec.outputs) lastUse.set(o, spec.nodes.length);

  let flops = 0;
  let weights = 0;
  let kvRead = 0;
  let kvWrite = 0;
  let activations = 0;
  let live = 0;
  let peak = 0;
  const liveBytes = new Map<number, number>();
  const weightSeen = new Set<string>();
  const byId = new Map(spec.nodes.map((n) => [n.id, n]));
  const users = usersOf(spec);
  spec.nodes.forEach((n, i) => {
    const shape = n.ty.shape.map((d) => evalDim(d, env));
    shapes.set(n.id, shape);
    const bytes = size(shape) * elementBytes(n.ty.dtype);
    if (n.op === "weight") {
      // An embedding table is read one row per token (by its gathers), not whole.
      const name = n.attrs["name"] as string;
      const onlyGathered = (users.get(n.id) ?? []).every((u) => u.op === "gather" && u.inputs[0] === n.id);
      if (!weightSeen.has(name) && !onlyGathered) weights += bytes;
      weightSeen.add(name);
    } else if (n.op === "kv_append") {
      kvWrite += (bytes / (past + tokens)) * tokens;
    } else if (!LEAF_OPS.has(n.op)) {
      const ins = n.inputs.map((x) => shapes.get(x)!);
      flops += opFlops(n.op, ins, shape, concreteAttrs(n.op, n.attrs, env));
      if (n.op === "gather" && byId.get(n.inputs[0]!)!.op === "weight") weights += bytes;
      activations += bytes; // written once
      for (const x of n.inputs) {
        const src = byId.get(x)!;
        if (src.op === "kv_append") kvRead += size(shapes.get(x)!) * elementBytes(src.ty.dtype);
        else if (!LEAF_OPS.has(src.op)) activations += size(shapes.get(x)!) * elementBytes(src.ty.dtype);
      }
      liveBytes.set(n.id, bytes);
      live += bytes;
      peak = Math.max(peak, live);
    }
    // Free what this node was the last user of.
    for (const x of new Set(n.inputs)) {
      if (lastUse.get(x) === i && liveBytes.has(x)) {
        live -= liveBytes.get(x)!;
        liveBytes.delete(x);
      }
    }
  });
  const total = weights + kvRead + kvWrite + activations;
  return {
    tokens,
    past,
    flops,
    flops_per_token: Math.round(flops / tokens),
    peak_activation_bytes: peak,
    bytes: { weights, kv_read: Math.round(kvRead), kv_write: Math.round(kvWrite), activations, total: Math.round(total) },
  };
}

export interface ReportOptions {
  /** Past length for the decode figures. */
  context: number;
  /** Prompt length for the prefill figures. */
  promptTokens: number;
}

export function compileReport(g: Graph, params: number, opts: ReportOptions): CompileReport {
  const weightBytes: Record<string, number> = {};
  for (const [dt, b] of Object.entries(BYTES_PER_ELEMENT)) weightBytes[dt] = Math.round(params * b);
  let kvPerToken = 0;
  for (const s of g.states.values()) kvPerToken += s.layers * s.heads * s.headDim * 2 * 4;
  let literalBytes = 0;
  for (const d of g.literals.values()) literalBytes += d.byteLength;
  return {
    model: g.name,
    params,
    weight_bytes: weightBytes,
    kv_bytes_per_token: kvPerToken,
    literal_bytes: literalBytes,
    nodes: g.nodes.length,
    decode: stepCost(g, 1, opts.context),
    prefill: stepCost(g, opts.promptTokens, 0),
  };
}

const human = (n: number) => {
  const units = ["", "K", "M", "G", "T"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(2)}${units[i]}`;
};
const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;

export function formatReport(r: CompileReport): string {
  const l: string[] = [];
  l.push(`model: ${r.model}`);
  l.push(`parameters: ${r.params.toLocaleString("en-US")}`);
  l.push(`weight bytes: ${Object.entries(r.weight_bytes).map(([d, b]) => `${d} ${mib(b)}`).join(", ")}`);
  l.push(`KV cache: ${r.kv_bytes_per_token.toLocaleString("en-US")} bytes per token (f32)`);
  l.push(`IR nodes: ${r.nodes}${r.literal_bytes ? `, folded constants ${r.literal_bytes} bytes` : ""}`);
  for (const [name, s] of [["decode", r.decode], ["prefill", r.prefill]] as const) {
    l.push("");
    l.push(`${name} (T = ${s.tokens}, P = ${s.past}):`);
    l.push(`  FLOPs per token: ${human(s.flops_per_token)} (${s.flops_per_token.toLocaleString("en-US")})`);
    l.push(`  bytes moved per step: ${mib(s.bytes.total)} (weights ${mib(s.bytes.weights)}, KV read ${mib(s.bytes.kv_read)}, KV write ${mib(s.bytes.kv_write)}, activations ${mib(s.bytes.activations)}) at f32`);
    l.push(`  peak activation memory: ${mib(s.peak_activation_bytes)}`);
  }
  return l.join("\n") + "\n";
}

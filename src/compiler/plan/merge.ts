// Rule `merge` (documented with the fusion rules in passes/fuse.ts): independent linear kernels that
// read the same x through the same prologue run as one dispatch. Its workgroups are split into
// consecutive ranges, one per segment, each with its own weights, epilogue, rotation and output —
// the q, k and v projections of a layer become one kernel, and x (with its norm) is read by one
// dispatch instead of three. A segment joins only when everything it reads is ready where the
// merged dispatch runs (at its first segment), and while the kernel's storage buffers stay within
// the device's limit.

import { formatProgram } from "../ops/expr.js";
import type { Dispatch, LinearKernel } from "./plan.js";

export interface MergeContext {
  /** Index of the dispatch that writes a node's bytes (through views); -1 for inputs, weights
   *  and literals. */
  producer(id: number): number;
  /** The storage a node is bound as (nodes with one key share a binding). */
  bufferKey(id: number): string;
  /** Bindings a weight takes: its parts when split into row ranges, else 1. */
  partsOf?(id: number): number;
  /** The device's maxStorageBuffersPerShaderStage. */
  maxStorageBuffers: number;
}

/** Storage buffers a linear kernel binds: sources and weights as vectors (a weight split into row
 *  ranges once per part), epilogue and rotation inputs as scalars (one buffer may be bound both
 *  ways), outputs read-write. */
export function linearBindings(k: LinearKernel, key: (id: number) => string, partsOf: (id: number) => number = () => 1): number {
  const keys = new Set<string>();
  for (const s of k.sources) keys.add(`${key(s)}:v`);
  for (const seg of k.segments) {
    for (const w of seg.weights) for (let j = 0; j < partsOf(w); j++) keys.add(`${key(w)}:v${j || ""}`);
    for (const e of [...seg.extras, ...(seg.rotation?.inputs ?? [])]) if (key(e) !== "") keys.add(`${key(e)}:s`); // "": written into the kernel
    keys.add(`${key(seg.node)}:o`);
  }
  return keys.size;
}

const readsOf = (k: LinearKernel): number[] => [
  ...new Set([...k.sources, ...k.segments.flatMap((s) => [...s.weights, ...s.extras, ...(s.rotation?.inputs ?? [])])]),
];

export function mergeLinears(dispatches: readonly Dispatch[], ctx: MergeContext): Dispatch[] {
  const taken = new Set<number>();
  const out: Dispatch[] = [];
  dispatches.forEach((d, i) => {
    if (taken.has(i)) return;
    if (!d.linear || d.parts) return void out.push(d); // a range of a split weight's parts runs alone
    const prologue = formatProgram(d.linear.prologue);
    let merged: LinearKernel = d.linear;
    for (let j = i + 1; j < dispatches.length; j++) {
      const e = dispatches[j]!;
      if (taken.has(j) || !e.linear || e.parts) continue;
      if (e.linear.sources.length !== merged.sources.length || e.linear.sources.some((s, k) => s !== merged.sources[k])) continue;
      if (formatProgram(e.linear.prologue) !== prologue) continue;
      if (!readsOf(e.linear).every((id) => ctx.producer(id) < i)) continue;
      const candidate: LinearKernel = { ...merged, segments: [...merged.segments, ...e.linear.segments] };
      if (linearBindings(candidate, ctx.bufferKey, ctx.partsOf) > ctx.maxStorageBuffers) continue;
      merged = candidate;
      taken.add(j);
    }
    if (merged === d.linear) return void out.push(d);
    const { program: _p, weights: _w, ...rest } = d;
    out.push({ ...rest, kernel: "fused_linear", inputs: readsOf(merged), linear: merged });
  });
  return out.map((d, index) => ({ ...d, index }));
}

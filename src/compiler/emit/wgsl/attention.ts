// The model-specific kernels: attention over the KV cache and appending to it (rotary embedding is
// a per-element kernel: emit/wgsl/layout.ts). The cache length S = P + T is read from the per-step
// parameters, so one pipeline serves every decode step.
//
//   prefill  one (query, head) row per invocation, an online softmax over its visible keys.
//   decode   few queries (T ≤ attention.decodeMaxQueries): a workgroup per row whose lanes split
//            the keys and combine in workgroup memory, so a long past is read by many lanes at once
//            instead of one invocation per head walking it alone.

import { constDim, mulDim, type Dim } from "../../base/symbolic.js";
import { attentionMasking, renderScoreModifier } from "../shared/attention.js";
import type { DispatchContext } from "./context.js";
import { constOf, plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { f32Literal, wgsl } from "./lang.js";
import type { WgslTuning } from "./tuning.js";

/** `dot` for scalar rows, so the templates read the same in both widths. */
export const DOT1 = "fn dot1(a: f32, b: f32) -> f32 { return a * b; }";

/** What the attention templates (forward and gradient) know of the heads: query and kv heads, the
 *  group that shares a kv head, head_dim, and rows read `vec` floats at a time (dv of them). */
export function headShape(hq: number, hkv: number, dim: number, vec: number) {
  return { hq, hkv, group: hq / hkv, dim, dv: dim / vec, vec, vt: vec === 4 ? "vec4<f32>" : "f32", dot: vec === 4 ? "dot" : "dot1" };
}

/** Workgroup memory every adapter grants (WebGPU's minimum maxComputeWorkgroupStorageSize). */
const WORKGROUP_STORAGE_BYTES = 16384;

export function emitAttention(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const n = ctx.outputNode;
  const [q, k, v] = d.inputs as [number, number, number];
  // The queries may depend on P too (queries over the cache): rows up to the largest P, bounded.
  const [T, HQ, D] = [ctx.dims(q)[0]!, ...ctx.dims(q).slice(1).map((d) => ctx.constant(d))] as [Dim, number, number];
  const kTy = ctx.node(k).ty.shape;
  const HKV = constOf(kTy[1]!)!;
  const vShape = ctx.node(v).ty.shape;
  if (constOf(vShape[2]!) !== D) throw new Error(`${ctx.label()}: attention with a value head_dim different from the key head_dim is not supported by the WGSL backend`);
  const [qp, kp, vp] = [ctx.placement(q), ctx.placement(k), ctx.placement(v)];
  const op = ctx.placement(d.node);
  const vec = D % 4 === 0 && [qp, kp, vp, op].every((p) => p.offset % 4 === 0) ? 4 : 1;
  const vt = vec === 4 ? "vec4<f32>" : "f32";
  const b = new BindingSet(ctx);
  const qb = b.storage(qp, "read", vt);
  const kb = b.storage(kp, "read", vt);
  const vb = b.storage(vp, "read", vt);
  const out = b.storage(op, "write", vt);
  const sExpr = b.dim(kTy[0]!);
  const masking = attentionMasking(n.attrs, D, f32Literal);
  const rows = b.extent(mulDim(T, constDim(HQ)));
  const tFixed = constOf(T);
  // Lanes per row for decode: a power of two whose partial outputs fit in workgroup memory.
  let lanes = tuning.attention.decodeLanes;
  while (lanes > 1 && lanes * (D + 2) * 4 > WORKGROUP_STORAGE_BYTES) lanes /= 2;
  // Packed training sequences (segment) only come with a whole step's queries: the prefill path.
  const decode = tFixed !== null && tFixed <= tuning.attention.decodeMaxQueries && lanes > 1 && masking.segment === 0;
  const g = decode ? grid(rows.max * lanes, lanes) : grid(rows.max, tuning.attention.workgroupSize);
  const modifier = renderScoreModifier(n.attrs, wgsl, { score: "s", qPos: "f32(pos)", kPos: "f32(js)", head: "f32(h)" });
  const code = renderTemplate(decode ? "attention_decode" : "attention", {
    ...headerContext("attention", b, [...(vec === 4 ? [] : [DOT1]), ...(modifier?.helpers ?? [])]),
    modifier,
    t: b.dim(T),
    ...headShape(HQ, HKV, D, vec),
    sExpr,
    ...masking,
    rowCount: rows.code,
    q: qb,
    k: kb,
    v: vb,
    out,
    qOffset: plus(qp.offset / vec),
    kOffset: plus(kp.offset / vec),
    vOffset: plus(vp.offset / vec),
    outOffset: plus(op.offset / vec),
    workgroupSize: tuning.attention.workgroupSize,
    rowStride: g.rowStride,
    lanes,
    accLen: lanes * (D / vec),
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

export function emitKvAppend(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const [T, H, D] = ctx.shape(x) as [number, number, number];
  const row = H * D;
  const xp = ctx.placement(x);
  const cp = ctx.placement(d.node);
  const vec = row % 4 === 0 && xp.offset % 4 === 0 && cp.offset % 4 === 0 ? 4 : 1;
  const elem = vec === 4 ? "vec4<f32>" : "f32";
  const b = new BindingSet(ctx);
  const xb = b.storage(xp, "read", elem);
  const cache = b.storage(cp, "write", elem);
  const past = b.past();
  const count = (T * row) / vec;
  const g = grid(count, tuning.workgroupSize);
  const code = renderTemplate("kv_append", {
    ...headerContext("kv_append", b),
    t: T,
    vec,
    row: row / vec,
    count,
    x: xb,
    cache,
    past,
    xOffset: plus(xp.offset / vec),
    cacheOffset: plus(cp.offset / vec),
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

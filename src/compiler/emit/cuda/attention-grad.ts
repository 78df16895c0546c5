// The attention's backward kernels (training): attention_lse, attention_dq, attention_dk and
// attention_dv (ops/table.ts), each recomputing the probabilities it needs from q, k and the rows'
// log-sum-exp instead of reading a stored [T, S] matrix.
//
//   lse, dq  a warp per (query, head) row: lanes score the row's visible keys 32 at a time, then
//            (dq) take turns broadcasting each key's dS while every lane accumulates its dims of dS·k.
//   dk, dv   a warp per (key, kv head) row: the same over the query heads of the kv head's group and
//            the queries that see the key (a range, from causal, window and segment), accumulating
//            dS·q or p·dO.
//
// GQA: query head h reads kv head h / (Hq / Hkv), as in the reference. Everything is f32.

import { attentionMasking } from "../shared/attention.js";
import type { DispatchContext } from "./context.js";
import type { Emitted } from "./elementwise.js";
import { checkIndexRange, makeKernel, ParamSet } from "./kernel.js";
import { f32Literal } from "./lang.js";

/** Rows (one a warp) per block: rows are independent, so a small block keeps short problems spread. */
const WARPS = 4;
/** A lane accumulates ceil(width / 32) dims in registers: wider heads would spill. */
const MAX_HEAD_DIM = 512;

export function emitAttentionGrad(ctx: DispatchContext): Emitted {
  const n = ctx.outputNode;
  const ins = ctx.dispatch.inputs;
  const [q, k] = ins as [number, number];
  const dO = n.op === "attention_dv" ? ins[2]! : ins[4];
  const [tDim, hqDim, dDim] = ctx.dims(q);
  const [sDim, hkvDim] = ctx.dims(k);
  const HQ = ctx.constant(hqDim!);
  const HKV = ctx.constant(hkvDim!);
  const D = ctx.constant(dDim!);
  const E = dO === undefined ? D : ctx.constant(ctx.dims(dO)[2]!);
  for (const id of [...ins, n.id]) {
    if (ctx.node(id).ty.dtype !== "f32") throw new Error(`${ctx.label()}: the CUDA attention gradient kernels take f32 tensors, got ${ctx.node(id).ty.dtype} %${id}`);
  }
  if (Math.max(D, E) > MAX_HEAD_DIM) throw new Error(`${ctx.label()}: head_dim ${Math.max(D, E)} is larger than the CUDA attention gradient kernels take (${MAX_HEAD_DIM})`);
  const T = ctx.atMax(tDim!);
  const S = ctx.atMax(sDim!);
  checkIndexRange(Math.max(T * HQ, S * HKV) * Math.max(D, E), ctx.label());
  const masking = attentionMasking(n.attrs, D, f32Literal);

  const params = new ParamSet(ctx);
  const ptr = (id: number, access: "read" | "write") => {
    const g = ctx.arg(id);
    return params.buffer(g.buffer, g.offsetBytes, "float", access);
  };
  const buffers: Record<string, string> = { q: ptr(q, "read"), k: ptr(k, "read") };
  const names = n.op === "attention_lse" ? [] : n.op === "attention_dv" ? ["dO", "lse"] : ["v", "o", "dO", "lse"];
  names.forEach((name, i) => (buffers[name] = ptr(ins[2 + i]!, "read")));
  const out = ptr(n.id, "write");
  // An output row is as wide as what it differentiates: v's rows have E, q's and k's D.
  const width = n.op === "attention_dv" ? E : D;
  const common = {
    op: n.op, t: params.dim(tDim!), s: params.dim(sDim!), hq: HQ, hkv: HKV, group: HQ / HKV, dim: D, vdim: E,
    ...masking,
    warps: WARPS, block: WARPS * 32, perLane: Math.ceil(width / 32), width, out,
    q: buffers["q"], k: buffers["k"], v: buffers["v"] ?? "", o: buffers["o"] ?? "", dO: buffers["dO"] ?? "", lse: buffers["lse"] ?? "",
    noKeys: f32Literal(3e38),
  };
  const perQuery = n.op === "attention_lse" || n.op === "attention_dq";
  const kernel = perQuery
    ? makeKernel("attention_grad", "attention_grad_queries", params, [], { ...common, lseOnly: n.op === "attention_lse" })
    : makeKernel("attention_grad", "attention_grad_keys", params, [], { ...common, dk: n.op === "attention_dk" });
  const rows = perQuery ? T * HQ : S * HKV;
  return {
    kernels: [kernel],
    launches: [{ kernel: kernel.name, grid: [Math.max(1, Math.ceil(rows / WARPS)), 1, 1], block: [WARPS * 32, 1, 1], args: params.args, dispatch: ctx.dispatch.index }],
  };
}

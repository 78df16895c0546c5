// The attention's backward kernels (training): attention_lse, attention_dq, attention_dk and
// attention_dv (ops/table.ts), each recomputing the probabilities it needs from q, k and the rows'
// log-sum-exp instead of reading a stored [T, S] matrix. Laid out as the prefill attention
// (emit/wgsl/attention.ts), one row per invocation:
//
//   lse, dq  a (query, head) row: its visible keys, an online log-sum-exp (lse) or Σ dS·k (dq).
//   dk, dv   a (key, kv head) row: the query heads of the kv head's group and the queries that see
//            the key (a range, from causal, window and segment), accumulating dS·q (dk) or p·dO (dv).
//
// GQA: query head h reads kv head h / (Hq / Hkv), as in the reference. Everything is f32.

import { constDim, mulDim, type Dim } from "../../base/symbolic.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { attentionMasking } from "../shared/attention.js";
import { DOT1, headShape } from "./attention.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { f32Literal } from "./lang.js";
import type { WgslTuning } from "./tuning.js";

/** The inputs each op reads besides q and k, in the order of its node's inputs. */
const EXTRA_INPUTS: Record<string, readonly string[]> = {
  attention_lse: [],
  attention_dq: ["v", "o", "dO", "lse"],
  attention_dk: ["v", "o", "dO", "lse"],
  attention_dv: ["dO", "lse"],
};

export function emitAttentionGrad(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const n = ctx.outputNode;
  const extra = EXTRA_INPUTS[n.op];
  if (!extra) throw new Error(`internal: ${ctx.label()}: ${n.op} is not an attention gradient op`);
  const ins = ctx.dispatch.inputs;
  const ids: Record<string, number> = { q: ins[0]!, k: ins[1]! };
  extra.forEach((name, i) => (ids[name] = ins[2 + i]!));
  for (const id of [...ins, n.id]) {
    if (ctx.node(id).ty.dtype !== "f32") throw new Error(`${ctx.label()}: the WGSL attention gradient kernels take f32 tensors, got ${ctx.node(id).ty.dtype} %${id}`);
  }
  const [tDim, hqDim, dDim] = ctx.dims(ids["q"]!) as [Dim, Dim, Dim];
  const [sDim, hkvDim] = ctx.dims(ids["k"]!) as [Dim, Dim];
  const [HQ, HKV, D] = [ctx.constant(hqDim), ctx.constant(hkvDim), ctx.constant(dDim)];
  const dO = ids["dO"];
  if (dO !== undefined && ctx.constant(ctx.dims(dO)[2]!) !== D) {
    throw new Error(`${ctx.label()}: attention gradients with a value head_dim different from the key head_dim are not supported by the WGSL backend`);
  }

  // lse (read, or written by attention_lse) is one value a row; the rest are rows of D, read as vec4
  // where aligned.
  const lseOnly = n.op === "attention_lse";
  const rowTensors = [...Object.entries(ids).filter(([name]) => name !== "lse").map(([, id]) => id), ...(lseOnly ? [] : [n.id])];
  const vec = D % 4 === 0 && rowTensors.every((id) => ctx.placement(id).offset % 4 === 0) ? 4 : 1;
  const vt = vec === 4 ? "vec4<f32>" : "f32";
  const b = new BindingSet(ctx);
  // Each input as its binding (qBuf) and the start of its rows there (qOffset).
  const inputs: Record<string, string> = {};
  for (const [name, id] of Object.entries(ids)) {
    const p = ctx.placement(id);
    const width = name === "lse" ? 1 : vec;
    inputs[`${name}Buf`] = b.storage(p, "read", width === 1 ? "f32" : vt);
    inputs[`${name}Offset`] = plus(p.offset / width);
  }
  const op = ctx.placement(n.id);
  const out = b.storage(op, "write", lseOnly ? "f32" : vt);

  const perQuery = lseOnly || n.op === "attention_dq";
  const rows = b.extent(perQuery ? mulDim(tDim, constDim(HQ)) : mulDim(sDim, constDim(HKV)));
  const g = grid(rows.max, tuning.attention.workgroupSize);
  const code = renderTemplate(perQuery ? "attention_grad_queries" : "attention_grad_keys", {
    ...headerContext("attention_grad", b, vec === 4 ? [] : [DOT1]),
    op: n.op,
    lseOnly,
    dk: n.op === "attention_dk",
    t: b.dim(tDim),
    sExpr: b.dim(sDim),
    ...headShape(HQ, HKV, D, vec),
    ...attentionMasking(n.attrs, D, f32Literal),
    noKeys: f32Literal(3e38),
    rowCount: rows.code,
    workgroupSize: tuning.attention.workgroupSize,
    rowStride: g.rowStride,
    ...inputs,
    out,
    outOffset: plus(op.offset / (lseOnly ? 1 : vec)),
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

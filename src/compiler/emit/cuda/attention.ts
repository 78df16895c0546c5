// Attention over the KV cache. The cache length S = P + T is read from the step parameters, so one
// kernel (and one captured CUDA graph) serves every decode step.
//
//   decode   few queries (T ≤ attention.decodeMaxQueries): flash-decoding — the visible keys of each
//            (query, head) are split across blocks, each block's warps run an online softmax over
//            their keys, and a second kernel combines the splits. Long pasts keep every SM busy.
//   prefill  a block per (tile of queries, head) walks the keys its queries can see through shared
//            memory; causal blocks stop at their last query, sliding windows start late.
//
// GQA: query head h reads kv head h / (Hq / Hkv), as in the reference.

import { attentionMasking, renderScoreModifier, type ScoreModifier } from "../shared/attention.js";
import type { DispatchContext } from "./context.js";
import { constOf, dimExpr } from "./context.js";
import type { Emitted } from "./elementwise.js";
import { makeKernel, ParamSet } from "./kernel.js";
import { cudaLang, f32Literal } from "./lang.js";

const SHARED_LIMIT = 48 * 1024;
const KEYS_PER_SPLIT = 16;

interface AttentionParts {
  /** Queries: at most T (at the largest P), `tExpr` in the step (queries over the cache depend on P). */
  T: number;
  tExpr: string;
  tFixed: boolean;
  HQ: number;
  HKV: number;
  D: number;
  sExpr: string;
  causal: boolean;
  window: number;
  /** Packed training sequences of this many positions (0: one sequence); prefill only. */
  segment: number;
  scale: string;
  /** The score and mask programs rendered into the loop over keys (null: none). */
  modifier: ScoreModifier | null;
}

function parts(ctx: DispatchContext): AttentionParts {
  const n = ctx.outputNode;
  const [q, k, v] = ctx.dispatch.inputs as [number, number, number];
  const [tDim, ...rest] = ctx.dims(q);
  const [HQ, D] = rest.map((d) => ctx.constant(d)) as [number, number];
  const T = ctx.atMax(tDim!);
  const kTy = ctx.node(k).ty.shape;
  const HKV = constOf(kTy[1]!)!;
  if (constOf(ctx.node(v).ty.shape[2]!) !== D) throw new Error(`${ctx.label()}: attention with a value head_dim different from the key head_dim is not supported by the CUDA backend`);
  if (D > 512) throw new Error(`${ctx.label()}: head_dim ${D} is larger than the CUDA attention kernels take (512)`);
  const modifier = renderScoreModifier(n.attrs, cudaLang(), { score: "s", qPos: "(float)pos", kPos: "(float)j", head: "(float)h" });
  return { T, tExpr: dimExpr(tDim!), tFixed: constOf(tDim!) !== null, HQ, HKV, D, sExpr: dimExpr(kTy[0]!), ...attentionMasking(n.attrs, D, f32Literal), modifier };
}

export function emitAttention(ctx: DispatchContext): Emitted {
  const a = parts(ctx);
  return a.tFixed && a.T <= ctx.tuning.attention.decodeMaxQueries && a.segment === 0 ? decode(ctx, a) : prefill(ctx, a);
}

function decode(ctx: DispatchContext, a: AttentionParts): Emitted {
  const t = ctx.tuning.attention;
  const { T, HQ, HKV, D } = a;
  const [q, k, v] = ctx.dispatch.inputs as [number, number, number];
  // Enough splits to spread the longest past over the GPU, each with a few warps' worth of keys.
  const maxS = constOf(ctx.node(k).ty.shape[0]!) ?? ctx.env.plan.maxSeqLen;
  const splits = Math.max(1, Math.min(t.decodeSplits, Math.ceil(maxS / KEYS_PER_SPLIT)));
  const partStride = D + 2;
  const rows = T * HQ;
  const scratch = ctx.env.scratch(rows * splits * partStride * 4);

  const params = new ParamSet(ctx);
  const ptr = (id: number, access: "read" | "write") => {
    const g = ctx.arg(id);
    return params.buffer(g.buffer, g.offsetBytes, "float", access);
  };
  const qb = ptr(q, "read");
  const kb = ptr(k, "read");
  const vb = ptr(v, "read");
  const partials = params.buffer(scratch.buffer, scratch.offsetBytes, "float", "write");
  params.past(); // the templates read P (S = P + T)
  // Lanes hold 4 consecutive dims per float4 when whole warps of float4 cover the head; else dim e on
  // lane e % 32.
  const kvAligned = [k, v].every((id) => ctx.arg(id).offsetBytes % 16 === 0);
  const vec = D % 128 === 0 && kvAligned ? 4 : 1;
  const perLane = vec === 4 ? D / 32 : Math.ceil(D / 32);
  const qLoad: string[] = [];
  const dot: string[] = [];
  const accumulate: string[] = [];
  const share: string[] = [];
  const qo = `(t * ${HQ} + h) * ${D}`;
  if (vec === 4) {
    for (let i = 0; i < D / 128; i++) {
      for (let c = 0; c < 4; c++) {
        qLoad.push(`q[${4 * i + c}] = ${qb}[${qo} + (lane + ${32 * i}) * 4 + ${c}] * ${a.scale};`);
        qLoad.push(`acc[${4 * i + c}] = 0.0f;`);
      }
      dot.push(`{ const float4 kk = reinterpret_cast<const float4*>(kr)[lane + ${32 * i}]; s += q[${4 * i}] * kk.x + q[${4 * i + 1}] * kk.y + q[${4 * i + 2}] * kk.z + q[${4 * i + 3}] * kk.w; }`);
      accumulate.push(`{ const float4 vv = reinterpret_cast<const float4*>(vr)[lane + ${32 * i}]; acc[${4 * i}] = acc[${4 * i}] * c + p * vv.x; acc[${4 * i + 1}] = acc[${4 * i + 1}] * c + p * vv.y; acc[${4 * i + 2}] = acc[${4 * i + 2}] * c + p * vv.z; acc[${4 * i + 3}] = acc[${4 * i + 3}] * c + p * vv.w; }`);
      for (let c = 0; c < 4; c++) share.push(`sm_acc[warp][(lane + ${32 * i}) * 4 + ${c}] = acc[${4 * i + c}];`);
    }
  } else {
    for (let i = 0; i < perLane; i++) {
      const e = `lane + ${32 * i}`;
      const guard = (s: string) => ((i + 1) * 32 <= D ? s : `if (${e} < ${D}) { ${s} }`);
      qLoad.push(`q[${i}] = 0.0f;`, `acc[${i}] = 0.0f;`);
      qLoad.push(guard(`q[${i}] = ${qb}[${qo} + ${e}] * ${a.scale};`));
      dot.push(guard(`s += q[${i}] * kr[${e}];`));
      accumulate.push(guard(`acc[${i}] = acc[${i}] * c + p * vr[${e}];`));
      share.push(guard(`sm_acc[warp][${e}] = acc[${i}];`));
    }
  }
  const block = t.decodeWarps * 32;
  const main = makeKernel("attention", "attention_decode", params, a.modifier?.helpers ?? [], {
    t: T, single: T === 1, hq: HQ, hkv: HKV, group: HQ / HKV, dim: D, perLane, warps: t.decodeWarps, block,
    sExpr: a.sExpr, causal: a.causal, window: a.window, splits, partStride, modifier: a.modifier,
    q: qb, k: kb, v: vb, partials, qLoad, dot, accumulate, share,
  });

  const cparams = new ParamSet(ctx);
  const cpart = cparams.buffer(scratch.buffer, scratch.offsetBytes, "float", "read");
  const o = ctx.arg(ctx.dispatch.node);
  const out = cparams.buffer(o.buffer, o.offsetBytes, "float", "write");
  const cblock = Math.min(256, Math.max(32, Math.ceil(D / 32) * 32));
  const combine = makeKernel("attention", "attention_combine", cparams, [], { rows, dim: D, splits, partStride, partials: cpart, out, block: cblock });
  return {
    kernels: [main, combine],
    launches: [
      { kernel: main.name, grid: [rows, splits, 1], block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index },
      { kernel: combine.name, grid: [rows, 1, 1], block: [cblock, 1, 1], args: cparams.args, dispatch: ctx.dispatch.index },
    ],
  };
}

function prefill(ctx: DispatchContext, a: AttentionParts): Emitted {
  const t = ctx.tuning.attention;
  const { T, HQ, HKV, D } = a;
  const [q, k, v] = ctx.dispatch.inputs as [number, number, number];
  const warps = t.prefillWarps;
  let qpw = t.prefillQueriesPerWarp;
  let bk = 32;
  const smem = () => (warps * qpw * D + bk * (2 * D + 1)) * 4;
  while (smem() > SHARED_LIMIT && bk > 8) bk /= 2;
  while (smem() > SHARED_LIMIT && qpw > 1) qpw--;
  if (smem() > SHARED_LIMIT) throw new Error(`${ctx.label()}: head_dim ${D} does not fit the prefill attention kernel's shared memory`);
  const bq = warps * qpw;
  const perLane = Math.ceil(D / 32);
  const params = new ParamSet(ctx);
  const ptr = (id: number, access: "read" | "write") => {
    const g = ctx.arg(id);
    return params.buffer(g.buffer, g.offsetBytes, "float", access);
  };
  const qb = ptr(q, "read");
  const kb = ptr(k, "read");
  const vb = ptr(v, "read");
  const out = ptr(ctx.dispatch.node, "write");
  params.past(); // the templates read P (S = P + T)
  const accumulate: string[] = [];
  const store: string[] = [];
  for (let i = 0; i < perLane; i++) {
    const e = `lane + ${32 * i}`;
    const full = (i + 1) * 32 <= D;
    accumulate.push(full ? `acc[qq][${i}] += pj * vs[jj][${e}];` : `if (${e} < ${D}) acc[qq][${i}] += pj * vs[jj][${e}];`);
    const st = `${out}[(t * ${HQ} + h) * ${D} + ${e}] = acc[qq][${i}] * inv;`;
    store.push(full ? st : `if (${e} < ${D}) ${st}`);
  }
  const block = warps * 32;
  const kernel = makeKernel("attention", "attention_prefill", params, a.modifier?.helpers ?? [], {
    t: a.tExpr, hq: HQ, hkv: HKV, group: HQ / HKV, dim: D, perLane, warps, qpw, bq, bk, block,
    sExpr: a.sExpr, causal: a.causal, window: a.window, segment: a.segment, scale: a.scale, modifier: a.modifier,
    q: qb, k: kb, v: vb, accumulate, store,
  });
  return {
    kernels: [kernel],
    launches: [{ kernel: kernel.name, grid: [Math.max(1, Math.ceil(T / bq)), HQ, 1], block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }],
  };
}

// Matrix products. `linear` is the hot path of every layer: x [.., M, K] times weights W [N, K]
// (PyTorch/GGUF layout, so each output reads one contiguous weight row), several weights at once
// (gate and up), then an epilogue program (bias, activation, residual). Decode (M = 1) is a
// matrix-vector product: each invocation computes `rowsPerInvocation` outputs with vec4 loads.
// Prefill tiles M as well, in registers (no workgroup barriers, which CPU adapters pay dearly for).
//
// `fused_linear` is the same kernel with what fusion and the plan add around it:
//   prologue  x is a row program of its sources that factors as s(row) × e(sources) (RMSNorm):
//             the loop over k accumulates W·e and the reductions s needs from the same loads, and
//             the accumulators are scaled by s before the epilogue;
//   rotation  adjacent output pairs of each head are rotated by (cos, sin) computed from the
//             rotation program (RoPE): an invocation owns an even number of adjacent rows;
//   segments  several linears over one x in one dispatch, consecutive tile ranges each;
//   in place  an output may be KV-cache rows at position P (params.past).
// Weights may be stored packed (f16/bf16 pairs, q8_0/q4_0 blocks; emit/wgsl/packed.ts): their loads
// dequantize to the same f32 vec4 (or scalar) the loop multiplies by x.
// x may have rows that depend on P (a linear over the KV cache): tiles cover its rows at the
// largest P and stores stop at the step's rows. (`matmul`, the general batched product, is a
// per-element kernel: emit/wgsl/layout.ts.)

import { constDim, divDimExact, type Dim } from "../../base/symbolic.js";
import type { LinearSegment } from "../../plan/plan.js";
import { constOf } from "../shared/context.js";
import { helpersFor } from "../shared/expr.js";
import { offsetExpr } from "../shared/indexing.js";
import { linearOf, linearX, programBlock, prologueElement, reductionStart, rowScale, segmentOutput } from "../shared/linear.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { loadAs, storageType, u32Literal, vec4Renderable, wgsl, wgslVec4 } from "./lang.js";
import { packedReader } from "./packed.js";
import type { WgslTuning } from "./tuning.js";

const COMPONENTS = ["x", "y", "z", "w"];
const u = u32Literal;

export function emitLinear(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const k = linearOf(ctx.dispatch);
  const x = linearX(ctx, k);
  const { M, K, rowShape, identity, factoring } = x;
  const sourceTypes = x.sources.map((s) => s.type);
  const sources = x.sources.map((s) => ({ ...s, p: ctx.placement(s.id) }));
  const allWeights = k.segments.flatMap((s) => s.weights.map((id) => ctx.placement(id)));
  const vec =
    K % 4 === 0 &&
    sourceTypes.every((t) => t === "f32") &&
    sources.every((s) => s.along === 0 || (s.along === 1 && s.p.offset % 4 === 0 && s.rowStrides.every((r) => divDimExact(r, 4) !== null))) &&
    allWeights.every((p) => p.offset % 4 === 0)
      ? 4
      : 1;
  const elem = vec === 4 ? "vec4<f32>" : "f32";
  const kSteps = K / vec;
  const C = M > 1 ? Math.max(1, Math.min(tuning.linear.tileM, M)) : 1;
  const mTiles = Math.ceil(M / C);

  const b = new BindingSet(ctx);
  const helpers = new Set<string>();
  const sourceNames = sources.map((s, i) => b.storage(s.p, "read", s.along === 1 ? elem : storageType(sourceTypes[i]!)));

  // Per x row c: each source's row base, the loads at step k, the prologue, the reductions.
  const rowSetup: string[] = [];
  const loads: string[] = [];
  const after: string[] = [];
  for (let c = 0; c < C; c++) {
    rowSetup.push(`let mr${c} = min(m0 + ${c}u, ${u(Math.max(0, M - 1))});`);
    sources.forEach((s, i) => {
      const scale = s.along === 1 ? vec : 1;
      rowSetup.push(`let sb${i}_${c} = ${offsetExpr(`mr${c}`, rowShape, s.rowStrides.map((r) => divDimExact(r, scale)!), b.dim, constDim(s.p.offset / scale))};`);
      loads.push(`let s${i}_${c} = ${s.along === 1 ? `${sourceNames[i]}[sb${i}_${c} + k]` : loadAs(sourceTypes[i]!, `${sourceNames[i]}[sb${i}_${c}]`)};`);
    });
    if (identity) {
      loads.push(`let x${c} = s0_${c};`);
      continue;
    }
    const f = factoring!;
    const red = (j: number) => `red${j}_${c}`;
    loads.push(`var x${c}: ${elem};`);
    if (vec === 4 && [f.elementwise, ...f.reductions.map((r) => r.arg)].every(vec4Renderable)) {
      // All four lanes at once; each reduction keeps four partial results until the loop ends.
      const at = (i: number) => (sources[i]!.along === 1 ? `s${i}_${c}` : `vec4<f32>(s${i}_${c})`);
      const types = sources.map(() => "f32" as const);
      loads.push(...programBlock(wgslVec4, f.elementwise, at, types, ([v]) => [`x${c} = ${v};`], helpers));
      f.reductions.forEach((rd, j) => {
        const start = reductionStart(wgsl, rd.op);
        rowSetup.push(`var rv${j}_${c}: vec4<f32> = vec4<f32>(${start});`);
        loads.push(...programBlock(wgslVec4, rd.arg, at, types, ([v]) => [wgsl.reduceStep(rd.op, `rv${j}_${c}`, v!, "f32")], helpers));
        after.push(`var ${red(j)}: f32 = ${start};`);
        for (const comp of COMPONENTS) after.push(wgsl.reduceStep(rd.op, red(j), `rv${j}_${c}.${comp}`, "f32"));
      });
    } else {
      f.reductions.forEach((rd, j) => rowSetup.push(`var ${red(j)}: f32 = ${reductionStart(wgsl, rd.op)};`));
      for (const comp of vec === 4 ? COMPONENTS : [""]) {
        const at = (i: number) => (sources[i]!.along === 1 && comp ? `s${i}_${c}.${comp}` : `s${i}_${c}`);
        loads.push(...prologueElement(wgsl, x, at, comp ? `x${c}.${comp}` : `x${c}`, red, helpers));
      }
    }
    after.push(...rowScale(wgsl, x, red, `sc${c}`, helpers));
  }

  let tileStart = 0;
  const segments = k.segments.map((seg, si) => {
    const code = emitSegment(ctx, tuning, b, helpers, seg, si, { M, rows: x.rows, C, vec, elem, kSteps, rowShape, scaled: !identity });
    const range = { start: tileStart, end: tileStart + code.nTiles * mTiles };
    tileStart = range.end;
    return { ...code, index: si, start: range.start, end: range.end };
  });
  const total = tileStart;
  // Helpers the generated lines call outside rendered programs (amax's −∞ start, for one).
  const lines = [...rowSetup, ...loads, ...after, ...segments.flatMap((sg) => [...sg.declare, ...sg.blockStart, ...sg.loop, ...sg.blockEnd, ...sg.store])].join("\n");
  for (const h of helpersFor(lines, wgsl)) helpers.add(h);
  const g = grid(total, tuning.linear.workgroupSize);
  const code = renderTemplate("linear", {
    ...headerContext(ctx.dispatch.kernel, b, [...helpers]),
    m: b.dim(x.rows),
    k: K,
    vec,
    cols: C,
    total,
    kSteps,
    workgroupSize: tuning.linear.workgroupSize,
    rowStride: g.rowStride,
    rowSetup,
    loads,
    after,
    segments: segments.map((s) => ({ ...s, offset: s.start === 0 ? "tile" : `tile - ${u(s.start)}` })),
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

interface Shared {
  M: number;
  rows: Dim;
  C: number;
  vec: number;
  elem: string;
  kSteps: number;
  rowShape: Dim[];
  /** Whether the accumulators are multiplied by the prologue's row scale sc<c>. */
  scaled: boolean;
}

/** One segment: its weights' accumulators inside the k loop; the epilogue, rotation and stores are
 *  shared (segmentOutput). */
function emitSegment(ctx: DispatchContext, tuning: WgslTuning, b: BindingSet, helpers: Set<string>, seg: LinearSegment, si: number, sh: Shared) {
  const { M, C, vec, elem, kSteps, rowShape } = sh;
  const w = seg.weights.length;
  const N = ctx.shape(seg.weights[0]!)[0]!;
  const rot = seg.rotation;
  let R = Math.max(1, Math.min(tuning.linear.rowsPerInvocation, N));
  if (rot) R = Math.min(N, R + (R % 2)); // pairs stay in one invocation (N is a multiple of 2)
  const nTiles = Math.ceil(N / R);
  const p = `g${si}_`; // this segment's names

  const wps = seg.weights.map((id) => ctx.placement(id));
  // Packed weights (emit/wgsl/packed.ts) are array<u32> read through their format's dequantizing load.
  const readers = wps.map((pl) => {
    const format = ctx.plan.buffers[pl.buffer]?.format;
    if (!format || format === "f32") return null;
    if (pl.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed weight must start its buffer`);
    return packedReader(format, b.storage(pl, "read", "u32"), N, kSteps * vec, vec, helpers);
  });
  const wbs = wps.map((pl, i) => (readers[i] ? "" : b.storage(pl, "read", elem)));
  const out = segmentOutput(b, seg, rowShape);

  const head = [`let n0 = (tile % ${u(nTiles)}) * ${u(R)};`, `let m0 = (tile / ${u(nTiles)}) * ${u(C)};`];
  const declare: string[] = [];
  const loop: string[] = [];
  const store: string[] = [];
  const dot = (a: string, c: string) => (vec === 4 ? `dot(${a}, ${c})` : `${a} * ${c}`);
  seg.weights.forEach((_, wi) => {
    const rd = readers[wi];
    for (let r = 0; r < R; r++) {
      const row = `min(n0 + ${r}u, ${u(N - 1)})`;
      declare.push(`let ${p}wr${wi}_${r} = ${rd ? rd.rowBase(row) : `${plus(wps[wi]!.offset / vec)}${row} * ${u(kSteps)}`};`);
    }
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) declare.push(`var ${p}acc${wi}_${c}_${r}: f32 = 0.0f;`);
  });
  // q8_0/q4_0 weights (vec 4) go block by block: k = kb·8 + kk, the scales read once per block.
  const blocked = readers.some((rd) => rd?.blocked);
  const blockStart: string[] = [];
  const blockEnd: string[] = [];
  seg.weights.forEach((_, wi) => {
    const bl = readers[wi]?.blocked;
    for (let r = 0; r < R; r++) {
      if (bl) {
        blockStart.push(`let ${p}d${wi}_${r} = ${bl.scale(`${p}wr${wi}_${r}`, "kb")};`);
        loop.push(`let ${p}w${wi}_${r} = ${bl.quants(`${p}wr${wi}_${r}`, "kb", "kk")};`);
        for (let c = 0; c < C; c++) {
          blockStart.push(`var ${p}pa${wi}_${c}_${r}: f32 = 0.0f;`);
          loop.push(`${p}pa${wi}_${c}_${r} = ${p}pa${wi}_${c}_${r} + ${dot(`x${c}`, `${p}w${wi}_${r}`)};`);
          blockEnd.push(`${p}acc${wi}_${c}_${r} = ${p}acc${wi}_${c}_${r} + ${p}pa${wi}_${c}_${r} * ${p}d${wi}_${r};`);
        }
        continue;
      }
      const rd = readers[wi];
      loop.push(`let ${p}w${wi}_${r} = ${rd ? rd.load(`${p}wr${wi}_${r}`, "k") : `${wbs[wi]}[${p}wr${wi}_${r} + k]`};`);
      for (let c = 0; c < C; c++) loop.push(`${p}acc${wi}_${c}_${r} = ${p}acc${wi}_${c}_${r} + ${dot(`x${c}`, `${p}w${wi}_${r}`)};`);
    }
  });
  const acc = (c: number, r: number) => (i: number) => (sh.scaled ? `(${p}acc${i}_${c}_${r} * sc${c})` : `${p}acc${i}_${c}_${r}`);
  for (let c = 0; c < C; c++) {
    for (let r = 0; r < R; r += rot ? 2 : 1) {
      // Tiles past the end of M or N (when they do not divide evenly, or past the step's rows of x)
      // compute clamped rows: skip their stores.
      const mGuard = constOf(sh.rows) === null || M % C ? `m0 + ${c}u < ${b.dim(sh.rows)}` : "";
      const guard = [mGuard, N % R ? `n0 + ${r}u < ${u(N)}` : ""].filter(Boolean).join(" && ");
      const [row, col] = [`(m0 + ${c}u)`, `(n0 + ${r}u)`];
      const lines = rot ? out.storePair(row, col, acc(c, r), acc(c, r + 1), helpers) : out.store(row, col, acc(c, r), helpers);
      store.push(guard ? `if (${guard}) {` : "{", ...lines.map((l) => "  " + l), "}");
    }
  }
  return { nTiles, n: N, rows: R, weights: w, head, declare, loop, store, blocked, kBlocks: kSteps / 8, blockStart, blockEnd };
}

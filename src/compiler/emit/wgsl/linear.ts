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
// `matmul` is the general batched product for everything else.

import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import type { LinearKernel, LinearSegment } from "../../plan/plan.js";
import { helpersFor, renderExpr } from "../shared/expr.js";
import { linearOf, linearX, statementBlock } from "../shared/linear.js";
import { matmulGeometry } from "../shared/geometry.js";
import type { DispatchContext } from "./context.js";
import { plus, product } from "./context.js";
import { BindingSet, broadcastStrides, grid, headerContext, offsetExpr, renderTemplate, type WgslKernel } from "./kernel.js";
import { loadAs, storageType, storeAs, u32Literal, vec4Renderable, wgsl, wgslVec4 } from "./lang.js";
import { packedReader } from "./packed.js";
import type { WgslTuning } from "./tuning.js";

const COMPONENTS = ["x", "y", "z", "w"];
const u = u32Literal;

const block = (program: ExprProgram, input: (i: number) => string, types: readonly DType[], targets: string[], helpers: Set<string>) =>
  statementBlock(wgsl, program, input, types, targets, helpers);

/** A vec4<f32> program (see `vec4Renderable`) in a block; `use` turns its output into a statement. */
function vecBlock(program: ExprProgram, input: (i: number) => string, types: readonly DType[], use: (value: string) => string): string[] {
  const r = renderExpr(program, wgslVec4, input, undefined, types);
  return ["{", ...[...r.pre, ...r.body].map((l) => "  " + l), `  ${use(r.outputs[0]!)}`, "}"];
}

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
    sources.every((s) => s.along === 0 || (s.along === 1 && s.p.offset % 4 === 0 && s.rowStrides.every((r) => r % 4 === 0))) &&
    allWeights.every((p) => p.offset % 4 === 0)
      ? 4
      : 1;
  const elem = vec === 4 ? "vec4<f32>" : "f32";
  const kSteps = K / vec;
  const C = M > 1 ? Math.max(1, Math.min(tuning.linear.tileM, M)) : 1;
  const mTiles = Math.ceil(M / C);

  const b = new BindingSet();
  const helpers = new Set<string>();
  const sourceNames = sources.map((s, i) => b.storage(s.p, "read", s.along === 1 ? elem : storageType(sourceTypes[i]!)));

  // Per x row c: each source's row base, the loads at step k, the prologue, the reductions.
  const rowSetup: string[] = [];
  const loads: string[] = [];
  const after: string[] = [];
  for (let c = 0; c < C; c++) {
    rowSetup.push(`let mr${c} = min(m0 + ${c}u, ${u(M - 1)});`);
    sources.forEach((s, i) => {
      const scale = s.along === 1 ? vec : 1;
      rowSetup.push(`let sb${i}_${c} = ${offsetExpr(`mr${c}`, rowShape, s.rowStrides.map((r) => r / scale), s.p.offset / scale)};`);
      loads.push(`let s${i}_${c} = ${s.along === 1 ? `${sourceNames[i]}[sb${i}_${c} + k]` : loadAs(sourceTypes[i]!, `${sourceNames[i]}[sb${i}_${c}]`)};`);
    });
    if (identity) {
      loads.push(`let x${c} = s0_${c};`);
      continue;
    }
    const f = factoring!;
    loads.push(`var x${c}: ${elem};`);
    if (vec === 4 && [f.elementwise, ...f.reductions.map((r) => r.arg)].every(vec4Renderable)) {
      // All four lanes at once; each reduction keeps four partial results until the loop ends.
      const at = (i: number) => (sources[i]!.along === 1 ? `s${i}_${c}` : `vec4<f32>(s${i}_${c})`);
      const types = sources.map(() => "f32" as const);
      loads.push(...vecBlock(f.elementwise, at, types, (v) => `x${c} = ${v};`));
      f.reductions.forEach((red, j) => {
        const init = red.op === "amax" ? wgsl.literal(-Infinity, "f32") : wgsl.literal(0, "f32");
        rowSetup.push(`var rv${j}_${c}: vec4<f32> = vec4<f32>(${init});`);
        loads.push(...vecBlock(red.arg, at, types, (v) => wgsl.reduceStep(red.op, `rv${j}_${c}`, v, "f32")));
        after.push(`var red${j}_${c}: f32 = ${init};`);
        for (const comp of COMPONENTS) after.push(wgsl.reduceStep(red.op, `red${j}_${c}`, `rv${j}_${c}.${comp}`, "f32"));
        if (red.op === "mean") after.push(`red${j}_${c} = red${j}_${c} / ${wgsl.literal(K, "f32")};`);
      });
      after.push(`var sc${c}: f32;`);
      after.push(...block(f.scale, (j) => `red${j}_${c}`, f.reductions.map(() => "f32"), [`sc${c}`], helpers));
      continue;
    }
    const comps = vec === 4 ? COMPONENTS : [""];
    for (const comp of comps) {
      const at = (i: number) => (sources[i]!.along === 1 && comp ? `s${i}_${c}.${comp}` : `s${i}_${c}`);
      loads.push(...block(f.elementwise, at, sourceTypes, [comp ? `x${c}.${comp}` : `x${c}`], helpers));
    }
    f.reductions.forEach((red, j) => {
      const init = red.op === "amax" ? wgsl.literal(-Infinity, "f32") : wgsl.literal(0, "f32");
      rowSetup.push(`var red${j}_${c}: f32 = ${init};`);
      for (const comp of comps) {
        const at = (i: number) => (sources[i]!.along === 1 && comp ? `s${i}_${c}.${comp}` : `s${i}_${c}`);
        const r = renderExpr(red.arg, wgsl, at, undefined, sourceTypes);
        r.helpers.forEach((h) => helpers.add(h));
        loads.push("{", ...[...r.pre, ...r.body].map((l) => "  " + l), "  " + wgsl.reduceStep(red.op, `red${j}_${c}`, r.outputs[0]!, "f32"), "}");
      }
      if (red.op === "mean") after.push(`red${j}_${c} = red${j}_${c} / ${wgsl.literal(K, "f32")};`);
    });
    after.push(`var sc${c}: f32;`);
    after.push(...block(f.scale, (j) => `red${j}_${c}`, f.reductions.map(() => "f32"), [`sc${c}`], helpers));
  }

  let tileStart = 0;
  const segments = k.segments.map((seg, si) => {
    const code = emitSegment(ctx, tuning, b, helpers, seg, si, { M, C, vec, elem, kSteps, rowShape, scaled: !identity });
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
    m: M,
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
  C: number;
  vec: number;
  elem: string;
  kSteps: number;
  rowShape: number[];
  /** Whether the accumulators are multiplied by the prologue's row scale sc<c>. */
  scaled: boolean;
}

/** One segment: its weights' accumulators inside the k loop, its epilogue, rotation and stores. */
function emitSegment(ctx: DispatchContext, tuning: WgslTuning, b: BindingSet, helpers: Set<string>, seg: LinearSegment, si: number, sh: Shared) {
  const { M, C, vec, elem, kSteps, rowShape } = sh;
  const w = seg.weights.length;
  const N = ctx.shape(seg.weights[0]!)[0]!;
  const outShape = [...rowShape, N];
  const rot = seg.rotation;
  let R = Math.max(1, Math.min(tuning.linear.rowsPerInvocation, N));
  if (rot) R = Math.min(N, R + (R % 2)); // pairs stay in one invocation (N is a multiple of 2)
  const nTiles = Math.ceil(N / R);
  const p = `g${si}_`; // this segment's names

  const wps = seg.weights.map((id) => ctx.placement(id));
  // Packed weights (emit/wgsl/packed.ts) are array<u32> read through their format's dequantizing load.
  const readers = wps.map((pl) => {
    const format = ctx.plan.buffers[pl.buffer]?.format;
    if (!format) return null;
    if (pl.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed weight must start its buffer`);
    return packedReader(format, b.storage(pl, "read", "u32"), N, kSteps * vec, vec, helpers);
  });
  const wbs = wps.map((pl, i) => (readers[i] ? "" : b.storage(pl, "read", elem)));
  const extraTypes = seg.extras.map((id) => ctx.node(id).ty.dtype);
  const extraAccess = seg.extras.map((id, i) => {
    const pl = ctx.placement(id);
    const name = b.storage(pl, "read", storageType(extraTypes[i]!));
    return (o: string) => loadAs(extraTypes[i]!, `${name}[${offsetExpr(o, outShape, broadcastStrides(ctx.shape(id), outShape), pl.offset)}]`);
  });
  const half = rot ? rot.headDim / 2 : 0;
  const angleShape = [...rowShape, half];
  const rotTypes = rot ? rot.inputs.map((id) => ctx.node(id).ty.dtype) : [];
  const rotAccess = rot
    ? rot.inputs.map((id, i) => {
        const pl = ctx.placement(id);
        const name = b.storage(pl, "read", storageType(rotTypes[i]!));
        return loadAs(rotTypes[i]!, `${name}[${offsetExpr("ri", angleShape, broadcastStrides(ctx.shape(id), angleShape), pl.offset)}]`);
      })
    : [];
  const outNode = ctx.node(seg.node);
  const outType = outNode.ty.dtype;
  const op = ctx.placement(seg.node);
  const out = b.storage(op, "read_write", storageType(outType));
  const outBase = op.perPast ? `${b.params()}.past * ${u(op.perPast)} + ${plus(op.offset)}` : plus(op.offset);

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
  const types = [...seg.weights.map(() => "f32" as const), ...extraTypes];
  const acc = (i: number, c: number, r: number) => (sh.scaled ? `(${p}acc${i}_${c}_${r} * sc${c})` : `${p}acc${i}_${c}_${r}`);
  for (let c = 0; c < C; c++) {
    const step = rot ? 2 : 1;
    for (let r = 0; r < R; r += step) {
      // Tiles past the end of M or N (when they do not divide evenly) compute clamped rows: skip their stores.
      const guard = [M % C ? `m0 + ${c}u < ${u(M)}` : "", N % R ? `n0 + ${r}u < ${u(N)}` : ""].filter(Boolean).join(" && ");
      store.push(guard ? `if (${guard}) {` : "{");
      store.push(`  let o = (m0 + ${c}u) * ${u(N)} + n0 + ${r}u;`);
      if (!rot) {
        const e = renderExpr(seg.epilogue, wgsl, (i) => (i < w ? acc(i, c, r) : extraAccess[i - w]!("o")), undefined, types);
        e.helpers.forEach((h) => helpers.add(h));
        for (const l of [...e.pre, ...e.body]) store.push("  " + l);
        store.push(`  ${out}[${outBase}o] = ${storeAs(outType, e.outputs[0]!)};`);
      } else {
        store.push("  let o1 = o + 1u;", "  var y0: f32;", "  var y1: f32;", "  var cs: f32;", "  var sn: f32;");
        for (const [t, rr, o] of [["y0", r, "o"], ["y1", r + 1, "o1"]] as const) {
          store.push(...block(seg.epilogue, (i) => (i < w ? acc(i, c, rr) : extraAccess[i - w]!(o)), types, [t], helpers).map((l) => "  " + l));
        }
        store.push(`  let ri = (m0 + ${c}u) * ${u(half)} + ((n0 + ${r}u) % ${u(rot.headDim)}) / 2u;`);
        store.push(...block(rot.program, (i) => rotAccess[i]!, rotTypes, ["cs", "sn"], helpers).map((l) => "  " + l));
        store.push(`  ${out}[${outBase}o] = y0 * cs - y1 * sn;`);
        store.push(`  ${out}[${outBase}o1] = y0 * sn + y1 * cs;`);
      }
      store.push("}");
    }
  }
  return { nTiles, n: N, rows: R, weights: w, head, declare, loop, store, blocked, kBlocks: kSteps / 8, blockStart, blockEnd };
}

/** a [.., M, K] @ b [.., K, N] with broadcast batch dims. */
export function emitMatmul(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const { a, b: bm, as, bs, M, K, N, batch, aStrides, bStrides, count } = matmulGeometry(ctx);
  const b = new BindingSet();
  const ap = ctx.placement(a);
  const bp = ctx.placement(bm);
  const an = b.storage(ap, "read", "f32");
  const bn = b.storage(bp, "read", "f32");
  const out = b.storage(ctx.placement(d.node), "read_write", "f32");
  const g = grid(count, tuning.matmul.workgroupSize);
  const code = renderTemplate("matmul", {
    ...headerContext("matmul", b),
    m: M,
    n: N,
    k: K,
    mn: M * N,
    count,
    a: an,
    b: bn,
    out,
    aBase: offsetExpr("batch", batch, aStrides, ap.offset),
    bBase: offsetExpr("batch", batch, bStrides, bp.offset),
    outOffset: plus(ctx.placement(d.node).offset),
    workgroupSize: tuning.matmul.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

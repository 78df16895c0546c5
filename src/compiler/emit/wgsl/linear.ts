// Matrix products. `linear` is the hot path of every layer: x [.., M, K] times weights W [N, K]
// (PyTorch/GGUF layout, so each output reads one contiguous weight row), several weights at once
// (gate and up), then an epilogue program (bias, activation, residual). Decode (M = 1) is a
// matrix-vector product: each tile computes `rowsPerInvocation` outputs with vec4 loads.
// Prefill tiles M as well, in registers. Two shapes of tile, by the tuning's `lanes`:
//   1         an invocation owns a tile and walks K alone (no workgroup barriers, which CPU adapters
//             pay dearly for; llvmpipe's profile);
//   lanes > 1 a workgroup owns a tile: lane l takes steps l, l + lanes, … of K, so a warp's loads
//             of one weight row are consecutive 16-byte words (coalesced on a GPU); the lanes'
//             partial sums (and the prologue's reductions) then meet in a workgroup-memory tree, or
//             in one subgroupAdd where the workgroup is a single subgroup, and lane 0 stores.
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
import type { LinearSegment, Placement } from "../../plan/plan.js";
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
  const lanes = tuning.linear.lanes;
  if (!Number.isInteger(lanes) || lanes < 1 || (lanes & (lanes - 1)) !== 0) throw new Error(`internal: linear lanes must be a power of two, got ${lanes}`);
  const reductions = factoring?.reductions ?? [];
  // One subgroupAdd completes a sum where the workgroup is one subgroup; amax keeps the tree (NaN).
  const subgroups = lanes > 1 && ctx.features.subgroups && lanes <= ctx.features.subgroupMinSize && reductions.every((r) => r.op !== "amax");
  let C = M > 1 ? Math.max(1, Math.min(tuning.linear.tileM, M)) : 1;
  // The tree holds every value the lanes sum, for every lane: fewer rows of x per tile until it fits.
  const pieces = k.segments.flatMap((seg) => segmentPieces(ctx, seg));
  const values = (c: number) => c * (reductions.length + Math.max(...pieces.map((pc) => pc.seg.weights.length * tileRows(tuning, pc.rows, !!pc.seg.rotation))));
  while (lanes > 1 && !subgroups && C > 1 && values(C) * lanes * 4 > WORKGROUP_STORAGE_BYTES) C--;
  const partials = lanes > 1 && !subgroups ? values(C) * lanes : 0;
  if (partials * 4 > WORKGROUP_STORAGE_BYTES) throw new Error(`internal: ${ctx.label()}: ${partials} partial sums exceed workgroup memory`);
  const mTiles = Math.ceil(M / C);

  const b = new BindingSet(ctx);
  const helpers = new Set<string>();
  const sourceNames = sources.map((s, i) => b.storage(s.p, "read", s.along === 1 ? elem : storageType(sourceTypes[i]!)));

  // Per x row c: each source's row base, the loads at step k, the prologue, the reductions.
  const rowSetup: string[] = [];
  const loads: string[] = [];
  // After the k loop, per x row: the vec4 reductions folded to one value, the row scale.
  const combine: string[][] = [];
  const scale: string[][] = [];
  /** The prologue's reductions, which the lanes of a tile complete together. */
  const rowReductions: { name: string; op: string }[] = [];
  for (let c = 0; c < C; c++) {
    combine.push([]);
    const fold = combine[c]!;
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
    f.reductions.forEach((rd, j) => rowReductions.push({ name: red(j), op: rd.op }));
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
        fold.push(`var ${red(j)}: f32 = ${start};`);
        for (const comp of COMPONENTS) fold.push(wgsl.reduceStep(rd.op, red(j), `rv${j}_${c}.${comp}`, "f32"));
      });
    } else {
      f.reductions.forEach((rd, j) => rowSetup.push(`var ${red(j)}: f32 = ${reductionStart(wgsl, rd.op)};`));
      for (const comp of vec === 4 ? COMPONENTS : [""]) {
        const at = (i: number) => (sources[i]!.along === 1 && comp ? `s${i}_${c}.${comp}` : `s${i}_${c}`);
        loads.push(...prologueElement(wgsl, x, at, comp ? `x${c}.${comp}` : `x${c}`, red, helpers));
      }
    }
    scale[c] = rowScale(wgsl, x, red, `sc${c}`, helpers);
  }
  // One invocation per tile: each row's fold then its scale, as they come. Lanes: every fold, the
  // lanes' reduction (per segment), then the scales.
  const after = lanes > 1 ? scale.flat() : combine.flatMap((lines, c) => [...lines, ...(scale[c] ?? [])]);
  const folds = lanes > 1 ? combine.flat() : [];

  let tileStart = 0;
  const segments = pieces.map((piece, si) => {
    const code = emitSegment(ctx, tuning, b, helpers, piece, si, { M, rows: x.rows, C, vec, elem, kSteps, rowShape, scaled: !identity, lanes, subgroups, rowReductions });
    const range = { start: tileStart, end: tileStart + code.nTiles * mTiles };
    tileStart = range.end;
    return { ...code, index: si, start: range.start, end: range.end };
  });
  const total = tileStart;
  // Helpers the generated lines call outside rendered programs (amax's −∞ start, for one).
  const lines = [...rowSetup, ...loads, ...folds, ...after, ...segments.flatMap((sg) => [...sg.declare, ...sg.blockStart, ...sg.loop, ...sg.blockEnd, ...sg.reduce, ...sg.store])].join("\n");
  for (const h of helpersFor(lines, wgsl)) helpers.add(h);
  // A workgroup per tile (lanes > 1) or an invocation per tile.
  const g = lanes > 1 ? grid(total, 1) : grid(total, tuning.linear.workgroupSize);
  const enables = [...new Set([...segments.flatMap((sg) => sg.enables), ...(subgroups ? ["subgroups"] : [])])];
  const code = renderTemplate("linear", {
    ...headerContext(ctx.dispatch.kernel, b, [...helpers], enables),
    m: b.dim(x.rows),
    k: K,
    vec,
    cols: C,
    total,
    kSteps,
    workgroupSize: tuning.linear.workgroupSize,
    lanes: lanes > 1 ? lanes : 0,
    reduction: subgroups ? "subgroupAdd" : "a workgroup-memory tree",
    partials,
    kFirst: lanes > 1 ? "lane" : "0u",
    kStride: u(lanes),
    rowStride: g.rowStride,
    rowSetup,
    loads,
    folds,
    after,
    segments: segments.map((s) => ({ ...s, offset: s.start === 0 ? "tile" : `tile - ${u(s.start)}` })),
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** WebGPU's default maxComputeWorkgroupStorageSize, which every adapter offers. */
const WORKGROUP_STORAGE_BYTES = 16384;

/** Rows of a segment's weights per tile: the tuning's, at most N, even where pairs are rotated. */
function tileRows(tuning: WgslTuning, N: number, rotated: boolean): number {
  const R = Math.max(1, Math.min(tuning.linear.rowsPerInvocation, N));
  return rotated ? Math.min(N, R + (R % 2)) : R; // pairs stay in one tile (N is a multiple of 2)
}

/** Lines that complete each value's sum (or amax) over the lanes of a workgroup, leaving it in
 *  every lane: one subgroup operation, or a tree over `llmc_partial` (lanes × values). */
function laneReduction(vals: readonly { name: string; op: string }[], lanes: number, subgroups: boolean): string[] {
  if (subgroups) return vals.map((v) => `${v.name} = subgroupAdd(${v.name});`);
  const at = (i: number, lane: string) => `llmc_partial[${u(i * lanes)} + ${lane}]`;
  return [
    ...vals.map((v, i) => `${at(i, "lane")} = ${v.name};`),
    "workgroupBarrier();",
    `for (var s: u32 = ${u(lanes / 2)}; s > 0u; s = s >> 1u) {`,
    "  if (lane < s) {",
    ...vals.map((v, i) => `    ${wgsl.reduceStep(v.op === "amax" ? "amax" : "sum", at(i, "lane"), at(i, "lane + s"), "f32")}`),
    "  }",
    "  workgroupBarrier();",
    "}",
    ...vals.map((v, i) => `${v.name} = ${at(i, "0u")};`),
  ];
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
  /** Invocations per tile (1: one invocation walks all of K). */
  lanes: number;
  /** The lanes meet through subgroupAdd (else a workgroup-memory tree). */
  subgroups: boolean;
  rowReductions: readonly { name: string; op: string }[];
}

/** Rows [first, first + rows) of a segment's weights, computed as a segment of their own: the whole
 *  weights, or one part each of weights split into row ranges (their bindings' `part`). */
interface SegmentPiece {
  seg: LinearSegment;
  first: number;
  rows: number;
  part?: number;
}

function segmentPieces(ctx: DispatchContext, seg: LinearSegment): SegmentPiece[] {
  const partsOf = (id: number) => ctx.plan.buffers[ctx.placement(id).buffer]?.parts;
  const parts = partsOf(seg.weights[0]!);
  if (seg.weights.some((id) => String(partsOf(id)) !== String(parts))) throw new Error(`internal: ${ctx.label()}: the weights of one segment are split differently`);
  if (!parts) return [{ seg, first: 0, rows: ctx.shape(seg.weights[0]!)[0]! }];
  let first = 0;
  const pieces = parts.map((rows, part) => {
    if (seg.rotation && first % 2) throw new Error(`internal: ${ctx.label()}: a part boundary splits a rotated pair`);
    const piece = { seg, first, rows, part };
    first += rows;
    return piece;
  });
  const [from, end] = ctx.dispatch.parts ?? [0, parts.length]; // this dispatch's range of the parts
  return pieces.slice(from, end);
}

/** One segment (or row range of one): its weights' accumulators inside the k loop; the epilogue,
 *  rotation and stores are shared (segmentOutput). */
function emitSegment(ctx: DispatchContext, tuning: WgslTuning, b: BindingSet, helpers: Set<string>, piece: SegmentPiece, si: number, sh: Shared) {
  const { M, C, vec, elem, kSteps, rowShape } = sh;
  const { seg, first } = piece;
  const w = seg.weights.length;
  const N = piece.rows;
  const rot = seg.rotation;
  const R = tileRows(tuning, N, !!rot);
  const nTiles = Math.ceil(N / R);
  const p = `g${si}_`; // this segment's names

  const wps = seg.weights.map((id) => ctx.placement(id));
  const bind = (pl: Placement, elem: string) => (piece.part === undefined ? b.storage(pl, "read", elem) : b.part(pl, piece.part, elem));
  // Packed weights (emit/wgsl/packed.ts) are array<u32> (or vec4<f16>) read through their format's dequantizing load.
  const readers = wps.map((pl) => {
    const format = ctx.plan.buffers[pl.buffer]?.format;
    if (!format || format === "f32") return null;
    if (pl.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed weight must start its buffer`);
    return packedReader(format, (elem) => bind(pl, elem), N, kSteps * vec, vec, helpers, ctx.features.shaderF16);
  });
  const wbs = wps.map((pl, i) => (readers[i] ? "" : bind(pl, elem)));
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
      const [row, col] = [`(m0 + ${c}u)`, `(n0 + ${u(first + r)})`];
      const lines = rot ? out.storePair(row, col, acc(c, r), acc(c, r + 1), helpers) : out.store(row, col, acc(c, r), helpers);
      store.push(guard ? `if (${guard}) {` : "{", ...lines.map((l) => "  " + l), "}");
    }
  }
  let reduce: string[] = [];
  let stores = store;
  if (sh.lanes > 1) {
    const accs = seg.weights.flatMap((_, wi) => Array.from({ length: C * R }, (_, i) => ({ name: `${p}acc${wi}_${Math.floor(i / R)}_${i % R}`, op: "sum" })));
    reduce = laneReduction([...sh.rowReductions, ...accs], sh.lanes, sh.subgroups);
    stores = ["if (lane == 0u) {", ...store.map((l) => "  " + l), "}"];
  }
  const enables = readers.flatMap((rd) => rd?.enables ?? []);
  return { nTiles, n: N, rows: R, weights: w, ...(piece.part !== undefined ? { rowRange: `${first}..${first + N}`, part: piece.part } : {}), head, declare, loop, reduce, store: stores, blocked, kBlocks: kSteps / 8, blockStart, blockEnd, enables };
}

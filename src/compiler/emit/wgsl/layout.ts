// Data movement: gather (embedding lookup) and the layout ops the plan could not turn into views —
// transposes, slices that are not contiguous, concatenation — as strided copies; and the batched
// rotary embedding, which runs a shared body per pair; and the batched matmul, by register tiles.

import { constDim, divDimExact, mulDim, type Dim } from "../../base/symbolic.js";
import type { Placement } from "../../plan/plan.js";
import { constOf } from "../shared/context.js";
import { rotaryBody } from "../shared/elementwise.js";
import { matmulGeometry, matmulOf, matmulWhat } from "../shared/geometry.js";
import { dimProduct, offsetExpr } from "../shared/indexing.js";
import { copyOf } from "../shared/layout.js";
import type { Extent } from "../shared/params.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { storageType, u32Literal } from "./lang.js";
import { packedReader } from "./packed.js";
import type { WgslTuning } from "./tuning.js";

export function emitGather(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const [table, ids] = d.inputs as [number, number];
  const [V, D] = ctx.shape(table) as [number, number];
  const nIds = dimProduct(ctx.dims(ids));
  const [tp, ip, op] = [ctx.placement(table), ctx.placement(ids), ctx.placement(d.node)];
  const dtype = ctx.node(table).ty.dtype;
  const vec = dtype === "f32" && D % 4 === 0 && tp.offset % 4 === 0 && op.offset % 4 === 0 ? 4 : 1;
  const elem = vec === 4 ? "vec4<f32>" : storageType(dtype);
  const b = new BindingSet(ctx);
  // A packed table (an embedding stored as f16 or q8_0/q4_0 blocks; packed.ts) is dequantized per
  // element. A table split into row ranges (PlanBuffer.parts) is read from the part holding the id.
  const format = ctx.plan.buffers[tp.buffer]?.format;
  const parts = ctx.plan.buffers[tp.buffer]?.parts ?? [V];
  const helpers = new Set<string>();
  const width = D / vec;
  const enables: string[] = [];
  // This dispatch's parts (all, unless the plan runs them as several dispatches), rows [first, end).
  const firsts = parts.map((_, j) => parts.slice(0, j).reduce((a, r) => a + r, 0));
  const [from, to] = d.parts ?? [0, parts.length];
  const ranges = firsts.slice(from, to).map((first, j) => {
    const part = from + j;
    const bind = (e: string) => (parts.length === 1 ? b.storage(tp, "read", e) : b.part(tp, part, e));
    const row = first === 0 ? "id" : `(id - ${u32Literal(first)})`;
    const range = { first, end: first + parts[part]!, load: "" };
    if (format && format !== "f32") {
      if (tp.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed table must start its buffer`);
      const reader = packedReader(format, bind, parts[part]!, D, vec, helpers, ctx.features.shaderF16);
      enables.push(...reader.enables);
      return { ...range, load: reader.load(`${row} * ${u32Literal(D)}`, "c") };
    }
    return { ...range, load: `${bind(elem)}[${plus(tp.offset / vec)}${row} * ${u32Literal(width)} + c]` };
  });
  const ib = b.storage(ip, "read", "i32");
  const out = b.storage(op, "write", elem);
  const count = b.extent(mulDim(nIds, constDim(width)));
  const g = grid(count.max, tuning.workgroupSize);
  const stored = (load: string) => `${out}[${plus(op.offset / vec)}i] = ${load};`;
  // Several parts: each id is read from the part holding its row; ids outside this dispatch's
  // parts are another dispatch's.
  const store =
    parts.length === 1
      ? [stored(ranges[0]!.load)]
      : ranges.flatMap((r, j) => {
          const cond = [r.first > 0 && j === 0 ? `id >= ${u32Literal(r.first)}` : "", r.end < V || j < ranges.length - 1 ? `id < ${u32Literal(r.end)}` : ""].filter(Boolean).join(" && ");
          const open = j === 0 ? (cond ? `if (${cond}) {` : "{") : cond ? `} else if (${cond}) {` : "} else {";
          return [open, `  ${stored(r.load)}`, ...(j === ranges.length - 1 ? ["}"] : [])];
        });
  const code = renderTemplate("gather", {
    ...headerContext("gather", b, [...helpers], [...new Set(enables)]),
    store,
    parts: parts.length > 1 ? `${ranges.map((r) => `${r.first}..${r.end}`).join(", ")} of ${V}` : "",
    rows: V,
    width,
    vec,
    ids: b.dim(nIds),
    count: count.code,
    maxId: V - 1,
    idBuf: ib,
    idOffset: plus(ip.offset),
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** transpose, slice and concat: a copy (emit/shared/layout.ts), one element per invocation. */
export function emitCopy(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return perElement(ctx, copyOf, tuning.workgroupSize);
}

/** The batched matmul (emit/shared/geometry.ts): a register tile of tileM × tileN outputs per
 *  invocation (codegen-templates/wgsl/matmul.hbs); outputs smaller than `minTiledOutputs` (where
 *  partial tiles would waste most of the work) one element per invocation. */
export function emitMatmul(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const t = tuning.matmul;
  if (t.tileM * t.tileN <= 1 || ctx.atMax(matmulGeometry(ctx).count) < t.minTiledOutputs) return perElement(ctx, matmulOf, t.workgroupSize);
  return tiledMatmul(ctx, tuning);
}

const COMPONENTS = ["x", "y", "z", "w"];

/** a [.., M, K] @ b [.., K, N] by register tiles. a is read as vec4 along K and b as vec4 along N
 *  where their dims and offsets allow (scalar loads otherwise); the k loop then takes 4 steps of K at
 *  once. An operand stored transposed (a [.., K, M], b [.., N, K]: Dispatch.transposed) is read
 *  along its stored rows: a 4 rows at a time where M and its offset allow, b with scalar loads.
 *  Dims may be polynomials of P: tile counts and edges are computed from them in the kernel. */
function tiledMatmul(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const t = tuning.matmul;
  const { a, b, ta, tb, M, K, N, batch, aStrides, bStrides, count } = matmulGeometry(ctx);
  const bs = new BindingSet(ctx);
  const d = bs.dim;
  const u = u32Literal;
  const [pa, pb] = [ctx.placement(a), ctx.placement(b)];
  const vecOk = (p: Placement, inner: Dim) => divDimExact(inner, 4) !== null && p.offset % 4 === 0 && !p.perPast;
  const [vecA, vecB] = [!ta && vecOk(pa, K), !tb && vecOk(pb, N)];
  const TM = Math.max(1, Math.min(t.tileM, ctx.atMax(M)));
  // a stored transposed ([.., K, M]): a tile's rows are consecutive at each k, read 4 at a time.
  const vecAT = ta && TM % 4 === 0 && vecOk(pa, M);
  // …and 4 steps of K an iteration where K allows.
  const unrolledAT = vecAT && divDimExact(K, 4) !== null;
  let TN = Math.max(1, Math.min(t.tileN, ctx.atMax(N)));
  if (vecB) TN = Math.ceil(TN / 4) * 4;
  const quarter = (x: Dim) => divDimExact(x, 4)!;

  // Tile counts: literals where the dims are constants, expressions of P otherwise.
  const ceilDiv = (x: Dim, n: number) => {
    const c = constOf(x);
    return c !== null ? u(Math.ceil(c / n)) : n === 1 ? d(x) : `((${d(x)} + ${u(n - 1)}) / ${u(n)})`;
  };
  const nTiles = ceilDiv(N, TN);
  const mTiles = ceilDiv(M, TM);
  const batches = dimProduct(batch);
  const total = constOf(batches) === 1 ? `${mTiles} * ${nTiles}` : `${d(batches)} * ${mTiles} * ${nTiles}`;
  const maxTotal = ctx.atMax(batches) * Math.ceil(ctx.atMax(M) / TM) * Math.ceil(ctx.atMax(N) / TN);

  // a's rows and b's columns of this tile, clamped to the last one (so every load is in bounds).
  const aRow = vecA ? quarter(K) : K;
  const bRow = vecB ? quarter(N) : N;
  const aBase = offsetExpr("batch", batch, vecA || vecAT ? aStrides.map(quarter) : aStrides, d, constDim(vecA || vecAT ? pa.offset / 4 : 0));
  const bBase = offsetExpr("batch", batch, vecB ? bStrides.map(quarter) : bStrides, d, constDim(vecB ? pb.offset / 4 : 0));
  /** The last index along `x` in units of `w` elements (4: vec4s). */
  const last = (x: Dim, w: 1 | 4) => (constOf(x) !== null ? u(constOf(x)! / w - 1) : `${d(w === 4 ? quarter(x) : x)} - 1u`);
  const lastRow = last(M, 1);
  const lastCol = last(N, vecB ? 4 : 1);
  const bCols = vecB ? TN / 4 : TN;
  // Neighbouring tiles share the larger operand's block, so it is read from cache while the smaller
  // one streams: column tiles of b vary slowest when b is the larger (a [256, 1024] @ b [1024, 4096]:
  // 187 → ~95 ms on llvmpipe, test/webgpu/bench-matmul.mjs), row tiles of a otherwise.
  const rowsFastest = ctx.atMax(M) < ctx.atMax(N);
  const setup = [
    ...(rowsFastest
      ? [`let mt = tile % ${mTiles};`, `let nt = (tile / ${mTiles}) % ${nTiles};`]
      : [`let nt = tile % ${nTiles};`, `let mt = (tile / ${nTiles}) % ${mTiles};`]),
    `let batch = tile / (${mTiles} * ${nTiles});`,
    `let m0 = mt * ${u(TM)};`,
    `let n0 = nt * ${u(TN)};`,
    `let ab = ${aBase};`,
    `let bb = ${bBase};`,
  ];
  // Where row i of a's tile and column j of b's start; a step of k then moves 1 (or M for a stored
  // transposed) in a and N (or 1 for b stored transposed) in b.
  if (vecAT) for (let g = 0; g < TM / 4; g++) setup.push(`let ar${g} = ab + min(m0 / 4u + ${u(g)}, ${last(M, 4)});`);
  else for (let i = 0; i < TM; i++) setup.push(`let ar${i} = ab + min(m0 + ${u(i)}, ${lastRow})${ta ? "" : ` * ${d(aRow)}`};`);
  for (let j = 0; j < bCols; j++) setup.push(`let bc${j} = bb + min(${vecB ? "n0 / 4u" : "n0"} + ${u(j)}, ${lastCol})${tb ? ` * ${d(K)}` : ""};`);
  for (let i = 0; i < TM; i++) for (let j = 0; j < TN; j++) setup.push(`var acc${i}_${j}: f32 = 0.0f;`);

  const aVec = vecA || vecAT ? bs.storage(pa, "read", "vec4<f32>") : "";
  const bVec = vecB ? bs.storage(pb, "read", "vec4<f32>") : "";
  const [ra, rb] = [bs.read(a), bs.read(b)];
  const loop: string[] = [];
  if (!vecAT) for (let i = 0; i < TM; i++) loop.push(`let a${i} = ${vecA ? `${aVec}[ar${i} + k]` : ra(ta ? `ar${i} + k * ${d(M)}` : `ar${i} + k`)};`);
  // Steps of K this iteration: 4 (a read as vec4 along K: component c of each a value; or a stored
  // transposed, its rows read 4 at a time at each of 4 steps) or 1.
  const steps = vecA || unrolledAT ? 4 : 1;
  for (let c = 0; c < steps; c++) {
    const kr = steps === 4 ? `(k * 4u + ${u(c)})` : "k";
    if (vecAT) {
      for (let g = 0; g < TM / 4; g++) loop.push(`let aq${c}_${g} = ${aVec}[ar${g} + ${kr} * ${d(quarter(M))}];`);
    }
    loop.push(`let kb${c} = ${tb ? kr : `${kr} * ${d(bRow)}`};`);
    for (let j = 0; j < bCols; j++) loop.push(`let b${c}_${j} = ${vecB ? `${bVec}[bc${j} + kb${c}]` : rb(`bc${j} + kb${c}`)};`);
    for (let i = 0; i < TM; i++) {
      const av = vecAT ? `aq${c}_${i >> 2}.${COMPONENTS[i & 3]}` : vecA ? `a${i}.${COMPONENTS[c]}` : `a${i}`;
      for (let j = 0; j < TN; j++) {
        const bv = vecB ? `b${c}_${j >> 2}.${COMPONENTS[j & 3]}` : `b${c}_${j}`;
        loop.push(`acc${i}_${j} = acc${i}_${j} + ${av} * ${bv};`);
      }
    }
  }

  // Stores: rows and columns past M and N (tiles that do not divide them, or dims of P) are skipped.
  const out = bs.output(ctx.dispatch.node);
  const store = [`let ob = batch * ${d(mulDim(M, N))};`];
  const mEdge = constOf(M) === null || constOf(M)! % TM !== 0;
  const nEdge = constOf(N) === null || constOf(N)! % TN !== 0;
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      const guard = [mEdge ? `m0 + ${u(i)} < ${d(M)}` : "", nEdge ? `n0 + ${u(j)} < ${d(N)}` : ""].filter(Boolean).join(" && ");
      const st = out.store(`ob + (m0 + ${u(i)}) * ${d(N)} + n0 + ${u(j)}`, `acc${i}_${j}`);
      store.push(guard ? `if (${guard}) { ${st} }` : st);
    }
  }

  const g = grid(maxTotal, t.workgroupSize);
  const code = renderTemplate("matmul", {
    ...headerContext(ctx.dispatch.kernel, bs),
    what: `${matmulWhat({ M, K, N, ta, tb }, d)} (${d(count)} outputs)`,
    tileM: TM,
    tileN: TN,
    vecA: vecA ? 4 : 1,
    vecB: vecB ? 4 : 1,
    tiles: `${d(batches)} batch(es) x ${mTiles} x ${nTiles}`,
    total,
    kSteps: unrolledAT ? d(quarter(K)) : d(aRow),
    workgroupSize: t.workgroupSize,
    rowStride: g.rowStride,
    setup,
    loop,
    store,
  });
  return { label: ctx.label(), code, bindings: bs.bindings(), workgroups: g.workgroups };
}

/** Rotary embedding (emit/shared/elementwise.ts), one pair per invocation. */
export function emitRotary(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return perElement(ctx, rotaryBody, tuning.workgroupSize);
}

/** A kernel running a shared body for each element `i` below its count, one per invocation
 *  (codegen-templates/wgsl/element.hbs). */
function perElement(ctx: DispatchContext, of: (b: BindingSet) => { what: string; count: Extent; body: string[] }, workgroupSize: number): WgslKernel {
  const b = new BindingSet(ctx);
  const { what, count, body } = of(b);
  const g = grid(count.max, workgroupSize);
  const code = renderTemplate("element", {
    ...headerContext(ctx.dispatch.kernel, b),
    what,
    count: count.code,
    body,
    workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

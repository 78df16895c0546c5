// Matrix products. `linear` is the hot path of every layer: x [.., M, K] times weights W [N, K]
// (PyTorch/GGUF layout: each output reads one contiguous weight row), several weights at once (gate
// and up), then an epilogue program (bias, activation, residual). `fused_linear` is the same with
// what fusion and the plan add around it:
//   prologue  x is a row program of its sources that factors as s(row) × e(sources) (RMSNorm): the
//             loop over k accumulates W·e and the reductions s needs from the same loads, and the
//             accumulators are scaled by s before the epilogue;
//   rotation  adjacent output pairs of each head are rotated by the (cos, sin) of the rotation
//             program (RoPE);
//   segments  several linears over one x in one dispatch (q, k, v), each with its own weights,
//             epilogue and output;
//   in place  an output may be KV-cache rows at position P (read from the step parameters).
//
// Three kernels:
//   matvec   decode (M ≤ a few rows): warps stream weight rows with 16-byte loads, several per
//            lane issued before any is used, dequantising f16 / bf16 / q8_0 / q4_0 in registers,
//            and reduce with warp shuffles — memory-bound, so every byte of W is read once per step
//            and the profile sizes rows per warp, loads in flight and a split of K over the warps
//            of a block (matvecShape). All segments in one kernel (block ranges); a warp owns an
//            even number of rows when it rotates, so RoPE pairs stay together.
//   wmma     prefill with half or quantized weights: tiles of x and W staged in shared memory as
//            f16 (bf16 for bf16 weights) in groups of 8 k with the next K step loaded during the
//            mma, 16x16x16 tensor-core fragments, f32 accumulation, the block tile picked from the
//            profile's list by the grid it gives.
//   simt     prefill with f32 weights (exact f32, like the reference) or where tensor cores cannot
//            take the format: register-tiled f32 products.
// A prefill segment is one launch of its kernel (rows scaled by a prologue pre-pass in the same
// kernel); on tensor cores the epilogue rotates the pairs, the f32 tiles are followed by a launch
// of the rotation in place.
//
// x may have rows that depend on P (a linear over the KV cache): such a linear runs as tiles over
// its rows at the largest P that stop at the step's rows. (`matmul`, the general batched product, is
// a per-element kernel: emit/cuda/layout.ts.)

import { constDim, mulDim, type Dim } from "../../base/symbolic.js";
import type { LinearKernel, LinearSegment } from "../../plan/plan.js";
import { constOf } from "../shared/context.js";
import { offsetExpr } from "../shared/indexing.js";
import { linearOf, linearX, prologueElement, prologueSources, reductionStart, rotateStored, rowScale, segmentOutput, type LinearX, type SegmentOutput } from "../shared/linear.js";
import type { DispatchContext } from "./context.js";
import type { StorageDType } from "../../target/storage.js";
import type { Emitted } from "./elementwise.js";
import { single } from "./elementwise.js";
import { checkIndexRange, makeKernel, ParamSet, strideGrid, type CudaKernel, type CudaLaunch } from "./kernel.js";
import type { CudaTuning } from "./tuning.js";
import { cudaLang, intLiteral, loadAs, storageType } from "./lang.js";
import { deviceLayout } from "../../target/storage.js";

const lang = cudaLang();

const indent = (lines: string[], n = 2) => lines.map((l) => " ".repeat(n) + l);

// ------------------------------------------------------------------------------------------ x

/** Element offset of row `m` (a number) of a tensor read through `rowStrides` over `rowShape`, all
 *  constant (the matvec's few rows never depend on P). */
function rowOffset(m: number, rowShape: readonly Dim[], rowStrides: readonly Dim[]): number {
  const value = (d: Dim) => {
    const c = constOf(d);
    if (c === null) throw new Error("internal: a matvec over rows that depend on P");
    return c;
  };
  let off = 0;
  let rest = m;
  for (let d = rowShape.length - 1; d >= 0; d--) {
    off += (rest % value(rowShape[d]!)) * value(rowStrides[d]!);
    rest = Math.floor(rest / value(rowShape[d]!));
  }
  return off;
}

/** One element of x at column `k` of a row whose source bases are `base(i)`: loads of the sources it
 *  reads, then the prologue (emit/shared/linear.ts) into `target` and `red(j)` (each when given). */
function xElement(x: LinearX, ptr: string[], base: (i: number) => string, k: string, target: string | null, red: ((j: number) => string) | null, helpers: Set<string>): string[] {
  const used = prologueSources(x, target !== null, red !== null);
  const loads = x.sources.flatMap((s, i) => {
    if (!used.has(i)) return [];
    const at = s.along === 0 ? base(i) : s.along === 1 ? `${base(i)} + ${k}` : `${base(i)} + ${k} * ${s.along}`;
    return [lang.let(`s${i}`, s.type, loadAs(s.type, `${ptr[i]}[${at}]`))];
  });
  return ["{", ...indent([...loads, ...prologueElement(lang, x, (i) => `s${i}`, target, red, helpers)]), "}"];
}

// ------------------------------------------------------------------------------------------ segments

interface WeightRef {
  format: StorageDType;
  /** f32: float elements; f16/bf16: 16-bit patterns; quantized: the quants. */
  data: string;
  /** Quantized: the f16 scales. */
  scales: string;
}

interface SegmentRefs {
  N: number;
  format: StorageDType;
  weights: WeightRef[];
  output: SegmentOutput;
}

function segmentRefs(ctx: DispatchContext, params: ParamSet, seg: LinearSegment, x: LinearX): SegmentRefs {
  const N = ctx.shape(seg.weights[0]!)[0]!;
  checkIndexRange(N * x.K, `${ctx.label()}'s weight`);
  checkIndexRange(x.M * N, ctx.label());
  const formats = seg.weights.map((id) => ctx.format(id));
  if (formats.some((f) => f !== formats[0])) throw new Error(`internal: ${ctx.label()} mixes weight formats ${formats.join(", ")}`);
  const weights = seg.weights.map((id, i): WeightRef => {
    const a = ctx.arg(id);
    const f = formats[i]!;
    if (f === "f32") return { format: f, data: params.buffer(a.buffer, a.offsetBytes, "float", "read"), scales: "" };
    if (f === "f16" || f === "bf16") return { format: f, data: params.buffer(a.buffer, a.offsetBytes, "unsigned short", "read"), scales: "" };
    const layout = deviceLayout(f, [N, x.K]);
    const data = params.buffer(a.buffer, 0, f === "q8_0" ? "signed char" : "unsigned char", "read");
    return { format: f, data, scales: params.buffer(a.buffer, layout.scaleOffset, "unsigned short", "read") };
  });
  return { N, format: formats[0]!, weights, output: segmentOutput(params, seg, x.rowShape) };
}

export function emitLinear(ctx: DispatchContext): Emitted {
  const k = linearOf(ctx.dispatch);
  const x = linearX(ctx, k);
  if (constOf(x.rows) !== null && x.M <= ctx.tuning.matvec.maxRows) return matvec(ctx, k, x);
  const kernels: CudaKernel[] = [];
  const launches: CudaLaunch[] = [];
  k.segments.forEach((seg) => {
    const e = gemm(ctx, seg, x);
    kernels.push(...e.kernels);
    launches.push(...e.launches);
  });
  return { kernels, launches };
}

// ------------------------------------------------------------------------------------------ matvec

/** Elements of one 16-byte weight load (or 1 where rows are not made of them). */
function chunkOf(format: StorageDType, K: number): number {
  switch (format) {
    case "f32": return K % 4 === 0 ? 4 : 1;
    case "f16":
    case "bf16": return K % 8 === 0 ? 8 : 1;
    case "q8_0": return 16;
    case "q4_0": return 32;
  }
}

const WORDS = ["x", "y", "z", "w"] as const;

/** How a matvec reads one chunk (CH elements) of a weight row: the loads into locals named `v…`,
 *  and the chunk's elements as float expressions of them, times a scale for quantized blocks. */
function weightChunk(wt: WeightRef, CH: number, K: number) {
  const load = (v: string, row: string, c: string): string[] => {
    switch (wt.format) {
      case "f32":
        return CH === 4 ? [`const float4 ${v} = __ldg(reinterpret_cast<const float4*>(${wt.data}) + ${row} * ${K / 4} + ${c});`] : [`const float ${v} = __ldg(${wt.data} + ${row} * ${K} + ${c});`];
      case "f16":
      case "bf16":
        return CH === 8 ? [`const uint4 ${v} = __ldg(reinterpret_cast<const uint4*>(${wt.data}) + ${row} * ${K / 8} + ${c});`] : [`const unsigned short ${v} = __ldg(${wt.data} + ${row} * ${K} + ${c});`];
      case "q8_0":
        return [`const int4 ${v} = __ldg(reinterpret_cast<const int4*>(${wt.data}) + ${row} * ${K / 16} + ${c});`, `const unsigned short ${v}d = __ldg(${wt.scales} + ${row} * ${K / 32} + (${c} >> 1));`];
      case "q4_0":
        return [`const uint4 ${v} = __ldg(reinterpret_cast<const uint4*>(${wt.data}) + ${row} * ${K / 32} + ${c});`, `const unsigned short ${v}d = __ldg(${wt.scales} + ${row} * ${K / 32} + ${c});`];
    }
  };
  // Quantized chunks: each 32-bit word's bytes become floats by llmc_byte_magic (2^23 + byte),
  // less 2^23 + 128 (q8_0, its bytes offset by 128) or 2^23 + 8 (q4_0 nibbles), both exact.
  const terms = (v: string): { pre: string[]; terms: string[]; scale: string | null } => {
    switch (wt.format) {
      case "f32":
        return { pre: [], terms: CH === 4 ? WORDS.map((wd) => `${v}.${wd}`) : [v], scale: null };
      case "f16":
      case "bf16": {
        const cvt = wt.format === "f16" ? "llmc_f16" : "llmc_bf16";
        if (CH === 1) return { pre: [], terms: [`${cvt}(${v})`], scale: null };
        return { pre: [], terms: WORDS.flatMap((wd) => [`${cvt}((unsigned short)(${v}.${wd} & 0xffffu))`, `${cvt}((unsigned short)(${v}.${wd} >> 16))`]), scale: null };
      }
      case "q8_0":
        return {
          pre: WORDS.map((wd) => `const unsigned ${v}${wd} = (unsigned)${v}.${wd} ^ 0x80808080u;`),
          terms: WORDS.flatMap((wd) => [0, 1, 2, 3].map((b) => `(llmc_byte_magic<${b}>(${v}${wd}) - 8388736.0f)`)),
          scale: `llmc_f16(${v}d)`,
        };
      case "q4_0": {
        // Byte j of a block holds element j in its low nibble and j + 16 in its high one.
        const pre = WORDS.flatMap((wd) => [`const unsigned ${v}${wd}l = ${v}.${wd} & 0x0f0f0f0fu;`, `const unsigned ${v}${wd}h = (${v}.${wd} >> 4) & 0x0f0f0f0fu;`]);
        const t = new Array<string>(32);
        WORDS.forEach((wd, i) => {
          for (let b = 0; b < 4; b++) {
            t[4 * i + b] = `(llmc_byte_magic<${b}>(${v}${wd}l) - 8388616.0f)`;
            t[16 + 4 * i + b] = `(llmc_byte_magic<${b}>(${v}${wd}h) - 8388616.0f)`;
          }
        });
        return { pre, terms: t, scale: `llmc_f16(${v}d)` };
      }
    }
  };
  return { load, terms };
}

/** The matvec's shape for one segment: rows per warp R, warps per row group splitting K (S), and
 *  chunks each lane loads before using any (U). S grows (a power of two dividing the warps) until
 *  the segment has blocksPerSM blocks per SM, as long as each K slice keeps a chunk per lane. */
export function matvecShape(t: CudaTuning, format: StorageDType, N: number, K: number, weights: number, rotates: boolean): { rows: number; splits: number; inFlight: number; chunk: number } {
  const mv = t.matvec;
  // x is loaded once for the rows of every weight (gate and up): rowsPerWarp counts weight rows.
  let R = Math.max(1, Math.min(Math.floor(mv.rowsPerWarp[format] / weights), N));
  if (rotates) R = Math.min(N, R + (R % 2)); // RoPE pairs stay in one warp (N is even)
  const chunk = chunkOf(format, K);
  const chunks = K / chunk;
  let S = 1;
  const blocks = (s: number) => Math.ceil(N / ((mv.warps / s) * R));
  while (S < mv.warps && blocks(S) < mv.blocksPerSM * t.sms && chunks / (2 * S) >= 32) S *= 2;
  const perLane = Math.ceil(chunks / (32 * S));
  const U = Math.max(1, Math.min(perLane, Math.floor(mv.loadsInFlight / (R * weights))));
  return { rows: R, splits: S, inFlight: U, chunk };
}

function matvec(ctx: DispatchContext, k: LinearKernel, x: LinearX): Emitted {
  const t = ctx.tuning.matvec;
  const { M, K } = x;
  const params = new ParamSet(ctx);
  const helpers = new Set<string>();
  const srcPtr = x.sources.map((s) => {
    const a = ctx.arg(s.id);
    return params.buffer(a.buffer, a.offsetBytes, storageType(s.type), "read");
  });
  const refs = k.segments.map((seg) => segmentRefs(ctx, params, seg, x));
  let blockStart = 0;
  let partials = 0;
  const segments = refs.map((ref, si) => {
    const seg = segmentCode(ctx, x, k.segments[si]!, ref, srcPtr, helpers);
    const blocks = Math.ceil(ref.N / ((t.warps / seg.splits) * seg.rows));
    const range = { start: blockStart, end: blockStart + blocks };
    blockStart = range.end;
    if (seg.splits > 1) partials = Math.max(partials, t.warps * seg.partials);
    return { ...seg, index: si, start: range.start, end: range.end, first: si === 0, last: si === refs.length - 1, bid: range.start === 0 ? "blockIdx.x" : `(blockIdx.x - ${range.start})` };
  });
  const block = t.warps * 32;
  const kernel = makeKernel(ctx.dispatch.kernel, "linear_matvec", params, [...helpers], {
    m: M, k: K, warps: t.warps, block, single: segments.length === 1, segments, prologue: !x.identity, partials,
  });
  return single(ctx, kernel, params, [blockStart, 1, 1], block);
}

function segmentCode(ctx: DispatchContext, x: LinearX, seg: LinearSegment, ref: SegmentRefs, srcPtr: string[], helpers: Set<string>) {
  const t = ctx.tuning.matvec;
  const { M, K } = x;
  const { N, weights } = ref;
  const W = weights.length;
  const shape = matvecShape(ctx.tuning, ref.format, N, K, W, seg.rotation !== undefined);
  const { rows: R, splits: S, inFlight: U, chunk: CH } = shape;
  const chunks = K / CH;
  const declare: string[] = [];
  for (let r = 0; r < R; r++) declare.push(`const int nr${r} = n0 + ${r} < ${N} ? n0 + ${r} : ${N - 1};`);
  for (let w = 0; w < W; w++) for (let m = 0; m < M; m++) for (let r = 0; r < R; r++) declare.push(`float acc${w}_${m}_${r} = 0.0f;`);
  const reds = x.factoring?.reductions ?? [];
  for (let m = 0; m < M; m++) reds.forEach((rd, j) => declare.push(`float red${j}_${m} = ${reductionStart(lang, rd.op)};`));

  // The loads of U chunks of every row (chunk indices clamped: a lane past the end loads the last
  // chunk again and uses nothing), then each chunk's x (from L1) and products.
  const readers = weights.map((wt) => weightChunk(wt, CH, K));
  const loads: string[] = [];
  const loop: string[] = [];
  for (let u = 0; u < U; u++) {
    loads.push(`const int ch${u} = c0 + ${u * 32 * S};`);
    loads.push(`const int cl${u} = ch${u} < ${chunks} ? ch${u} : ${chunks - 1};`);
  }
  for (let u = 0; u < U; u++) for (let w = 0; w < W; w++) for (let r = 0; r < R; r++) loads.push(...readers[w]!.load(`v${w}_${r}_${u}`, `nr${r}`, `cl${u}`));
  for (let u = 0; u < U; u++) {
    loop.push(`if (ch${u} < ${chunks}) {`);
    const body: string[] = [];
    for (let m = 0; m < M; m++) {
      body.push(`float x${m}[${CH}];`);
      const bases = x.sources.map((s) => rowOffset(m, x.rowShape, s.rowStrides));
      const s0 = x.sources[0]!;
      const a0 = ctx.arg(s0.id);
      const vec = x.identity && s0.type === "f32" && s0.along === 1 && K % 4 === 0 && CH % 4 === 0 && bases[0]! % 4 === 0 && a0.offsetBytes % 16 === 0;
      if (vec) {
        for (let q = 0; q < CH / 4; q++) {
          body.push(`{ const float4 t = __ldg(reinterpret_cast<const float4*>(${srcPtr[0]}) + ${bases[0]! / 4} + ch${u} * ${CH / 4} + ${q}); x${m}[${4 * q}] = t.x; x${m}[${4 * q + 1}] = t.y; x${m}[${4 * q + 2}] = t.z; x${m}[${4 * q + 3}] = t.w; }`);
        }
      } else {
        for (let e = 0; e < CH; e++) {
          body.push(...xElement(x, srcPtr, (i) => String(bases[i]!), `(ch${u} * ${CH} + ${e})`, `x${m}[${e}]`, (j) => `red${j}_${m}`, helpers));
        }
      }
    }
    for (let w = 0; w < W; w++) {
      for (let r = 0; r < R; r++) {
        const { pre, terms, scale } = readers[w]!.terms(`v${w}_${r}_${u}`);
        body.push(...pre);
        for (let m = 0; m < M; m++) {
          const dot = terms.map((v, e) => `${v} * x${m}[${e}]`).join(" + ");
          body.push(`acc${w}_${m}_${r} += ${scale ? `${scale} * (${dot})` : dot};`);
        }
      }
    }
    loop.push(...indent(body), "}");
  }

  // Warp sums; with K split, each warp's partials go through shared memory to the first warp of
  // its row group, whose lane 0 finishes the row scale and stores.
  const accNames: string[] = [];
  for (let w = 0; w < W; w++) for (let m = 0; m < M; m++) for (let r = 0; r < R; r++) accNames.push(`acc${w}_${m}_${r}`);
  const redNames: { name: string; max: boolean }[] = [];
  for (let m = 0; m < M; m++) reds.forEach((rd, j) => redNames.push({ name: `red${j}_${m}`, max: rd.op === "amax" }));
  const reduce: string[] = [
    ...accNames.map((a) => `${a} = llmc_warp_sum(${a});`),
    ...redNames.map((rd) => `${rd.name} = ${rd.max ? "llmc_warp_max" : "llmc_warp_sum"}(${rd.name});`),
  ];
  const partials = accNames.length + redNames.length;
  const combine: string[] = [];
  if (S > 1) {
    const all = [...accNames.map((name) => ({ name, max: false })), ...redNames];
    combine.push(
      "if (lane == 0) {",
      ...all.map((v, i) => `  llmc_part[warp * ${partials} + ${i}] = ${v.name};`),
      "}",
      "__syncthreads();",
      `if (slice == 0 && lane == 0) {`,
      `  for (int s = 1; s < ${S}; ++s) {`,
      `    const float* p = llmc_part + (warp + s) * ${partials};`,
      ...all.map((v, i) => `    ${v.name} = ${v.max ? `llmc_max_nan(${v.name}, p[${i}])` : `${v.name} + p[${i}]`};`),
      "  }",
      "}",
    );
  }
  const store: string[] = [];
  if (x.factoring) for (let m = 0; m < M; m++) store.push(...rowScale(lang, x, (j) => `red${j}_${m}`, `sc${m}`, helpers));
  const acc = (m: number, r: number) => (w: number) => (x.factoring ? `(acc${w}_${m}_${r} * sc${m})` : `acc${w}_${m}_${r}`);
  for (let m = 0; m < M; m++) {
    for (let r = 0; r < R; r += seg.rotation ? 2 : 1) {
      const [row, col] = [intLiteral(m), `(n0 + ${r})`];
      const lines = seg.rotation ? ref.output.storePair(row, col, acc(m, r), acc(m, r + 1), helpers) : ref.output.store(row, col, acc(m, r), helpers);
      store.push(`if (n0 + ${r} < ${N}) {`, ...indent(lines), "}");
    }
  }
  const kind = ref.format === "f32" ? (CH === 4 ? "float4" : "scalar") : ref.format === "q8_0" ? "int4 of 16 quants" : ref.format === "q4_0" ? "uint4 of 32 nibbles" : CH === 8 ? "uint4 of 8 halves" : "scalar";
  return {
    n: N, rows: R, weights: W, format: ref.format, chunks, kind, inFlight: U, splits: S, split: S > 1, groups: t.warps / S, stride: 32 * S * U,
    prologue: !x.identity, rotates: seg.rotation !== undefined, partials, declare, loads, loop, reduce, combine, store,
  };
}

// ------------------------------------------------------------------------------------------ prefill

/** One weight element (row gn, column gk) as a float, in its storage format. */
function weightElement(wt: WeightRef, K: number): string {
  switch (wt.format) {
    case "f32": return `${wt.data}[gn * ${K} + gk]`;
    case "f16": return `llmc_f16(${wt.data}[gn * ${K} + gk])`;
    case "bf16": return `llmc_bf16(${wt.data}[gn * ${K} + gk])`;
    case "q8_0": return `((float)${wt.data}[gn * ${K} + gk] * llmc_f16(${wt.scales}[gn * ${K / 32} + (gk >> 5)]))`;
    case "q4_0":
      return `((float)((int)((${wt.data}[gn * ${K / 2} + (gk >> 5) * 16 + (gk & 15)] >> ((gk & 16) >> 2)) & 15u) - 8) * llmc_f16(${wt.scales}[gn * ${K / 32} + (gk >> 5)]))`;
  }
}

const SHARED_LIMIT = 48 * 1024;

/** One prefill segment: its tiled kernel, then the rotation in place when it rotates. */
function gemm(ctx: DispatchContext, seg: LinearSegment, x: LinearX): Emitted {
  const params = new ParamSet(ctx);
  const helpers = new Set<string>();
  const srcPtr = x.sources.map((s) => {
    const a = ctx.arg(s.id);
    return params.buffer(a.buffer, a.offsetBytes, storageType(s.type), "read");
  });
  const ref = segmentRefs(ctx, params, seg, x);
  const f = ref.format;
  const half = f === "f32" ? (ctx.env.f32TensorCores ? "__half" : null) : f === "bf16" ? (ctx.tuning.minArch.major >= 8 ? "__nv_bfloat16" : null) : "__half";
  const sourceBases = x.sources.map((s, i) => `const int sb${i} = ${offsetExpr("gm", x.rowShape, s.rowStrides, params.dim)};`);
  const rows = params.dim(x.rows);
  const xLoad = [...sourceBases, ...xElement(x, srcPtr, (i) => `sb${i}`, "gk", "xv", null, helpers)];
  // The prologue's row scales: one warp per row of the tile, reductions over the whole row.
  const scalePass = (bm: number, warps: number): string[] => {
    if (!x.factoring) return [];
    const reds = x.factoring.reductions;
    const loop = xElement(x, srcPtr, (i) => `sb${i}`, "k", null, (j) => `red${j}`, helpers);
    return [
      `__shared__ float llmc_rs[${bm}];`,
      `for (int mm = threadIdx.x >> 5; mm < ${bm}; mm += ${warps}) {`,
      "  const int gm = m0 + mm;",
      ...reds.map((rd, j) => `  float red${j} = ${reductionStart(lang, rd.op)};`),
      `  if (gm < ${rows}) {`,
      ...indent(sourceBases, 4),
      `    for (int k = (threadIdx.x & 31); k < ${x.K}; k += 32) {`,
      ...indent(loop, 6),
      "    }",
      "  }",
      ...reds.map((rd, j) => `  red${j} = ${rd.op === "amax" ? "llmc_warp_max" : "llmc_warp_sum"}(red${j});`),
      ...indent(rowScale(lang, x, (j) => `red${j}`, "sc", helpers)),
      "  if ((threadIdx.x & 31) == 0) llmc_rs[mm] = sc;",
      "}",
      "__syncthreads();",
    ];
  };
  const acc = (raw: string, row: string) => (x.factoring ? `(${raw} * llmc_rs[${row}])` : raw);
  const epilogue = (accOf: (w: number) => string) => ref.output.store("gm", "gn", accOf, helpers);
  const { M, K } = x;
  const { N } = ref;
  const W = ref.weights.length;
  let kernel: CudaKernel;
  let grid: [number, number, number];
  let block: number;
  const common = { m: rows, n: N, k: K, weights: W, format: f, xLoad };
  const wmmaShape = half ? wmmaTile(ctx, W, M, N) : null;
  if (half && wmmaShape) {
    const s = wmmaShape;
    const t = ctx.tuning.wmma;
    block = s.warpsM * s.warpsN * 32;
    const bf = half === "__nv_bfloat16";
    const toHalf = bf ? "__float2bfloat16" : "__float2half";
    const wLoads = ref.weights.map((wt, w) => {
      const dst = `ws[(${w * s.bn} + nn) * ${s.ldk} + kk]`;
      if (wt.format === "f16" && !bf) return `${dst} = in ? __ushort_as_half(${wt.data}[gn * ${K} + gk]) : __float2half(0.0f);`;
      if (wt.format === "bf16" && bf) return `${dst} = in ? __ushort_as_bfloat16(${wt.data}[gn * ${K} + gk]) : __float2bfloat16(0.0f);`;
      return `${dst} = ${toHalf}(in ? ${weightElement(wt, K)} : 0.0f);`;
    });
    const staged = K % 8 === 0 ? wmmaStaging(ctx, params, x, ref, srcPtr, s, t.bk, block, half, helpers) : null;
    kernel = makeKernel(ctx.dispatch.kernel, "linear_wmma", params, [...helpers], {
      ...common, half, toHalf, warpsM: s.warpsM, warpsN: s.warpsN, fragsM: s.fragsM, fragsN: s.fragsN, bm: s.bm, bn: s.bn, bk: t.bk, ldk: s.ldk, ldc: s.ldc,
      xsBytes: s.xsBytes, smemBytes: s.smemBytes, block, scalePass: scalePass(s.bm, block / 32),
      wLoads, staged, pairs: seg.rotation !== undefined,
      epilogue: seg.rotation
        ? ref.output.storePair("gm", "gn", (w) => acc(`cw[(${w * 16} + fr) * ${s.ldc} + fc]`, "mm"), (w) => acc(`cw[(${w * 16} + fr) * ${s.ldc} + fc + 1]`, "mm"), helpers)
        : epilogue((w) => acc(`cw[(${w * 16} + fr) * ${s.ldc} + fc]`, "mm")),
    });
    grid = [Math.max(1, Math.ceil(M / s.bm)), Math.ceil(N / s.bn), 1];
  } else {
    const t = ctx.tuning.simt;
    const bm = t.threadsM * t.tm;
    const bn = t.threadsN * t.tn;
    block = t.threadsM * t.threadsN;
    const wLoads = ref.weights.map((wt, w) => `ws[${w}][kk][nn] = in ? ${weightElement(wt, K)} : 0.0f;`);
    kernel = makeKernel(ctx.dispatch.kernel, "linear_simt", params, [...helpers], {
      ...common, threadsM: t.threadsM, threadsN: t.threadsN, tm: t.tm, tn: t.tn, bm, bn, bk: t.bk, block, scalePass: scalePass(bm, block / 32),
      wLoads, epilogue: epilogue((w) => acc(`acc[${w}][i][j]`, `ty + i * ${t.threadsM}`)),
    });
    grid = [Math.max(1, Math.ceil(M / bm)), Math.ceil(N / bn), 1];
  }
  if (grid[1] > 65535) throw new Error(`${ctx.label()}: ${N} weight rows are more than the tiled kernel's grid takes`);
  const kernels = [kernel];
  const launches: CudaLaunch[] = [{ kernel: kernel.name, grid, block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }];
  // The tensor-core kernel rotates pairs in its epilogue; the f32 tiles spread a pair over two threads.
  if (seg.rotation && !wmmaShape) {
    const r = rotateInPlace(ctx, seg, x, N);
    kernels.push(...r.kernels);
    launches.push(...r.launches);
  }
  return { kernels, launches };
}

/** The tensor-core kernel's staging when K is a multiple of 8: each thread moves groups of 8
 *  consecutive k of one row as one 16-byte word of 8 halves (f16/bf16 weights copied as they are;
 *  x, f32 and quantized weights converted in registers), and loads the next K step's groups into
 *  registers while the tensor cores work on the current one. `load` (reading `k0`) fills the
 *  registers from global memory, `store` writes them to the shared tiles. */
function wmmaStaging(ctx: DispatchContext, params: ParamSet, x: LinearX, ref: SegmentRefs, srcPtr: string[], s: NonNullable<ReturnType<typeof wmmaTile>>, bk: number, block: number, half: string, helpers: Set<string>) {
  const { K } = x;
  const rows = params.dim(x.rows);
  const bits = half === "__nv_bfloat16" ? (v: string) => `(unsigned)__bfloat16_as_ushort(__float2bfloat16(${v}))` : (v: string) => `(unsigned)__half_as_ushort(__float2half(${v}))`;
  /** Eight floats as one word of eight halves, element 0 lowest. */
  const packed = (values: string[]) => `uint4{${[0, 2, 4, 6].map((j) => `${bits(values[j]!)} | (${bits(values[j + 1]!)} << 16)`).join(", ")}}`;
  const eight = (f: (j: number) => string) => Array.from({ length: 8 }, (_, j) => f(j));
  const groups = bk / 8;
  const declare: string[] = [];
  const load: string[] = [];
  const store: string[] = [];
  // Thread t's g-th group of a [extent][bk] tile: row e / groups, columns 8 · (e % groups).
  const each = (extent: number, what: (g: number, guard: string) => void) => {
    const total = extent * groups;
    for (let g = 0; g < Math.ceil(total / block); g++) what(g, total % block === 0 || (g + 1) * block <= total ? "" : `threadIdx.x + ${g * block} < ${total}`);
  };
  const at = (g: number, row: string) => [`const int e = threadIdx.x + ${g * block};`, `const int ${row} = e / ${groups};`, `const int kk = (e % ${groups}) * 8;`];
  const guarded = (guard: string, lines: string[]) => (guard ? [`if (${guard}) {`, ...indent(lines), "}"] : ["{", ...indent(lines), "}"]);

  // x: float4 pairs when x is f32 read as it is, with 16-byte aligned rows; else element by element.
  const s0 = x.sources[0]!;
  const a0 = ctx.arg(s0.id);
  const aligned = s0.rowStrides.every((d) => constOf(d) !== null && constOf(d)! % 4 === 0) && a0.offsetBytes % 16 === 0;
  const vecX = x.identity && s0.type === "f32" && s0.along === 1 && aligned;
  const sb0 = offsetExpr("gm", x.rowShape, s0.rowStrides, params.dim);
  each(s.bm, (g, guard) => {
    const v = `xr${g}`;
    declare.push(`uint4 ${v};`);
    const body = [...at(g, "mm"), "const int gm = m0 + mm;", "const int gk8 = k0 + kk;"];
    if (vecX) {
      body.push(
        "float4 lo = make_float4(0.0f, 0.0f, 0.0f, 0.0f), hi = lo;",
        `if (gm < ${rows} && gk8 < ${K}) {`,
        `  const float4* p = reinterpret_cast<const float4*>(${srcPtr[0]} + ${sb0} + gk8);`,
        "  lo = __ldg(p);",
        "  hi = __ldg(p + 1);",
        "}",
        `${v} = ${packed(["lo.x", "lo.y", "lo.z", "lo.w", "hi.x", "hi.y", "hi.z", "hi.w"])};`,
      );
    } else {
      const used = prologueSources(x, true, false);
      const sourceBases = x.sources.flatMap((src, i) => (used.has(i) ? [`const int sb${i} = ${offsetExpr("gm", x.rowShape, src.rowStrides, params.dim)};`] : []));
      body.push(
        "float xf[8];",
        "#pragma unroll",
        "for (int j = 0; j < 8; ++j) {",
        "  const int gk = gk8 + j;",
        "  float xv = 0.0f;",
        `  if (gm < ${rows} && gk < ${K}) {`,
        ...indent([...sourceBases, ...xElement(x, srcPtr, (i) => `sb${i}`, "gk", "xv", null, helpers)], 4),
        "  }",
        "  xf[j] = xv;",
        "}",
        `${v} = ${packed(eight((j) => `xf[${j}]`))};`,
      );
    }
    load.push(...guarded(guard, body));
    store.push(...guarded(guard, [...at(g, "mm"), `*reinterpret_cast<uint4*>(xs + mm * ${s.ldk} + kk) = ${v};`]));
  });

  // Weights: f16/bf16 in their own type are copied as raw 16-byte words.
  ref.weights.forEach((wt, w) => {
    const raw = (wt.format === "f16" && half === "__half") || (wt.format === "bf16" && half === "__nv_bfloat16");
    each(s.bn, (g, guard) => {
      const v = `wr${w}_${g}`;
      declare.push(`uint4 ${v};`);
      const body = [...at(g, "nn"), "const int gn = n0 + nn;", "const int gk8 = k0 + kk;", `const bool in = gn < ${ref.N} && gk8 < ${K};`];
      if (raw) {
        body.push(`${v} = uint4{0u, 0u, 0u, 0u};`, `if (in) ${v} = __ldg(reinterpret_cast<const uint4*>(${wt.data} + gn * ${K} + gk8));`);
      } else {
        switch (wt.format) {
          case "f32":
          case "f16":
          case "bf16": {
            const element = `${wt.data}[gn * ${K} + gk8 + j]`;
            const value = wt.format === "f32" ? element : `${wt.format === "f16" ? "llmc_f16" : "llmc_bf16"}(${element})`;
            body.push("float wf[8];", "#pragma unroll", `for (int j = 0; j < 8; ++j) wf[j] = in ? ${value} : 0.0f;`, `${v} = ${packed(eight((j) => `wf[${j}]`))};`);
            break;
          }
          case "q8_0":
          case "q4_0": {
            // 8 quants (q8_0) or 8 nibbles (q4_0: byte j of a 32-element block holds elements j and
            // j + 16) of one block, and the block's scale.
            const q8 = wt.format === "q8_0";
            const word = q8 ? `${wt.data} + gn * ${K} + gk8` : `${wt.data} + gn * ${K / 2} + (gk8 >> 5) * 16 + (gk8 & 15)`;
            body.push(
              "uint2 q = uint2{0u, 0u};",
              "float d = 0.0f;",
              "if (in) {",
              `  q = __ldg(reinterpret_cast<const uint2*>(${word}));`,
              `  d = llmc_f16(__ldg(${wt.scales} + gn * ${K / 32} + (gk8 >> 5)));`,
              "}",
              ...(q8 ? [] : ["const int sh = (gk8 & 16) >> 2;"]),
              `${v} = ${packed(eight((j) => {
                const part = `q.${j < 4 ? "x" : "y"}`;
                return q8 ? `(float)(signed char)(${part} >> ${8 * (j % 4)}) * d` : `(float)((int)((${part} >> (${8 * (j % 4)} + sh)) & 15u) - 8) * d`;
              }))};`,
            );
            break;
          }
        }
      }
      load.push(...guarded(guard, body));
      store.push(...guarded(guard, [...at(g, "nn"), `*reinterpret_cast<uint4*>(ws + (${w * s.bn} + nn) * ${s.ldk} + kk) = ${v};`]));
    });
  });
  return { declare, load, store };
}

/** The block tile of a tensor-core launch over M x N outputs (see CudaTuning.wmma). Shared memory
 *  holds the K step tiles, then each warp's epilogue scratch, then the prologue's row scales. */
function wmmaTile(ctx: DispatchContext, W: number, M: number, N: number) {
  const t = ctx.tuning.wmma;
  const ldk = t.bk + 8;
  const ldc = 20;
  const fitting = t.tiles.flatMap((tile) => {
    const bm = tile.warpsM * tile.fragsM * 16;
    const bn = tile.warpsN * tile.fragsN * 16;
    const xsBytes = bm * ldk * 2;
    const smemBytes = Math.max(xsBytes + W * bn * ldk * 2, tile.warpsM * tile.warpsN * W * 16 * ldc * 4);
    const blocks = Math.ceil(M / bm) * Math.ceil(N / bn);
    return smemBytes + bm * 4 <= SHARED_LIMIT ? [{ ...tile, bm, bn, ldk, ldc, xsBytes, smemBytes, blocks }] : [];
  });
  if (fitting.length === 0) return null;
  return fitting.find((s) => s.blocks >= ctx.tuning.sms) ?? fitting.reduce((a, b) => (b.blocks > a.blocks ? b : a));
}

/** RoPE on a segment's output after a tiled kernel wrote it: each adjacent pair of each head. */
function rotateInPlace(ctx: DispatchContext, seg: LinearSegment, x: LinearX, N: number): Emitted {
  const params = new ParamSet(ctx);
  const helpers = new Set<string>();
  const pairs = params.extent(mulDim(x.rows, constDim(N / 2)));
  const t = ctx.tuning.elementwise;
  checkIndexRange(pairs.max * 2 + t.block * t.maxBlocks, ctx.label());
  const body = [
    `const int m = i / ${N / 2};`,
    `const int c = 2 * (i % ${N / 2});`,
    ...rotateStored(params, seg, x.rowShape, "m", "c", helpers),
  ];
  const kernel = makeKernel(ctx.dispatch.kernel, "rotate", params, [...helpers], { pairs: pairs.code, n: N, headDim: seg.rotation!.headDim, body, block: t.block });
  return { kernels: [kernel], launches: [{ kernel: kernel.name, grid: strideGrid(pairs.max, t.block, t.maxBlocks), block: [t.block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }] };
}

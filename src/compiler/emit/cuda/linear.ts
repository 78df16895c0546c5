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
//   matvec   decode (M ≤ a few rows): warps stream weight rows with 16-byte loads, dequantising
//            f16 / bf16 / q8_0 / q4_0 in registers, and reduce with warp shuffles — memory-bound, so
//            every byte of W is read once per step. All segments in one kernel (block ranges);
//            a warp owns an even number of rows when it rotates, so RoPE pairs stay together.
//   wmma     prefill with half or quantized weights: tiles of x and W staged in shared memory as
//            f16 (bf16 for bf16 weights), 16x16x16 tensor-core fragments, f32 accumulation.
//   simt     prefill with f32 weights (exact f32, like the reference) or where tensor cores cannot
//            take the format: register-tiled f32 products.
// A prefill segment is one launch of its kernel (rows scaled by a prologue pre-pass in the same
// kernel), then, when it rotates, a launch of the rotation in place.
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
  const segments = refs.map((ref, si) => {
    const seg = segmentCode(ctx, x, k.segments[si]!, ref, srcPtr, helpers);
    const blocks = Math.ceil(ref.N / (t.warps * seg.rows));
    const range = { start: blockStart, end: blockStart + blocks };
    blockStart = range.end;
    return { ...seg, index: si, start: range.start, end: range.end, first: si === 0, last: si === refs.length - 1, bid: range.start === 0 ? "blockIdx.x" : `(blockIdx.x - ${range.start})` };
  });
  const block = t.warps * 32;
  const kernel = makeKernel(ctx.dispatch.kernel, "linear_matvec", params, [...helpers], {
    m: M, k: K, warps: t.warps, block, single: segments.length === 1, segments, prologue: !x.identity,
  });
  return single(ctx, kernel, params, [blockStart, 1, 1], block);
}

function segmentCode(ctx: DispatchContext, x: LinearX, seg: LinearSegment, ref: SegmentRefs, srcPtr: string[], helpers: Set<string>) {
  const t = ctx.tuning.matvec;
  const { M, K } = x;
  const { N, weights } = ref;
  const W = weights.length;
  let R = Math.max(1, Math.min(t.rowsPerWarp, N));
  if (seg.rotation) R = Math.min(N, R + (R % 2)); // RoPE pairs stay in one warp (N is even)
  const CH = chunkOf(ref.format, K);
  const declare: string[] = [];
  const loop: string[] = [];
  for (let r = 0; r < R; r++) declare.push(`const int nr${r} = n0 + ${r} < ${N} ? n0 + ${r} : ${N - 1};`);
  for (let w = 0; w < W; w++) for (let m = 0; m < M; m++) for (let r = 0; r < R; r++) declare.push(`float acc${w}_${m}_${r} = 0.0f;`);
  const reds = x.factoring?.reductions ?? [];
  for (let m = 0; m < M; m++) reds.forEach((rd, j) => declare.push(`float red${j}_${m} = ${reductionStart(lang, rd.op)};`));

  // x: this chunk of every row, in registers.
  for (let m = 0; m < M; m++) {
    loop.push(`float x${m}[${CH}];`);
    const bases = x.sources.map((s) => rowOffset(m, x.rowShape, s.rowStrides));
    const s0 = x.sources[0]!;
    const a0 = ctx.arg(s0.id);
    const vec = x.identity && s0.type === "f32" && s0.along === 1 && K % 4 === 0 && CH % 4 === 0 && bases[0]! % 4 === 0 && a0.offsetBytes % 16 === 0;
    if (vec) {
      for (let q = 0; q < CH / 4; q++) {
        loop.push(`{ const float4 t = __ldg(reinterpret_cast<const float4*>(${srcPtr[0]}) + ${bases[0]! / 4} + c * ${CH / 4} + ${q}); x${m}[${4 * q}] = t.x; x${m}[${4 * q + 1}] = t.y; x${m}[${4 * q + 2}] = t.z; x${m}[${4 * q + 3}] = t.w; }`);
      }
    } else {
      for (let e = 0; e < CH; e++) {
        loop.push(...xElement(x, srcPtr, (i) => String(bases[i]!), `(c * ${CH} + ${e})`, `x${m}[${e}]`, (j) => `red${j}_${m}`, helpers));
      }
    }
  }
  const dot = (m: number, terms: string[]) => terms.map((v, e) => `${v} * x${m}[${e}]`).join(" + ");
  weights.forEach((wt, w) => {
    for (let r = 0; r < R; r++) {
      const accs = (m: number) => `acc${w}_${m}_${r}`;
      const nr = `nr${r}`;
      loop.push("{");
      switch (wt.format) {
        case "f32":
          if (CH === 4) {
            loop.push(`  const float4 t = __ldg(reinterpret_cast<const float4*>(${wt.data}) + ${nr} * ${K / 4} + c);`);
            for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += ${dot(m, ["t.x", "t.y", "t.z", "t.w"])};`);
          } else {
            loop.push(`  const float t = __ldg(${wt.data} + ${nr} * ${K} + c);`);
            for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += t * x${m}[0];`);
          }
          break;
        case "f16":
        case "bf16": {
          const cvt = wt.format === "f16" ? "llmc_f16" : "llmc_bf16";
          if (CH === 8) {
            loop.push(`  const uint4 t = __ldg(reinterpret_cast<const uint4*>(${wt.data}) + ${nr} * ${K / 8} + c);`);
            const terms: string[] = [];
            WORDS.forEach((wd, i) => {
              loop.push(`  const float f${2 * i} = ${cvt}((unsigned short)(t.${wd} & 0xffffu));`);
              loop.push(`  const float f${2 * i + 1} = ${cvt}((unsigned short)(t.${wd} >> 16));`);
              terms.push(`f${2 * i}`, `f${2 * i + 1}`);
            });
            for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += ${dot(m, terms)};`);
          } else {
            loop.push(`  const float t = ${cvt}(__ldg(${wt.data} + ${nr} * ${K} + c));`);
            for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += t * x${m}[0];`);
          }
          break;
        }
        case "q8_0": {
          loop.push(`  const int4 t = __ldg(reinterpret_cast<const int4*>(${wt.data}) + ${nr} * ${K / 16} + c);`);
          loop.push(`  const float d = llmc_f16(__ldg(${wt.scales} + ${nr} * ${K / 32} + (c >> 1)));`);
          const terms: string[] = [];
          WORDS.forEach((wd) => {
            for (let b = 0; b < 4; b++) terms.push(`(float)(signed char)(t.${wd} >> ${8 * b})`);
          });
          for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += d * (${dot(m, terms)});`);
          break;
        }
        case "q4_0": {
          loop.push(`  const uint4 t = __ldg(reinterpret_cast<const uint4*>(${wt.data}) + ${nr} * ${K / 32} + c);`);
          loop.push(`  const float d = llmc_f16(__ldg(${wt.scales} + ${nr} * ${K / 32} + c));`);
          const terms = new Array<string>(32);
          WORDS.forEach((wd, i) => {
            for (let b = 0; b < 4; b++) {
              const j = 4 * i + b;
              terms[j] = `(float)((int)((t.${wd} >> ${8 * b}) & 15u) - 8)`;
              terms[16 + j] = `(float)((int)((t.${wd} >> ${8 * b + 4}) & 15u) - 8)`;
            }
          });
          for (let m = 0; m < M; m++) loop.push(`  ${accs(m)} += d * (${dot(m, terms)});`);
          break;
        }
      }
      loop.push("}");
    }
  });
  const reduce: string[] = [];
  for (let w = 0; w < W; w++) for (let m = 0; m < M; m++) for (let r = 0; r < R; r++) reduce.push(`acc${w}_${m}_${r} = llmc_warp_sum(acc${w}_${m}_${r});`);
  for (let m = 0; m < M; m++) {
    reds.forEach((rd, j) => reduce.push(`red${j}_${m} = ${rd.op === "amax" ? "llmc_warp_max" : "llmc_warp_sum"}(red${j}_${m});`));
    if (x.factoring) reduce.push(...rowScale(lang, x, (j) => `red${j}_${m}`, `sc${m}`, helpers));
  }
  const acc = (m: number, r: number) => (w: number) => (x.factoring ? `(acc${w}_${m}_${r} * sc${m})` : `acc${w}_${m}_${r}`);
  const store: string[] = [];
  for (let m = 0; m < M; m++) {
    for (let r = 0; r < R; r += seg.rotation ? 2 : 1) {
      const [row, col] = [intLiteral(m), `(n0 + ${r})`];
      const lines = seg.rotation ? ref.output.storePair(row, col, acc(m, r), acc(m, r + 1), helpers) : ref.output.store(row, col, acc(m, r), helpers);
      store.push(`if (n0 + ${r} < ${N}) {`, ...indent(lines), "}");
    }
  }
  const loads = ref.format === "f32" ? (CH === 4 ? "float4" : "scalar") : ref.format === "q8_0" ? "int4 of 16 quants" : ref.format === "q4_0" ? "uint4 of 32 nibbles" : CH === 8 ? "uint4 of 8 halves" : "scalar";
  return { n: N, rows: R, weights: W, format: ref.format, chunk: CH, chunks: K / CH, loads, prologue: !x.identity, rotates: seg.rotation !== undefined, declare, loop, reduce, store };
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
  const wmmaShape = half ? wmmaTile(ctx, W) : null;
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
    kernel = makeKernel(ctx.dispatch.kernel, "linear_wmma", params, [...helpers], {
      ...common, half, toHalf, warpsM: s.warpsM, warpsN: s.warpsN, fragsM: t.fragsM, fragsN: t.fragsN, bm: s.bm, bn: s.bn, bk: t.bk, ldk: s.ldk, ldc: s.ldc,
      xsBytes: s.xsBytes, smemBytes: s.smemBytes, block, scalePass: scalePass(s.bm, block / 32),
      wLoads, epilogue: epilogue((w) => acc(`cs[(${w * s.bm} + mm) * ${s.ldc} + nn]`, "mm")),
    });
    grid = [Math.ceil(N / s.bn), Math.max(1, Math.ceil(M / s.bm)), 1];
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
    grid = [Math.ceil(N / bn), Math.max(1, Math.ceil(M / bm)), 1];
  }
  if (grid[1] > 65535) throw new Error(`${ctx.label()}: ${M} rows are more than the tiled kernel's grid takes`);
  const kernels = [kernel];
  const launches: CudaLaunch[] = [{ kernel: kernel.name, grid, block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }];
  if (seg.rotation) {
    const r = rotateInPlace(ctx, seg, x, N);
    kernels.push(...r.kernels);
    launches.push(...r.launches);
  }
  return { kernels, launches };
}

function wmmaTile(ctx: DispatchContext, W: number) {
  const t = ctx.tuning.wmma;
  const ldk = t.bk + 8;
  for (let warpsN = t.warpsN; warpsN >= 1; warpsN--) {
    const bm = t.warpsM * t.fragsM * 16;
    const bn = warpsN * t.fragsN * 16;
    const xsBytes = bm * ldk * 2;
    const ldc = bn + 4;
    const smemBytes = Math.max(xsBytes + W * bn * ldk * 2, W * bm * ldc * 4);
    if (smemBytes + bm * 4 <= SHARED_LIMIT) return { warpsM: t.warpsM, warpsN, bm, bn, ldk, ldc, xsBytes, smemBytes };
  }
  return null;
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

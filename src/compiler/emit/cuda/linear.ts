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
// `matmul` is the general batched product for everything else.

import type { ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import type { LinearKernel, LinearSegment } from "../../plan/plan.js";
import { renderExpr } from "../shared/expr.js";
import { linearOf, linearX, statementBlock, type LinearX } from "../shared/linear.js";
import { matmulGeometry } from "../shared/geometry.js";
import type { DispatchContext } from "./context.js";
import type { StorageDType } from "../../target/storage.js";
import type { Emitted } from "./elementwise.js";
import { single } from "./elementwise.js";
import { broadcastStrides, checkIndexRange, makeKernel, offsetExpr, ParamSet, product, strideGrid, type CudaKernel, type CudaLaunch } from "./kernel.js";
import { cudaLang, f32Literal, intLiteral, loadAs, storageType, storeAs } from "./lang.js";
import { deviceLayout } from "../../target/storage.js";

const lang = cudaLang();

const block = (program: ExprProgram, input: (i: number) => string, types: readonly DType[], targets: string[], helpers: Set<string>) =>
  statementBlock(lang, program, input, types, targets, helpers);

const indent = (lines: string[], n = 2) => lines.map((l) => " ".repeat(n) + l);

// ------------------------------------------------------------------------------------------ x

/** Element offset of row `m` (a number) of a tensor read through `rowStrides` over `rowShape`. */
function rowOffset(m: number, rowShape: readonly number[], rowStrides: readonly number[]): number {
  let off = 0;
  let rest = m;
  for (let d = rowShape.length - 1; d >= 0; d--) {
    off += (rest % rowShape[d]!) * rowStrides[d]!;
    rest = Math.floor(rest / rowShape[d]!);
  }
  return off;
}

const reduceInit = (op: string) => (op === "amax" ? f32Literal(-Infinity) : "0.0f");

/** The prologue's per-element work at column `k` of a row whose source bases are `base(i)`: the
 *  loads, the elementwise factor into `target` (when given) and the reduction steps into `red(j)`
 *  (when given). */
function prologueElement(x: LinearX, ptr: string[], base: (i: number) => string, k: string, target: string | null, red: ((j: number) => string) | null, helpers: Set<string>): string[] {
  const lines: string[] = ["{"];
  x.sources.forEach((s, i) => {
    const at = s.along === 0 ? base(i) : s.along === 1 ? `${base(i)} + ${k}` : `${base(i)} + ${k} * ${s.along}`;
    lines.push(`  const ${lang.type(s.type)} s${i} = ${loadAs(s.type, `${ptr[i]}[${at}]`)};`);
  });
  const types = x.sources.map((s) => s.type);
  if (target !== null) {
    if (x.identity) lines.push(`  ${target} = s0;`);
    else lines.push(...indent(block(x.factoring!.elementwise, (i) => `s${i}`, types, [target], helpers)));
  }
  if (red !== null && x.factoring) {
    x.factoring.reductions.forEach((rd, j) => {
      const r = renderExpr(rd.arg, lang, (i) => `s${i}`, undefined, types);
      r.helpers.forEach((h) => helpers.add(h));
      lines.push("  {", ...indent([...r.pre, ...r.body], 4), `    ${lang.reduceStep(rd.op, red(j), r.outputs[0]!, "f32")}`, "  }");
    });
  }
  lines.push("}");
  // Only the sources this element's programs read.
  return lines.filter((l, i) => {
    const m = /^ {2}const \w+ (s\d+) = /.exec(l);
    return !m || i === 0 || lines.slice(i + 1).some((r) => new RegExp(`\\b${m[1]}\\b`).test(r));
  });
}

/** After the reductions' partial sums are complete: the row scale into `target`. */
function finishScale(x: LinearX, red: (j: number) => string, target: string, helpers: Set<string>): string[] {
  const f = x.factoring!;
  const lines: string[] = [];
  f.reductions.forEach((rd, j) => {
    if (rd.op === "mean") lines.push(`${red(j)} = ${red(j)} / ${f32Literal(x.K)};`);
  });
  lines.push(`float ${target};`);
  lines.push(...block(f.scale, red, f.reductions.map(() => "f32"), [target], helpers));
  return lines;
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
  /** Where outputs go: a pointer name (with P · perPast already added when in place). */
  out: string;
  outType: DType;
  /** Declarations the output pointer needs. */
  outDecl: string[];
  usesP: boolean;
  epilogue: (acc: (w: number) => string, o: string, helpers: Set<string>) => { lines: string[]; value: string };
  rotation: { headDim: number; half: number; block: (ri: string, helpers: Set<string>) => string[] } | null;
}

function segmentRefs(ctx: DispatchContext, params: ParamSet, seg: LinearSegment, x: LinearX, si: number): SegmentRefs {
  const N = ctx.shape(seg.weights[0]!)[0]!;
  checkIndexRange(N * x.K, `${ctx.label()}'s weight`);
  checkIndexRange(x.M * N, ctx.label());
  const formats = seg.weights.map((id) => ctx.format(id));
  if (formats.some((f) => f !== formats[0])) throw new Error(`internal: ${ctx.label()} mixes weight formats ${formats.join(", ")}`);
  const weights = seg.weights.map((id, i): WeightRef => {
    const a = ctx.arg(id);
    const f = formats[i]!;
    if (f === "f32") return { format: f, data: params.pointer(a.buffer, a.offsetBytes, "float", "read"), scales: "" };
    if (f === "f16" || f === "bf16") return { format: f, data: params.pointer(a.buffer, a.offsetBytes, "unsigned short", "read"), scales: "" };
    const layout = deviceLayout(f, [N, x.K]);
    const data = params.pointer(a.buffer, 0, f === "q8_0" ? "signed char" : "unsigned char", "read");
    return { format: f, data, scales: params.pointer(a.buffer, layout.scaleOffset, "unsigned short", "read") };
  });
  const outShape = [...x.rowShape, N];
  const extraTypes = seg.extras.map((id) => ctx.node(id).ty.dtype);
  const extraAccess = seg.extras.map((id, i) => {
    const a = ctx.arg(id);
    const name = params.pointer(a.buffer, a.offsetBytes, storageType(extraTypes[i]!), "read");
    return (o: string) => loadAs(extraTypes[i]!, `${name}[${offsetExpr(o, outShape, broadcastStrides(ctx.shape(id), outShape))}]`);
  });
  const outType = ctx.node(seg.node).ty.dtype;
  const o = ctx.output(seg.node);
  const base = params.pointer(o.arg.buffer, o.arg.offsetBytes, storageType(outType), "write");
  const out = o.perPast ? `outp${si}` : base;
  const outDecl = o.perPast ? [`${storageType(outType)}* const ${out} = ${base} + llmc_P * ${intLiteral(o.perPast)};`] : [];
  const W = seg.weights.length;
  const types = [...seg.weights.map(() => "f32" as const), ...extraTypes];
  const epilogue = (acc: (w: number) => string, at: string, helpers: Set<string>) => {
    const e = renderExpr(seg.epilogue, lang, (i) => (i < W ? acc(i) : extraAccess[i - W]!(at)), undefined, types);
    e.helpers.forEach((h) => helpers.add(h));
    return { lines: [...e.pre, ...e.body], value: storeAs(outType, e.outputs[0]!) };
  };
  let rotation: SegmentRefs["rotation"] = null;
  const rot = seg.rotation;
  if (rot) {
    const half = rot.headDim / 2;
    const angleShape = [...x.rowShape, half];
    const rotTypes = rot.inputs.map((id) => ctx.node(id).ty.dtype);
    const rotAccess = rot.inputs.map((id, i) => {
      const a = ctx.arg(id);
      const name = params.pointer(a.buffer, a.offsetBytes, storageType(rotTypes[i]!), "read");
      return (ri: string) => loadAs(rotTypes[i]!, `${name}[${offsetExpr(ri, angleShape, broadcastStrides(ctx.shape(id), angleShape))}]`);
    });
    rotation = { headDim: rot.headDim, half, block: (ri, helpers) => block(rot.program, (i) => rotAccess[i]!(ri), rotTypes, ["cs", "sn"], helpers) };
  }
  return { N, format: formats[0]!, weights, out, outType, outDecl, usesP: o.perPast > 0, epilogue, rotation };
}

export function emitLinear(ctx: DispatchContext): Emitted {
  const k = linearOf(ctx.dispatch);
  const x = linearX(ctx, k);
  if (x.M <= ctx.tuning.matvec.maxRows) return matvec(ctx, k, x);
  const kernels: CudaKernel[] = [];
  const launches: CudaLaunch[] = [];
  k.segments.forEach((seg, si) => {
    const e = gemm(ctx, seg, x, si);
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
  const params = new ParamSet();
  const helpers = new Set<string>();
  const srcPtr = x.sources.map((s) => {
    const a = ctx.arg(s.id);
    return params.pointer(a.buffer, a.offsetBytes, storageType(s.type), "read");
  });
  const refs = k.segments.map((seg, si) => segmentRefs(ctx, params, seg, x, si));
  const usesP = refs.some((r) => r.usesP);
  const step = usesP ? params.pointer(ctx.env.paramsBuffer, 0, "int", "read") : "";
  let blockStart = 0;
  const segments = refs.map((ref, si) => {
    const seg = segmentCode(ctx, x, ref, srcPtr, helpers);
    const blocks = Math.ceil(ref.N / (t.warps * seg.rows));
    const range = { start: blockStart, end: blockStart + blocks };
    blockStart = range.end;
    return { ...seg, index: si, start: range.start, end: range.end, first: si === 0, last: si === refs.length - 1, bid: range.start === 0 ? "blockIdx.x" : `(blockIdx.x - ${range.start})` };
  });
  const block = t.warps * 32;
  const kernel = makeKernel(ctx.dispatch.kernel, "linear_matvec", params, [...helpers], {
    m: M, k: K, warps: t.warps, block, usesP, step, single: segments.length === 1, segments, prologue: !x.identity,
  });
  return single(ctx, kernel, params, [blockStart, 1, 1], block);
}

function segmentCode(ctx: DispatchContext, x: LinearX, ref: SegmentRefs, srcPtr: string[], helpers: Set<string>) {
  const t = ctx.tuning.matvec;
  const { M, K } = x;
  const { N, weights } = ref;
  const W = weights.length;
  let R = Math.max(1, Math.min(t.rowsPerWarp, N));
  if (ref.rotation) R = Math.min(N, R + (R % 2)); // RoPE pairs stay in one warp (N is even)
  const CH = chunkOf(ref.format, K);
  const declare: string[] = [...ref.outDecl];
  const loop: string[] = [];
  for (let r = 0; r < R; r++) declare.push(`const int nr${r} = n0 + ${r} < ${N} ? n0 + ${r} : ${N - 1};`);
  for (let w = 0; w < W; w++) for (let m = 0; m < M; m++) for (let r = 0; r < R; r++) declare.push(`float acc${w}_${m}_${r} = 0.0f;`);
  const reds = x.factoring?.reductions ?? [];
  for (let m = 0; m < M; m++) reds.forEach((rd, j) => declare.push(`float red${j}_${m} = ${reduceInit(rd.op)};`));

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
        loop.push(...prologueElement(x, srcPtr, (i) => String(bases[i]!), `(c * ${CH} + ${e})`, `x${m}[${e}]`, (j) => `red${j}_${m}`, helpers));
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
    if (x.factoring) reduce.push(...finishScale(x, (j) => `red${j}_${m}`, `sc${m}`, helpers));
  }
  const acc = (w: number, m: number, r: number) => (x.factoring ? `(acc${w}_${m}_${r} * sc${m})` : `acc${w}_${m}_${r}`);
  const store: string[] = [];
  for (let m = 0; m < M; m++) {
    if (!ref.rotation) {
      for (let r = 0; r < R; r++) {
        const e = ref.epilogue((w) => acc(w, m, r), "o", helpers);
        store.push(`if (n0 + ${r} < ${N}) {`, `  const int o = ${m * N} + n0 + ${r};`, ...indent(e.lines), `  ${ref.out}[o] = ${e.value};`, "}");
      }
    } else {
      const rot = ref.rotation;
      for (let r = 0; r < R; r += 2) {
        store.push(`if (n0 + ${r} < ${N}) {`, `  const int o = ${m * N} + n0 + ${r};`, "  float y0, y1, cs, sn;");
        for (const [target, rr, at] of [["y0", r, "o"], ["y1", r + 1, "(o + 1)"]] as const) {
          const e = ref.epilogue((w) => acc(w, m, rr), at, helpers);
          store.push("  {", ...indent(e.lines, 4), `    ${target} = ${e.value};`, "  }");
        }
        store.push(`  const int ri = ${m * rot.half} + ((n0 + ${r}) % ${rot.headDim}) / 2;`);
        store.push(...indent(rot.block("ri", helpers)));
        store.push(`  ${ref.out}[o] = y0 * cs - y1 * sn;`, `  ${ref.out}[o + 1] = y0 * sn + y1 * cs;`, "}");
      }
    }
  }
  const loads = ref.format === "f32" ? (CH === 4 ? "float4" : "scalar") : ref.format === "q8_0" ? "int4 of 16 quants" : ref.format === "q4_0" ? "uint4 of 32 nibbles" : CH === 8 ? "uint4 of 8 halves" : "scalar";
  return { n: N, rows: R, weights: W, format: ref.format, chunk: CH, chunks: K / CH, loads, prologue: !x.identity, rotates: ref.rotation !== null, declare, loop, reduce, store };
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
function gemm(ctx: DispatchContext, seg: LinearSegment, x: LinearX, si: number): Emitted {
  const params = new ParamSet();
  const helpers = new Set<string>();
  const srcPtr = x.sources.map((s) => {
    const a = ctx.arg(s.id);
    return params.pointer(a.buffer, a.offsetBytes, storageType(s.type), "read");
  });
  const ref = segmentRefs(ctx, params, seg, x, si);
  const step = ref.usesP ? params.pointer(ctx.env.paramsBuffer, 0, "int", "read") : "";
  const f = ref.format;
  const half = f === "f32" ? (ctx.env.f32TensorCores ? "__half" : null) : f === "bf16" ? (ctx.tuning.minArch.major >= 8 ? "__nv_bfloat16" : null) : "__half";
  const sourceBases = x.sources.map((s, i) => `const int sb${i} = ${offsetExpr("gm", x.rowShape, s.rowStrides)};`);
  const xLoad = [...sourceBases, ...prologueElement(x, srcPtr, (i) => `sb${i}`, "gk", "xv", null, helpers)];
  // The prologue's row scales: one warp per row of the tile, reductions over the whole row.
  const scalePass = (bm: number, warps: number): string[] => {
    if (!x.factoring) return [];
    const reds = x.factoring.reductions;
    const loop = prologueElement(x, srcPtr, (i) => `sb${i}`, "k", null, (j) => `red${j}`, helpers);
    return [
      `__shared__ float llmc_rs[${bm}];`,
      `for (int mm = threadIdx.x >> 5; mm < ${bm}; mm += ${warps}) {`,
      "  const int gm = m0 + mm;",
      ...reds.map((rd, j) => `  float red${j} = ${reduceInit(rd.op)};`),
      `  if (gm < ${x.M}) {`,
      ...indent(sourceBases, 4),
      `    for (int k = (threadIdx.x & 31); k < ${x.K}; k += 32) {`,
      ...indent(loop, 6),
      "    }",
      "  }",
      ...reds.map((rd, j) => `  red${j} = ${rd.op === "amax" ? "llmc_warp_max" : "llmc_warp_sum"}(red${j});`),
      ...indent(finishScale(x, (j) => `red${j}`, "sc", helpers)),
      "  if ((threadIdx.x & 31) == 0) llmc_rs[mm] = sc;",
      "}",
      "__syncthreads();",
    ];
  };
  const acc = (raw: string, row: string) => (x.factoring ? `(${raw} * llmc_rs[${row}])` : raw);
  const epilogue = (accOf: (w: number) => string) => {
    const lines = ref.weights.map((_, w) => `const float a${w} = ${accOf(w)};`);
    const e = ref.epilogue((w) => `a${w}`, "o", helpers);
    return [...lines, ...e.lines, `${ref.out}[o] = ${e.value};`];
  };
  const { M, K } = x;
  const { N } = ref;
  const W = ref.weights.length;
  let kernel: CudaKernel;
  let grid: [number, number, number];
  let block: number;
  const common = { m: M, n: N, k: K, weights: W, format: f, usesP: ref.usesP, step, outDecl: ref.outDecl, xLoad };
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
    grid = [Math.ceil(N / s.bn), Math.ceil(M / s.bm), 1];
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
    grid = [Math.ceil(N / bn), Math.ceil(M / bm), 1];
  }
  if (grid[1] > 65535) throw new Error(`${ctx.label()}: ${M} rows are more than the tiled kernel's grid takes`);
  const kernels = [kernel];
  const launches: CudaLaunch[] = [{ kernel: kernel.name, grid, block: [block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }];
  if (seg.rotation) {
    const r = rotateInPlace(ctx, seg, x);
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
function rotateInPlace(ctx: DispatchContext, seg: LinearSegment, x: LinearX): Emitted {
  const params = new ParamSet();
  const helpers = new Set<string>();
  // Parameters of this kernel only: the output (read and written) and the rotation inputs.
  const o = ctx.output(seg.node);
  const outType = ctx.node(seg.node).ty.dtype;
  const base = params.pointer(o.arg.buffer, o.arg.offsetBytes, storageType(outType), "write");
  const step = o.perPast ? params.pointer(ctx.env.paramsBuffer, 0, "int", "read") : "";
  const rot = seg.rotation!;
  const half = rot.headDim / 2;
  const angleShape = [...x.rowShape, half];
  const rotTypes = rot.inputs.map((id) => ctx.node(id).ty.dtype);
  const rotAccess = rot.inputs.map((id, i) => {
    const a = ctx.arg(id);
    const name = params.pointer(a.buffer, a.offsetBytes, storageType(rotTypes[i]!), "read");
    return loadAs(rotTypes[i]!, `${name}[${offsetExpr("ri", angleShape, broadcastStrides(ctx.shape(id), angleShape))}]`);
  });
  const N = ctx.shape(seg.weights[0]!)[0]!;
  const pairs = x.M * (N / 2);
  const t = ctx.tuning.elementwise;
  checkIndexRange(pairs * 2 + t.block * t.maxBlocks, ctx.label());
  const body = [
    `const int m = i / ${N / 2};`,
    `const int c = 2 * (i % ${N / 2});`,
    `const int ri = m * ${half} + (c % ${rot.headDim}) / 2;`,
    "float cs, sn;",
    ...block(rot.program, (i) => rotAccess[i]!, rotTypes, ["cs", "sn"], helpers),
    `const float y0 = y[m * ${N} + c];`,
    `const float y1 = y[m * ${N} + c + 1];`,
    `y[m * ${N} + c] = y0 * cs - y1 * sn;`,
    `y[m * ${N} + c + 1] = y0 * sn + y1 * cs;`,
  ];
  const head = o.perPast ? [`const int llmc_P = ${step}[0];`, `float* const y = ${base} + llmc_P * ${intLiteral(o.perPast)};`] : [`float* const y = ${base};`];
  const kernel = makeKernel(ctx.dispatch.kernel, "rotate", params, [...helpers], { pairs: intLiteral(pairs), n: N, headDim: rot.headDim, head, body, block: t.block });
  return { kernels: [kernel], launches: [{ kernel: kernel.name, grid: strideGrid(pairs, t.block, t.maxBlocks), block: [t.block, 1, 1], args: params.args, dispatch: ctx.dispatch.index }] };
}

// ------------------------------------------------------------------------------------------ matmul

/** a [.., M, K] @ b [.., K, N] with broadcast batch dims. */
export function emitMatmul(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const { a, b: bm, as, bs, M, K, N, batch, aStrides, bStrides, count } = matmulGeometry(ctx);
  const t = ctx.tuning.elementwise;
  checkIndexRange(Math.max(count, product(as), product(bs)) + t.block * t.maxBlocks, ctx.label());
  const params = new ParamSet();
  const aa = ctx.arg(a);
  const ba = ctx.arg(bm);
  const an = params.pointer(aa.buffer, aa.offsetBytes, "float", "read");
  const bn = params.pointer(ba.buffer, ba.offsetBytes, "float", "read");
  const oa = ctx.arg(d.node);
  const out = params.pointer(oa.buffer, oa.offsetBytes, "float", "write");
  const kernel = makeKernel("matmul", "matmul", params, [], {
    m: M, n: N, k: K, mn: intLiteral(M * N), count: intLiteral(count), a: an, b: bn, out,
    aBase: offsetExpr("batch", batch, aStrides), bBase: offsetExpr("batch", batch, bStrides), block: t.block,
  });
  return single(ctx, kernel, params, strideGrid(count, t.block, t.maxBlocks), t.block);
}

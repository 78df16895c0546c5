// How the WGSL linear and gather kernels read weights stored other than f32 (dequantisation fused
// into the loads). The byte layouts are target/storage.ts's. Core WGSL has no 16-bit values
// (llvmpipe has no shader-f16), so every dtype is bound as an array<u32>: f16/bf16 two values per
// word (element e in the low half of word e / 2 when e is even), q8_0/q4_0 quants then f16 scales,
// two per word. Where the device grants shader-f16, f16 weights read four at a time as vec4<f16>
// (one 8-byte load, converted by the hardware instead of unpack2x16float).

import type { StorageDType } from "../../target/storage.js";
import { u32Literal } from "./lang.js";

const u = u32Literal;

const HELPERS = {
  half: "fn llmc_half(w: u32, hi: u32) -> f32 {\n  let v = unpack2x16float(w);\n  return select(v.x, v.y, hi == 1u);\n}",
  bf16: "fn llmc_bf16(w: u32, hi: u32) -> f32 {\n  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, hi == 1u));\n}",
  bf16x4: "fn llmc_bf16x4(a: u32, b: u32) -> vec4<f32> {\n  return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));\n}",
  q8x4:
    "fn llmc_q8x4(q: u32, d: f32) -> vec4<f32> {\n  let v = vec4<i32>(bitcast<i32>(q << 24u), bitcast<i32>(q << 16u), bitcast<i32>(q << 8u), bitcast<i32>(q)) >> vec4<u32>(24u);\n  return vec4<f32>(v) * d;\n}",
  q4x4:
    "fn llmc_q4x4(w: u32, shift: u32, d: f32) -> vec4<f32> {\n  let n = (w >> shift) & 0x0f0f0f0fu;\n  let v = vec4<u32>(n & 15u, (n >> 8u) & 15u, (n >> 16u) & 15u, n >> 24u);\n  return (vec4<f32>(v) - vec4<f32>(8.0f)) * d;\n}",
  q8x4r: "fn llmc_q8x4r(q: u32) -> vec4<f32> {\n  return vec4<f32>(vec4<i32>(bitcast<i32>(q << 24u), bitcast<i32>(q << 16u), bitcast<i32>(q << 8u), bitcast<i32>(q)) >> vec4<u32>(24u));\n}",
  q4x4r:
    "fn llmc_q4x4r(w: u32, shift: u32) -> vec4<f32> {\n  let n = (w >> shift) & 0x0f0f0f0fu;\n  return vec4<f32>(vec4<u32>(n & 15u, (n >> 8u) & 15u, (n >> 16u) & 15u, n >> 24u)) - vec4<f32>(8.0f);\n}",
};

/**
 * How a linear kernel reads one packed weight [N, K], bound by `bind(elem)` as an array of `elem`:
 * `rowBase(row)` is a per-row value declared once (`row` a u32 expression), `load(base, k)` the
 * step-k value (a vec4<f32> of elements 4k..4k+3 of the row when vec is 4, else the f32 element k).
 * Helper sources it calls are added to `helpers`; `f16` (shader-f16 granted) reads f16 as vec4<f16>.
 */
export function packedReader(format: StorageDType, bind: (elem: string) => string, N: number, K: number, vec: number, helpers: Set<string>, f16 = false) {
  if (format === "f32") throw new Error("internal: f32 weights are read as array<f32>, not packed");
  if (f16 && vec === 4 && format === "f16") {
    const halves = bind("vec4<f16>");
    return { rowBase: (row: string) => `${row} * ${u(K)}`, load: (b: string, k: string) => `vec4<f32>(${halves}[${b} / 4u + ${k}])`, blocked: null, enables: ["f16"] };
  }
  const buf = bind("u32");
  const scaleWord = format === "q8_0" ? (N * K) / 4 : (N * K) / 8; // first u32 of the scales
  const need = (...hs: (keyof typeof HELPERS)[]) => hs.forEach((h) => helpers.add(HELPERS[h]));
  // The row's first element.
  const rowBase = (row: string) => `${row} * ${u(K)}`;
  let load: (base: string, k: string) => string;
  if (vec === 4) {
    switch (format) {
      case "f16":
        load = (b, k) => `vec4<f32>(unpack2x16float(${buf}[${b} / 2u + 2u * ${k}]), unpack2x16float(${buf}[${b} / 2u + 2u * ${k} + 1u]))`;
        break;
      case "bf16":
        need("bf16x4");
        load = (b, k) => `llmc_bf16x4(${buf}[${b} / 2u + 2u * ${k}], ${buf}[${b} / 2u + 2u * ${k} + 1u])`;
        break;
      case "q8_0":
        need("half", "q8x4");
        // block = (b + 4k) / 32 = b / 32 + k / 8
        load = (b, k) => `llmc_q8x4(${buf}[${b} / 4u + ${k}], llmc_half(${buf}[${u(scaleWord)} + (${b} / 32u + ${k} / 8u) / 2u], (${b} / 32u + ${k} / 8u) & 1u))`;
        break;
      case "q4_0":
        need("half", "q4x4");
        load = (b, k) =>
          `llmc_q4x4(${buf}[${b} / 8u + (${k} / 8u) * 4u + (${k} & 3u)], ${k} & 4u, llmc_half(${buf}[${u(scaleWord)} + (${b} / 32u + ${k} / 8u) / 2u], (${b} / 32u + ${k} / 8u) & 1u))`;
        break;
    }
  } else {
    switch (format) {
      case "f16":
        need("half");
        load = (b, k) => `llmc_half(${buf}[(${b} + ${k}) / 2u], (${b} + ${k}) & 1u)`;
        break;
      case "bf16":
        need("bf16");
        load = (b, k) => `llmc_bf16(${buf}[(${b} + ${k}) / 2u], (${b} + ${k}) & 1u)`;
        break;
      case "q8_0":
        need("half");
        load = (b, k) =>
          `f32(bitcast<i32>(${buf}[(${b} + ${k}) / 4u] << (24u - 8u * ((${b} + ${k}) & 3u))) >> 24u) * llmc_half(${buf}[${u(scaleWord)} + (${b} + ${k}) / 64u], ((${b} + ${k}) / 32u) & 1u)`;
        break;
      case "q4_0":
        need("half");
        // e = b + k; block e / 32, j = e % 32: byte j % 16 of the block's 16, high nibble when j ≥ 16
        load = (b, k) =>
          `(f32((${buf}[((${b} + ${k}) / 32u) * 4u + ((${b} + ${k}) % 16u) / 4u] >> (8u * ((${b} + ${k}) & 3u) + select(0u, 4u, ((${b} + ${k}) & 16u) != 0u))) & 15u) - 8.0f) * llmc_half(${buf}[${u(scaleWord)} + (${b} + ${k}) / 64u], ((${b} + ${k}) / 32u) & 1u)`;
        break;
    }
  }
  // Block by block (vec 4, q8_0/q4_0): step kk of 8 in block kb gives the quants as f32 (unscaled),
  // the block's scale is read once and multiplies the block's partial dot product.
  let blocked: { scale: (b: string, kb: string) => string; quants: (b: string, kb: string, kk: string) => string } | null = null;
  if (vec === 4 && (format === "q8_0" || format === "q4_0")) {
    need("half");
    const scale = (b: string, kb: string) => `llmc_half(${buf}[${u(scaleWord)} + (${b} / 32u + ${kb}) / 2u], (${b} / 32u + ${kb}) & 1u)`;
    if (format === "q8_0") {
      need("q8x4r");
      blocked = { scale, quants: (b, kb, kk) => `llmc_q8x4r(${buf}[${b} / 4u + ${kb} * 8u + ${kk}])` };
    } else {
      need("q4x4r");
      blocked = { scale, quants: (b, kb, kk) => `llmc_q4x4r(${buf}[${b} / 8u + ${kb} * 4u + (${kk} & 3u)], ${kk} & 4u)` };
    }
  }
  return { rowBase, load, blocked, enables: [] as string[] };
}

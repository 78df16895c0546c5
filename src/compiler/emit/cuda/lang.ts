// CUDA C++'s table for the shared emitters (emit/shared: expressions, indices, locals, parameters),
// C literals, and how tensors of each element type sit in device memory (bool as a 32-bit 0/1, as
// in the step plan).
//
// Semantics follow the op table's numeric rules (docs/ops.md), not C's: i32 arithmetic wraps
// (computed in unsigned), integer division by zero gives 0 instead of trapping, float→i32 casts
// saturate with NaN → 0, and max/min/amax propagate NaN (fmaxf would drop it).

import type { DType } from "../../ops/table.js";
import type { KernelLang, KernelParam } from "../shared/lang.js";

/** Shortest decimal that reads back as the same f32. */
function f32Digits(v: number): string {
  const r = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const s = r.toPrecision(p);
    if (Math.fround(Number(s)) === r) return String(Number(s));
  }
  return String(r);
}

export function f32Literal(v: number): string {
  if (Number.isNaN(v)) return "__int_as_float(0x7fc00000)";
  const r = Math.fround(v);
  if (r === Infinity) return "__int_as_float(0x7f800000)";
  if (r === -Infinity) return "__int_as_float(0xff800000)";
  let s = f32Digits(Math.abs(r));
  if (!/[.e]/.test(s)) s += ".0";
  return r < 0 || Object.is(r, -0) ? `(-${s}f)` : `${s}f`;
}

export function i32Literal(v: number): string {
  if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new Error(`internal: i32 literal ${v}`);
  if (v === -2147483648) return "(-2147483647 - 1)";
  return v < 0 ? `(${v})` : String(v);
}

/** A non-negative integer index constant (indices are `int`; larger tensors are refused earlier). */
export function intLiteral(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 2147483647) throw new Error(`internal: index ${v} does not fit an int (tensors must have fewer than 2^31 elements)`);
  return String(v);
}

export function cType(d: DType): string {
  switch (d) {
    case "f32": return "float";
    case "i32": return "int";
    case "bool": return "bool";
    default: throw new Error(`the CUDA backend keeps ${d} tensors as f32; a ${d} value reached a kernel`);
  }
}

/** The element type of device memory holding a tensor of `d`. */
export function storageType(d: DType): string {
  return d === "bool" ? "unsigned" : cType(d);
}

/** A value loaded from storage as a value of `d`. */
export function loadAs(d: DType, raw: string): string {
  return d === "bool" ? `(${raw} != 0u)` : raw;
}

/** A value of `d` converted for storing. */
export function storeAs(d: DType, value: string): string {
  return d === "bool" ? `(${value} ? 1u : 0u)` : value;
}

const bin = (op: string) => ([a, b]: string[]) => `(${a} ${op} ${b})`;
const fn1 = (f: string) => ([a]: string[]) => `${f}(${a})`;
const floatOnly = (op: string, f: (a: string[]) => string) => (a: string[], t: { out: DType }) => {
  if (t.out !== "f32") throw new Error(`CUDA: ${op} needs f32 values, got ${t.out}`);
  return f(a);
};
/** i32 + - * wrap: computed in unsigned, where overflow is defined. */
const wrapping = (op: string) => ([a, b]: string[], t: { out: DType }) =>
  t.out === "i32" ? `((int)((unsigned)${a} ${op} (unsigned)${b}))` : `(${a} ${op} ${b})`;

export const CUDA_HELPERS: Record<string, string> = {
  llmc_fmax: "static __device__ __forceinline__ float llmc_fmax(float a, float b) { return (a > b || a != a) ? a : b; }",
  llmc_fmin: "static __device__ __forceinline__ float llmc_fmin(float a, float b) { return (a < b || a != a) ? a : b; }",
  llmc_imax: "static __device__ __forceinline__ int llmc_imax(int a, int b) { return a > b ? a : b; }",
  llmc_imin: "static __device__ __forceinline__ int llmc_imin(int a, int b) { return a < b ? a : b; }",
  llmc_iabs: "static __device__ __forceinline__ int llmc_iabs(int a) { return a < 0 ? (int)(0u - (unsigned)a) : a; }",
  // -2^31 / -1 wraps; division by zero (an error on the CPU reference) gives 0 rather than a trap.
  llmc_idiv: "static __device__ __forceinline__ int llmc_idiv(int a, int b) { return b == 0 ? 0 : (b == -1 ? (int)(0u - (unsigned)a) : a / b); }",
  llmc_ipow: [
    "static __device__ __forceinline__ int llmc_ipow(int a, int b) {",
    "  if (b < 0) { return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0); }",
    "  unsigned r = 1u, base = (unsigned)a;",
    "  for (unsigned e = (unsigned)b; e != 0u; e >>= 1) { if (e & 1u) { r *= base; } base *= base; }",
    "  return (int)r;",
    "}",
  ].join("\n"),
  // C's float → int conversion is undefined out of range; the op table saturates, NaN → 0.
  llmc_f2i: "static __device__ __forceinline__ int llmc_f2i(float x) { return x != x ? 0 : (x >= 2147483647.0f ? 2147483647 : (x <= -2147483648.0f ? (-2147483647 - 1) : (int)x)); }",
};

/** A pointer parameter's C type. */
export function pointerType(p: KernelParam): string {
  return `${p.access === "read" ? "const " : ""}${p.elem}* __restrict__`;
}

/** The CUDA table. Row kernels give the threads that share a row (`rowGroup`, whole warps; row.hbs
 *  names a thread's place in its group `lane` and whether its row exists `live`): each strides over
 *  the row, then the group combines its partial results. */
export function cudaLang(rowGroup?: number): KernelLang {
  return {
    name: "CUDA",
    type: cType,
    literal(value, dtype) {
      switch (dtype) {
        case "f32": return f32Literal(value);
        case "i32": return i32Literal(value);
        case "bool": return value ? "true" : "false";
        default: throw new Error(`the CUDA backend does not support ${dtype} constants`);
      }
    },
    ops: {
      neg: ([a], t) => (t.out === "i32" ? `((int)(0u - (unsigned)${a}))` : `(-${a})`),
      abs: ([a], t) => (t.out === "i32" ? `llmc_iabs(${a})` : `fabsf(${a})`),
      exp: floatOnly("exp", fn1("expf")),
      log: floatOnly("log", fn1("logf")),
      sqrt: floatOnly("sqrt", fn1("sqrtf")),
      rsqrt: floatOnly("rsqrt", fn1("rsqrtf")),
      sin: floatOnly("sin", fn1("sinf")),
      cos: floatOnly("cos", fn1("cosf")),
      tanh: floatOnly("tanh", fn1("tanhf")),
      sigmoid: floatOnly("sigmoid", ([a]) => `(1.0f / (1.0f + expf(-${a})))`),
      silu: floatOnly("silu", ([a]) => `(${a} / (1.0f + expf(-${a})))`),
      gelu: floatOnly("gelu", ([a]) => `(0.5f * ${a} * (1.0f + tanhf(0.7978845608f * (${a} + 0.044715f * ${a} * ${a} * ${a}))))`),
      erf: floatOnly("erf", fn1("erff")),
      recip: floatOnly("recip", ([a]) => `(1.0f / ${a})`),
      not: ([a]) => `(!${a})`,
      add: wrapping("+"),
      sub: wrapping("-"),
      mul: wrapping("*"),
      div: ([a, b], t) => (t.out === "i32" ? `llmc_idiv(${a}, ${b})` : `(${a} / ${b})`),
      pow: ([a, b], t) => (t.out === "i32" ? `llmc_ipow(${a}, ${b})` : `powf(${a}, ${b})`),
      max: ([a, b], t) => (t.out === "i32" ? `llmc_imax(${a}, ${b})` : `llmc_fmax(${a}, ${b})`),
      min: ([a, b], t) => (t.out === "i32" ? `llmc_imin(${a}, ${b})` : `llmc_fmin(${a}, ${b})`),
      lt: bin("<"),
      le: bin("<="),
      gt: bin(">"),
      ge: bin(">="),
      eq: bin("=="),
      ne: bin("!="),
      and: bin("&&"),
      or: bin("||"),
      where: ([c, a, b]) => `(${c} ? ${a} : ${b})`,
    },
    cast(value, from, to) {
      if (from === to) return value;
      if (to === "bool") return from === "f32" ? `(${value} != 0.0f)` : `(${value} != 0)`;
      if (from === "bool") return to === "f32" ? `(${value} ? 1.0f : 0.0f)` : `(${value} ? 1 : 0)`;
      if (to === "i32") return `llmc_f2i(${value})`;
      return `((${cType(to)})(${value}))`;
    },
    let: (name, dtype, value) => `const ${cType(dtype)} ${name} = ${value};`,
    var: (name, dtype, value) => `${cType(dtype)} ${name} = ${value};`,
    assign: (name, value) => `${name} = ${value};`,
    loopOpen: (index, length) =>
      rowGroup ? `for (int ${index} = lane; live && ${index} < ${length}; ${index} += ${rowGroup}) {` : `for (int ${index} = 0; ${index} < ${length}; ++${index}) {`,
    lengthAs: (length, dtype) => `((${cType(dtype)})(${length}))`,
    reduceStep(op, acc, x) {
      if (op === "amax") return `${acc} = llmc_fmax(${acc}, ${x});`;
      return `${acc} = ${acc} + ${x};`;
    },
    rowCombine: rowGroup ? (op, acc) => `${acc} = llmc_group_${op === "amax" ? "max" : "sum"}<${rowGroup}>(${acc}, llmc_red);` : undefined,
    helpers: CUDA_HELPERS,
    indexLiteral: intLiteral,
    letIndex: (name, value) => `const int ${name} = ${value};`,
    declare: (name, dtype) => `${cType(dtype)} ${name};`,
    storageType,
    loadAs,
    storeAs,
    paramName: (i) => `p${i}`,
    paramDecl: (p) => `${pointerType(p)} ${p.name}`,
    offsets: "param",
  };
}

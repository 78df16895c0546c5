// WGSL's table for the shared emitters (expressions, indices, locals, bindings), and how tensors of
// each element type are stored in WGSL buffers (bool is not host-shareable: it is stored as u32 0/1).

import type { DType } from "../../ops/table.js";
import type { ExprLang } from "../shared/expr.js";
import type { KernelLang } from "../shared/lang.js";

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
  if (Number.isNaN(v)) return "llmc_nan()";
  if (!Number.isFinite(Math.fround(v))) return v > 0 ? "llmc_inf()" : "(-llmc_inf())";
  let s = f32Digits(v);
  if (!/[.e]/.test(s)) s += ".0";
  return v < 0 || Object.is(v, -0) ? `(${Object.is(v, -0) ? "-0.0" : s}f)` : `${s}f`;
}

export function i32Literal(v: number): string {
  if (!Number.isInteger(v)) throw new Error(`internal: i32 literal ${v}`);
  if (v === -2147483648) return "(-2147483647i - 1i)";
  return v < 0 ? `(${v}i)` : `${v}i`;
}

export function u32Literal(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`internal: u32 literal ${v} is out of range (tensors must have fewer than 2^32 elements)`);
  return `${v}u`;
}

function wgslType(d: DType): string {
  switch (d) {
    case "f32": return "f32";
    case "i32": return "i32";
    case "bool": return "bool";
    default: throw new Error(`the WGSL backend does not support ${d} values yet`);
  }
}

/** The element type of a storage array holding a tensor of `d`. */
export function storageType(d: DType): string {
  return d === "bool" ? "u32" : wgslType(d);
}

/** A value loaded from storage (`raw` of storageType) as a value of `d`. */
export function loadAs(d: DType, raw: string): string {
  return d === "bool" ? `(${raw} != 0u)` : raw;
}

/** A value of `d` converted for storing. */
export function storeAs(d: DType, value: string): string {
  return d === "bool" ? `select(0u, 1u, ${value})` : value;
}

const bin = (op: string) => ([a, b]: string[]) => `(${a} ${op} ${b})`;
const fn1 = (f: string) => ([a]: string[]) => `${f}(${a})`;
const floatOnly = (op: string, f: (a: string[]) => string) => (a: string[], t: { out: DType }) => {
  if (t.out !== "f32") throw new Error(`WGSL: ${op} needs f32 values, got ${t.out}`);
  return f(a);
};

const HELPERS: Record<string, string> = {
  // Not const-expressions: a const-evaluated infinity or NaN is a shader-creation error in WGSL.
  llmc_inf: "fn llmc_inf() -> f32 { var bits = 0x7f800000u; return bitcast<f32>(bits); }",
  llmc_nan: "fn llmc_nan() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }",
  // tanh(x) is ±1 in f32 past |x| = 9; clamping keeps e^2x-based implementations from inf/inf.
  llmc_tanh: "fn llmc_tanh(x: f32) -> f32 { return tanh(clamp(x, -15.0f, 15.0f)); }",
  // Numerical Recipes' erfc Chebyshev fit: |error| < 1.2e-7.
  llmc_erf: [
    "fn llmc_erf(x: f32) -> f32 {",
    "  let a = abs(x);",
    "  let t = 1.0f / (1.0f + 0.5f * a);",
    "  let y = 1.0f - t * exp(-a * a - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f)))))))));",
    "  return select(y, -y, x < 0.0f);",
    "}",
  ].join("\n"),
  // C's pow: negative bases with integral exponents, 0^negative = inf; WGSL's pow leaves these undefined.
  llmc_pow: [
    "fn llmc_pow(a: f32, b: f32) -> f32 {",
    "  if (b == 0.0f) { return 1.0f; }",
    "  if (a == 0.0f) { return select(0.0f, llmc_inf(), b < 0.0f); }",
    "  if (a < 0.0f) {",
    "    if (b != floor(b)) { return llmc_nan(); }",
    "    let r = pow(-a, b);",
    "    return select(r, -r, abs(b % 2.0f) == 1.0f);",
    "  }",
    "  return pow(a, b);",
    "}",
  ].join("\n"),
  llmc_ipow: [
    "fn llmc_ipow(a: i32, b: i32) -> i32 {",
    "  if (b < 0) { if (a == 1) { return 1; } if (a == -1) { return select(-1, 1, (b & 1) == 0); } return 0; }",
    "  var r = 1; var base = a; var e = u32(b);",
    "  loop { if (e == 0u) { break; } if ((e & 1u) == 1u) { r = r * base; } base = base * base; e = e >> 1u; }",
    "  return r;",
    "}",
  ].join("\n"),
  llmc_to_i32: "fn llmc_to_i32(x: f32) -> i32 { return select(i32(x), 0i, x != x); }",
};

const SPACES = { read: "storage, read", write: "storage, read_write", uniform: "uniform" } as const;

export const wgsl: KernelLang = {
  name: "WGSL",
  type: wgslType,
  literal(value, dtype) {
    switch (dtype) {
      case "f32": return f32Literal(value);
      case "i32": return i32Literal(value);
      case "bool": return value ? "true" : "false";
      default: throw new Error(`the WGSL backend does not support ${dtype} constants yet`);
    }
  },
  ops: {
    neg: ([a]) => `(-${a})`,
    abs: fn1("abs"),
    exp: floatOnly("exp", fn1("exp")),
    log: floatOnly("log", fn1("log")),
    sqrt: floatOnly("sqrt", fn1("sqrt")),
    rsqrt: floatOnly("rsqrt", fn1("inverseSqrt")),
    sin: floatOnly("sin", fn1("sin")),
    cos: floatOnly("cos", fn1("cos")),
    tanh: floatOnly("tanh", fn1("llmc_tanh")),
    sigmoid: floatOnly("sigmoid", ([a]) => `(1.0f / (1.0f + exp(-${a})))`),
    silu: floatOnly("silu", ([a]) => `(${a} / (1.0f + exp(-${a})))`),
    gelu: floatOnly("gelu", ([a]) => `(0.5f * ${a} * (1.0f + llmc_tanh(0.7978845608f * (${a} + 0.044715f * ${a} * ${a} * ${a}))))`),
    erf: floatOnly("erf", fn1("llmc_erf")),
    recip: floatOnly("recip", ([a]) => `(1.0f / ${a})`),
    not: ([a]) => `(!${a})`,
    add: bin("+"),
    sub: bin("-"),
    mul: bin("*"),
    div: bin("/"),
    pow: ([a, b], t) => (t.out === "i32" ? `llmc_ipow(${a}, ${b})` : `llmc_pow(${a}, ${b})`),
    max: ([a, b]) => `max(${a}, ${b})`,
    min: ([a, b]) => `min(${a}, ${b})`,
    lt: bin("<"),
    le: bin("<="),
    gt: bin(">"),
    ge: bin(">="),
    eq: bin("=="),
    ne: bin("!="),
    and: bin("&&"),
    or: bin("||"),
    where: ([c, a, b]) => `select(${b}, ${a}, ${c})`,
  },
  cast(value, from, to) {
    if (from === to) return value;
    if (to === "bool") return from === "f32" ? `(${value} != 0.0f)` : `(${value} != 0i)`;
    if (from === "bool") return to === "f32" ? `select(0.0f, 1.0f, ${value})` : `select(0i, 1i, ${value})`;
    if (to === "i32") return `llmc_to_i32(${value})`;
    return `${wgslType(to)}(${value})`;
  },
  let: (name, dtype, value) => `let ${name}: ${wgslType(dtype)} = ${value};`,
  var: (name, dtype, value) => `var ${name}: ${wgslType(dtype)} = ${value};`,
  assign: (name, value) => `${name} = ${value};`,
  loopOpen: (index, length) => `for (var ${index}: u32 = 0u; ${index} < ${length}; ${index} = ${index} + 1u) {`,
  lengthAs: (length, dtype) => `${wgslType(dtype)}(${length})`,
  reduceStep(op, acc, x) {
    if (op === "amax") return `${acc} = select(max(${acc}, ${x}), ${x}, ${x} != ${x});`; // NaN propagates
    return `${acc} = ${acc} + ${x};`;
  },
  helpers: HELPERS,
  indexLiteral: u32Literal,
  letIndex: (name, value) => `let ${name} = ${value};`,
  declare: (name, dtype) => `var ${name}: ${wgslType(dtype)};`,
  storageType,
  loadAs,
  storeAs,
  paramName: (i) => `b${i}`,
  paramDecl: (p, i) => `@group(0) @binding(${i}) var<${SPACES[p.access]}> ${p.name}: ${p.access === "uniform" ? p.elem : `array<${p.elem}>`};`,
  constArray: (name, dtype, values) =>
    `const ${name} = array<${wgslType(dtype)}, ${values.length}>(${Array.from(values, (v) => wgsl.literal(v, dtype)).join(", ")});`,
  offsets: "index",
};

/** Ops that WGSL applies to vec4<f32> componentwise exactly as the f32 table renders them. */
const VEC4_OPS = ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "recip", "sigmoid", "silu", "add", "sub", "mul", "div", "max", "min"] as const;

/** The WGSL table over four lanes at once: f32 values are vec4<f32>, constants are splatted. Only
 *  for programs that `vec4Renderable` accepts. */
export const wgslVec4: ExprLang = {
  ...wgsl,
  name: "WGSL vec4",
  type(dtype) {
    if (dtype !== "f32") throw new Error(`internal: vec4 rendering of a ${dtype} value`);
    return "vec4<f32>";
  },
  literal: (value, dtype) => `vec4<f32>(${wgsl.literal(value, dtype)})`,
  ops: Object.fromEntries(VEC4_OPS.map((op) => [op, wgsl.ops[op]!])),
  let: (name, _dtype, value) => `let ${name}: vec4<f32> = ${value};`,
  var: (name, _dtype, value) => `var ${name}: vec4<f32> = ${value};`,
};

/** Whether an elementwise program of f32 values can be rendered by `wgslVec4`. */
export function vec4Renderable(p: { nodes: readonly { kind: string; op?: string; dtype?: string }[] }): boolean {
  return p.nodes.every((n) =>
    n.kind === "input" ? true
    : n.kind === "const" ? n.dtype === "f32" && Number.isFinite(Number((n as { value?: number }).value))
    : n.kind === "op" ? (VEC4_OPS as readonly string[]).includes(n.op!)
    : false,
  );
}

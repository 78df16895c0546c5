// The built-in functions of the .llm language and how each maps onto primitive ops of the op table.
// Shapes and dtypes are checked by the op table's rules (through ctx.emit), not here; this table
// only binds arguments and translates surface conveniences (heads, merge, x.T) into primitives.

import type { Span } from "../parse/ast.js";
import type { Attrs, DType } from "../ops/table.js";
import { constDim, constValue, divDimExact, formatDim, mulDim, type Dim } from "../base/symbolic.js";
import type { Value } from "./values.js";
import type { Scalar } from "./scalar.js";

export interface Arg<TV> {
  v: Value<TV>;
  span: Span;
}

export type Tensor<TV> = Extract<Value<TV>, { k: "tensor" }>;

export interface BuiltinCtx<TV> {
  emit(op: string, inputs: Tensor<TV>[], attrs: Attrs, span: Span): Value<TV>;
  /** A tensor operand; scalars become constants (of `like`'s element type when given). */
  tensor(a: Arg<TV>, like?: DType): Tensor<TV> | null;
  scalar(a: Arg<TV>): Scalar | null;
  int(a: Arg<TV>): number | null;
  dim(a: Arg<TV>): Dim | null;
  fail(code: string, message: string, span: Span): Value<TV>;
}

type ParamKind = "tensor" | "int" | "bool" | "f32" | "dims" | "dim";
interface ParamSpec {
  name: string;
  kind: ParamKind;
  default?: number | boolean;
}

interface BuiltinDef {
  params: ParamSpec[];
  doc: string;
  /** Receives arguments bound to the params (defaults filled in as scalar Args). */
  run<TV>(ctx: BuiltinCtx<TV>, args: Map<string, Arg<TV>>, span: Span): Value<TV>;
}

const p = (name: string, kind: ParamKind, def?: number | boolean): ParamSpec =>
  def === undefined ? { name, kind } : { name, kind, default: def };

function elementwiseUnary(op: string, doc: string): BuiltinDef {
  return {
    params: [p("x", "tensor")],
    doc,
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      return x ? ctx.emit(op, [x], {}, span) : { k: "poison" };
    },
  };
}

function elementwiseBinary(op: string, doc: string): BuiltinDef {
  return {
    params: [p("a", "tensor"), p("b", "tensor")],
    doc,
    run: (ctx, a, span) => {
      const [x, y] = operandsLike(ctx, a.get("a")!, a.get("b")!);
      return x && y ? ctx.emit(op, [x, y], {}, span) : { k: "poison" };
    },
  };
}

/** Two operands where a scalar takes the element type of the tensor beside it. */
export function operandsLike<TV>(ctx: BuiltinCtx<TV>, a: Arg<TV>, b: Arg<TV>): [Tensor<TV> | null, Tensor<TV> | null] {
  const ta = a.v.k === "tensor" ? a.v : null;
  const tb = b.v.k === "tensor" ? b.v : null;
  return [ctx.tensor(a, tb?.ty.dtype), ctx.tensor(b, ta?.ty.dtype)];
}

function reduction(op: string, doc: string): BuiltinDef {
  return {
    params: [p("x", "tensor"), p("axis", "int", -1), p("keepdim", "bool", false)],
    doc,
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const axis = ctx.int(a.get("axis")!);
      const keep = ctx.scalar(a.get("keepdim")!);
      if (!x || axis === null || !keep) return { k: "poison" };
      return ctx.emit(op, [x], { axis, keepdim: keep.value === true }, span);
    },
  };
}

function cast(dtype: DType): BuiltinDef {
  return {
    params: [p("x", "tensor")],
    doc: `convert to ${dtype}`,
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      return x ? ctx.emit("cast", [x], { dtype }, span) : { k: "poison" };
    },
  };
}

function transposeDims<TV>(ctx: BuiltinCtx<TV>, x: Tensor<TV>, a: number, b: number, span: Span): Value<TV> {
  const rank = x.ty.shape.length;
  const na = a < 0 ? a + rank : a;
  const nb = b < 0 ? b + rank : b;
  if (na < 0 || na >= rank || nb < 0 || nb >= rank) return ctx.fail("E0301", `transpose(${a}, ${b}) is out of range for a tensor of rank ${rank}`, span);
  const perm = Array.from({ length: rank }, (_, i) => (i === na ? nb : i === nb ? na : i));
  return ctx.emit("transpose", [x], { perm }, span);
}

export function transposeLast<TV>(ctx: BuiltinCtx<TV>, x: Tensor<TV>, span: Span): Value<TV> {
  if (x.ty.shape.length < 2) return ctx.fail("E0301", `.T needs a tensor of rank ≥ 2, got rank ${x.ty.shape.length}`, span);
  return transposeDims(ctx, x, -2, -1, span);
}

export const builtins: Record<string, BuiltinDef> = {
  neg: elementwiseUnary("neg", "-x"),
  exp: elementwiseUnary("exp", "e^x"),
  log: elementwiseUnary("log", "natural logarithm"),
  sqrt: elementwiseUnary("sqrt", "square root"),
  rsqrt: elementwiseUnary("rsqrt", "1/sqrt(x)"),
  sin: elementwiseUnary("sin", "sine"),
  cos: elementwiseUnary("cos", "cosine"),
  tanh: elementwiseUnary("tanh", "hyperbolic tangent"),
  sigmoid: elementwiseUnary("sigmoid", "logistic function"),
  silu: elementwiseUnary("silu", "x·sigmoid(x)"),
  gelu: elementwiseUnary("gelu", "GELU (tanh approximation)"),
  erf: elementwiseUnary("erf", "error function"),
  abs: elementwiseUnary("abs", "|x|"),
  recip: elementwiseUnary("recip", "1/x"),
  max: elementwiseBinary("max", "elementwise maximum"),
  min: elementwiseBinary("min", "elementwise minimum"),
  where: {
    params: [p("cond", "tensor"), p("a", "tensor"), p("b", "tensor")],
    doc: "cond ? a : b elementwise",
    run: (ctx, a, span) => {
      const c = ctx.tensor(a.get("cond")!);
      const [x, y] = operandsLike(ctx, a.get("a")!, a.get("b")!);
      return c && x && y ? ctx.emit("where", [c, x, y], {}, span) : { k: "poison" };
    },
  },
  to_f32: cast("f32"),
  to_i32: cast("i32"),
  sum: reduction("sum", "sum over an axis"),
  mean: reduction("mean", "mean over an axis"),
  amax: reduction("amax", "maximum over an axis"),
  transpose: {
    params: [p("x", "tensor"), p("a", "int", -2), p("b", "int", -1)],
    doc: "swap two dims",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const i = ctx.int(a.get("a")!);
      const j = ctx.int(a.get("b")!);
      return x && i !== null && j !== null ? transposeDims(ctx, x, i, j, span) : { k: "poison" };
    },
  },
  reshape: {
    params: [p("x", "tensor"), p("shape", "dims")],
    doc: "same elements in a new shape",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const shapeArg = a.get("shape")!;
      if (!x) return { k: "poison" };
      if (shapeArg.v.k !== "list") return ctx.fail("E0302", "reshape's shape is a list of dims: reshape(x, [T, n, d])", shapeArg.span);
      const dims = shapeArg.v.elems.map((e) => ctx.dim({ v: e, span: shapeArg.span }));
      if (dims.some((d) => d === null)) return { k: "poison" };
      return ctx.emit("reshape", [x], { shape: dims as Dim[] }, span);
    },
  },
  heads: {
    params: [p("x", "tensor"), p("n", "dim")],
    doc: "split the last dim into n heads: [.., n*d] → [.., n, d]",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const n = ctx.int(a.get("n")!);
      if (!x || n === null) return { k: "poison" };
      if (x.ty.shape.length === 0) return ctx.fail("E0301", "heads needs a tensor of rank ≥ 1", span);
      const last = x.ty.shape[x.ty.shape.length - 1]!;
      const d = n > 0 ? divDimExact(last, n) : null;
      if (!d) return ctx.fail("E0301", `heads: the last dim ${formatDim(last)} does not split into ${n} heads`, span);
      return ctx.emit("reshape", [x], { shape: [...x.ty.shape.slice(0, -1), constDim(n), d] }, span);
    },
  },
  merge: {
    params: [p("x", "tensor")],
    doc: "merge the last two dims: [.., n, d] → [.., n*d]",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      if (!x) return { k: "poison" };
      const s = x.ty.shape;
      if (s.length < 2) return ctx.fail("E0301", `merge needs a tensor of rank ≥ 2, got rank ${s.length}`, span);
      return ctx.emit("reshape", [x], { shape: [...s.slice(0, -2), mulDim(s[s.length - 2]!, s[s.length - 1]!)] }, span);
    },
  },
  concat: {
    params: [p("a", "tensor"), p("b", "tensor"), p("axis", "int", -1)],
    doc: "join along an axis",
    run: (ctx, a, span) => {
      const [x, y] = operandsLike(ctx, a.get("a")!, a.get("b")!);
      const axis = ctx.int(a.get("axis")!);
      return x && y && axis !== null ? ctx.emit("concat", [x, y], { axis }, span) : { k: "poison" };
    },
  },
  arange: {
    params: [p("n", "dim")],
    doc: "0, 1, …, n-1 as f32",
    run: (ctx, a, span) => {
      const n = ctx.dim(a.get("n")!);
      if (!n) return { k: "poison" };
      const c = constValue(n);
      if (c !== null && c <= 0) return ctx.fail("E0404", `arange needs a positive length, got ${c}`, a.get("n")!.span);
      return ctx.emit("arange", [], { n }, span);
    },
  },
  rotary: {
    params: [p("x", "tensor"), p("cos", "tensor"), p("sin", "tensor")],
    doc: "rotate adjacent pairs of x by the given angles",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const c = ctx.tensor(a.get("cos")!);
      const s = ctx.tensor(a.get("sin")!);
      return x && c && s ? ctx.emit("rotary", [x, c, s], {}, span) : { k: "poison" };
    },
  },
  dropout: {
    params: [p("x", "tensor"), p("p", "f32")],
    doc: "inverted dropout with probability p, active only in training (the identity in inference graphs)",
    run: (ctx, a, span) => {
      const x = ctx.tensor(a.get("x")!);
      const rate = ctx.scalar(a.get("p")!);
      if (!x || !rate) return { k: "poison" };
      const prob = Number(rate.value);
      if (!(prob >= 0 && prob < 1)) return ctx.fail("E0404", `dropout probability must lie in [0, 1), got ${prob}`, a.get("p")!.span);
      // p = 0 leaves no node at all, so a model without dropout lowers exactly as before.
      return prob === 0 ? x : ctx.emit("dropout", [x], { p: prob }, span);
    },
  },
  attention: {
    params: [p("q", "tensor"), p("k", "tensor"), p("v", "tensor"), p("causal", "bool", false), p("window", "int", 0), p("scale", "f32", 0)],
    doc: "scaled dot-product attention with GQA, causal mask and sliding window",
    run: (ctx, a, span) => {
      const q = ctx.tensor(a.get("q")!);
      const k = ctx.tensor(a.get("k")!);
      const v = ctx.tensor(a.get("v")!);
      const causal = ctx.scalar(a.get("causal")!);
      const window = ctx.int(a.get("window")!);
      const scale = ctx.scalar(a.get("scale")!);
      if (!q || !k || !v || !causal || window === null || !scale) return { k: "poison" };
      if (window < 0) return ctx.fail("E0404", `attention window must be ≥ 0 (0 = none), got ${window}`, a.get("window")!.span);
      const d = q.ty.shape.length === 3 ? constValue(q.ty.shape[2]!) : null;
      const s = (scale.value as number) !== 0 ? (scale.value as number) : d ? 1 / Math.sqrt(d) : 0;
      return ctx.emit("attention", [q, k, v], { causal: causal.value === true, window, scale: s }, span);
    },
  },
};

export type { BuiltinDef, ParamSpec };

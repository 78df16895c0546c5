// Gradient rules, one per differentiable op of the op table, beside its shape rule (table.ts) and CPU
// reference (reference.ts). A rule builds the vector-Jacobian product out of primitive ops of the
// table, so a backward graph is an ordinary graph: the same passes, fusion, planning and emission
// apply to it as to a forward one, and every backend that runs the forward ops runs the backward.
// Ops with no gradient are listed in NON_DIFFERENTIABLE with the reason; a test checks that every op
// of the table is in exactly one of the two.

import { constDim, constValue, dimEquals, formatShape, subDim, type Dim } from "../base/symbolic.js";
import type { Attrs, DType, TensorTy } from "./table.js";

/** Adds nodes to the graph being differentiated. */
export interface GradientBuilder {
  /** A node of a primitive op, typed by the op table's rule. */
  op(name: string, inputs: number[], attrs?: Attrs): number;
  ty(id: number): TensorTy;
}

/** The forward node a rule differentiates: its inputs, its result and its attributes. */
export interface ForwardNode {
  inputs: number[];
  output: number;
  attrs: Attrs;
}

/** Given dy (the gradient of the result), the gradient of each input, or null where an input has
 *  none (integer ids, a condition) or where the rule does not give one. */
export type GradientRule = (b: GradientBuilder, n: ForwardNode, dy: number) => (number | null)[];

// ------------------------------------------------------------------------------------------ idioms

const one = constDim(1);
const isOne = (d: Dim) => constValue(d) === 1;

function scalar(b: GradientBuilder, value: number, dtype: DType): number {
  return b.op("const", [], { value, dtype });
}

/** `1, 1, …, 1` of length n (arange's dtype, f32): the factor that stretches a tensor along one axis. */
function ones(b: GradientBuilder, n: Dim): number {
  return b.op("add", [b.op("mul", [b.op("arange", [], { n }), scalar(b, 0, "f32")]), scalar(b, 1, "f32")]);
}

/** `g` broadcast to `shape` (g's shape must broadcast to it): multiplied by a ones vector along each
 *  axis it is stretched on. The broadcast-to-shape idiom of the op set, which has no expand op. */
export function broadcastTo(b: GradientBuilder, g: number, shape: readonly Dim[]): number {
  let cur = g;
  const lead = shape.length - b.ty(g).shape.length;
  for (let i = 0; i < shape.length; i++) {
    const have = i < lead ? one : b.ty(g).shape[i - lead]!;
    if (!isOne(have) || isOne(shape[i]!)) continue;
    let stretch = ones(b, shape[i]!);
    if (b.ty(cur).dtype !== "f32") stretch = b.op("cast", [stretch], { dtype: b.ty(cur).dtype });
    const axisShape = shape.map((d, j) => (j === i ? d : one));
    cur = b.op("mul", [cur, b.op("reshape", [stretch], { shape: axisShape.slice(i) })]);
  }
  const got = b.ty(cur).shape;
  if (got.length < shape.length) cur = b.op("reshape", [cur], { shape: [...shape] });
  return cur;
}

/** Zeros of `shape` and `dtype`. */
export function zeros(b: GradientBuilder, shape: readonly Dim[], dtype: DType): number {
  return broadcastTo(b, scalar(b, 0, dtype), shape);
}

/** The gradient of a broadcast operand: `g` summed over the axes the operand was stretched on. */
export function sumTo(b: GradientBuilder, g: number, shape: readonly Dim[]): number {
  let cur = g;
  while (b.ty(cur).shape.length > shape.length) cur = b.op("sum", [cur], { axis: 0, keepdim: false });
  shape.forEach((d, i) => {
    if (isOne(d) && !isOne(b.ty(cur).shape[i]!)) cur = b.op("sum", [cur], { axis: i, keepdim: true });
  });
  return cur;
}

const sameShape = (a: readonly Dim[], c: readonly Dim[]) => a.length === c.length && a.every((d, i) => dimEquals(d, c[i]!));

/** A gradient computed at the broadcast result shape, brought back to input `x`'s shape. */
function toInput(b: GradientBuilder, g: number, x: number): number {
  return sameShape(b.ty(g).shape, b.ty(x).shape) ? g : sumTo(b, g, b.ty(x).shape);
}

/** Swaps the last two axes. */
function transposeLast(b: GradientBuilder, x: number): number {
  const r = b.ty(x).shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return b.op("transpose", [x], { perm });
}

const isFloat = (d: DType) => d === "f32" || d === "f16" || d === "bf16";

// ------------------------------------------------------------------------------------------ rules

/** Rules of unary elementwise ops: dx = dy · f'(x), with f' written over x and y. */
function unary(local: (b: GradientBuilder, x: number, y: number, dt: DType) => number): GradientRule {
  return (b, { inputs: [x], output: y }, dy) => [b.op("mul", [dy, local(b, x!, y, b.ty(y).dtype)])];
}

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/** Shape of a reduction's result with the reduced axis kept (as 1). */
function keptShape(x: TensorTy, axis: number): Dim[] {
  const a = axis < 0 ? axis + x.shape.length : axis;
  return x.shape.map((d, i) => (i === a ? one : d));
}

/** dy of a reduction, with the reduced axis restored as 1 when the op dropped it. */
function keptGrad(b: GradientBuilder, x: number, dy: number, attrs: Attrs): number {
  return attrs["keepdim"] ? dy : b.op("reshape", [dy], { shape: keptShape(b.ty(x), attrs["axis"] as number) });
}

const attentionRule: GradientRule = (b, { inputs: [q, k, v], output: o, attrs }, dO) => {
  // Flash-attention's backward: with p = softmax(S) recomputed from each row's log-sum-exp,
  // dV = pᵀ dO, dS = p ∘ (dO Vᵀ − rowsum(dO ∘ O)), dQ = dS K·scale, dK = dSᵀ Q·scale, summed over
  // the query heads that share a kv head — four kernels that never hold [T, S] (ops/table.ts).
  // Training graphs fuse only attention without score or mask programs (fuse-attention-plain);
  // the rest stays written out and is differentiated op by op.
  if (attrs["score"] || attrs["mask"]) throw new Error("internal: no gradient for an attention with score or mask programs");
  const a = { causal: attrs["causal"]!, window: attrs["window"]!, scale: attrs["scale"]!, ...(attrs["segment"] ? { segment: attrs["segment"] } : {}) };
  const lse = b.op("attention_lse", [q!, k!], a);
  return [
    b.op("attention_dq", [q!, k!, v!, o, dO, lse], a),
    b.op("attention_dk", [q!, k!, v!, o, dO, lse], a),
    b.op("attention_dv", [q!, k!, dO, lse], a),
  ];
};

const rotaryRule: GradientRule = (b, { inputs: [x, cos, sin] }, dy) => {
  // The rotation by −θ undoes the one by θ: dx = rotary(dy, cos, −sin). For the angles' inputs,
  // y₀ = x₀c − x₁s and y₁ = x₀s + x₁c give dc = Σ_h dy₀x₀ + dy₁x₁ and ds = Σ_h dy₁x₀ − dy₀x₁.
  const dx = b.op("rotary", [dy, cos!, b.op("neg", [sin!])]);
  const [t, h, d] = b.ty(x!).shape as [Dim, Dim, Dim];
  const half = constDim(constValue(d)! / 2);
  const pairs = (z: number) => b.op("reshape", [z], { shape: [t, h, half, constDim(2)] });
  const part = (z: number, i: number) => b.op("slice", [pairs(z)], { axis: 3, start: constDim(i), end: constDim(i + 1) });
  const [x0, x1, g0, g1] = [part(x!, 0), part(x!, 1), part(dy, 0), part(dy, 1)];
  const overHeads = (z: number) => b.op("reshape", [b.op("sum", [z], { axis: 1, keepdim: false })], { shape: [t, half] });
  const dc = overHeads(b.op("add", [b.op("mul", [g0, x0]), b.op("mul", [g1, x1])]));
  const ds = overHeads(b.op("sub", [b.op("mul", [g1, x0]), b.op("mul", [g0, x1])]));
  return [dx, toInput(b, dc, cos!), toInput(b, ds, sin!)];
};

export const gradients: Readonly<Record<string, GradientRule>> = {
  neg: (b, _, dy) => [b.op("neg", [dy])],
  exp: unary((_, __, y) => y),
  log: (b, { inputs: [x] }, dy) => [b.op("div", [dy, x!])],
  sqrt: (b, { output: y }, dy) => [b.op("div", [dy, b.op("mul", [y, scalar(b, 2, b.ty(y).dtype)])])],
  // d(x^−½) = −½ x^−³⁄² = −½ y³
  rsqrt: unary((b, _, y, dt) => b.op("mul", [b.op("mul", [b.op("mul", [y, y]), y]), scalar(b, -0.5, dt)])),
  sin: unary((b, x) => b.op("cos", [x])),
  cos: unary((b, x) => b.op("neg", [b.op("sin", [x])])),
  tanh: unary((b, _, y, dt) => b.op("sub", [scalar(b, 1, dt), b.op("mul", [y, y])])),
  sigmoid: unary((b, _, y, dt) => b.op("mul", [y, b.op("sub", [scalar(b, 1, dt), y])])),
  // d(x·σ) = σ·(1 + x·(1 − σ))
  silu: unary((b, x, _, dt) => {
    const s = b.op("sigmoid", [x]);
    return b.op("mul", [s, b.op("add", [scalar(b, 1, dt), b.op("mul", [x, b.op("sub", [scalar(b, 1, dt), s])])])]);
  }),
  // y = ½x(1 + tanh u), u = c(x + a x³): y' = ½(1 + tanh u) + ½x(1 − tanh² u)·c(1 + 3a x²)
  gelu: unary((b, x, _, dt) => {
    const c = (v: number) => scalar(b, v, dt);
    const x2 = b.op("mul", [x, x]);
    const u = b.op("mul", [b.op("mul", [x, b.op("add", [c(1), b.op("mul", [x2, c(GELU_A)])])]), c(GELU_C)]);
    const th = b.op("tanh", [u]);
    const du = b.op("mul", [b.op("add", [c(1), b.op("mul", [x2, c(3 * GELU_A)])]), c(GELU_C)]);
    const left = b.op("mul", [b.op("add", [c(1), th]), c(0.5)]);
    const right = b.op("mul", [b.op("mul", [b.op("mul", [x, c(0.5)]), b.op("sub", [c(1), b.op("mul", [th, th])])]), du]);
    return b.op("add", [left, right]);
  }),
  erf: unary((b, x, _, dt) => b.op("mul", [b.op("exp", [b.op("neg", [b.op("mul", [x, x])])]), scalar(b, 2 / Math.sqrt(Math.PI), dt)])),
  // sign(x), 0 at the kink (PyTorch's choice).
  abs: unary((b, x, _, dt) => {
    const z = scalar(b, 0, dt);
    return b.op("where", [b.op("gt", [x, z]), scalar(b, 1, dt), b.op("where", [b.op("lt", [x, z]), scalar(b, -1, dt), z])]);
  }),
  recip: unary((b, _, y) => b.op("neg", [b.op("mul", [y, y])])),
  cast: (b, { inputs: [x] }, dy) => [isFloat(b.ty(x!).dtype) && isFloat(b.ty(dy).dtype) ? b.op("cast", [dy], { dtype: b.ty(x!).dtype }) : null],

  add: (b, { inputs: [x, y] }, dy) => [toInput(b, dy, x!), toInput(b, dy, y!)],
  sub: (b, { inputs: [x, y] }, dy) => [toInput(b, dy, x!), toInput(b, b.op("neg", [dy]), y!)],
  mul: (b, { inputs: [x, y] }, dy) => [toInput(b, b.op("mul", [dy, y!]), x!), toInput(b, b.op("mul", [dy, x!]), y!)],
  // d(a/b)/db = −(a/b)/b
  div: (b, { inputs: [x, y], output: q }, dy) => [
    toInput(b, b.op("div", [dy, y!]), x!),
    toInput(b, b.op("neg", [b.op("div", [b.op("mul", [dy, q]), y!])]), y!),
  ],
  // d(aᵇ)/da = b·aᵇ⁻¹; d(aᵇ)/db = aᵇ·ln a (unused, and removed, when b is a constant).
  pow: (b, { inputs: [x, y], output: p }, dy) => {
    const dt = b.ty(p).dtype;
    const da = b.op("mul", [dy, b.op("mul", [y!, b.op("pow", [x!, b.op("sub", [y!, scalar(b, 1, dt)])])])]);
    const db = b.op("mul", [dy, b.op("mul", [p, b.op("log", [x!])])]);
    return [toInput(b, da, x!), toInput(b, db, y!)];
  },
  // Ties go to the first operand.
  max: (b, { inputs: [x, y] }, dy) => pick(b, b.op("ge", [x!, y!]), x!, y!, dy),
  min: (b, { inputs: [x, y] }, dy) => pick(b, b.op("le", [x!, y!]), x!, y!, dy),
  where: (b, { inputs: [c, x, y] }, dy) => [null, ...pick(b, c!, x!, y!, dy)],

  sum: (b, { inputs: [x], attrs }, dy) => [broadcastTo(b, keptGrad(b, x!, dy, attrs), b.ty(x!).shape)],
  mean: (b, { inputs: [x], attrs }, dy) => {
    const ty = b.ty(x!);
    const axis = attrs["axis"] as number;
    const n = ty.shape[axis < 0 ? axis + ty.shape.length : axis]!;
    const known = constValue(n);
    let count = known !== null ? scalar(b, known, ty.dtype) : b.op("dim_value", [], { value: n, dtype: "f32" });
    if (b.ty(count).dtype !== ty.dtype) count = b.op("cast", [count], { dtype: ty.dtype });
    return [broadcastTo(b, b.op("div", [keptGrad(b, x!, dy, attrs), count]), ty.shape)];
  },
  // The gradient is shared equally by the elements that reach the maximum (as PyTorch's amax).
  amax: (b, { inputs: [x], output: y, attrs }, dy) => {
    const dt = b.ty(x!).dtype;
    const hit = b.op("cast", [b.op("eq", [x!, keptGrad(b, x!, y, attrs)])], { dtype: dt });
    const share = b.op("div", [keptGrad(b, x!, dy, attrs), b.op("sum", [hit], { axis: attrs["axis"] as number, keepdim: true })]);
    return [b.op("mul", [hit, share])];
  },

  matmul: (b, { inputs: [x, y] }, dy) => [
    toInput(b, b.op("matmul", [dy, transposeLast(b, y!)]), x!),
    toInput(b, b.op("matmul", [transposeLast(b, x!), dy]), y!),
  ],

  transpose: (b, { attrs }, dy) => {
    const perm = attrs["perm"] as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [b.op("transpose", [dy], { perm: inverse })];
  },
  reshape: (b, { inputs: [x] }, dy) => [b.op("reshape", [dy], { shape: [...b.ty(x!).shape] })],
  concat: (b, { inputs: [x, y], attrs }, dy) => {
    const rank = b.ty(x!).shape.length;
    const axis = (attrs["axis"] as number) < 0 ? (attrs["axis"] as number) + rank : (attrs["axis"] as number);
    const split = b.ty(x!).shape[axis]!;
    const end = b.ty(dy).shape[axis]!;
    return [
      b.op("slice", [dy], { axis, start: constDim(0), end: split }),
      b.op("slice", [dy], { axis, start: split, end }),
    ];
  },
  // The slice's gradient padded with zeros before and after it.
  slice: (b, { inputs: [x], attrs }, dy) => {
    const shape = b.ty(x!).shape;
    const axis = (attrs["axis"] as number) < 0 ? (attrs["axis"] as number) + shape.length : (attrs["axis"] as number);
    const dt = b.ty(dy).dtype;
    const pad = (len: Dim) => zeros(b, shape.map((d, i) => (i === axis ? len : d)), dt);
    let g = dy;
    const before = attrs["start"] as Dim;
    const after = subDim(shape[axis]!, attrs["end"] as Dim);
    if (constValue(before) !== 0) g = b.op("concat", [pad(before), g], { axis });
    if (constValue(after) !== 0) g = b.op("concat", [g, pad(after)], { axis });
    return [g];
  },
  // The table's gradient is onehot(ids)ᵀ · dy: each row sums the gradients of the tokens that read it.
  // The table's rows summed by id, one kernel (not a one-hot [ids, V] matrix times dy).
  gather: (b, { inputs: [table, ids] }, dy) => [b.op("gather_grad", [ids!, dy], { rows: b.ty(table!).shape[0]! }), null],
  rotary: rotaryRule,
  attention: attentionRule,
  cross_entropy_rows: (b, { inputs: [logits, targets] }, dy) => [b.op("cross_entropy_rows_grad", [logits!, targets!, dy]), null],
  // The gradient of this step's rows, the last T of the cache; the cache's past is not differentiated.
  kv_append: (b, { inputs: [x], output: y }, dy) => {
    const len = b.ty(y).shape[0]!;
    return [b.op("slice", [dy], { axis: 0, start: subDim(len, b.ty(x!).shape[0]!), end: len })];
  },
};

/** Routes dy to one of two operands by a mask, as max/min/where select. */
function pick(b: GradientBuilder, mask: number, x: number, y: number, dy: number): [number, number] {
  const zero = scalar(b, 0, b.ty(dy).dtype);
  return [toInput(b, b.op("where", [mask, dy, zero]), x), toInput(b, b.op("where", [mask, zero, dy]), y)];
}

/** Ops without a gradient rule, and why. */
export const NON_DIFFERENTIABLE: ReadonlyMap<string, string> = new Map([
  ...["const", "arange", "dim_value"].map((op) => [op, "a source: no inputs"] as const),
  ...["lt", "le", "gt", "ge", "eq", "ne", "and", "or", "not"].map((op) => [op, "a bool result: piecewise constant"] as const),
  ["argmax", "an integer result: piecewise constant"],
  ["dropout", "the training graph replaces it by x·mask before differentiating (autodiff/dropout.ts)"],
  ...["fused", "linear", "fused_linear"].map((op) => [op, "made by fusion, which runs after differentiation"] as const),
  ...["attention_lse", "attention_dq", "attention_dk", "attention_dv", "gather_grad", "cross_entropy_rows_grad"].map((op) => [op, "made by a gradient rule (a second derivative is not needed for training)"] as const),
]);

/** The rule for `op`; an error naming the op when it has none. */
export function gradientRule(op: string): GradientRule {
  const rule = gradients[op];
  if (rule) return rule;
  const why = NON_DIFFERENTIABLE.get(op);
  throw new Error(why ? `'${op}' has no gradient (${why})` : `internal: no gradient rule for op '${op}'`);
}

/** The type a rule's gradient must have: the input's. */
export function checkGradientType(op: string, input: TensorTy, grad: TensorTy): void {
  if (!sameShape(input.shape, grad.shape) || input.dtype !== grad.dtype) {
    throw new Error(`internal: ${op}'s gradient rule gives ${formatShape(grad.shape)} ${grad.dtype} for an input of ${formatShape(input.shape)} ${input.dtype}`);
  }
}


// The op table: every primitive op of the IR, defined once — its attributes and its shape/dtype rule.
// The checker types .llm programs with these rules and the IR verifier re-checks every node with
// them; later phases add the CPU reference and kernel family beside each entry.

import { programTypes, type ExprProgram } from "./expr.js";
import {
  addDim, constDim, constValue, dimEquals, formatDim, formatShape, mulDim, symDim, type Dim,
} from "../base/symbolic.js";

export type DType = "f32" | "f16" | "bf16" | "i32" | "bool";

export interface TensorTy {
  shape: Dim[];
  dtype: DType;
}

export type AttrValue = number | boolean | string | Dim | Dim[] | number[] | ExprProgram;
export type Attrs = Record<string, AttrValue>;

/** A rule violation; the checker turns it into a located diagnostic. */
export class TypeRuleError extends Error {}

export type OpKind = "elementwise" | "reduction" | "matmul" | "layout" | "gather" | "gather_grad" | "source" | "rotary" | "attention" | "attention_grad" | "cross_entropy" | "state" | "fused";

/** How an attribute is typed, printed and parsed in the IR text form. */
export type AttrKind = "int" | "float" | "bool" | "str" | "dim" | "dims" | "ints" | "dtype" | "program";

export interface OpDef {
  name: string;
  kind: OpKind;
  doc: string;
  /** Number of tensor inputs; VARIADIC for fused ops. */
  arity: number;
  attrs: Record<string, AttrKind>;
  /** Attributes a node may leave out (each also in `attrs`, for its kind). */
  optionalAttrs?: readonly string[];
  infer(inputs: TensorTy[], attrs: Attrs): TensorTy;
}

/** Attributes of the attention gradient ops: the attention's own, without programs. */
const ATTENTION_GRAD_ATTRS: Record<string, AttrKind> = { causal: "bool", window: "int", scale: "float", segment: "int" };

/** Arity of ops that take any number of inputs. */
export const VARIADIC = -1;

const isFloat = (d: DType) => d === "f32" || d === "f16" || d === "bf16";
const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i32", "bool"];

function checkDType(d: unknown): DType {
  if (!DTYPES.includes(d as DType)) fail(`unknown element type '${String(d)}'`);
  return d as DType;
}

function fail(msg: string): never {
  throw new TypeRuleError(msg);
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

/** NumPy broadcasting: align from the right; a dim of 1 stretches. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i];
    const db = b[b.length - n + i];
    if (da === undefined) out.push(db!);
    else if (db === undefined) out.push(da);
    else if (dimEquals(da, db)) out.push(da);
    else if (constValue(da) === 1) out.push(db);
    else if (constValue(db) === 1) out.push(da);
    else fail(`shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (dim ${formatDim(da)} vs ${formatDim(db)})`);
  }
  return out;
}

function unary(name: string, doc: string, floatOnly = true): OpDef {
  return {
    name, kind: "elementwise", doc, arity: 1, attrs: {},
    infer: ([x]) => {
      if (floatOnly && !isFloat(x!.dtype)) fail(`${name} needs a floating-point tensor, got ${x!.dtype}`);
      if (x!.dtype === "bool") fail(`${name} does not apply to bool tensors`);
      return { shape: x!.shape, dtype: x!.dtype };
    },
  };
}

function binary(name: string, doc: string, result: "same" | "bool", operand: "any" | "bool" = "any"): OpDef {
  return {
    name, kind: "elementwise", doc, arity: 2, attrs: {},
    infer: ([a, b]) => {
      if (a!.dtype !== b!.dtype) fail(`${name} needs operands of one element type, got ${a!.dtype} and ${b!.dtype}`);
      if (operand === "bool" && a!.dtype !== "bool") fail(`${name} needs bool operands, got ${a!.dtype}`);
      if (operand === "any" && a!.dtype === "bool") fail(`${name} does not apply to bool tensors`);
      return { shape: broadcastShapes(a!.shape, b!.shape), dtype: result === "bool" ? "bool" : a!.dtype };
    },
  };
}

function reduction(name: string, doc: string): OpDef {
  return {
    name, kind: "reduction", doc, arity: 1, attrs: { axis: "int", keepdim: "bool" },
    infer: ([x], attrs) => {
      if (!isFloat(x!.dtype)) fail(`${name} needs a floating-point tensor, got ${x!.dtype}`);
      const axis = normAxis(attrs["axis"] as number, x!.shape.length);
      const shape = x!.shape.slice();
      if (attrs["keepdim"]) shape[axis] = constDim(1);
      else shape.splice(axis, 1);
      return { shape, dtype: x!.dtype };
    },
  };
}

const defs: OpDef[] = [
  // Sources
  {
    name: "const", kind: "source", arity: 0, attrs: { value: "float", dtype: "dtype" }, doc: "A scalar constant (rank 0), broadcast where used. attrs: value, dtype.",
    infer: (_, attrs) => ({ shape: [], dtype: checkDType(attrs["dtype"]) }),
  },
  {
    name: "arange", kind: "source", arity: 0, attrs: { n: "dim" }, doc: "`0, 1, …, n-1` as f32. attrs: n.",
    infer: (_, attrs) => {
      const n = constValue(attrs["n"] as Dim);
      if (n !== null && n < 0) fail(`arange needs a non-negative length, got ${n}`);
      return { shape: [attrs["n"] as Dim], dtype: "f32" };
    },
  },
  {
    name: "dim_value", kind: "source", arity: 0, attrs: { value: "dim", dtype: "dtype" },
    doc: "A symbolic dimension's value (a polynomial of T and P, e.g. `P` or `P + T`) as a rank-0 tensor, computed at each step: `arange(T) + P` in .llm. attrs: value, dtype (f32 or i32).",
    infer: (_, attrs) => {
      const dtype = checkDType(attrs["dtype"]);
      if (dtype !== "f32" && dtype !== "i32") fail(`a dimension's value is an f32 or i32 tensor, not ${dtype}`);
      return { shape: [], dtype };
    },
  },
  // Elementwise
  unary("neg", "-x", false),
  unary("exp", "e^x"),
  unary("log", "natural logarithm"),
  unary("sqrt", "square root"),
  unary("rsqrt", "1/sqrt(x)"),
  unary("sin", "sine"),
  unary("cos", "cosine"),
  unary("tanh", "hyperbolic tangent"),
  unary("sigmoid", "1/(1+e^-x)"),
  unary("silu", "x·sigmoid(x)"),
  unary("gelu", "GELU, tanh approximation"),
  unary("erf", "error function"),
  unary("abs", "|x|", false),
  unary("recip", "1/x"),
  {
    name: "dropout", kind: "elementwise", arity: 1, attrs: { p: "float" },
    doc: "inverted dropout: in training each element is kept with probability 1−p and scaled by 1/(1−p) (the training graph multiplies by a mask, autodiff/dropout.ts); the identity anywhere else, and inference lowering drops it. attrs: p.",
    infer: ([x], attrs) => {
      const p = attrs["p"];
      if (typeof p !== "number" || !(p >= 0 && p < 1)) fail(`dropout probability must lie in [0, 1), got ${String(p)}`);
      if (!isFloat(x!.dtype)) fail(`dropout needs a floating-point tensor, got ${x!.dtype}`);
      return { shape: x!.shape, dtype: x!.dtype };
    },
  },
  {
    name: "not", kind: "elementwise", arity: 1, attrs: {}, doc: "logical not",
    infer: ([x]) => (x!.dtype === "bool" ? { shape: x!.shape, dtype: "bool" } : fail(`'!' needs a bool tensor, got ${x!.dtype}`)),
  },
  {
    name: "cast", kind: "elementwise", arity: 1, attrs: { dtype: "dtype" }, doc: "convert the element type. attrs: dtype.",
    infer: ([x], attrs) => ({ shape: x!.shape, dtype: checkDType(attrs["dtype"]) }),
  },
  binary("add", "a + b", "same"),
  binary("sub", "a - b", "same"),
  binary("mul", "a · b", "same"),
  binary("div", "a / b", "same"),
  binary("pow", "a ** b", "same"),
  binary("max", "elementwise maximum", "same"),
  binary("min", "elementwise minimum", "same"),
  binary("lt", "a < b", "bool"),
  binary("le", "a <= b", "bool"),
  binary("gt", "a > b", "bool"),
  binary("ge", "a >= b", "bool"),
  binary("eq", "a == b", "bool"),
  binary("ne", "a != b", "bool"),
  binary("and", "a && b", "bool", "bool"),
  binary("or", "a || b", "bool", "bool"),
  {
    name: "where", kind: "elementwise", arity: 3, attrs: {}, doc: "cond ? a : b, elementwise with broadcasting",
    infer: ([c, a, b]) => {
      if (c!.dtype !== "bool") fail(`where's condition must be bool, got ${c!.dtype}`);
      if (a!.dtype !== b!.dtype) fail(`where's branches must have one element type, got ${a!.dtype} and ${b!.dtype}`);
      return { shape: broadcastShapes(c!.shape, broadcastShapes(a!.shape, b!.shape)), dtype: a!.dtype };
    },
  },
  // Reductions
  reduction("sum", "sum over one axis. attrs: axis, keepdim."),
  reduction("mean", "mean over one axis. attrs: axis, keepdim."),
  reduction("amax", "maximum over one axis. attrs: axis, keepdim."),
  {
    name: "argmax", kind: "reduction", arity: 1, attrs: { axis: "int", keepdim: "bool" },
    doc: "index (i32) of the largest value along one axis; ties give the lowest index, a NaN counts as larger than any number (the first NaN wins). Kernels reduce over the last axis only. attrs: axis, keepdim.",
    infer: ([x], attrs) => {
      if (!isFloat(x!.dtype)) fail(`argmax needs a floating-point tensor, got ${x!.dtype}`);
      const axis = normAxis(attrs["axis"] as number, x!.shape.length);
      const n = constValue(x!.shape[axis]!);
      if (n !== null && n < 1) fail("argmax needs a non-empty axis");
      const shape = x!.shape.slice();
      if (attrs["keepdim"]) shape[axis] = constDim(1);
      else shape.splice(axis, 1);
      return { shape, dtype: "i32" };
    },
  },
  // Contraction
  {
    name: "matmul", kind: "matmul", arity: 2, attrs: {}, doc: "[…, M, K] @ […, K, N] → […, M, N]; batch dims broadcast",
    infer: ([a, b]) => {
      if (!isFloat(a!.dtype) || a!.dtype !== b!.dtype) fail(`@ needs floating-point operands of one type, got ${a!.dtype} and ${b!.dtype}`);
      if (a!.shape.length < 2 || b!.shape.length < 2) fail(`@ needs operands of rank ≥ 2, got ${formatShape(a!.shape)} @ ${formatShape(b!.shape)}`);
      const k1 = a!.shape[a!.shape.length - 1]!;
      const k2 = b!.shape[b!.shape.length - 2]!;
      if (!dimEquals(k1, k2)) {
        fail(`@ contracts dim ${formatDim(k1)} of ${formatShape(a!.shape)} with dim ${formatDim(k2)} of ${formatShape(b!.shape)}; they must be equal (weights are [out, in]: use x @ w.T)`);
      }
      const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
      return { shape: [...batch, a!.shape[a!.shape.length - 2]!, b!.shape[b!.shape.length - 1]!], dtype: a!.dtype };
    },
  },
  // Layout
  {
    name: "transpose", kind: "layout", arity: 1, attrs: { perm: "ints" }, doc: "permute dims. attrs: perm.",
    infer: ([x], attrs) => {
      const perm = attrs["perm"] as number[];
      if (perm.length !== x!.shape.length || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
        fail(`transpose permutation [${perm.join(", ")}] does not fit a tensor of rank ${x!.shape.length}`);
      }
      return { shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
    },
  },
  {
    name: "reshape", kind: "layout", arity: 1, attrs: { shape: "dims" }, doc: "same elements, new shape. attrs: shape.",
    infer: ([x], attrs) => {
      const shape = attrs["shape"] as Dim[];
      const before = x!.shape.reduce((acc, d) => mulDim(acc, d), constDim(1));
      const after = shape.reduce((acc, d) => mulDim(acc, d), constDim(1));
      if (!dimEquals(before, after)) fail(`cannot reshape ${formatShape(x!.shape)} (${formatDim(before)} elements) to ${formatShape(shape)} (${formatDim(after)} elements)`);
      return { shape, dtype: x!.dtype };
    },
  },
  {
    name: "concat", kind: "layout", arity: 2, attrs: { axis: "int" }, doc: "join along an axis. attrs: axis.",
    infer: ([a, b], attrs) => {
      if (a!.dtype !== b!.dtype) fail(`concat needs one element type, got ${a!.dtype} and ${b!.dtype}`);
      if (a!.shape.length !== b!.shape.length) fail(`concat needs tensors of one rank, got ${formatShape(a!.shape)} and ${formatShape(b!.shape)}`);
      const axis = normAxis(attrs["axis"] as number, a!.shape.length);
      const shape = a!.shape.map((d, i) => {
        if (i === axis) return addDim(d, b!.shape[i]!);
        if (!dimEquals(d, b!.shape[i]!)) fail(`concat along axis ${axis}: shapes ${formatShape(a!.shape)} and ${formatShape(b!.shape)} differ in dim ${i}`);
        return d;
      });
      return { shape, dtype: a!.dtype };
    },
  },
  {
    name: "slice", kind: "layout", arity: 1, attrs: { axis: "int", start: "dim", end: "dim" }, doc: "x[start:end] along one axis. attrs: axis, start, end (dims, 0 ≤ start < end ≤ size).",
    infer: ([x], attrs) => {
      const axis = normAxis(attrs["axis"] as number, x!.shape.length);
      const start = attrs["start"] as Dim;
      const end = attrs["end"] as Dim;
      const len = addDim(end, new Map([...start].map(([k, c]) => [k, -c])));
      const sc = constValue(start);
      if (sc !== null && sc < 0) fail(`slice start ${sc} is negative`);
      const lc = constValue(len);
      if (lc !== null && lc <= 0) fail(`slice ${formatDim(start)}:${formatDim(end)} of dim ${formatDim(x!.shape[axis]!)} is empty`);
      const size = constValue(x!.shape[axis]!);
      const ec = constValue(end);
      if (size !== null && ec !== null && ec > size) fail(`slice end ${ec} is past the end of dim ${size}`);
      const shape = x!.shape.slice();
      shape[axis] = len;
      return { shape, dtype: x!.dtype };
    },
  },
  {
    name: "gather", kind: "gather", arity: 2, attrs: {}, doc: "rows of a table: [V, D] by ids of any shape S (i32) → [...S, D]; ids outside 0…V-1 are an error",
    infer: ([table, ids]) => {
      if (ids!.dtype !== "i32") fail(`row indices must be i32, got ${ids!.dtype}`);
      if (table!.shape.length !== 2) fail(`gather needs a [rows, dim] table, got ${formatShape(table!.shape)}`);
      return { shape: [...ids!.shape, table!.shape[1]!], dtype: table!.dtype };
    },
  },
  {
    name: "gather_grad", kind: "gather_grad", arity: 2, attrs: { rows: "dim" },
    doc: "gather's gradient for its table (an embedding's): ids of any shape S (i32), dy [...S, D] → [rows, D], row v the sum of the rows of dy whose id is v (ids outside 0…rows-1 add to none). attrs: rows.",
    infer: ([ids, dy], attrs) => {
      if (ids!.dtype !== "i32") fail(`gather_grad's ids must be i32, got ${ids!.dtype}`);
      if (!isFloat(dy!.dtype)) fail(`gather_grad's dy must be floating-point, got ${dy!.dtype}`);
      const lead = dy!.shape.slice(0, -1);
      if (dy!.shape.length !== ids!.shape.length + 1 || !lead.every((d, i) => dimEquals(d, ids!.shape[i]!))) {
        fail(`gather_grad's dy ${formatShape(dy!.shape)} must be the ids' shape ${formatShape(ids!.shape)} and one more axis`);
      }
      return { shape: [attrs["rows"] as Dim, dy!.shape[dy!.shape.length - 1]!], dtype: dy!.dtype };
    },
  },
  // The training loss's rows and their gradient (compiler/autodiff): one pass over each row of
  // logits instead of max, exp, sum, log and one-hot each writing a [T, vocab] tensor.
  {
    name: "cross_entropy_rows", kind: "cross_entropy", arity: 2, attrs: {},
    doc: "each row's cross-entropy against its target: logits [T, V], targets [T] (i32) → [T] f32, row t = log Σⱼ exp(logits[t, j]) − logits[t, targets[t]], and 0 where the target is outside 0…V-1 (ignored).",
    infer: ([logits, targets]) => {
      checkCrossEntropyInputs("cross_entropy_rows", logits!, targets!);
      return { shape: [logits!.shape[0]!], dtype: "f32" };
    },
  },
  {
    name: "cross_entropy_rows_grad", kind: "cross_entropy", arity: 3, attrs: {},
    doc: "cross_entropy_rows' gradient for its logits: logits [T, V], targets [T] (i32), dy [T] f32 → [T, V], row t = dy[t]·(softmax(logits[t]) − onehot(targets[t])), and 0 where the target is ignored.",
    infer: ([logits, targets, dy]) => {
      checkCrossEntropyInputs("cross_entropy_rows_grad", logits!, targets!);
      if (dy!.dtype !== "f32" || dy!.shape.length !== 1 || !dimEquals(dy!.shape[0]!, logits!.shape[0]!)) fail(`cross_entropy_rows_grad's dy must be f32 [${formatDim(logits!.shape[0]!)}], got ${dy!.dtype} ${formatShape(dy!.shape)}`);
      return { shape: logits!.shape, dtype: logits!.dtype };
    },
  },
  // Model-specific primitives
  {
    name: "rotary", kind: "rotary", arity: 3, attrs: {}, doc: "rotate adjacent pairs: x [T, H, D], cos/sin [T, D/2] → [T, H, D]",
    infer: ([x, cos, sin]) => {
      if (x!.shape.length !== 3) fail(`rotary needs x of shape [T, heads, head_dim], got ${formatShape(x!.shape)}`);
      if (!isFloat(x!.dtype) || !isFloat(cos!.dtype) || !isFloat(sin!.dtype)) fail(`rotary needs floating-point x, cos and sin, got ${x!.dtype}, ${cos!.dtype}, ${sin!.dtype}`);
      const [t, , d] = x!.shape;
      const headDim = constValue(d!);
      if (headDim === null || headDim % 2 !== 0) fail(`rotary needs an even head_dim, got ${formatDim(d!)}`);
      const half = headDim / 2;
      for (const [nm, c] of [["cos", cos!], ["sin", sin!]] as const) {
        if (c.shape.length !== 2 || !dimEquals(c.shape[0]!, t!) || constValue(c.shape[1]!) !== half) {
          fail(`rotary's ${nm} must be [${formatDim(t!)}, ${half}], got ${formatShape(c.shape)}`);
        }
      }
      return { shape: x!.shape, dtype: x!.dtype };
    },
  },
  {
    name: "attention", kind: "attention", arity: 3, attrs: { causal: "bool", window: "int", scale: "float", score: "program", mask: "program", segment: "int" },
    optionalAttrs: ["score", "mask", "segment"],
    doc: "softmax(mask(score(q·kᵀ·scale)))·v with GQA. q [T, Hq, D], k/v [S, Hkv, D] → [T, Hq, D]; query t is at position S−T+t; query head h reads kv head h / (Hq/Hkv). attrs: causal, window (0 = none), scale (the elaborator fills 1/√D); optional score, an f32 program over (s, q_pos, k_pos, head) giving each score anew (soft-capping, position biases), and mask, a bool program over (q_pos, k_pos, head) that must also hold for a key to be seen (positions and head as f32); optional segment > 0 (packed training sequences): positions form independent sequences of that many, and a key is seen only from its own. A row with every key masked is 0.",
    infer: ([q, k, v], attrs) => {
      if (!isFloat(q!.dtype) || k!.dtype !== q!.dtype || v!.dtype !== q!.dtype) fail(`attention needs floating-point q, k, v of one type, got ${q!.dtype}, ${k!.dtype}, ${v!.dtype}`);
      for (const [nm, x] of [["q", q!], ["k", k!], ["v", v!]] as const) {
        if (x.shape.length !== 3) fail(`attention's ${nm} must be [len, heads, head_dim], got ${formatShape(x.shape)}`);
      }
      if (!dimEquals(k!.shape[0]!, v!.shape[0]!) || !dimEquals(k!.shape[1]!, v!.shape[1]!)) {
        fail(`attention's k ${formatShape(k!.shape)} and v ${formatShape(v!.shape)} must agree in length and heads`);
      }
      if (!dimEquals(q!.shape[2]!, k!.shape[2]!)) fail(`attention's q and k head_dim differ: ${formatShape(q!.shape)} vs ${formatShape(k!.shape)}`);
      const hq = constValue(q!.shape[1]!);
      const hk = constValue(k!.shape[1]!);
      if (hq !== null && hk !== null && (hk === 0 || hq % hk !== 0)) fail(`attention needs query heads (${hq}) to be a multiple of key/value heads (${hk})`);
      checkAttentionModifiers(attrs);
      checkSegment("attention", attrs);
      return { shape: [q!.shape[0]!, q!.shape[1]!, v!.shape[2]!], dtype: q!.dtype };
    },
  },
  // The attention's backward (ops/gradients.ts), flash-attention style: each recomputes the
  // probabilities p = exp(q·k·scale − lse) of the keys it needs instead of storing [T, S] of them.
  {
    name: "attention_lse", kind: "attention_grad", arity: 2, attrs: ATTENTION_GRAD_ATTRS, optionalAttrs: ["segment"],
    doc: "log Σ exp of the visible scaled scores of each (query, head) row of an attention (causal, window, scale, segment as attention's). q [T, Hq, D], k [S, Hkv, D] → [T, Hq] f32; a row with no visible key gives 3e38 (its probabilities are 0).",
    infer: ([q, k], attrs) => {
      checkAttentionGradInputs("attention_lse", { q: q!, k: k! }, attrs);
      return { shape: [q!.shape[0]!, q!.shape[1]!], dtype: "f32" };
    },
  },
  {
    name: "attention_dq", kind: "attention_grad", arity: 6, attrs: ATTENTION_GRAD_ATTRS, optionalAttrs: ["segment"],
    doc: "the attention's gradient for q: scale·Σⱼ p·(dO·vⱼ − dO·o)·kⱼ with p = exp(q·kⱼ·scale − lse). Inputs q [T, Hq, D], k [S, Hkv, D], v [S, Hkv, E], o and dO [T, Hq, E], lse [T, Hq] → [T, Hq, D].",
    infer: ([q, k, v, o, dO, lse], attrs) => {
      checkAttentionGradInputs("attention_dq", { q: q!, k: k!, v: v!, o: o!, dO: dO!, lse: lse! }, attrs);
      return { shape: q!.shape, dtype: q!.dtype };
    },
  },
  {
    name: "attention_dk", kind: "attention_grad", arity: 6, attrs: ATTENTION_GRAD_ATTRS, optionalAttrs: ["segment"],
    doc: "the attention's gradient for k: scale·Σ over the query heads of kv head g and the queries that see key j of p·(dO·vⱼ − dO·o)·q. Inputs as attention_dq → [S, Hkv, D].",
    infer: ([q, k, v, o, dO, lse], attrs) => {
      checkAttentionGradInputs("attention_dk", { q: q!, k: k!, v: v!, o: o!, dO: dO!, lse: lse! }, attrs);
      return { shape: k!.shape, dtype: k!.dtype };
    },
  },
  {
    name: "attention_dv", kind: "attention_grad", arity: 4, attrs: ATTENTION_GRAD_ATTRS, optionalAttrs: ["segment"],
    doc: "the attention's gradient for v: Σ over the query heads of kv head g and the queries that see key j of p·dO. Inputs q [T, Hq, D], k [S, Hkv, D], dO [T, Hq, E], lse [T, Hq] → [S, Hkv, E].",
    infer: ([q, k, dO, lse], attrs) => {
      checkAttentionGradInputs("attention_dv", { q: q!, k: k!, dO: dO!, lse: lse! }, attrs);
      return { shape: [k!.shape[0]!, k!.shape[1]!, dO!.shape[2]!], dtype: k!.dtype };
    },
  },
  {
    name: "kv_append", kind: "state", arity: 1, attrs: { state: "str", layer: "int", which: "str" },
    doc: "write this step's keys (or values) [T, H, D] into the cache of one layer at positions P…P+T-1; the result is the cache so far, [P+T, H, D]. attrs: state, layer, which (\"k\"|\"v\").",
    infer: ([x]) => {
      if (x!.shape.length !== 3) fail(`the KV cache takes [T, kv_heads, head_dim], got ${formatShape(x!.shape)}`);
      return { shape: [addDim(symDim("P"), x!.shape[0]!), x!.shape[1]!, x!.shape[2]!], dtype: x!.dtype };
    },
  },
];

// Fused ops: made by the fusion passes, never written in .llm. Their bodies are expression programs
// (ops/expr.ts) over their inputs, evaluated at every element of the output.
defs.push(
  {
    name: "fused", kind: "fused", arity: VARIADIC, attrs: { program: "program" },
    doc: "an elementwise region (with row reductions over the last axis) as one kernel: inputs broadcast to the output. attrs: program.",
    infer: (ins, attrs) => {
      const p = attrs["program"] as ExprProgram;
      if (ins.length === 0) fail("a fused kernel needs at least one input");
      const shape = ins.reduce<Dim[]>((acc, x) => broadcastShapes(acc, x.shape), []);
      checkProgram(p, ins.length);
      return { shape, dtype: programTypes(p, ins.map((x) => x.dtype))[p.outputs[0]!]! };
    },
  },
  {
    name: "linear", kind: "matmul", arity: VARIADIC, attrs: { weights: "int", epilogue: "program" },
    doc: "x [.., M, K] times each weight Wᵢ [N, K] transposed (accumulators accᵢ [.., M, N]), then the epilogue program over (acc₀ … acc_{w-1}, extra inputs broadcast to [.., M, N]). inputs: x, W₀ … W_{w-1}, extras. attrs: weights (w), epilogue.",
    infer: (ins, attrs) => {
      const w = attrs["weights"] as number;
      const p = attrs["epilogue"] as ExprProgram;
      if (!Number.isInteger(w) || w < 1 || ins.length < 1 + w) fail(`linear needs x and ${w} weight(s)`);
      const x = ins[0]!;
      if (x.shape.length < 2) fail(`linear's x must have rank ≥ 2, got ${formatShape(x.shape)}`);
      const k = x.shape[x.shape.length - 1]!;
      const w0 = ins[1]!;
      for (const wi of ins.slice(1, 1 + w)) {
        if (wi.shape.length !== 2 || !dimEquals(wi.shape[1]!, k) || !dimEquals(wi.shape[0]!, w0.shape[0]!)) {
          fail(`linear's weights must all be [N, ${formatDim(k)}], got ${formatShape(wi.shape)}`);
        }
      }
      const out = [...x.shape.slice(0, -1), w0.shape[0]!];
      const extras = ins.slice(1 + w);
      for (const e of extras) broadcastShapes(out, e.shape);
      const shape = extras.reduce<Dim[]>((acc, e) => broadcastShapes(acc, e.shape), out);
      if (!shape.every((d, i) => dimEquals(d, out[i]!)) || shape.length !== out.length) fail(`linear's epilogue inputs must broadcast to ${formatShape(out)}`);
      checkProgram(p, w + extras.length);
      return { shape: out, dtype: programTypes(p, [...Array(w).fill(x.dtype), ...extras.map((e) => e.dtype)])[p.outputs[0]!]! };
    },
  },
  {
    name: "fused_linear", kind: "matmul", arity: VARIADIC,
    attrs: { prologue: "program", x_inputs: "int", weights: "int", epilogue: "program", extras: "int", head_dim: "int", rotation: "program" },
    doc: "a linear with a prologue and a rotation. x = prologue(s₀ … s_{p-1}) [.., M, K] (a row program: RMSNorm before the matmul); accᵢ = x·Wᵢᵀ [.., M, N]; y = epilogue(acc₀ … acc_{w-1}, extras broadcast to [.., M, N]); then, when head_dim D > 0, each adjacent pair (y[2j], y[2j+1]) of each D-wide head is rotated by the angle whose (cos, sin) are the two outputs of the rotation program over the remaining inputs broadcast to [.., M, D/2] (RoPE). inputs: s₀ … s_{p-1}, W₀ … W_{w-1}, extras, rotation inputs. attrs: prologue, x_inputs (p), weights (w), epilogue, extras, head_dim (0 = no rotation), rotation.",
    infer: (ins, attrs) => {
      const p = attrs["x_inputs"] as number;
      const w = attrs["weights"] as number;
      const e = attrs["extras"] as number;
      const d = attrs["head_dim"] as number;
      for (const [k, v, min] of [["x_inputs", p, 1], ["weights", w, 1], ["extras", e, 0], ["head_dim", d, 0]] as const) {
        if (!Number.isInteger(v) || v < min) fail(`fused_linear's ${k} must be an integer ≥ ${min}, got ${v}`);
      }
      if (ins.length < p + w + e) fail(`fused_linear needs ${p} prologue input(s), ${w} weight(s) and ${e} extra(s), got ${ins.length} inputs`);
      const sources = ins.slice(0, p);
      const xShape = sources.reduce<Dim[]>((acc, x) => broadcastShapes(acc, x.shape), []);
      if (xShape.length < 2) fail(`fused_linear's x must have rank ≥ 2, got ${formatShape(xShape)}`);
      const pro = attrs["prologue"] as ExprProgram;
      checkProgram(pro, p, true);
      const xType = programTypes(pro, sources.map((x) => x.dtype))[pro.outputs[0]!]!;
      const k = xShape[xShape.length - 1]!;
      const weights = ins.slice(p, p + w);
      for (const wi of weights) {
        if (wi.shape.length !== 2 || !dimEquals(wi.shape[1]!, k) || !dimEquals(wi.shape[0]!, weights[0]!.shape[0]!)) {
          fail(`fused_linear's weights must all be [N, ${formatDim(k)}], got ${formatShape(wi.shape)}`);
        }
        if (!isFloat(wi.dtype) || !isFloat(xType)) fail(`fused_linear needs floating-point x and weights, got ${xType} and ${wi.dtype}`);
      }
      const n = weights[0]!.shape[0]!;
      const out = [...xShape.slice(0, -1), n];
      const extras = ins.slice(p + w, p + w + e);
      for (const x of extras) {
        const b = broadcastShapes(out, x.shape);
        if (b.length !== out.length || !b.every((dd, i) => dimEquals(dd, out[i]!))) fail(`fused_linear's epilogue inputs must broadcast to ${formatShape(out)}, got ${formatShape(x.shape)}`);
      }
      const epi = attrs["epilogue"] as ExprProgram;
      checkProgram(epi, w + e, false);
      const dtype = programTypes(epi, [...Array<DType>(w).fill(xType), ...extras.map((x) => x.dtype)])[epi.outputs[0]!]!;
      const rot = attrs["rotation"] as ExprProgram;
      const rotIns = ins.slice(p + w + e);
      if (d === 0) {
        if (rotIns.length) fail(`fused_linear without a rotation (head_dim 0) takes no rotation inputs, got ${rotIns.length}`);
        checkProgram(rot, 0, false, 2);
      } else {
        const nc = constValue(n);
        if (d % 2 !== 0 || nc === null || nc % d !== 0) fail(`fused_linear rotates pairs of heads of ${d}: N (${formatDim(n)}) must be a multiple of an even head_dim`);
        const angles = [...xShape.slice(0, -1), constDim(d / 2)];
        for (const x of rotIns) {
          const b = broadcastShapes(angles, x.shape);
          if (b.length !== angles.length || !b.every((dd, i) => dimEquals(dd, angles[i]!))) fail(`fused_linear's rotation inputs must broadcast to ${formatShape(angles)}, got ${formatShape(x.shape)}`);
        }
        checkProgram(rot, rotIns.length, false, 2);
        const rotTypes = programTypes(rot, rotIns.map((x) => x.dtype));
        if (!rot.outputs.every((o) => isFloat(rotTypes[o]!))) fail("fused_linear's rotation program must give floating-point cos and sin");
        if (!isFloat(dtype)) fail(`fused_linear rotates floating-point values, got ${dtype}`);
      }
      return { shape: out, dtype };
    },
  },
);

/** The inputs of an attention gradient op, by name: q [T, Hq, D], k [S, Hkv, D], v [S, Hkv, E],
 *  o and dO [T, Hq, E], lse [T, Hq]; floating-point, Hq a multiple of Hkv. */
function checkAttentionGradInputs(op: string, ins: Partial<Record<"q" | "k" | "v" | "o" | "dO" | "lse", TensorTy>>, attrs: Attrs): void {
  const { q, k } = ins as { q: TensorTy; k: TensorTy };
  for (const [nm, x] of Object.entries(ins)) {
    if (!isFloat(x.dtype)) fail(`${op}'s ${nm} must be floating-point, got ${x.dtype}`);
    if (x.shape.length !== (nm === "lse" ? 2 : 3)) fail(`${op}'s ${nm} must have rank ${nm === "lse" ? 2 : 3}, got ${formatShape(x.shape)}`);
  }
  const rows = (x: TensorTy) => x.shape.slice(0, 2);
  const same = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));
  if (!dimEquals(q.shape[2]!, k.shape[2]!)) fail(`${op}: q and k head_dim differ: ${formatShape(q.shape)} vs ${formatShape(k.shape)}`);
  if (ins.v && !same(rows(ins.v), rows(k))) fail(`${op}: k ${formatShape(k.shape)} and v ${formatShape(ins.v.shape)} must agree in length and heads`);
  for (const nm of ["o", "dO", "lse"] as const) {
    const x = ins[nm];
    if (x && !same(rows(x), rows(q))) fail(`${op}: ${nm} ${formatShape(x.shape)} must have q's rows and heads ${formatShape(rows(q))}`);
  }
  if (ins.o && ins.dO && !same(ins.o.shape, ins.dO.shape)) fail(`${op}: o ${formatShape(ins.o.shape)} and dO ${formatShape(ins.dO.shape)} differ`);
  if (ins.v && ins.dO && !dimEquals(ins.v.shape[2]!, ins.dO.shape[2]!)) fail(`${op}: v ${formatShape(ins.v.shape)} and dO ${formatShape(ins.dO.shape)} differ in head_dim`);
  const hq = constValue(q.shape[1]!);
  const hk = constValue(k.shape[1]!);
  if (hq !== null && hk !== null && (hk === 0 || hq % hk !== 0)) fail(`${op} needs query heads (${hq}) to be a multiple of key/value heads (${hk})`);
  if (typeof attrs["window"] === "number" && attrs["window"] < 0) fail(`${op}: window must be ≥ 0 (0 = none), got ${attrs["window"]}`);
  checkSegment(op, attrs);
}

function checkSegment(op: string, attrs: Attrs): void {
  const seg = attrs["segment"];
  if (seg !== undefined && (typeof seg !== "number" || !Number.isInteger(seg) || seg < 0)) fail(`${op}: segment must be an integer ≥ 0 (0 = one sequence), got ${String(seg)}`);
}

function checkCrossEntropyInputs(op: string, logits: TensorTy, targets: TensorTy): void {
  if (!isFloat(logits.dtype) || logits.shape.length !== 2) fail(`${op} needs floating-point logits [T, vocab], got ${logits.dtype} ${formatShape(logits.shape)}`);
  if (targets.dtype !== "i32" || targets.shape.length !== 1 || !dimEquals(targets.shape[0]!, logits.shape[0]!)) {
    fail(`${op} needs i32 targets [${formatDim(logits.shape[0]!)}], one per row of logits, got ${targets.dtype} ${formatShape(targets.shape)}`);
  }
}

/** Inputs of an attention's score program: the scaled score, then the positions and head. */
export const ATTENTION_SCORE_INPUTS = ["s", "q_pos", "k_pos", "head"] as const;
/** Inputs of an attention's mask program. */
export const ATTENTION_MASK_INPUTS = ["q_pos", "k_pos", "head"] as const;

function checkAttentionModifiers(attrs: Attrs): void {
  const score = attrs["score"] as ExprProgram | undefined;
  const mask = attrs["mask"] as ExprProgram | undefined;
  if (score) {
    checkProgram(score, ATTENTION_SCORE_INPUTS.length, false);
    if (programTypes(score, ATTENTION_SCORE_INPUTS.map(() => "f32"))[score.outputs[0]!] !== "f32") fail("attention's score program must give an f32 score");
  }
  if (mask) {
    checkProgram(mask, ATTENTION_MASK_INPUTS.length, false);
    if (programTypes(mask, ATTENTION_MASK_INPUTS.map(() => "f32"))[mask.outputs[0]!] !== "bool") fail("attention's mask program must give a bool");
  }
}

function checkProgram(p: ExprProgram, inputs: number, reductions = true, outputs = 1): void {
  if (p.outputs.length !== outputs) fail(outputs === 1 ? "a fused program has exactly one output" : `this program has exactly ${outputs} outputs`);
  for (const o of p.outputs) if (!Number.isInteger(o) || o < 0 || o >= p.nodes.length) fail(`program output ${o} does not exist`);
  p.nodes.forEach((n, i) => {
    const refs = n.kind === "op" ? n.args : n.kind === "reduce" ? [n.arg] : [];
    for (const r of refs) if (r < 0 || r >= i) fail(`program node ${i} refers to node ${r}, which is not before it`);
    if (n.kind === "input" && (n.index < 0 || n.index >= inputs)) fail(`program input ${n.index} does not exist (the kernel has ${inputs})`);
    if (n.kind === "op" && getOp(n.op).kind !== "elementwise") fail(`'${n.op}' is not elementwise and cannot be in a fused program`);
    if (n.kind === "reduce" && !reductions) fail("this program cannot reduce");
  });
}

export const opTable: ReadonlyMap<string, OpDef> = new Map(defs.map((d) => [d.name, d]));

export function getOp(name: string): OpDef {
  const d = opTable.get(name);
  if (!d) throw new Error(`internal: no op '${name}' in the op table`);
  return d;
}

/**
 * Floating-point operations of one op on concrete shapes (inputs, output), for the compile report.
 * Elementwise ops count one per output element (transcendentals too: the report compares models,
 * not instruction mixes); data movement counts zero.
 */
export function opFlops(name: string, ins: number[][], out: number[], attrs: Record<string, unknown>): number {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const def = getOp(name);
  switch (def.kind) {
    case "elementwise":
      return name === "cast" ? 0 : size(out);
    case "reduction":
      return size(ins[0]!);
    case "matmul": {
      const ops = (p: ExprProgram) => p.nodes.filter((n) => n.kind === "op" || n.kind === "reduce").length;
      if (name === "fused_linear") {
        const xi = attrs["x_inputs"] as number;
        const w = attrs["weights"] as number;
        const k = ins[xi]![1]!;
        const rows = size(out) / out[out.length - 1]!;
        const rotation = (attrs["head_dim"] as number) > 0 ? 3 * size(out) : 0;
        return (2 * k * w + ops(attrs["epilogue"] as ExprProgram)) * size(out) + ops(attrs["prologue"] as ExprProgram) * rows * k + rotation;
      }
      const k = ins[0]![ins[0]!.length - 1]!;
      if (name !== "linear") return 2 * size(out) * k;
      const p = attrs["epilogue"] as ExprProgram;
      const epilogue = p.nodes.filter((n) => n.kind === "op").length;
      return (2 * k * (attrs["weights"] as number) + epilogue) * size(out);
    }
    case "rotary":
      return 6 * size(out) / 2;
    case "fused": {
      const p = attrs["program"] as ExprProgram;
      return size(out) * p.nodes.filter((n) => n.kind === "op" || n.kind === "reduce").length;
    }
    case "attention": {
      // q·k (2·D per score), softmax (~5 per score), p·v (2·D per score); scores = T·S·Hq.
      const [t, hq, d] = ins[0]!;
      const s = ins[1]![0]!;
      const scores = t! * s * hq!;
      const causalFraction = attrs["causal"] ? Math.min(1, (s - t! / 2) / s) : 1;
      // Score and mask programs run at every score.
      const modifiers = ["score", "mask"].reduce((n, k) => n + ((attrs[k] as ExprProgram | undefined)?.nodes.filter((x) => x.kind === "op").length ?? 0), 0);
      return Math.round(scores * causalFraction * (4 * d! + 5 + modifiers));
    }
    case "gather_grad":
      return size(ins[1]!);
    case "cross_entropy":
      // max, exp and sum over each row; the gradient also writes each element.
      return (name === "cross_entropy_rows" ? 4 : 6) * size(ins[0]!);
    case "attention_grad": {
      // Per visible score: the q·k dot (2·D) and exp, then per op its own sums.
      const [t, hq, d] = ins[0]!;
      const s = ins[1]![0]!;
      const e = name === "attention_lse" ? 0 : ins[2]![2]!;
      const causalFraction = attrs["causal"] ? Math.min(1, (s - t! / 2) / s) : 1;
      const per = name === "attention_lse" ? 2 * d! + 3 : name === "attention_dv" ? 2 * d! + 2 + 2 * e : 2 * d! + 4 * e + 2 * d! + 4;
      return Math.round(t! * s * hq! * causalFraction * per);
    }
    default:
      return 0;
  }
}

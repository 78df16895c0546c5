// The CPU reference: what every op of the op table computes, on host tensors with concrete shapes.
// It is the oracle every backend is tested against, so it favours plain loops and exact arithmetic:
// values are computed in f64 and rounded once to the result's element type when stored. Each kernel
// works out its output shape on its own; `reference` then checks that shape against the op table's
// `infer`, so the reference and the table can never silently disagree.

import { constDim, constValue, formatShape } from "../base/symbolic.js";
import { evalProgramRow, programTypes, type ExprProgram } from "./expr.js";
import { getOp, opTable, TypeRuleError, type AttrValue, type Attrs, type DType, type TensorTy } from "./table.js";

/** A tensor on the host. f32/f16/bf16 hold Float32Array values (rounded to their precision), i32
 *  an Int32Array, bool a Uint8Array of 0/1. Row-major, dense. */
export interface HostTensor {
  shape: number[];
  dtype: DType;
  data: Float32Array | Int32Array | Uint8Array;
}

/** Op attributes with every dim evaluated to a number (`shape` is number[], `n`, `start`, `end`
 *  numbers), as the interpreter has them for one step. */
export type ConcreteAttrs = Record<string, number | boolean | string | number[] | ExprProgram>;

export type ReferenceOp = (inputs: HostTensor[], attrs: ConcreteAttrs) => HostTensor;

/** A wrong input to the reference (shape, dtype, attribute or data such as an id out of range). */
export class ReferenceOpError extends Error {
  override name = "ReferenceOpError";
}

function fail(msg: string): never {
  throw new ReferenceOpError(msg);
}

// ------------------------------------------------------------------------------------------ dtypes

export const isFloatDType = (d: DType): boolean => d === "f32" || d === "f16" || d === "bf16";

/** Rounds a finite or infinite double to the nearest binary float with `mant` fraction bits and
 *  exponents emin…emax (subnormals below emin), ties to even; past the largest finite value → ±∞. */
function roundToFormat(x: number, mant: number, emin: number, emax: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.max(Math.floor(Math.log2(a)), emin);
  // log2 can be off by one next to a power of two.
  if (e > emin && 2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (e - mant);
  const v = a / quantum; // exact: quantum is a power of two
  const f = Math.floor(v);
  const d = v - f;
  const n = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  let r = n * quantum;
  if (r > (2 - 2 ** -mant) * 2 ** emax) r = Infinity;
  return x < 0 ? -r : r;
}

/** The value `x` becomes when stored in a tensor of `dtype` (C-style conversion for i32/bool:
 *  truncation toward zero, saturating, NaN → 0; nonzero → true). */
export function roundToDType(x: number, dtype: DType): number {
  switch (dtype) {
    case "f32": return Math.fround(x);
    case "f16": return roundToFormat(x, 10, -14, 15);
    case "bf16": return roundToFormat(x, 7, -126, 127);
    case "i32":
      if (Number.isNaN(x)) return 0;
      return Math.min(2147483647, Math.max(-2147483648, Math.trunc(x)));
    case "bool": return x !== 0 ? 1 : 0;
  }
}

function allocData(dtype: DType, n: number): HostTensor["data"] {
  if (dtype === "i32") return new Int32Array(n);
  if (dtype === "bool") return new Uint8Array(n);
  return new Float32Array(n);
}

function dataMatches(dtype: DType, data: HostTensor["data"]): boolean {
  if (dtype === "i32") return data instanceof Int32Array;
  if (dtype === "bool") return data instanceof Uint8Array;
  return data instanceof Float32Array;
}

// ------------------------------------------------------------------------------------------ shapes

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/** A tensor of `shape` and `dtype`: zeros, or `data` converted to the dtype (a typed array of the
 *  right kind and length is used as it is, not copied). */
export function tensor(shape: readonly number[], dtype: DType, data?: ArrayLike<number>): HostTensor {
  const n = sizeOf(shape);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`bad tensor shape ${fmt(shape)}`);
  if (data !== undefined && data.length !== n) fail(`a tensor of shape ${fmt(shape)} needs ${n} values, got ${data.length}`);
  if (data !== undefined && dataMatches(dtype, data as HostTensor["data"]) && dtype !== "f16" && dtype !== "bf16") {
    return { shape: [...shape], dtype, data: data as HostTensor["data"] };
  }
  const out = allocData(dtype, n);
  if (data !== undefined) for (let i = 0; i < n; i++) out[i] = roundToDType(data[i]!, dtype);
  return { shape: [...shape], dtype, data: out };
}

/** NumPy broadcasting of concrete shapes: align from the right; a dim of 1 stretches. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) fail(`shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides that read a tensor of `shape` broadcast to `outShape`: one per output dim, 0 where the
 *  input is stretched (a dim of 1, or a leading dim it does not have). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const s = stridesOf(shape);
  const lead = outShape.length - shape.length;
  if (lead < 0) fail(`cannot broadcast ${fmt(shape)} to ${fmt(outShape)}`);
  return outShape.map((d, i) => {
    if (i < lead) return 0;
    const di = shape[i - lead]!;
    if (di === d) return s[i - lead]!;
    if (di === 1) return 0;
    return fail(`cannot broadcast ${fmt(shape)} to ${fmt(outShape)}`);
  });
}

/** For each element of `outShape` in row-major order, the offset `base + Σ index[i]·strides[i]`. */
export function stridedOffsets(outShape: readonly number[], strides: readonly number[], base = 0): Float64Array {
  const n = sizeOf(outShape);
  const offs = new Float64Array(n);
  const rank = outShape.length;
  const idx = new Array<number>(rank).fill(0);
  let off = base;
  for (let i = 0; i < n; i++) {
    offs[i] = off;
    // Odometer step: bump the last dim, carrying into earlier ones.
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      off -= strides[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
  return offs;
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

// ------------------------------------------------------------------------------------------ checks

export function assertShape(t: HostTensor, shape: readonly number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    fail(`${what}: expected shape ${fmt(shape)}, got ${fmt(t.shape)}`);
  }
}

export function assertDType(t: HostTensor, dtype: DType, what: string): void {
  if (t.dtype !== dtype) fail(`${what}: expected ${dtype}, got ${t.dtype}`);
}

/** A host tensor is well formed: whole non-negative dims, data of its dtype's kind and size. */
export function assertWellFormed(t: HostTensor, what: string): void {
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`${what}: bad shape ${String(t.shape)}`);
  if (!dataMatches(t.dtype, t.data)) fail(`${what}: a ${t.dtype} tensor cannot hold a ${t.data.constructor.name}`);
  if (t.data.length !== sizeOf(t.shape)) fail(`${what}: shape ${fmt(t.shape)} needs ${sizeOf(t.shape)} values, data has ${t.data.length}`);
}

/** Concrete attributes back in the op table's form (numbers → constant dims where the table's
 *  schema says `dim`/`dims`). */
function tableAttrs(op: string, attrs: ConcreteAttrs): Attrs {
  const schema = getOp(op).attrs;
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) {
    const kind = schema[k];
    let a: AttrValue = v;
    if (kind === "dim" && typeof v === "number") a = constDim(v);
    else if (kind === "dims" && Array.isArray(v)) a = v.map((d) => constDim(d));
    out[k] = a;
  }
  return out;
}

/** The output type the op table gives for these concrete inputs and attributes; the table's own
 *  message (prefixed with the op) when it rejects them. */
export function expectedOutput(op: string, inputs: readonly HostTensor[], attrs: ConcreteAttrs): { shape: number[]; dtype: DType } {
  const def = getOp(op);
  if (def.arity >= 0 && inputs.length !== def.arity) fail(`${op} takes ${def.arity} input(s), got ${inputs.length}`);
  inputs.forEach((t, i) => assertWellFormed(t, `${op} input ${i}`));
  const tys: TensorTy[] = inputs.map((t) => ({ shape: t.shape.map((d) => constDim(d)), dtype: t.dtype }));
  let ty: TensorTy;
  try {
    ty = def.infer(tys, tableAttrs(op, attrs));
  } catch (err) {
    if (err instanceof TypeRuleError) fail(`${op}: ${err.message}`);
    throw err;
  }
  const shape = ty.shape.map((d) => {
    const c = constValue(d);
    if (c === null) fail(`internal: ${op}'s type ${formatShape(ty.shape)} is not concrete`);
    return c;
  });
  return { shape, dtype: ty.dtype };
}

// ------------------------------------------------------------------------------------------ attrs

function attrNum(attrs: ConcreteAttrs, name: string, op: string, dflt?: number): number {
  const v = attrs[name] ?? dflt;
  if (typeof v !== "number") fail(`${op}: attribute '${name}' must be a number, got ${v === undefined ? "none" : JSON.stringify(v)}`);
  return v;
}

function attrInt(attrs: ConcreteAttrs, name: string, op: string, dflt?: number): number {
  const v = attrNum(attrs, name, op, dflt);
  if (!Number.isInteger(v)) fail(`${op}: attribute '${name}' must be an integer, got ${v}`);
  return v;
}

function attrBool(attrs: ConcreteAttrs, name: string, op: string, dflt?: boolean): boolean {
  const v = attrs[name] ?? dflt;
  if (typeof v !== "boolean") fail(`${op}: attribute '${name}' must be a bool, got ${v === undefined ? "none" : JSON.stringify(v)}`);
  return v;
}

function attrInts(attrs: ConcreteAttrs, name: string, op: string): number[] {
  const v = attrs[name];
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) fail(`${op}: attribute '${name}' must be a list of integers, got ${JSON.stringify(v)}`);
  return v;
}

const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i32", "bool"];

function attrDType(attrs: ConcreteAttrs, op: string): DType {
  const v = attrs["dtype"];
  if (typeof v !== "string" || !DTYPES.includes(v as DType)) fail(`${op}: attribute 'dtype' must be one of ${DTYPES.join(", ")}, got ${JSON.stringify(v)}`);
  return v as DType;
}

function needFloat(t: HostTensor, op: string, what: string): void {
  if (!isFloatDType(t.dtype)) fail(`${op} needs a floating-point ${what}, got ${t.dtype}`);
}

// ------------------------------------------------------------------------------------------ kernels

type Kernel = (inputs: HostTensor[], attrs: ConcreteAttrs) => HostTensor;

/** Builds the result: each value rounded to `dtype` as it is stored. */
function fill(shape: number[], dtype: DType, value: (i: number) => number): HostTensor {
  const n = sizeOf(shape);
  const data = allocData(dtype, n);
  if (dtype === "f32") for (let i = 0; i < n; i++) data[i] = value(i); // Float32Array rounds to nearest
  else for (let i = 0; i < n; i++) data[i] = roundToDType(value(i), dtype);
  return { shape, dtype, data };
}

function unaryFloat(op: string, f: (x: number) => number): Kernel {
  return ([x]) => {
    needFloat(x!, op, "tensor");
    const d = x!.data;
    return fill([...x!.shape], x!.dtype, (i) => f(d[i]!));
  };
}

/** Unary ops on numbers of any kind: `i32` wraps like two's complement, floats are exact-then-rounded. */
function unaryNumeric(op: string, onFloat: (x: number) => number, onInt: (x: number) => number): Kernel {
  return ([x]) => {
    if (x!.dtype === "bool") fail(`${op} does not apply to bool tensors`);
    const d = x!.data;
    const f = x!.dtype === "i32" ? onInt : onFloat;
    return fill([...x!.shape], x!.dtype, (i) => f(d[i]!));
  };
}

/** Elementwise op of any arity over broadcast inputs. */
function broadcastMap(inputs: HostTensor[], dtype: DType, f: (...xs: number[]) => number): HostTensor {
  const shape = inputs.slice(1).reduce((s, t) => broadcastShape(s, t.shape), inputs[0]!.shape);
  const offs = inputs.map((t) => stridedOffsets(shape, broadcastStrides(t.shape, shape)));
  const datas = inputs.map((t) => t.data);
  if (inputs.length === 2) {
    const [da, db] = datas as [HostTensor["data"], HostTensor["data"]];
    const [oa, ob] = offs as [Float64Array, Float64Array];
    return fill(shape, dtype, (i) => f(da[oa[i]!]!, db[ob[i]!]!));
  }
  return fill(shape, dtype, (i) => f(...datas.map((d, k) => d[offs[k]![i]!]!)));
}

type Arith = { float: (a: number, b: number) => number; int: (a: number, b: number) => number };

function intDiv(a: number, b: number): number {
  if (b === 0) fail(`integer division by zero (${a} / 0)`);
  return (a / b) | 0; // truncates toward zero; -2^31 / -1 wraps as in two's complement
}

/** a ** b on i32: exact with wrap-around for b ≥ 0; for b < 0 the truncated 1 / a^|b|. */
function intPow(a: number, b: number): number {
  if (b < 0) {
    if (a === 0) fail(`integer division by zero (0 ** ${b})`);
    if (a === 1) return 1;
    if (a === -1) return b % 2 === 0 ? 1 : -1;
    return 0;
  }
  let r = 1;
  let base = a | 0;
  for (let e = b; e > 0; e >>>= 1) {
    if (e & 1) r = Math.imul(r, base);
    base = Math.imul(base, base);
  }
  return r;
}

const ARITH: Record<string, Arith> = {
  add: { float: (a, b) => a + b, int: (a, b) => (a + b) | 0 },
  sub: { float: (a, b) => a - b, int: (a, b) => (a - b) | 0 },
  mul: { float: (a, b) => a * b, int: (a, b) => Math.imul(a, b) },
  div: { float: (a, b) => a / b, int: intDiv },
  pow: { float: (a, b) => Math.pow(a, b), int: intPow },
  max: { float: (a, b) => Math.max(a, b), int: (a, b) => Math.max(a, b) },
  min: { float: (a, b) => Math.min(a, b), int: (a, b) => Math.min(a, b) },
};

function arith(op: string, f: Arith): Kernel {
  return ([a, b]) => {
    if (a!.dtype !== b!.dtype) fail(`${op} needs operands of one element type, got ${a!.dtype} and ${b!.dtype}`);
    if (a!.dtype === "bool") fail(`${op} does not apply to bool tensors`);
    return broadcastMap([a!, b!], a!.dtype, a!.dtype === "i32" ? f.int : f.float);
  };
}

function compare(op: string, f: (a: number, b: number) => boolean): Kernel {
  return ([a, b]) => {
    if (a!.dtype !== b!.dtype) fail(`${op} needs operands of one element type, got ${a!.dtype} and ${b!.dtype}`);
    if (a!.dtype === "bool") fail(`${op} does not apply to bool tensors`);
    return broadcastMap([a!, b!], "bool", (x, y) => (f(x, y) ? 1 : 0));
  };
}

function logical(op: string, f: (a: number, b: number) => number): Kernel {
  return ([a, b]) => {
    if (a!.dtype !== "bool" || b!.dtype !== "bool") fail(`${op} needs bool operands, got ${a!.dtype} and ${b!.dtype}`);
    return broadcastMap([a!, b!], "bool", f);
  };
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** erf by its everywhere-convergent series (Abramowitz & Stegun 7.1.6),
 *  erf x = 2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)); all terms are positive, so there is no
 *  cancellation and the result is good to ~1e-15. Past |x| = 6, erf is ±1 to double precision. */
function erf(x: number): number {
  if (Number.isNaN(x) || x === 0) return x; // keeps the sign of zero
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  const x2 = a * a;
  let term = a;
  let sum = a;
  for (let n = 0; term > sum * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
  }
  const r = (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

/** Splits a shape around `axis` into [outer, size, inner] element counts. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

function reduction(op: string, init: number, step: (acc: number, x: number) => number, finish: (acc: number, n: number) => number): Kernel {
  return ([x], attrs) => {
    needFloat(x!, op, "tensor");
    const axis = normAxis(attrInt(attrs, "axis", op), x!.shape.length, op);
    const keepdim = attrBool(attrs, "keepdim", op, false);
    const [, n, inner] = around(x!.shape, axis);
    const shape = x!.shape.slice();
    if (keepdim) shape[axis] = 1;
    else shape.splice(axis, 1);
    const d = x!.data;
    return fill(shape, x!.dtype, (i) => {
      const o = Math.floor(i / inner);
      const base = o * n * inner + (i % inner);
      let acc = init;
      for (let k = 0; k < n; k++) acc = step(acc, d[base + k * inner]!);
      return finish(acc, n);
    });
  };
}

/** Index of the largest value along an axis (i32): the lowest index on ties; the first NaN wins
 *  (NaN counts as larger than every number, as amax propagates it). */
const argmax: Kernel = ([x], attrs) => {
  needFloat(x!, "argmax", "tensor");
  const axis = normAxis(attrInt(attrs, "axis", "argmax"), x!.shape.length, "argmax");
  const keepdim = attrBool(attrs, "keepdim", "argmax", false);
  const [, n, inner] = around(x!.shape, axis);
  if (n < 1) fail("argmax needs a non-empty axis");
  const shape = x!.shape.slice();
  if (keepdim) shape[axis] = 1;
  else shape.splice(axis, 1);
  const d = x!.data;
  return fill(shape, "i32", (i) => {
    const base = Math.floor(i / inner) * n * inner + (i % inner);
    let best = 0;
    let bv = d[base]!;
    for (let k = 1; k < n && !Number.isNaN(bv); k++) {
      const v = d[base + k * inner]!;
      if (v > bv || Number.isNaN(v)) [best, bv] = [k, v];
    }
    return best;
  });
};

const matmul: Kernel = ([a, b]) => {
  if (!isFloatDType(a!.dtype) || a!.dtype !== b!.dtype) fail(`matmul needs floating-point operands of one type, got ${a!.dtype} and ${b!.dtype}`);
  const ra = a!.shape.length;
  const rb = b!.shape.length;
  if (ra < 2 || rb < 2) fail(`matmul needs operands of rank ≥ 2, got ${fmt(a!.shape)} @ ${fmt(b!.shape)}`);
  const [m, k] = [a!.shape[ra - 2]!, a!.shape[ra - 1]!];
  const [k2, n] = [b!.shape[rb - 2]!, b!.shape[rb - 1]!];
  if (k !== k2) fail(`matmul contracts dim ${k} of ${fmt(a!.shape)} with dim ${k2} of ${fmt(b!.shape)}`);
  const batchA = a!.shape.slice(0, -2);
  const batchB = b!.shape.slice(0, -2);
  const batch = broadcastShape(batchA, batchB);
  // Batch offsets in units of whole matrices.
  const offA = stridedOffsets(batch, broadcastStrides(batchA, batch));
  const offB = stridedOffsets(batch, broadcastStrides(batchB, batch));
  const shape = [...batch, m, n];
  const out = allocData(a!.dtype, sizeOf(shape)) as Float32Array;
  const da = a!.data;
  const db = b!.data;
  const acc = new Float64Array(n); // one output row, summed in f64 in order of k
  for (let bi = 0; bi < offA.length; bi++) {
    const aBase = offA[bi]! * m * k;
    const bBase = offB[bi]! * k * n;
    const oBase = bi * m * n;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const aik = da[aBase + i * k + kk]!;
        const row = bBase + kk * n;
        for (let j = 0; j < n; j++) acc[j] += aik * db[row + j]!;
      }
      for (let j = 0; j < n; j++) out[oBase + i * n + j] = roundToDType(acc[j]!, a!.dtype);
    }
  }
  return { shape, dtype: a!.dtype, data: out };
};

const transpose: Kernel = ([x], attrs) => {
  const perm = attrInts(attrs, "perm", "transpose");
  const rank = x!.shape.length;
  if (perm.length !== rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    fail(`transpose: permutation [${perm.join(", ")}] does not fit a tensor of rank ${rank}`);
  }
  const s = stridesOf(x!.shape);
  const shape = perm.map((p) => x!.shape[p]!);
  // Output dim i walks input dim perm[i].
  const offs = stridedOffsets(shape, perm.map((p) => s[p]!));
  const d = x!.data;
  return fill(shape, x!.dtype, (i) => d[offs[i]!]!);
};

const reshape: Kernel = ([x], attrs) => {
  const shape = attrInts(attrs, "shape", "reshape");
  if (shape.some((d) => d < 0) || sizeOf(shape) !== sizeOf(x!.shape)) {
    fail(`reshape: cannot reshape ${fmt(x!.shape)} (${sizeOf(x!.shape)} elements) to ${fmt(shape)}`);
  }
  return { shape: [...shape], dtype: x!.dtype, data: x!.data.slice() };
};

const concat: Kernel = ([a, b], attrs) => {
  if (a!.dtype !== b!.dtype) fail(`concat needs one element type, got ${a!.dtype} and ${b!.dtype}`);
  const rank = a!.shape.length;
  if (b!.shape.length !== rank) fail(`concat needs tensors of one rank, got ${fmt(a!.shape)} and ${fmt(b!.shape)}`);
  const axis = normAxis(attrInt(attrs, "axis", "concat"), rank, "concat");
  for (let i = 0; i < rank; i++) {
    if (i !== axis && a!.shape[i] !== b!.shape[i]) fail(`concat along axis ${axis}: shapes ${fmt(a!.shape)} and ${fmt(b!.shape)} differ in dim ${i}`);
  }
  const [outer, na, inner] = around(a!.shape, axis);
  const nb = b!.shape[axis]!;
  const shape = a!.shape.slice();
  shape[axis] = na + nb;
  const out = allocData(a!.dtype, sizeOf(shape));
  const ca = na * inner;
  const cb = nb * inner;
  for (let o = 0; o < outer; o++) {
    out.set(a!.data.subarray(o * ca, (o + 1) * ca), o * (ca + cb));
    out.set(b!.data.subarray(o * cb, (o + 1) * cb), o * (ca + cb) + ca);
  }
  return { shape, dtype: a!.dtype, data: out };
};

const slice: Kernel = ([x], attrs) => {
  const axis = normAxis(attrInt(attrs, "axis", "slice"), x!.shape.length, "slice");
  const start = attrInt(attrs, "start", "slice");
  const end = attrInt(attrs, "end", "slice");
  const size = x!.shape[axis]!;
  if (!(0 <= start && start < end && end <= size)) fail(`slice ${start}:${end} does not fit dim ${axis} of ${fmt(x!.shape)} (need 0 ≤ start < end ≤ ${size})`);
  const [outer, , inner] = around(x!.shape, axis);
  const shape = x!.shape.slice();
  shape[axis] = end - start;
  const out = allocData(x!.dtype, sizeOf(shape));
  const len = (end - start) * inner;
  for (let o = 0; o < outer; o++) {
    const from = (o * size + start) * inner;
    out.set(x!.data.subarray(from, from + len), o * len);
  }
  return { shape, dtype: x!.dtype, data: out };
};

const gather: Kernel = ([table, ids]) => {
  if (ids!.dtype !== "i32") fail(`gather: row ids must be i32, got ${ids!.dtype}`);
  if (table!.shape.length !== 2) fail(`gather needs a [rows, dim] table, got ${fmt(table!.shape)}`);
  const [v, d] = table!.shape as [number, number];
  const shape = [...ids!.shape, d];
  const out = allocData(table!.dtype, sizeOf(shape));
  ids!.data.forEach((id, i) => {
    if (id < 0 || id >= v) fail(`gather: row id ${id} (at index ${i}) is out of range for a table of ${v} rows`);
    out.set(table!.data.subarray(id * d, (id + 1) * d), i * d);
  });
  return { shape, dtype: table!.dtype, data: out };
};

const rotary: Kernel = ([x, cos, sin]) => {
  needFloat(x!, "rotary", "x");
  needFloat(cos!, "rotary", "cos");
  needFloat(sin!, "rotary", "sin");
  if (x!.shape.length !== 3) fail(`rotary needs x of shape [T, heads, head_dim], got ${fmt(x!.shape)}`);
  const [t, h, d] = x!.shape as [number, number, number];
  if (d % 2 !== 0) fail(`rotary needs an even head_dim, got ${d}`);
  const half = d / 2;
  assertShape(cos!, [t, half], "rotary's cos");
  assertShape(sin!, [t, half], "rotary's sin");
  const xd = x!.data;
  const cd = cos!.data;
  const sd = sin!.data;
  return fill([t, h, d], x!.dtype, (i) => {
    const ti = Math.floor(i / (h * d));
    const e = i % d;
    const j = e >> 1;
    const c = cd[ti * half + j]!;
    const s = sd[ti * half + j]!;
    const x0 = xd[i - (e & 1)]!;
    const x1 = xd[i - (e & 1) + 1]!;
    return e % 2 === 0 ? x0 * c - x1 * s : x0 * s + x1 * c;
  });
};

/** Row v of the result: the sum of the rows of dy whose id is v, in id order (an embedding's
 *  gradient; ids out of range add to no row). */
const gatherGrad: Kernel = ([ids, dy], attrs) => {
  if (ids!.dtype !== "i32") fail(`gather_grad: ids must be i32, got ${ids!.dtype}`);
  needFloat(dy!, "gather_grad", "dy");
  const rows = attrInt(attrs, "rows", "gather_grad");
  const d = dy!.shape[dy!.shape.length - 1]!;
  if (dy!.data.length !== ids!.data.length * d) fail(`gather_grad: dy ${fmt(dy!.shape)} must be the ids' shape ${fmt(ids!.shape)} and one more axis`);
  const acc = new Float64Array(rows * d);
  ids!.data.forEach((id, i) => {
    if (id < 0 || id >= rows) return;
    for (let e = 0; e < d; e++) acc[id * d + e] += dy!.data[i * d + e]!;
  });
  const out = allocData(dy!.dtype, rows * d);
  for (let i = 0; i < acc.length; i++) out[i] = roundToDType(acc[i]!, dy!.dtype);
  return { shape: [rows, d], dtype: dy!.dtype, data: out };
};

/** Each row's log-sum-exp (max-subtracted, f64) and the target's logit, or null for an ignored row. */
function crossEntropyRow(logits: HostTensor, targets: HostTensor, t: number): { max: number; sum: number; target: number } | null {
  const v = logits.shape[1]!;
  const target = targets.data[t]!;
  if (target < 0 || target >= v) return null;
  const row = logits.data.subarray(t * v, (t + 1) * v);
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return { max, sum, target };
}

function checkCrossEntropy(op: string, logits: HostTensor, targets: HostTensor): void {
  needFloat(logits, op, "logits");
  if (targets.dtype !== "i32") fail(`${op}: targets must be i32, got ${targets.dtype}`);
  if (logits.shape.length !== 2 || targets.shape.length !== 1 || targets.shape[0] !== logits.shape[0]) fail(`${op}: logits ${fmt(logits.shape)} and targets ${fmt(targets.shape)} must be [T, vocab] and [T]`);
}

/** log Σ exp(row) − row[target] per row; 0 for an ignored target (outside 0…V−1). */
const crossEntropyRows: Kernel = ([logits, targets]) => {
  checkCrossEntropy("cross_entropy_rows", logits!, targets!);
  const [t] = logits!.shape as [number, number];
  const v = logits!.shape[1]!;
  const out = new Float32Array(t);
  for (let r = 0; r < t; r++) {
    const row = crossEntropyRow(logits!, targets!, r);
    if (row) out[r] = row.max + Math.log(row.sum) - logits!.data[r * v + row.target]!;
  }
  return { shape: [t], dtype: "f32", data: out };
};

/** dy·(softmax(row) − onehot(target)) per row; 0 rows for ignored targets. */
const crossEntropyRowsGrad: Kernel = ([logits, targets, dy]) => {
  checkCrossEntropy("cross_entropy_rows_grad", logits!, targets!);
  const [t, v] = logits!.shape as [number, number];
  const out = allocData(logits!.dtype, t * v);
  for (let r = 0; r < t; r++) {
    const row = crossEntropyRow(logits!, targets!, r);
    if (!row) continue;
    const g = dy!.data[r]!;
    for (let j = 0; j < v; j++) out[r * v + j] = roundToDType(g * (Math.exp(logits!.data[r * v + j]! - row.max) / row.sum - (j === row.target ? 1 : 0)), logits!.dtype);
  }
  return { shape: [t, v], dtype: logits!.dtype, data: out };
};

/** Scaled dot-product attention, one (query, head) row at a time. Query t sits at absolute position
 *  S − T + t and key s at s; `causal` hides keys after the query, `window > 0` hides keys at or before
 *  pos − window, a `mask` program hides keys where it is false. A `score` program gives each visible
 *  score anew from (score, q_pos, k_pos, head). Query head h reads kv head ⌊h / (Hq/Hkv)⌋
 *  (consecutive query heads share one, as in llama.cpp and HF's repeat_kv). With `segment` > 0
 *  (sequences packed into one training step) a key is hidden from queries of another sequence of
 *  that many positions. A row with every key hidden is 0. */
const attention: Kernel = ([q, k, v], attrs) => {
  for (const [nm, t] of [["q", q!], ["k", k!], ["v", v!]] as const) {
    needFloat(t, "attention", nm);
    if (t.shape.length !== 3) fail(`attention's ${nm} must be [len, heads, head_dim], got ${fmt(t.shape)}`);
  }
  if (k!.dtype !== q!.dtype || v!.dtype !== q!.dtype) fail(`attention needs q, k, v of one element type, got ${q!.dtype}, ${k!.dtype}, ${v!.dtype}`);
  const [tq, hq, d] = q!.shape as [number, number, number];
  const [s, hkv, dk] = k!.shape as [number, number, number];
  const [sv, hv, dv] = v!.shape as [number, number, number];
  if (sv !== s || hv !== hkv) fail(`attention's k ${fmt(k!.shape)} and v ${fmt(v!.shape)} must agree in length and heads`);
  if (dk !== d) fail(`attention's q and k head_dim differ: ${fmt(q!.shape)} vs ${fmt(k!.shape)}`);
  if (hkv === 0 || hq % hkv !== 0) fail(`attention needs query heads (${hq}) to be a multiple of key/value heads (${hkv})`);
  const causal = attrBool(attrs, "causal", "attention");
  const window = attrInt(attrs, "window", "attention", 0);
  if (window < 0) fail(`attention: window must be ≥ 0 (0 = none), got ${window}`);
  const scale = attrNum(attrs, "scale", "attention", 1 / Math.sqrt(d));
  const segment = attrInt(attrs, "segment", "attention", 0);
  const scoreProgram = attrs["score"] as ExprProgram | undefined;
  const maskProgram = attrs["mask"] as ExprProgram | undefined;
  const keyPos = Float64Array.from({ length: s }, (_, j) => j);
  /** One row of a modifier program over the keys: its inputs are named per ATTENTION_*_INPUTS. */
  const modifierRow = (p: ExprProgram, inputs: (Float64Array | number)[]): Float64Array =>
    evalProgramRow(p, s, (i) => { const x = inputs[i]!; return typeof x === "number" ? new Float64Array(s).fill(x) : x; }, programTypes(p, inputs.map(() => "f32")))[0]!;
  const group = hq / hkv;
  const qd = q!.data;
  const kd = k!.data;
  const vd = v!.data;
  const out = allocData(q!.dtype, tq * hq * dv) as Float32Array;
  const score = new Float64Array(s);
  const visible = new Uint8Array(s);
  const acc = new Float64Array(dv);
  for (let t = 0; t < tq; t++) {
    const pos = s - tq + t;
    for (let h = 0; h < hq; h++) {
      const kh = Math.floor(h / group);
      const qo = (t * hq + h) * d;
      const masked = maskProgram ? modifierRow(maskProgram, [pos, keyPos, h]) : null;
      for (let j = 0; j < s; j++) {
        const otherSequence = segment > 0 && Math.floor(j / segment) !== Math.floor(pos / segment);
        visible[j] = (causal && j > pos) || (window > 0 && j <= pos - window) || otherSequence || (masked !== null && !masked[j]) ? 0 : 1;
        if (!visible[j]) continue;
        const ko = (j * hkv + kh) * d;
        let dot = 0;
        for (let e = 0; e < d; e++) dot += qd[qo + e]! * kd[ko + e]!;
        score[j] = dot * scale;
      }
      if (scoreProgram) score.set(modifierRow(scoreProgram, [score, pos, keyPos, h]));
      let max = -Infinity;
      for (let j = 0; j < s; j++) if (visible[j] && score[j]! > max) max = score[j]!;
      acc.fill(0);
      let denom = 0;
      for (let j = 0; j < s; j++) {
        if (!visible[j]) continue;
        const w = Math.exp(score[j]! - max);
        denom += w;
        const vo = (j * hkv + kh) * dv;
        for (let e = 0; e < dv; e++) acc[e] += w * vd[vo + e]!;
      }
      const oo = (t * hq + h) * dv;
      for (let e = 0; e < dv; e++) out[oo + e] = denom > 0 ? roundToDType(acc[e]! / denom, q!.dtype) : 0;
    }
  }
  return { shape: [tq, hq, dv], dtype: q!.dtype, data: out };
};

// ------------------------------------------------------------------------------------ attention grad

/** What every attention gradient op needs: the sizes, the visible key range of each query, and p. */
function attentionGradSetup(op: string, q: HostTensor, k: HostTensor, attrs: ConcreteAttrs) {
  const [tq, hq, d] = q.shape as [number, number, number];
  const [s, hkv] = k.shape as [number, number, number];
  const causal = attrBool(attrs, "causal", op);
  const window = attrInt(attrs, "window", op, 0);
  const scale = attrNum(attrs, "scale", op, 1 / Math.sqrt(d));
  const segment = attrInt(attrs, "segment", op, 0);
  const group = hq / hkv;
  /** Keys lo … hi − 1 are visible to query t (at position S − T + t). */
  const range = (t: number): [number, number] => {
    const pos = s - tq + t;
    let [lo, hi] = [window > 0 ? Math.max(0, pos - window + 1) : 0, causal ? Math.max(0, Math.min(s, pos + 1)) : s];
    if (segment > 0) {
      const first = Math.floor(pos / segment) * segment;
      [lo, hi] = [Math.max(lo, first), Math.min(hi, first + segment)];
    }
    return [lo, Math.max(lo, hi)];
  };
  const score = (t: number, h: number, j: number) => {
    const qo = (t * hq + h) * d;
    const ko = (j * hkv + Math.floor(h / group)) * d;
    let dot = 0;
    for (let e = 0; e < d; e++) dot += q.data[qo + e]! * k.data[ko + e]!;
    return dot * scale;
  };
  return { tq, hq, d, s, hkv, group, scale, range, score };
}

/** The row sum of dO ∘ o of each (query, head): the softmax backward's correction. */
function rowDots(o: HostTensor, dO: HostTensor): Float64Array {
  const [tq, hq, e] = o.shape as [number, number, number];
  const out = new Float64Array(tq * hq);
  for (let r = 0; r < tq * hq; r++) {
    let acc = 0;
    for (let i = 0; i < e; i++) acc += o.data[r * e + i]! * dO.data[r * e + i]!;
    out[r] = acc;
  }
  return out;
}

const dotRows = (a: HostTensor["data"], ao: number, b: HostTensor["data"], bo: number, n: number) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += a[ao + i]! * b[bo + i]!;
  return acc;
};

/** log Σ exp of each row's visible scaled scores; 3e38 where nothing is visible (p = 0 then). */
const attentionLse: Kernel = ([q, k], attrs) => {
  const a = attentionGradSetup("attention_lse", q!, k!, attrs);
  const out = new Float32Array(a.tq * a.hq);
  for (let t = 0; t < a.tq; t++) {
    const [lo, hi] = a.range(t);
    for (let h = 0; h < a.hq; h++) {
      let max = -Infinity;
      for (let j = lo; j < hi; j++) max = Math.max(max, a.score(t, h, j));
      let sum = 0;
      for (let j = lo; j < hi; j++) sum += Math.exp(a.score(t, h, j) - max);
      out[t * a.hq + h] = hi > lo ? max + Math.log(sum) : 3e38;
    }
  }
  return { shape: [a.tq, a.hq], dtype: "f32", data: out };
};

/** dq, dk or dv of an attention from its inputs, output o, output gradient dO and row lse. */
function attentionGrad(which: "q" | "k" | "v"): Kernel {
  const op = `attention_d${which}`;
  return (ins, attrs) => {
    const [q, k, v, o, dO, lse] = which === "v" ? [ins[0]!, ins[1]!, null, null, ins[2]!, ins[3]!] : ins as HostTensor[];
    const a = attentionGradSetup(op, q!, k!, attrs);
    const e = dO!.shape[2]!;
    const delta = o ? rowDots(o, dO!) : null;
    const width = which === "v" ? e : a.d;
    const out = new Float64Array((which === "q" ? a.tq * a.hq : a.s * a.hkv) * width);
    for (let t = 0; t < a.tq; t++) {
      const [lo, hi] = a.range(t);
      for (let h = 0; h < a.hq; h++) {
        const row = t * a.hq + h;
        const kvh = Math.floor(h / a.group);
        for (let j = lo; j < hi; j++) {
          const p = Math.exp(a.score(t, h, j) - lse!.data[row]!);
          const kvRow = j * a.hkv + kvh;
          if (which === "v") {
            for (let i = 0; i < e; i++) out[kvRow * e + i] += p * dO!.data[row * e + i]!;
            continue;
          }
          const ds = p * (dotRows(dO!.data, row * e, v!.data, kvRow * e, e) - delta![row]!) * a.scale;
          if (which === "q") for (let i = 0; i < a.d; i++) out[row * a.d + i] += ds * k!.data[kvRow * a.d + i]!;
          else for (let i = 0; i < a.d; i++) out[kvRow * a.d + i] += ds * q!.data[row * a.d + i]!;
        }
      }
    }
    // As the op table types them: dq as q, dk and dv as k.
    const dtype = which === "q" ? q!.dtype : k!.dtype;
    const shape = which === "q" ? [a.tq, a.hq, a.d] : [a.s, a.hkv, width];
    const data = allocData(dtype, out.length);
    for (let i = 0; i < out.length; i++) data[i] = roundToDType(out[i]!, dtype);
    return { shape, dtype, data };
  };
}

// ------------------------------------------------------------------------------------------ fused ops

/** Evaluates an expression program at every element of `shape`, row by row (last axis). */
function runProgram(p: ExprProgram, shape: number[], inputs: HostTensor[]): HostTensor {
  const types = programTypes(p, inputs.map((t) => t.dtype));
  const dtype = types[p.outputs[0]!]!;
  const width = shape.length === 0 ? 1 : shape[shape.length - 1]!;
  const rows = sizeOf(shape) / Math.max(width, 1);
  const offs = inputs.map((t) => stridedOffsets(shape, broadcastStrides(t.shape, shape)));
  const out = allocData(dtype, sizeOf(shape));
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    const row = (i: number) => {
      const v = new Float64Array(width);
      const d = inputs[i]!.data;
      const o = offs[i]!;
      for (let j = 0; j < width; j++) v[j] = d[o[base + j]!]!;
      return v;
    };
    const [res] = evalProgramRow(p, width, row, types);
    for (let j = 0; j < width; j++) out[base + j] = roundToDType(res![j]!, dtype);
  }
  return { shape, dtype, data: out };
}

const fused: Kernel = (inputs, attrs) => {
  const shape = inputs.slice(1).reduce((s, t) => broadcastShape(s, t.shape), inputs[0]!.shape);
  return runProgram(attrs["program"] as ExprProgram, [...shape], inputs);
};

/** x @ Wᵢᵀ for each weight [N, K]: one accumulator [.., M, N] per weight. */
function accumulators(x: HostTensor, weights: HostTensor[]): HostTensor[] {
  const k = x.shape[x.shape.length - 1]!;
  const m = sizeOf(x.shape) / Math.max(k, 1);
  return weights.map((wt) => {
    const n = wt.shape[0]!;
    const acc = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let t = 0; t < k; t++) sum += x.data[i * k + t]! * wt.data[j * k + t]!;
        acc[i * n + j] = sum;
      }
    }
    return { shape: [...x.shape.slice(0, -1), n], dtype: x.dtype, data: acc } as HostTensor;
  });
}

/** x @ Wᵢᵀ for each weight, then the epilogue over the accumulators and the extra inputs. */
const linear: Kernel = (inputs, attrs) => {
  const w = attrs["weights"] as number;
  const accs = accumulators(inputs[0]!, inputs.slice(1, 1 + w));
  return runProgram(attrs["epilogue"] as ExprProgram, [...accs[0]!.shape], [...accs, ...inputs.slice(1 + w)]);
};

/** The prologue (a row program) makes x; then linear's accumulators and epilogue; then each
 *  adjacent pair of each head is rotated by the rotation program's (cos, sin) at (row, pair). */
const fusedLinear: Kernel = (inputs, attrs) => {
  const p = attrs["x_inputs"] as number;
  const w = attrs["weights"] as number;
  const e = attrs["extras"] as number;
  const d = attrs["head_dim"] as number;
  const sources = inputs.slice(0, p);
  const xShape = sources.slice(1).reduce((sh, t) => broadcastShape(sh, t.shape), sources[0]!.shape);
  const x = runProgram(attrs["prologue"] as ExprProgram, [...xShape], sources);
  const accs = accumulators(x, inputs.slice(p, p + w));
  const y = runProgram(attrs["epilogue"] as ExprProgram, [...accs[0]!.shape], [...accs, ...inputs.slice(p + w, p + w + e)]);
  if (d === 0) return y;
  const n = y.shape[y.shape.length - 1]!;
  const rows = sizeOf(y.shape) / n;
  const half = d / 2;
  const angleShape = [...y.shape.slice(0, -1), half];
  const rot = attrs["rotation"] as ExprProgram;
  const rotInputs = inputs.slice(p + w + e);
  const rotTypes = programTypes(rot, rotInputs.map((t) => t.dtype));
  const offs = rotInputs.map((t) => stridedOffsets(angleShape, broadcastStrides(t.shape, angleShape)));
  const out = allocData(y.dtype, sizeOf(y.shape));
  for (let r = 0; r < rows; r++) {
    const [cos, sin] = evalProgramRow(rot, half, (i) => {
      const v = new Float64Array(half);
      for (let j = 0; j < half; j++) v[j] = rotInputs[i]!.data[offs[i]![r * half + j]!]!;
      return v;
    }, rotTypes);
    for (let c = 0; c < n; c += 2) {
      const j = (c % d) / 2;
      const y0 = y.data[r * n + c]!;
      const y1 = y.data[r * n + c + 1]!;
      out[r * n + c] = roundToDType(y0 * cos![j]! - y1 * sin![j]!, y.dtype);
      out[r * n + c + 1] = roundToDType(y0 * sin![j]! + y1 * cos![j]!, y.dtype);
    }
  }
  return { shape: y.shape, dtype: y.dtype, data: out };
};

/** The raw kernels, one per op of the table except `kv_append` (state: the interpreter does it).
 *  They validate what they rely on but do not consult the table; use `reference`. */
export const referenceKernels: Readonly<Record<string, Kernel>> = {
  const: (_, attrs) => {
    const dtype = attrDType(attrs, "const");
    const raw = attrs["value"];
    const value = typeof raw === "boolean" ? (raw ? 1 : 0) : raw;
    if (typeof value !== "number") fail(`const: attribute 'value' must be a number or bool, got ${JSON.stringify(raw)}`);
    if (dtype === "i32" && !Number.isInteger(value)) fail(`const: an i32 constant must be an integer, got ${value}`);
    return fill([], dtype, () => value);
  },
  arange: (_, attrs) => {
    const n = attrInt(attrs, "n", "arange");
    if (n < 0) fail(`arange: n must be ≥ 0, got ${n}`);
    return fill([n], "f32", (i) => i);
  },
  // The interpreter evaluates the `value` polynomial with this step's T and P (ir/concrete.ts).
  dim_value: (_, attrs) => {
    const dtype = attrDType(attrs, "dim_value");
    const value = attrInt(attrs, "value", "dim_value");
    return fill([], dtype, () => value);
  },

  neg: unaryNumeric("neg", (x) => -x, (x) => -x | 0),
  abs: unaryNumeric("abs", Math.abs, (x) => Math.abs(x) | 0),
  exp: unaryFloat("exp", Math.exp),
  log: unaryFloat("log", Math.log),
  sqrt: unaryFloat("sqrt", Math.sqrt),
  rsqrt: unaryFloat("rsqrt", (x) => 1 / Math.sqrt(x)),
  sin: unaryFloat("sin", Math.sin),
  cos: unaryFloat("cos", Math.cos),
  tanh: unaryFloat("tanh", Math.tanh),
  sigmoid: unaryFloat("sigmoid", sigmoid),
  silu: unaryFloat("silu", (x) => x * sigmoid(x)),
  gelu: unaryFloat("gelu", (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))),
  erf: unaryFloat("erf", erf),
  recip: unaryFloat("recip", (x) => 1 / x),
  // Evaluation mode; a training graph has x·mask in its place (autodiff/dropout.ts).
  dropout: ([x]) => fill([...x!.shape], x!.dtype, (i) => x!.data[i]!),
  not: ([x]) => {
    if (x!.dtype !== "bool") fail(`not needs a bool tensor, got ${x!.dtype}`);
    const d = x!.data;
    return fill([...x!.shape], "bool", (i) => (d[i] ? 0 : 1));
  },
  cast: ([x], attrs) => {
    const dtype = attrDType(attrs, "cast");
    const d = x!.data;
    return fill([...x!.shape], dtype, (i) => d[i]!);
  },

  ...Object.fromEntries(Object.entries(ARITH).map(([op, f]) => [op, arith(op, f)])),
  lt: compare("lt", (a, b) => a < b),
  le: compare("le", (a, b) => a <= b),
  gt: compare("gt", (a, b) => a > b),
  ge: compare("ge", (a, b) => a >= b),
  eq: compare("eq", (a, b) => a === b),
  ne: compare("ne", (a, b) => a !== b),
  and: logical("and", (a, b) => (a && b ? 1 : 0)),
  or: logical("or", (a, b) => (a || b ? 1 : 0)),
  where: ([c, a, b]) => {
    if (c!.dtype !== "bool") fail(`where's condition must be bool, got ${c!.dtype}`);
    if (a!.dtype !== b!.dtype) fail(`where's branches must have one element type, got ${a!.dtype} and ${b!.dtype}`);
    return broadcastMap([c!, a!, b!], a!.dtype, (ci, ai, bi) => (ci ? ai : bi));
  },

  sum: reduction("sum", 0, (acc, x) => acc + x, (acc) => acc),
  mean: reduction("mean", 0, (acc, x) => acc + x, (acc, n) => acc / n),
  // NaN-propagating maximum; -∞ over an empty axis.
  amax: reduction("amax", -Infinity, (acc, x) => (x > acc || Number.isNaN(x) ? x : acc), (acc) => acc),
  argmax,

  matmul,
  transpose,
  reshape,
  concat,
  slice,
  gather,
  gather_grad: gatherGrad,
  cross_entropy_rows: crossEntropyRows,
  cross_entropy_rows_grad: crossEntropyRowsGrad,
  rotary,
  attention,
  attention_lse: attentionLse,
  attention_dq: attentionGrad("q"),
  attention_dk: attentionGrad("k"),
  attention_dv: attentionGrad("v"),
  fused,
  linear,
  fused_linear: fusedLinear,
};

/** Ops the reference does not compute: they act on state, which the interpreter owns. */
export const STATEFUL_OPS: ReadonlySet<string> = new Set([...opTable.values()].filter((d) => d.kind === "state").map((d) => d.name));

/** Runs one kernel after checking its inputs against the op table, and checks its result against
 *  the table's type for them. */
function checked(op: string, kernel: Kernel): ReferenceOp {
  return (inputs, attrs) => {
    const want = expectedOutput(op, inputs, attrs);
    const out = kernel(inputs, attrs);
    assertShape(out, want.shape, `internal: ${op}'s reference result disagrees with the op table`);
    assertDType(out, want.dtype, `internal: ${op}'s reference result disagrees with the op table`);
    return out;
  };
}

/** The CPU reference of every op in the table except `kv_append`. Inputs the op table rejects
 *  throw a ReferenceOpError with the table's message. */
export const reference: Readonly<Record<string, ReferenceOp>> = Object.fromEntries(
  Object.entries(referenceKernels).map(([op, k]) => [op, checked(op, k)]),
);

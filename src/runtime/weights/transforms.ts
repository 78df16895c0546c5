// The weight transforms a .llm file names (`|> rows(start, count)`, `|> rope_permute(n)`, `|> add(c)`;
// see KNOWN_TRANSFORMS), applied when a tensor is loaded and inverted when one is written.
//
// rows(start, count) takes a weight's rows out of a fused file tensor (Phi-3's qkv and gate_up). It
// comes first, so the transforms after it see the weight's own rows. Its inverse, placing the rows
// back, needs every weight of the file tensor: the writers do it (fusedFileTensors), and here it is
// the identity.
//
// rope_permute(n) reorders the rows of each of n heads of d rows from rotate-half RoPE order (the
// first half of a head's rows pairs with its second half) to adjacent pairs (row 2j with 2j + 1):
//   new[h·d + 2j] = old[h·d + j],  new[h·d + 2j + 1] = old[h·d + d/2 + j]   for j < d/2,
// which is llama.cpp's `permute` in convert_hf_to_gguf.py (reshape(n, 2, d/2, …).swapaxes(1, 2)).
// It moves whole rows, so it works on quantized matrices block row by block row, and on the
// elements of 1-D biases.

import type { TensorTransform } from "../../compiler/check/model.js";
import { DTYPES, decodeTensor, type StorageDType } from "../../compiler/target/storage.js";

/** A tensor's bytes in a dtype's layout (ggml's blocks for quantized types), with its row-major shape. */
export interface RawTensor {
  readonly dtype: StorageDType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** Builds the error for a transform that cannot apply; the caller knows the file and tensor. */
export type TransformFailure = (problem: string) => Error;

export function describeTransform(t: TensorTransform): string {
  return `${t.name}(${t.args.map((a) => String(a.value)).join(", ")})`;
}

/** Applies the transforms in order, as on load. May return the input when nothing changes it. */
export function applyLoadTransforms(raw: RawTensor, transforms: readonly TensorTransform[], fail: TransformFailure): RawTensor {
  let t = raw;
  for (const tr of transforms) {
    switch (tr.name) {
      case "rows": {
        const { start, count } = rowRange(tr, t.shape, fail);
        const rowBytes = t.bytes.byteLength / t.shape[0]!;
        t = { ...t, shape: [count, ...t.shape.slice(1)], bytes: t.bytes.subarray(start * rowBytes, (start + count) * rowBytes) };
        break;
      }
      case "rope_permute": {
        const heads = ropeHeads(tr, t.shape, fail);
        // A 1-D tensor permutes single elements, which blocks of a quantized type do not allow.
        if (t.shape.length === 1 && DTYPES[t.dtype].blockSize > 1) t = toF32(t);
        t = { ...t, bytes: permuteRows(t.bytes, t.shape[0]!, heads, "load") };
        break;
      }
      case "add": {
        const c = addConstant(tr, fail);
        const f = toF32(t);
        const v = new Float32Array(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength / 4);
        for (let i = 0; i < v.length; i++) v[i] = v[i]! + c;
        t = f;
        break;
      }
      default:
        throw fail(`the weight transform '${tr.name}' is unknown to the loader`);
    }
  }
  return t;
}

/** The inverses of the transforms, last first: the values a file must hold so loading gives `values`. */
export function applyStoreTransforms(
  values: Float32Array,
  shape: readonly number[],
  transforms: readonly TensorTransform[],
  fail: TransformFailure,
): Float32Array {
  let v = values;
  for (let k = transforms.length - 1; k >= 0; k--) {
    const tr = transforms[k]!;
    switch (tr.name) {
      case "rows":
        break;
      case "rope_permute": {
        const heads = ropeHeads(tr, shape, fail);
        const bytes = permuteRows(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), shape[0]!, heads, "store");
        v = new Float32Array(bytes.buffer, bytes.byteOffset, v.length);
        break;
      }
      case "add": {
        const c = addConstant(tr, fail);
        const out = new Float32Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = v[i]! - c;
        v = out;
        break;
      }
      default:
        throw fail(`the weight transform '${tr.name}' is unknown to the writer`);
    }
  }
  return v;
}

/**
 * The nearest values that survive being stored with `transforms` at f32 and loaded again unchanged:
 * `add(c)` rounds x − c and then x, so not every f32 x comes back exactly. Permutations are exact.
 */
export function storableF32(values: Float32Array, shape: readonly number[], all: readonly TensorTransform[], fail: TransformFailure): Float32Array {
  if (!all.some((t) => t.name === "add")) return values;
  const transforms = all.filter((t) => t.name !== "rows"); // values of the weight's own rows
  let v = values;
  for (let round = 0; round < 4; round++) {
    const stored = applyStoreTransforms(v, shape, transforms, fail);
    const bytes = new Uint8Array(stored.buffer.slice(stored.byteOffset, stored.byteOffset + stored.byteLength));
    const loaded = applyLoadTransforms({ dtype: "f32", shape, bytes }, transforms, fail).bytes;
    const next = new Float32Array(loaded.buffer, loaded.byteOffset, v.length);
    if (next.every((x, i) => Object.is(x, v[i]))) return next;
    v = next;
  }
  return v;
}

/** The shape a file tensor of `fileShape` has after the transforms: what the weight must be declared as. */
export function loadedShape(fileShape: readonly number[], transforms: readonly TensorTransform[], fail: TransformFailure): number[] {
  const rows = transforms.find((t) => t.name === "rows");
  if (!rows) return [...fileShape];
  return [rowRange(rows, fileShape, fail).count, ...fileShape.slice(1)];
}

function rowRange(t: TensorTransform, shape: readonly number[], fail: TransformFailure): { start: number; count: number } {
  const [start, count] = t.args.map((a) => a.value as number) as [number, number];
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count <= 0) throw fail(`${describeTransform(t)} needs integers start >= 0 and count > 0`);
  const rows = shape[0] ?? 0;
  if (start + count > rows) throw fail(`${describeTransform(t)} reads rows up to ${start + count}, but the file tensor has ${rows}`);
  return { start, count };
}

function ropeHeads(t: TensorTransform, shape: readonly number[], fail: TransformFailure): number {
  const heads = t.args[0]?.value;
  const rows = shape[0] ?? 0;
  if (typeof heads !== "number" || !Number.isSafeInteger(heads) || heads <= 0) throw fail(`${describeTransform(t)} needs a positive head count`);
  if (rows % (2 * heads) !== 0) {
    throw fail(`${describeTransform(t)} needs the first dimension (${rows}) to be a multiple of 2 × ${heads} heads`);
  }
  return heads;
}

function addConstant(t: TensorTransform, fail: TransformFailure): number {
  const c = t.args[0]?.value;
  if (typeof c !== "number" || !Number.isFinite(c)) throw fail(`${describeTransform(t)} needs a finite number`);
  return c;
}

function toF32(t: RawTensor): RawTensor {
  const values = decodeTensor(t.dtype, t.bytes);
  // decodeTensor may return a view of the input for f32; transforms must not write into it.
  const copy = t.dtype === "f32" ? new Float32Array(values) : values;
  return { dtype: "f32", shape: t.shape, bytes: new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength) };
}

/**
 * Reorders `rows` equal rows of `bytes` within each of `heads` heads: "load" from rotate-half to
 * adjacent-pair order, "store" back. Returns a new array.
 */
export function permuteRows(bytes: Uint8Array, rows: number, heads: number, direction: "load" | "store"): Uint8Array {
  const rowBytes = bytes.byteLength / rows;
  const d = rows / heads;
  const half = d / 2;
  const out = new Uint8Array(bytes.byteLength);
  const copyRow = (to: number, from: number) => out.set(bytes.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
  for (let h = 0; h < heads; h++) {
    const base = h * d;
    for (let j = 0; j < half; j++) {
      if (direction === "load") {
        copyRow(base + 2 * j, base + j);
        copyRow(base + 2 * j + 1, base + half + j);
      } else {
        copyRow(base + j, base + 2 * j);
        copyRow(base + half + j, base + 2 * j + 1);
      }
    }
  }
  return out;
}

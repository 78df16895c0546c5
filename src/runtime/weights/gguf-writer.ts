// Writes GGUF v3 files: metadata of every GGUF value type, tensor infos, and tensor data padded to
// the file's alignment. The header is built in memory (it is small: metadata and tensor infos); the
// tensor data is streamed to disk one tensor at a time, and a tensor's data may be produced lazily,
// so converting a model needs memory for one tensor, not the model. The file is written under a
// temporary name and renamed at the end, so a failed write never leaves a plausible-looking file.

import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { DTYPES, encodeTensor, isStorageDType, tensorByteSize, type StorageDType } from "../../compiler/target/storage.js";
import { WeightFileError } from "./errors.js";
import {
  GGML_MAX_DIMS,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPES,
  type GGUFScalar,
  type GGUFScalarType,
  type GGUFValueTypeName,
} from "./gguf-reader.js";

export type GGUFMetadataEntry =
  | { key: string; type: GGUFScalarType; value: GGUFScalar }
  | { key: string; type: "array"; elementType: GGUFScalarType; value: readonly GGUFScalar[] };

/** Typed constructors for metadata entries: `meta.uint32("llama.block_count", 22)`. */
export const meta = {
  uint8: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "uint8", value }),
  int8: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "int8", value }),
  uint16: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "uint16", value }),
  int16: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "int16", value }),
  uint32: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "uint32", value }),
  int32: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "int32", value }),
  uint64: (key: string, value: number | bigint): GGUFMetadataEntry => ({ key, type: "uint64", value }),
  int64: (key: string, value: number | bigint): GGUFMetadataEntry => ({ key, type: "int64", value }),
  float32: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "float32", value }),
  float64: (key: string, value: number): GGUFMetadataEntry => ({ key, type: "float64", value }),
  bool: (key: string, value: boolean): GGUFMetadataEntry => ({ key, type: "bool", value }),
  string: (key: string, value: string): GGUFMetadataEntry => ({ key, type: "string", value }),
  array: (key: string, elementType: GGUFScalarType, value: readonly GGUFScalar[]): GGUFMetadataEntry => ({
    key,
    type: "array",
    elementType,
    value,
  }),
};

/** Float32Array: values, converted to the tensor's dtype. Uint8Array: bytes already in the dtype's ggml layout. */
export type TensorData = Float32Array | Uint8Array;

export interface GGUFTensorInput {
  name: string;
  /** Row-major, e.g. [out, in] for a matrix (written to the file as ggml's ne, reversed). */
  shape: readonly number[];
  dtype: StorageDType;
  /** The data, or a function producing it when the tensor is written. */
  data: TensorData | (() => TensorData | Promise<TensorData>);
}

export interface WriteProgress {
  tensor: string; // the tensor just written
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface GGUFWriteContent {
  metadata?: readonly GGUFMetadataEntry[];
  tensors?: readonly GGUFTensorInput[];
  /** Alignment of tensor data (a power of two); written as general.alignment. 32 when not given. */
  alignment?: number;
  onProgress?: (progress: WriteProgress) => void;
}

const GGUF_VERSION = 3;
const GGML_MAX_NAME = 64; // ggml's limit on tensor names, including the terminating NUL

const INTEGER_RANGES: Partial<Record<GGUFScalarType, [bigint, bigint]>> = {
  uint8: [0n, 0xffn],
  int8: [-0x80n, 0x7fn],
  uint16: [0n, 0xffffn],
  int16: [-0x8000n, 0x7fffn],
  uint32: [0n, 0xffffffffn],
  int32: [-0x80000000n, 0x7fffffffn],
  uint64: [0n, 0xffffffffffffffffn],
  int64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

export async function writeGGUF(path: string, content: GGUFWriteContent): Promise<void> {
  const metadata = withAlignment(path, content.metadata ?? [], content.alignment);
  const alignment = alignmentOf(path, metadata);
  const tensors = planTensors(path, content.tensors ?? [], alignment);
  const header = encodeHeader(path, metadata, tensors, alignment);

  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, "w");
    await writeAll(handle, header, 0);
    const padding = new Uint8Array(alignment);
    const bytesTotal = tensors.reduce((sum, t) => sum + t.paddedLength, 0);
    let bytesDone = 0;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const bytes = await tensorBytes(path, t);
      await writeAll(handle, bytes, header.byteLength + t.offset);
      await writeAll(handle, padding.subarray(0, t.paddedLength - t.byteLength), header.byteLength + t.offset + t.byteLength);
      bytesDone += t.paddedLength;
      content.onProgress?.({ tensor: t.input.name, tensorsDone: i + 1, tensorsTotal: tensors.length, bytesDone, bytesTotal });
    }
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    if (err instanceof WeightFileError) throw err;
    throw new WeightFileError(path, `writing the file failed (${(err as Error).message})`, {
      hint: "Check that the directory exists, is writable and has space",
      cause: err,
    });
  }
}

function withAlignment(path: string, metadata: readonly GGUFMetadataEntry[], alignment: number | undefined): readonly GGUFMetadataEntry[] {
  if (alignment === undefined) return metadata;
  const existing = metadata.find((e) => e.key === "general.alignment");
  if (existing) {
    if (existing.value !== alignment) {
      throw new WeightFileError(path, `the alignment option (${alignment}) contradicts the general.alignment entry (${String(existing.value)})`, {
        key: "general.alignment",
      });
    }
    return metadata;
  }
  return [...metadata, meta.uint32("general.alignment", alignment)];
}

function alignmentOf(path: string, metadata: readonly GGUFMetadataEntry[]): number {
  const entry = metadata.find((e) => e.key === "general.alignment");
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  const v = entry.value;
  if (entry.type !== "uint32" || typeof v !== "number" || !Number.isInteger(v) || v <= 0 || v > 2 ** 30 || (v & (v - 1)) !== 0) {
    throw new WeightFileError(path, `general.alignment must be a uint32 power of two, not ${String(v)} (${entry.type})`, {
      key: "general.alignment",
    });
  }
  return v;
}

interface PlannedTensor {
  input: GGUFTensorInput;
  numElements: number;
  byteLength: number;
  paddedLength: number;
  offset: number; // relative to the start of tensor data
}

function planTensors(path: string, inputs: readonly GGUFTensorInput[], alignment: number): PlannedTensor[] {
  const names = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const input of inputs) {
    const { name, shape, dtype } = input;
    const fail = (problem: string) => new WeightFileError(path, problem, { tensor: name });
    if (typeof name !== "string" || name.length === 0) throw new WeightFileError(path, "a tensor has an empty name");
    if (new TextEncoder().encode(name).byteLength >= GGML_MAX_NAME) {
      throw fail(`the name is longer than ggml's limit of ${GGML_MAX_NAME - 1} bytes`);
    }
    if (names.has(name)) throw fail("two tensors have this name");
    names.add(name);
    if (!isStorageDType(dtype)) throw fail(`unknown dtype "${String(dtype)}"; use one of ${Object.keys(DTYPES).join(", ")}`);
    if (shape.length < 1 || shape.length > GGML_MAX_DIMS || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`shape [${shape.join(", ")}] must have 1 to ${GGML_MAX_DIMS} non-negative integer dimensions`);
    }
    const numElements = shape.reduce((a, b) => a * b, 1);
    const { blockSize } = DTYPES[dtype];
    const rowLength = shape[shape.length - 1]!;
    if (rowLength % blockSize !== 0) {
      throw fail(`its rows have ${rowLength} elements; ${dtype} needs a multiple of ${blockSize}`);
    }
    if (!Number.isSafeInteger(numElements)) throw fail(`shape [${shape.join(", ")}] has too many elements`);
    const byteLength = tensorByteSize(dtype, numElements);
    const paddedLength = pad(byteLength, alignment);
    planned.push({ input, numElements, byteLength, paddedLength, offset });
    offset += paddedLength;
  }
  return planned;
}

async function tensorBytes(path: string, t: PlannedTensor): Promise<Uint8Array> {
  const { name, dtype, data } = t.input;
  const fail = (problem: string, cause?: unknown) => new WeightFileError(path, problem, { tensor: name, cause });
  let value: TensorData;
  try {
    value = typeof data === "function" ? await data() : data;
  } catch (cause) {
    throw fail(`producing the tensor data failed (${(cause as Error).message})`, cause);
  }
  if (value instanceof Float32Array) {
    if (value.length !== t.numElements) throw fail(`the shape needs ${t.numElements} values, the data has ${value.length}`);
    if (dtype === "f32") return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    try {
      return encodeTensor(dtype, value);
    } catch (cause) {
      throw fail(`cannot convert it to ${dtype}: ${(cause as Error).message}`, cause);
    }
  }
  if (value instanceof Uint8Array) {
    if (value.byteLength !== t.byteLength) throw fail(`${dtype} data of this shape is ${t.byteLength} bytes, the data has ${value.byteLength}`);
    return value;
  }
  throw fail("its data must be a Float32Array (values) or a Uint8Array (encoded bytes)");
}

function pad(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}

// ---------------------------------------------------------------------------------------------
// The header

function typeId(type: GGUFValueTypeName): number {
  return GGUF_VALUE_TYPES.indexOf(type);
}

function encodeHeader(path: string, metadata: readonly GGUFMetadataEntry[], tensors: PlannedTensor[], alignment: number): Uint8Array {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(BigInt(tensors.length));
  sink.u64(BigInt(metadata.length));
  const keys = new Set<string>();
  for (const entry of metadata) {
    const fail = (problem: string) => new WeightFileError(path, problem, { key: entry.key });
    if (typeof entry.key !== "string" || entry.key.length === 0) throw new WeightFileError(path, "a metadata entry has an empty key");
    if (keys.has(entry.key)) throw fail("two metadata entries have this key");
    keys.add(entry.key);
    sink.string(entry.key);
    if (entry.type === "array") {
      if (!Array.isArray(entry.value)) throw fail("an array entry needs an array value");
      if (typeId(entry.elementType) < 0 || entry.elementType === ("array" as string)) {
        throw fail(`unsupported array element type "${String(entry.elementType)}"`);
      }
      sink.u32(typeId("array"));
      sink.u32(typeId(entry.elementType));
      sink.u64(BigInt(entry.value.length));
      entry.value.forEach((v, i) => writeScalar(sink, entry.elementType, v, (p) => fail(`element ${i}: ${p}`)));
    } else {
      if (typeId(entry.type) < 0) throw fail(`unknown metadata type "${String(entry.type)}"`);
      sink.u32(typeId(entry.type));
      writeScalar(sink, entry.type, entry.value, fail);
    }
  }
  for (const t of tensors) {
    const { name, shape, dtype } = t.input;
    sink.string(name);
    sink.u32(shape.length);
    for (let i = shape.length - 1; i >= 0; i--) sink.u64(BigInt(shape[i]!)); // ne: innermost first
    sink.u32(DTYPES[dtype].ggmlType);
    sink.u64(BigInt(t.offset));
  }
  sink.zeros(pad(sink.length, alignment) - sink.length);
  return sink.bytes();
}

function writeScalar(sink: ByteSink, type: GGUFScalarType, value: GGUFScalar, fail: (problem: string) => Error): void {
  const range = INTEGER_RANGES[type];
  if (range) {
    const ok = (typeof value === "number" && Number.isSafeInteger(value)) || typeof value === "bigint";
    const big = ok ? BigInt(value as number | bigint) : 0n;
    if (!ok || big < range[0] || big > range[1]) throw fail(`${String(value)} is not a ${type}`);
    switch (type) {
      case "uint8":
        return sink.u8(Number(big));
      case "int8":
        return sink.u8(Number(big) & 0xff);
      case "uint16":
        return sink.u16(Number(big));
      case "int16":
        return sink.u16(Number(big) & 0xffff);
      case "uint32":
        return sink.u32(Number(big));
      case "int32":
        return sink.u32(Number(big) >>> 0);
      case "uint64":
        return sink.u64(big);
      default:
        return sink.u64(BigInt.asUintN(64, big)); // int64, two's complement
    }
  }
  switch (type) {
    case "float32":
    case "float64":
      if (typeof value !== "number") throw fail(`${String(value)} is not a number`);
      return type === "float32" ? sink.f32(value) : sink.f64(value);
    case "bool":
      if (typeof value !== "boolean") throw fail(`${String(value)} is not a boolean`);
      return sink.u8(value ? 1 : 0);
    case "string":
      if (typeof value !== "string") throw fail(`${String(value)} is not a string`);
      return sink.string(value);
    default:
      throw fail(`unknown metadata type "${String(type)}"`);
  }
}

/** A growable little-endian byte buffer. */
class ByteSink {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  private static readonly encoder = new TextEncoder();
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.byteLength) {
      const grown = new Uint8Array(Math.max(at + n, this.buf.byteLength * 2));
      grown.set(this.buf.subarray(0, at));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += n;
    return at;
  }

  // reserve() first, then this.view / this.buf: reserving may replace them
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  string(s: string): void {
    const bytes = ByteSink.encoder.encode(s);
    this.u64(BigInt(bytes.byteLength));
    const at = this.reserve(bytes.byteLength);
    this.buf.set(bytes, at);
  }
  zeros(n: number): void {
    const at = this.reserve(n);
    this.buf.fill(0, at, at + n);
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

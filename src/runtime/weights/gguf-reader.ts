// Reads GGUF v2/v3 weight files. @huggingface/gguf parses the header (metadata and tensor infos);
// tensor data is read here, one tensor at a time, with positional reads on a ByteSource (a file in
// Node; bytes, a Blob or a download in a browser), so a model never passes through the JS heap as a
// whole unless it was given whole.
//
// The library trusts more than a loader should: past the end of a local file it reads zeros instead
// of failing (it pads its read buffer), so a truncated header can parse "successfully". Hence the
// checks around it: the fixed-size start of the header and the declared counts are checked here
// first, the parsed header must end inside the file, and every tensor must lie inside the file.

import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { DTYPES, SUPPORTED_DTYPES, decodeTensor, dtypeFromGgmlType, tensorByteSize, type StorageDType } from "../../compiler/target/storage.js";
import { rangeFetch, type ByteSource } from "./byte-source.js";
import { WeightFileError } from "./errors.js";
import { openFileSource } from "./file.js";

// ---------------------------------------------------------------------------------------------
// The format, shared with gguf-writer.ts

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGML_MAX_DIMS = 4;

/** Metadata value types, indexed by their GGUF id (enum gguf_type). */
export const GGUF_VALUE_TYPES = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
] as const;
export type GGUFValueTypeName = (typeof GGUF_VALUE_TYPES)[number];
export type GGUFScalarType = Exclude<GGUFValueTypeName, "array">;

export type GGUFScalar = number | bigint | boolean | string;
/** A metadata value as read: 64-bit integers are numbers when they are safe integers, bigints otherwise. */
export type GGUFValue = GGUFScalar | GGUFValue[];

export interface GGUFMetadataTypeInfo {
  type: GGUFValueTypeName;
  elementType?: GGUFValueTypeName; // for arrays
}

/** ggml's name for a tensor type id ("Q4_K"), or "type N" for ids it does not know either. */
export function ggmlTypeName(ggmlType: number): string {
  const name = (GGMLQuantizationType as unknown as Record<number, string | undefined>)[ggmlType];
  return name ?? `type ${ggmlType}`;
}

// ---------------------------------------------------------------------------------------------
// The file

export interface GGUFTensorInfo {
  readonly name: string;
  /** Row-major: the reverse of ggml's ne, so an [out, in] matrix is [out, in]. */
  readonly shape: readonly number[];
  readonly numElements: number;
  readonly ggmlType: number;
  /** ggml's name of the type, e.g. "Q8_0"; for messages and listings. */
  readonly typeName: string;
  /** null when llmc cannot read this type (see SUPPORTED_DTYPES). */
  readonly dtype: StorageDType | null;
  /** Absolute position of the data in the file. */
  readonly byteOffset: number;
  /** null when the type is unsupported. */
  readonly byteLength: number | null;
}

export interface ReadProgress {
  tensor: string; // the tensor just read
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface ReadTensorsOptions {
  /** The tensors to read; all of them by default. They are read in file order whatever the order here. */
  names?: Iterable<string>;
  onProgress?: (progress: ReadProgress) => void;
}

export class GGUFFile {
  private closed = false;

  /** @internal Use openGGUF. */
  constructor(
    readonly path: string,
    private readonly source: ByteSource,
    readonly version: 2 | 3,
    readonly fileSize: number,
    readonly alignment: number,
    /** Where tensor data starts; tensor offsets in the file are relative to it. */
    readonly tensorDataOffset: number,
    readonly metadata: Readonly<Record<string, GGUFValue>>,
    readonly metadataTypes: ReadonlyMap<string, GGUFMetadataTypeInfo>,
    readonly tensors: ReadonlyMap<string, GGUFTensorInfo>,
  ) {}

  /** The tensor's info; a WeightFileError if the file has no tensor of that name. */
  tensor(name: string): GGUFTensorInfo {
    const info = this.tensors.get(name);
    if (info) return info;
    const some = [...this.tensors.keys()].slice(0, 5).map((n) => `"${n}"`);
    const listing = this.tensors.size === 0 ? "it has no tensors" : `it has ${this.tensors.size} tensors, e.g. ${some.join(", ")}`;
    throw new WeightFileError(this.path, `no such tensor in the file; ${listing}`, {
      tensor: name,
      hint: "Check that the file holds the model the architecture expects",
    });
  }

  /** The tensor's bytes as stored (ggml layout), into `into` if given (which must be exactly byteLength
   *  long); without `into`, a view of the source's bytes where it holds them in memory. */
  async readTensorBytes(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const info = this.tensor(name);
    const byteLength = this.readableLength(info);
    if (into && into.byteLength !== byteLength) {
      throw new RangeError(`readTensorBytes("${name}"): target has ${into.byteLength} bytes, the tensor ${byteLength}`);
    }
    const bytes = await this.readAt(info.byteOffset, byteLength, name);
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  /** The tensor's values as f32, converted or dequantized on the CPU. */
  async readTensorF32(name: string): Promise<Float32Array> {
    const info = this.tensor(name);
    return decodeTensor(info.dtype!, await this.readTensorBytes(name));
  }

  /**
   * Reads tensors one at a time, in file order, yielding each with its bytes; only one tensor's bytes
   * are held here at a time. Checks every requested tensor is readable before reading any.
   */
  async *readTensors(options: ReadTensorsOptions = {}): AsyncGenerator<{ info: GGUFTensorInfo; bytes: Uint8Array }> {
    const infos = options.names ? [...new Set(options.names)].map((n) => this.tensor(n)) : [...this.tensors.values()];
    const unsupported = infos.filter((t) => t.dtype === null);
    if (unsupported.length > 0) throw this.unsupportedTypes(unsupported);
    infos.sort((a, b) => a.byteOffset - b.byteOffset);
    const bytesTotal = infos.reduce((sum, t) => sum + t.byteLength!, 0);
    let bytesDone = 0;
    for (let i = 0; i < infos.length; i++) {
      const info = infos[i]!;
      const bytes = await this.readTensorBytes(info.name);
      bytesDone += bytes.byteLength;
      options.onProgress?.({ tensor: info.name, tensorsDone: i + 1, tensorsTotal: infos.length, bytesDone, bytesTotal });
      yield { info, bytes };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.close();
  }

  private readableLength(info: GGUFTensorInfo): number {
    if (info.dtype === null || info.byteLength === null) throw this.unsupportedTypes([info]);
    return info.byteLength;
  }

  private unsupportedTypes(infos: GGUFTensorInfo[]): WeightFileError {
    const supported = SUPPORTED_DTYPES.join(", ");
    const hint =
      "Convert the model to a supported type, e.g. with llama.cpp: llama-quantize --allow-requantize in.gguf out.gguf Q8_0";
    const first = infos[0]!;
    if (infos.length === 1) {
      return new WeightFileError(
        this.path,
        `its type ${first.typeName} (ggml type ${first.ggmlType}) is not supported; llmc reads ${supported}`,
        { tensor: first.name, hint },
      );
    }
    const types = [...new Set(infos.map((t) => t.typeName))].join(", ");
    return new WeightFileError(
      this.path,
      `${infos.length} tensors have types llmc does not support (${types}), the first "${first.name}" (${first.typeName}); llmc reads ${supported}`,
      { tensor: first.name, hint },
    );
  }

  private async readAt(position: number, length: number, tensor: string): Promise<Uint8Array> {
    if (this.closed) throw new WeightFileError(this.path, "the file has been closed", { tensor, hint: "Read tensors before calling close()" });
    let bytes: Uint8Array;
    try {
      bytes = await this.source.read(position, length);
    } catch (cause) {
      throw new WeightFileError(this.path, `reading the tensor data failed (${(cause as Error).message})`, { tensor, cause });
    }
    if (bytes.byteLength < length) {
      throw new WeightFileError(this.path, `the file ended at byte ${position + bytes.byteLength} while reading the tensor data`, {
        tensor,
        hint: "The file was truncated after it was opened; open it again once it is complete",
      });
    }
    return bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

const TRUNCATED_HINT = "The file is truncated or corrupt (an interrupted download or conversion?); download or convert it again";

// Smallest possible encodings, to bound the declared counts by the file size before parsing:
// a key-value pair is a key string (8-byte length), a type (4) and at least a 1-byte value;
// a tensor info is a name string (8), n_dims (4), a type (4) and an offset (8).
const MIN_KV_BYTES = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
const FIXED_HEADER_BYTES = 4 + 4 + 8 + 8; // magic, version, tensor count, kv count

/** Opens a GGUF v2/v3 file: parses and checks its header; tensor data is read on demand. */
export async function openGGUF(path: string): Promise<GGUFFile> {
  const source = await openFileSource(path, "a .gguf file");
  try {
    return await readGGUF(path, source);
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** A GGUF file from any ByteSource; `path` names it in messages. The GGUFFile closes the source. */
export async function readGGUF(path: string, source: ByteSource): Promise<GGUFFile> {
  const fileSize = source.size;
  const head = await source.read(0, Math.min(fileSize, FIXED_HEADER_BYTES));
  const { version } = checkFixedHeader(path, head, fileSize);

  let parsed: Awaited<ReturnType<typeof parseWithLibrary>>;
  try {
    parsed = await parseWithLibrary(source);
  } catch (cause) {
    throw new WeightFileError(path, `the GGUF header is malformed: ${(cause as Error).message}`, { hint: TRUNCATED_HINT, cause });
  }
  const headerEnd = parsed.tensorInfoByteRange[1];
  if (headerEnd > fileSize) {
    throw new WeightFileError(path, `the file ends inside its GGUF header (the header needs at least ${headerEnd} bytes, the file has ${fileSize})`, {
      hint: TRUNCATED_HINT,
    });
  }

  const { metadata, metadataTypes } = convertMetadata(parsed.typedMetadata);
  const alignment = checkAlignment(path, metadata, metadataTypes);
  const tensorDataOffset = Number(parsed.tensorDataOffset);
  const tensors = new Map<string, GGUFTensorInfo>();
  for (const raw of parsed.tensorInfos) {
    const info = checkTensorInfo(path, raw, tensorDataOffset, alignment, fileSize);
    if (tensors.has(info.name)) {
      throw new WeightFileError(path, "the file has two tensors of this name", { tensor: info.name, hint: TRUNCATED_HINT });
    }
    tensors.set(info.name, info);
  }
  return new GGUFFile(path, source, version, fileSize, alignment, tensorDataOffset, metadata, metadataTypes, tensors);
}

function checkFixedHeader(path: string, head: Uint8Array, fileSize: number): { version: 2 | 3 } {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const notGGUF = (what: string) =>
    new WeightFileError(path, `is not a GGUF file: ${what}`, {
      hint: "Check the path; llmc reads weights from GGUF (.gguf) and safetensors (.safetensors) files",
    });
  if (head.byteLength < 4) throw notGGUF(`it is only ${fileSize} bytes long`);
  if (view.getUint32(0, true) !== GGUF_MAGIC) {
    const bytes = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw notGGUF(`it starts with the bytes ${bytes}, not "GGUF"`);
  }
  if (head.byteLength < 8) {
    throw new WeightFileError(path, `the file ends inside its GGUF header (${fileSize} bytes)`, { hint: TRUNCATED_HINT });
  }
  const version = view.getUint32(4, true);
  // A big-endian file has its version's bytes swapped: 3 reads as 0x03000000.
  if ((version & 0xffff) === 0 && [1, 2, 3].includes(view.getUint32(4, false))) {
    throw new WeightFileError(path, "is a big-endian GGUF file, which llmc does not read", {
      hint: "Convert the model again without --bigendian",
    });
  }
  if (version === 1) {
    throw new WeightFileError(path, "is a GGUF version 1 file, a format llmc (like llama.cpp) no longer reads", {
      hint: "Convert the model again with a current llama.cpp (convert_hf_to_gguf.py)",
    });
  }
  if (version !== 2 && version !== 3) {
    throw new WeightFileError(path, `has GGUF version ${version}; llmc reads versions 2 and 3`, {
      hint: version > 3 && version < 100 ? "The file is newer than this llmc; update llmc" : TRUNCATED_HINT,
    });
  }
  if (head.byteLength < FIXED_HEADER_BYTES) {
    throw new WeightFileError(path, `the file ends inside its GGUF header (${fileSize} bytes)`, { hint: TRUNCATED_HINT });
  }
  const tensorCount = view.getBigUint64(8, true);
  const kvCount = view.getBigUint64(16, true);
  const minimum = BigInt(FIXED_HEADER_BYTES) + kvCount * BigInt(MIN_KV_BYTES) + tensorCount * BigInt(MIN_TENSOR_INFO_BYTES);
  if (minimum > BigInt(fileSize)) {
    throw new WeightFileError(
      path,
      `the header declares ${tensorCount} tensors and ${kvCount} metadata entries, more than a file of ${fileSize} bytes can hold`,
      { hint: TRUNCATED_HINT },
    );
  }
  return { version };
}

async function parseWithLibrary(source: ByteSource) {
  // Read through rangeFetch, the same in Node and a browser; the URL is never requested.
  return gguf("https://llmc.invalid/model.gguf", { fetch: rangeFetch(source), typedMetadata: true });
}

type LibraryTypedMetadata = Awaited<ReturnType<typeof parseWithLibrary>>["typedMetadata"];
type LibraryTensorInfo = Awaited<ReturnType<typeof parseWithLibrary>>["tensorInfos"][number];

const HEADER_FIELDS = new Set(["version", "tensor_count", "kv_count"]); // the library puts these among the keys

function convertMetadata(typed: LibraryTypedMetadata): {
  metadata: Record<string, GGUFValue>;
  metadataTypes: Map<string, GGUFMetadataTypeInfo>;
} {
  const entries: [string, GGUFValue][] = [];
  const metadataTypes = new Map<string, GGUFMetadataTypeInfo>();
  for (const [key, e] of Object.entries(typed)) {
    const entry = e as { value: unknown; type: number; subType?: number } | undefined;
    if (HEADER_FIELDS.has(key) || entry === undefined) continue;
    entries.push([key, toValue(entry.value)]);
    const type = GGUF_VALUE_TYPES[entry.type]!;
    const elementType = entry.subType === undefined ? undefined : GGUF_VALUE_TYPES[entry.subType];
    metadataTypes.set(key, elementType ? { type, elementType } : { type });
  }
  // fromEntries defines own properties, so even a key like "__proto__" stays plain data
  return { metadata: Object.fromEntries(entries), metadataTypes };
}

function toValue(v: unknown): GGUFValue {
  if (Array.isArray(v)) return v.map(toValue);
  if (typeof v === "bigint") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  return v as GGUFScalar;
}

function checkAlignment(path: string, metadata: Record<string, GGUFValue>, types: Map<string, GGUFMetadataTypeInfo>): number {
  const key = "general.alignment";
  if (!(key in metadata)) return GGUF_DEFAULT_ALIGNMENT;
  const value = metadata[key];
  const type = types.get(key)?.type;
  const integer = type !== undefined && type !== "float32" && type !== "float64" && type !== "bool" && type !== "string" && type !== "array";
  if (!integer || typeof value !== "number" || value <= 0 || value > 2 ** 30 || (value & (value - 1)) !== 0) {
    throw new WeightFileError(path, `general.alignment is ${String(value)} (${type}), not a power of two`, {
      key,
      hint: TRUNCATED_HINT,
    });
  }
  return value;
}

function checkTensorInfo(path: string, raw: LibraryTensorInfo, dataOffset: number, alignment: number, fileSize: number): GGUFTensorInfo {
  const name = raw.name;
  const fail = (problem: string, hint = TRUNCATED_HINT) => new WeightFileError(path, problem, { tensor: name, hint });
  if (raw.n_dims > GGML_MAX_DIMS) throw fail(`it has ${raw.n_dims} dimensions; GGUF allows at most ${GGML_MAX_DIMS}`);
  const ne = raw.shape.map(Number); // the library bounds each dimension by 2^32
  const numElements = ne.reduce((a, b) => a * b, 1);
  // Even at one bit per element the data could not fit in the file: bounds the products below too.
  if (numElements > fileSize * 8) throw fail(`its shape [${[...ne].reverse().join(", ")}] has more elements than the file could hold`);
  const ggmlType = raw.dtype as number;
  const dtype = dtypeFromGgmlType(ggmlType);
  const relative = raw.offset;
  if (relative % BigInt(alignment) !== 0n) {
    throw fail(`its data offset ${relative} is not a multiple of the file's alignment ${alignment}`);
  }
  const byteOffset = dataOffset + Number(relative);
  let byteLength: number | null = null;
  if (dtype !== null) {
    const { blockSize } = DTYPES[dtype];
    const rowLength = ne[0] ?? 1;
    if (rowLength % blockSize !== 0) {
      throw fail(`its rows have ${rowLength} elements, not a multiple of the ${dtype} block size ${blockSize}`);
    }
    byteLength = tensorByteSize(dtype, numElements);
  }
  const end = byteOffset + (byteLength ?? 0);
  if (end > fileSize) {
    throw fail(`its data ends at byte ${end}, past the end of the file (${fileSize} bytes)`);
  }
  return {
    name,
    shape: ne.reverse(),
    numElements,
    ggmlType,
    typeName: ggmlTypeName(ggmlType),
    dtype,
    byteOffset,
    byteLength,
  };
}

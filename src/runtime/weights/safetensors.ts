// Reads and writes safetensors files (Hugging Face checkpoints), and reads the sharded form
// (model.safetensors.index.json naming a file per tensor).
//
// The format: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}, …, "__metadata__": {…}}
// then the data, offsets relative to its start, row-major, little-endian. The header is checked
// before anything is trusted: a bounded length, a JSON object, every entry well formed, every range
// inside the file, of the size its shape and dtype say, aligned to its element size and not
// overlapping another. Tensor data is read one tensor at a time with positional reads.
//
// Written here rather than taken from a library: the npm packages for safetensors either read the
// whole file into memory or only parse headers for remote files; the format is small.

import { open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { decodeTensor, encodeTensor, type StorageDType } from "../../compiler/target/storage.js";
import { WeightFileError } from "./errors.js";
import { openWeightFile } from "./file.js";

/** The reference implementation's limit on the header size. */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/** Element sizes of every safetensors dtype, so that ranges can be checked even for types llmc does not read. */
const ELEMENT_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

/** The safetensors dtypes llmc reads, and the weight dtype each is. */
const READABLE: Readonly<Record<string, StorageDType>> = { F32: "f32", F16: "f16", BF16: "bf16" };
const WRITABLE: Readonly<Partial<Record<StorageDType, string>>> = { f32: "F32", f16: "F16", bf16: "BF16" };

const CORRUPT_HINT = "The file is truncated or corrupt (an interrupted download?); download it again";

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly shape: readonly number[];
  /** The dtype as the file names it ("BF16", "I64"). */
  readonly fileDType: string;
  /** null when llmc cannot read the type. */
  readonly dtype: StorageDType | null;
  /** Absolute position of the data in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
  /** The file holding the data (a shard's path for a sharded checkpoint). */
  readonly file: string;
}

/** One safetensors file, or the shards of one checkpoint read as one. */
export interface SafetensorsReader {
  /** The path given: the .safetensors file or the index. */
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** The tensor's bytes as stored. WeightFileError for an unknown name, an unsupported dtype or a failed read. */
  readTensorBytes(name: string): Promise<Uint8Array>;
  /** The tensor's values as f32. */
  readTensorF32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export class SafetensorsFile implements SafetensorsReader {
  private closed = false;

  /** @internal Use openSafetensors. */
  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    /** Where the data starts: 8 + the header length. */
    readonly dataOffset: number,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {}

  tensor(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (info) return info;
    throw new WeightFileError(this.path, `no such tensor in the file (it has ${this.tensors.size})`, { tensor: name });
  }

  async readTensorBytes(name: string): Promise<Uint8Array> {
    const info = this.tensor(name);
    if (info.dtype === null) throw unsupportedDType(this.path, info);
    if (this.closed) throw new WeightFileError(this.path, "the file has been closed", { tensor: name, hint: "Read tensors before calling close()" });
    const into = new Uint8Array(info.byteLength);
    let done = 0;
    while (done < into.byteLength) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(into, done, Math.min(into.byteLength - done, 1 << 30), info.byteOffset + done));
      } catch (cause) {
        throw new WeightFileError(this.path, `reading the tensor data failed (${(cause as Error).message})`, { tensor: name, cause });
      }
      if (bytesRead === 0) {
        throw new WeightFileError(this.path, `the file ended at byte ${info.byteOffset + done} while reading the tensor data`, {
          tensor: name,
          hint: "The file was truncated after it was opened; open it again once it is complete",
        });
      }
      done += bytesRead;
    }
    return into;
  }

  async readTensorF32(name: string): Promise<Float32Array> {
    const info = this.tensor(name);
    return decodeTensor(info.dtype ?? "f32", await this.readTensorBytes(name));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

function unsupportedDType(path: string, info: SafetensorsTensorInfo): WeightFileError {
  return new WeightFileError(path, `its dtype ${info.fileDType} is not supported; llmc reads ${Object.keys(READABLE).join(", ")}`, {
    tensor: info.name,
    hint: "Convert the checkpoint's weights to F32, F16 or BF16",
  });
}

// ---------------------------------------------------------------------------------------------
// Opening one file

export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  return openWeightFile(path, readHeader);
}

async function readHeader(path: string, handle: FileHandle): Promise<SafetensorsFile> {
  const st = await handle.stat();
  if (!st.isFile()) throw new WeightFileError(path, "is not a regular file", { hint: "Give the path of a .safetensors file or of a model directory" });
  const fileSize = st.size;
  const fail = (problem: string, tensor?: string) =>
    new WeightFileError(path, problem, tensor === undefined ? { hint: CORRUPT_HINT } : { tensor, hint: CORRUPT_HINT });
  if (fileSize < 8) throw fail(`is not a safetensors file: it is only ${fileSize} bytes long`);
  const lengthBytes = new Uint8Array(8);
  await handle.read(lengthBytes, 0, 8, 0);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(SAFETENSORS_MAX_HEADER)) {
    throw fail(`is not a safetensors file: its header length ${headerLength} is over the limit of ${SAFETENSORS_MAX_HEADER} bytes`);
  }
  const n = Number(headerLength);
  if (8 + n > fileSize) throw fail(`the header is ${n} bytes long but the file has only ${fileSize - 8} bytes after the length`);
  if (n < 2) throw fail(`is not a safetensors file: a header of ${n} bytes cannot hold a JSON object`);
  const headerBytes = new Uint8Array(n);
  await handle.read(headerBytes, 0, n, 8);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw new WeightFileError(path, `is not a safetensors file: its header is not UTF-8 JSON (${(cause as Error).message})`, { hint: CORRUPT_HINT, cause });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw fail("is not a safetensors file: its header is not a JSON object");

  const dataOffset = 8 + n;
  const dataSize = fileSize - dataOffset;
  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  const ranges: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(path, entry);
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== "object" || e === null || Array.isArray(e)) throw fail("its header entry is not an object", name);
    const { dtype, shape, data_offsets: offsets } = e;
    if (typeof dtype !== "string") throw fail("its header entry has no dtype string", name);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail("its shape is not a list of non-negative integers", name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw fail("its data_offsets is not a pair of non-negative integers", name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw fail(`its data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataSize) {
      throw fail(`its data ends at byte ${dataOffset + end}, past the end of the file (${fileSize} bytes)`, name);
    }
    const elementBytes = ELEMENT_BYTES[dtype];
    const numElements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (elementBytes !== undefined) {
      if (numElements * elementBytes !== end - begin) {
        throw fail(`its shape [${shape.join(", ")}] of ${dtype} needs ${numElements * elementBytes} bytes, but its data_offsets [${begin}, ${end}] hold ${end - begin}`, name);
      }
      if (begin % elementBytes !== 0) throw fail(`its data starts at offset ${begin}, not aligned to its ${elementBytes}-byte elements`, name);
    }
    ranges.push({ name, begin, end });
    tensors.set(name, {
      name,
      shape: shape as number[],
      fileDType: dtype,
      dtype: READABLE[dtype] ?? null,
      byteOffset: dataOffset + begin,
      byteLength: end - begin,
      file: path,
    });
  }
  // Empty tensors take no bytes and overlap nothing.
  const filled = ranges.filter((r) => r.end > r.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < filled.length; i++) {
    const prev = filled[i - 1]!;
    const cur = filled[i]!;
    if (cur.begin < prev.end) {
      throw fail(`its data [${cur.begin}, ${cur.end}) overlaps that of "${prev.name}" [${prev.begin}, ${prev.end})`, cur.name);
    }
  }
  return new SafetensorsFile(path, handle, fileSize, dataOffset, metadata, tensors);
}

function checkMetadata(path: string, entry: unknown): Record<string, string> {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry) || !Object.values(entry).every((v) => typeof v === "string")) {
    throw new WeightFileError(path, "its __metadata__ is not a map of strings to strings", { key: "__metadata__", hint: CORRUPT_HINT });
  }
  return Object.fromEntries(Object.entries(entry as Record<string, string>));
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

export const SAFETENSORS_INDEX = "model.safetensors.index.json";

class ShardedSafetensors implements SafetensorsReader {
  constructor(
    readonly path: string,
    private readonly shards: ReadonlyMap<string, SafetensorsFile>,
    readonly metadata: Readonly<Record<string, string>>,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {}

  private shardOf(name: string): SafetensorsFile {
    const info = this.tensors.get(name);
    if (!info) throw new WeightFileError(this.path, `no such tensor in the index's weight_map (it lists ${this.tensors.size})`, { tensor: name });
    return this.shards.get(info.file)!;
  }

  async readTensorBytes(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readTensorBytes(name);
  }

  async readTensorF32(name: string): Promise<Float32Array> {
    return this.shardOf(name).readTensorF32(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }
}

/** Opens a sharded checkpoint from its model.safetensors.index.json; every shard it names is opened and checked. */
export async function openSafetensorsIndex(indexPath: string): Promise<SafetensorsReader> {
  let text: string;
  try {
    text = await readFile(indexPath, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new WeightFileError(indexPath, code === "ENOENT" ? "no such file" : `cannot read the file (${(cause as Error).message})`, { cause });
  }
  const bad = (problem: string, tensor?: string) =>
    new WeightFileError(indexPath, problem, { ...(tensor === undefined ? {} : { tensor }), hint: "The index is corrupt; download it again" });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new WeightFileError(indexPath, `is not a safetensors index: not JSON (${(cause as Error).message})`, { cause });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) throw bad("is not a safetensors index: it has no weight_map object");
  const dir = dirname(indexPath);
  const shardNames = new Map<string, string>(); // tensor → shard path
  for (const [tensor, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard === "" || shard !== basename(shard) || shard === "." || shard === "..") {
      throw bad(`its weight_map names the shard ${JSON.stringify(shard)}, which is not a file name in the index's directory`, tensor);
    }
    shardNames.set(tensor, join(dir, shard));
  }
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const path of new Set(shardNames.values())) shards.set(path, await openSafetensors(path));
  } catch (err) {
    await Promise.all([...shards.values()].map((s) => s.close()));
    throw err;
  }
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [tensor, path] of shardNames) {
    const info = shards.get(path)!.tensors.get(tensor);
    if (!info) {
      await Promise.all([...shards.values()].map((s) => s.close()));
      throw new WeightFileError(path, `no such tensor in this shard, though ${basename(indexPath)} says it is here`, { tensor, hint: "The checkpoint is incomplete or its index is wrong" });
    }
    tensors.set(tensor, info);
  }
  const rawMeta = (json as { metadata?: unknown }).metadata;
  const metadata: Record<string, string> = {};
  if (typeof rawMeta === "object" && rawMeta !== null) {
    for (const [k, v] of Object.entries(rawMeta)) metadata[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return new ShardedSafetensors(indexPath, shards, metadata, tensors);
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface SafetensorsTensorInput {
  name: string;
  shape: readonly number[];
  dtype: "f32" | "f16" | "bf16";
  /** Values (converted to dtype) or bytes already in dtype. */
  data: Float32Array | Uint8Array;
}

/**
 * Writes one safetensors file, tensors in the order given, each aligned to 8 bytes (the header is
 * padded with spaces to a multiple of 8, as the reference writer does). Written under a temporary
 * name and renamed, so a failed write leaves nothing.
 */
export async function writeSafetensors(path: string, tensors: readonly SafetensorsTensorInput[], metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header["__metadata__"] = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const fileDType = WRITABLE[t.dtype];
    if (!fileDType) throw new WeightFileError(path, `cannot write dtype ${String(t.dtype)} to safetensors; use f32, f16 or bf16`, { tensor: t.name });
    if (t.name in header) throw new WeightFileError(path, "two tensors have this name", { tensor: t.name });
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = t.data instanceof Float32Array ? encodeTensor(t.dtype, t.data) : t.data;
    if (bytes.byteLength !== n * ELEMENT_BYTES[fileDType]!) {
      throw new WeightFileError(path, `shape [${t.shape.join(", ")}] needs ${n * ELEMENT_BYTES[fileDType]!} bytes of ${fileDType}, the data has ${bytes.byteLength}`, { tensor: t.name });
    }
    const padded = Math.ceil(bytes.byteLength / 8) * 8;
    header[t.name] = { dtype: fileDType, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes, new Uint8Array(padded - bytes.byteLength));
    offset += padded;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).byteLength % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);

  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, "w");
    let position = 0;
    for (const chunk of [length, headerBytes, ...blobs]) {
      for (let done = 0; done < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done, position + done);
        done += bytesWritten;
      }
      position += chunk.byteLength;
    }
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw new WeightFileError(path, `writing the file failed (${(err as Error).message})`, { cause: err });
  }
}

/** Whether `path` is an existing directory (for telling a checkpoint directory from a file). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

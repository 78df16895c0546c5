// The one way the runtime gets a model's weights: `loadModelWeights(model, path)` reads every
// weight the resolved .llm model declares from a GGUF file, a Hugging Face checkpoint directory
// (model.safetensors or a sharded model.safetensors.index.json) or a .safetensors file, under the
// names the .llm gives it for that format, with that format's transforms applied, checked against
// the declared shape. The runtime then asks by IR name ("embed", "layers.3.wq").
//
// Every tensor is checked (present, supported type, right shape) before any data is read, then read
// one at a time with positional reads, so a bad file fails fast and a large one never passes through
// one giant buffer. Weights stay in the file's layout (quantized blocks stay quantized) until f32()
// asks for values.

import type { ResolvedModel, TensorTransform } from "../../compiler/check/model.js";
import { basename, join } from "../../compiler/base/files.js";
import { editDistance } from "../../compiler/check/suggest.js";
import { GENERAL_KEYS } from "../../compiler/import/gguf-keys.js";
import { decodeTensor, SUPPORTED_DTYPES, tensorByteSize, type StorageDType } from "../../compiler/target/storage.js";
import { WeightFileError } from "./errors.js";
import { directoryEntries, fileHead } from "./file.js";
import { GGUF_MAGIC, openGGUF, type GGUFFile, type GGUFValue } from "./gguf-reader.js";
import { fileTensorName, ggufArchitecture, modelTensors, tiedWeights, type ModelTensor, type NameScheme } from "./model-tensors.js";
import { isDirectory, openSafetensors, openSafetensorsIndex, SAFETENSORS_INDEX, type SafetensorsReader } from "./safetensors.js";
import { applyLoadTransforms, describeTransform, loadedShape, type RawTensor } from "./transforms.js";

export type WeightFileFormat = "gguf" | "safetensors";

export interface LoadProgress {
  /** Tensors read so far, of `total`. */
  done: number;
  total: number;
  /** The tensor just read (its name in the file). */
  tensor: string;
  /** Bytes read so far, of `bytesTotal`. */
  bytes: number;
  bytesTotal: number;
}

export interface LoadOptions {
  /** Called after each tensor is read. */
  onProgress?: (progress: LoadProgress) => void;
  /** The file's format; by default told from the path (a directory is a Hugging Face checkpoint) and the file's first bytes. */
  format?: WeightFileFormat;
}

export interface ModelWeights {
  /** The file or directory the weights came from. */
  readonly file: string;
  readonly format: WeightFileFormat;
  /** GGUF metadata (the vocabulary, for tokenizerFromGGUF), or a safetensors file's __metadata__. */
  readonly metadata: Readonly<Record<string, GGUFValue>>;
  /** IR names of every weight read (tied weights are not among them: the IR uses their target's name). */
  names(): string[];
  /** Shape and the dtype raw() gives: the file's storage type, or f32 where a transform needed values. */
  info(name: string): { shape: number[]; dtype: StorageDType };
  /** Values as f32: dequantized, transforms applied; computed once and cached. */
  f32(name: string): Float32Array;
  /**
   * The tensor in its storage layout (ggml blocks for quantized types) with transforms applied: row
   * permutations move quantized rows as they are; add(c) needs values and gives f32. For uploading
   * quantized weights to a device as they are.
   */
  raw(name: string): { dtype: StorageDType; shape: number[]; bytes: Uint8Array };
  /** Drops the weights; later calls fail. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Sources: a GGUF file or safetensors file(s), behind one small interface

interface SourceTensor {
  shape: readonly number[];
  dtype: StorageDType | null;
  /** The type as the file calls it, for messages. */
  typeName: string;
  byteLength: number;
  /** For reading in file order. */
  order: number;
}

interface Source {
  readonly format: WeightFileFormat;
  readonly scheme: NameScheme;
  /** The path named in messages about the file as a whole. */
  readonly path: string;
  readonly metadata: Record<string, GGUFValue>;
  names(): string[];
  get(name: string): SourceTensor | undefined;
  /** The file a tensor is in (a shard for sharded checkpoints). */
  fileOf(name: string): string;
  read(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

function ggufSource(f: GGUFFile): Source {
  return {
    format: "gguf",
    scheme: "gguf",
    path: f.path,
    metadata: { ...f.metadata },
    names: () => [...f.tensors.keys()],
    get: (name) => {
      const t = f.tensors.get(name);
      return t && { shape: t.shape, dtype: t.dtype, typeName: t.typeName, byteLength: t.byteLength ?? 0, order: t.byteOffset };
    },
    fileOf: () => f.path,
    read: (name) => f.readTensorBytes(name),
    close: () => f.close(),
  };
}

function safetensorsSource(r: SafetensorsReader): Source {
  const files = [...new Set([...r.tensors.values()].map((t) => t.file))].sort();
  return {
    format: "safetensors",
    scheme: "hf",
    path: r.path,
    metadata: { ...r.metadata },
    names: () => [...r.tensors.keys()],
    get: (name) => {
      const t = r.tensors.get(name);
      return t && { shape: t.shape, dtype: t.dtype, typeName: t.fileDType, byteLength: t.byteLength, order: files.indexOf(t.file) * 2 ** 40 + t.byteOffset };
    },
    fileOf: (name) => r.tensors.get(name)?.file ?? r.path,
    read: (name) => r.readTensorBytes(name),
    close: () => r.close(),
  };
}

async function openSource(path: string, format: WeightFileFormat | undefined): Promise<Source> {
  if (await isDirectory(path)) {
    if (format === "gguf") throw new WeightFileError(path, "is a directory, not a GGUF file", { hint: "Give the path of a .gguf file" });
    return safetensorsSource(await openCheckpointDirectory(path));
  }
  if (path.endsWith(".json")) return safetensorsSource(await openSafetensorsIndex(path));
  const kind = format ?? (await sniff(path));
  return kind === "gguf" ? ggufSource(await openGGUF(path)) : safetensorsSource(await openSafetensors(path));
}

async function openCheckpointDirectory(dir: string): Promise<SafetensorsReader> {
  const index = join(dir, SAFETENSORS_INDEX);
  const single = join(dir, "model.safetensors");
  if (await exists(index)) return openSafetensorsIndex(index);
  if (await exists(single)) return openSafetensors(single);
  const entries = await directoryEntries(dir);
  const hasBin = entries.some((e) => e.endsWith(".bin") || e.endsWith(".pt"));
  throw new WeightFileError(dir, `has neither model.safetensors nor ${SAFETENSORS_INDEX}${entries.length ? ` (it has ${listSome(entries, 8)})` : " (it is empty)"}`, {
    hint: hasBin ? "PyTorch .bin checkpoints are not read; convert them to safetensors" : "Give a Hugging Face model directory, a .safetensors file or a .gguf file",
  });
}

async function exists(path: string): Promise<boolean> {
  return fileHead(path, 0).then(
    () => true,
    () => false,
  );
}

/** GGUF by its magic, safetensors by a header length followed by "{". */
async function sniff(path: string): Promise<WeightFileFormat> {
  let head: Uint8Array;
  try {
    head = await fileHead(path, 9);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new WeightFileError(path, code === "ENOENT" ? "no such file" : `cannot open the file (${(cause as Error).message})`, {
      hint: "Check the path to the weight file",
      cause,
    });
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.byteLength >= 4 && view.getUint32(0, true) === GGUF_MAGIC) return "gguf";
  if (head.byteLength === 9 && head[8] === 0x7b /* { */) return "safetensors";
  const shown = [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new WeightFileError(path, `is neither a GGUF nor a safetensors file (it starts with ${shown || "nothing: it is empty"})`, {
    hint: "llmc reads weights from .gguf files, .safetensors files and Hugging Face model directories",
  });
}

/**
 * The shapes of a weight file's tensors (a GGUF file, a .safetensors file, an index or a Hugging
 * Face folder) from its header alone, no tensor data: what an import checks its config against
 * before the model is compiled. `file` names where they are, for messages.
 */
export async function readTensorShapes(path: string): Promise<{ file: string; shapes: Map<string, number[]> }> {
  const source = await openSource(path, undefined);
  try {
    return { file: source.path, shapes: new Map(source.names().map((n) => [n, [...source.get(n)!.shape]])) };
  } finally {
    await source.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

interface Planned {
  tensor: ModelTensor;
  fileName: string;
  transforms: readonly TensorTransform[];
  source: SourceTensor | null; // null: optional and absent
}

/** `file`: a path, or a GGUF file already open (a browser's download); it is closed once read. */
export async function loadModelWeights(model: ResolvedModel, file: string | GGUFFile, opts: LoadOptions = {}): Promise<ModelWeights> {
  const path = typeof file === "string" ? file : file.path;
  const source = typeof file === "string" ? await openSource(path, opts.format) : ggufSource(file);
  try {
    const plan = planTensors(model, source);
    const read = await readTensors(plan, source, opts.onProgress);
    // In the model's declaration order, whatever order the file had.
    const raws = new Map(plan.map((p) => [p.tensor.irName, read.get(p.tensor.irName)!]));
    return new LoadedWeights(path, source.format, source.metadata, raws, tiedWeights(model));
  } finally {
    await source.close();
  }
}

/** When a GGUF file says it is another architecture than the model's, that is the likely cause of a mismatch. */
function architectureHint(model: ResolvedModel, source: Source): string | null {
  const fileArch = source.metadata[GENERAL_KEYS.architecture];
  const arch = ggufArchitecture(model);
  if (source.format !== "gguf" || typeof fileArch !== "string" || !arch.known || fileArch === arch.name) return null;
  return `The file's general.architecture is "${fileArch}", but model '${model.name}' is a "${arch.name}" model`;
}

function planTensors(model: ResolvedModel, source: Source): Planned[] {
  const plan: Planned[] = [];
  const archHint = architectureHint(model, source);
  const missing: { t: ModelTensor; name: string }[] = [];
  for (const t of modelTensors(model)) {
    const fn = fileTensorName(t, source.scheme);
    if (!fn) {
      const other = source.scheme === "gguf" ? "hf" : "gguf";
      throw new WeightFileError(source.path, `model '${model.name}' gives weight '${t.irName}' no ${source.scheme} name, so it cannot be read from a ${source.format} file`, {
        tensor: t.irName,
        hint: `Add ${source.scheme} "…" to its declaration in ${basename(model.file)}${fileTensorName(t, other) ? `, or load a ${other === "gguf" ? "GGUF" : "Hugging Face"} file` : ""}`,
      });
    }
    const st = source.get(fn.name);
    if (!st) {
      if (t.field.optional) plan.push({ tensor: t, fileName: fn.name, transforms: fn.transforms, source: null });
      else missing.push({ t, name: fn.name });
      continue;
    }
    const file = source.fileOf(fn.name);
    if (st.dtype === null) {
      throw new WeightFileError(file, `its type ${st.typeName} is not supported; llmc reads ${SUPPORTED_DTYPES.join(", ")}`, {
        tensor: fn.name,
        hint: source.format === "gguf"
          ? "Convert the model to a supported type, e.g. with llama.cpp: llama-quantize --allow-requantize in.gguf out.gguf Q8_0"
          : "Convert the checkpoint's weights to F32, F16 or BF16",
      });
    }
    const hint = archHint ?? "Check that the .llm config (dims, heads, vocabulary size) matches the model in the file";
    const shape = loadedShape(st.shape, fn.transforms, (problem) => new WeightFileError(file, `${problem} (model weight '${t.irName}')`, { tensor: fn.name, hint }));
    if (!sameShape(shape, t.shape)) {
      const part = sameShape(shape, st.shape) ? "" : ` (its part ${describeTransform(fn.transforms[0]!)} is [${shape.join(", ")}])`;
      throw new WeightFileError(file, `its shape is [${st.shape.join(", ")}]${part}, but model '${model.name}' declares weight '${t.irName}' as [${t.shape.join(", ")}]`, {
        tensor: fn.name,
        hint,
      });
    }
    plan.push({ tensor: t, fileName: fn.name, transforms: fn.transforms, source: st });
  }
  if (missing.length > 0) throw missingError(model, source, missing, archHint);
  checkFusedRows(model, source, plan, archHint);
  return plan;
}

/**
 * The weights that read rows of one fused file tensor (`|> rows(start, count)`) must cover its rows
 * exactly once: a gap or an overlap means the .llm's split does not fit the file.
 */
function checkFusedRows(model: ResolvedModel, source: Source, plan: readonly Planned[], archHint: string | null): void {
  const parts = new Map<string, { irName: string; start: number; end: number }[]>();
  for (const p of plan) {
    const rows = p.transforms[0]?.name === "rows" ? p.transforms[0] : null;
    if (!rows || !p.source) continue;
    const [start, count] = rows.args.map((a) => a.value as number) as [number, number];
    const list = parts.get(p.fileName) ?? [];
    list.push({ irName: p.tensor.irName, start, end: start + count });
    parts.set(p.fileName, list);
  }
  for (const [name, list] of parts) {
    const rows = source.get(name)!.shape[0]!;
    list.sort((a, b) => a.start - b.start);
    let at = 0;
    for (const part of [...list, { irName: "", start: rows, end: rows }]) {
      if (part.start === at) {
        at = part.end;
        continue;
      }
      const covered = list.map((q) => `'${q.irName}' rows ${q.start}..${q.end}`).join(", ");
      throw new WeightFileError(source.fileOf(name), `its ${rows} rows are not split exactly by the weights of model '${model.name}' that read them (${covered}): rows ${Math.min(at, part.start)}..${Math.max(at, part.start)} are ${part.start > at ? "read by none" : "read twice"}`, {
        tensor: name,
        hint: archHint ?? "Check the rows(start, count) of these weights against the config (heads, head_dim, ffn_dim)",
      });
    }
  }
}

function missingError(model: ResolvedModel, source: Source, missing: { t: ModelTensor; name: string }[], archHint: string | null): WeightFileError {
  const first = missing[0]!;
  const present = source.names();
  const similar = closest(first.name, present, 3);
  const others = missing.length > 1 ? ` (and ${missing.length - 1} more of the model's tensors are missing too)` : "";
  const listing = present.length === 0 ? "the file has no tensors" : similar.length ? `similar names in the file: ${similar.map((n) => `"${n}"`).join(", ")}` : `the file has ${present.length} tensors, e.g. ${listSome(present, 3)}`;
  // A tie whose condition is false for this config: the file may share the tensor, as llama.cpp allows.
  const tie = first.t.field.decl.tie;
  const tieHint = tie?.cond?.kind === "Name"
    ? `If the file shares it with '${tie.target.name}', set ${tie.cond.name} = true (e.g. --set ${tie.cond.name}=true)`
    : null;
  return new WeightFileError(source.path, `no such tensor, which model '${model.name}' needs for weight '${first.t.irName}'${others}; ${listing}`, {
    tensor: first.name,
    hint: tieHint ?? archHint ?? (missing.length === modelTensors(model).length
      ? `None of the model's tensors are in the file: is it a ${model.chain[0]?.name.name ?? model.name} model?`
      : "Check that the file holds the model the architecture expects (and the config that decides which tensors exist)"),
  });
}

async function readTensors(plan: Planned[], source: Source, onProgress: LoadOptions["onProgress"]): Promise<Map<string, RawTensor>> {
  const raws = new Map<string, RawTensor>();
  // File tensors in file order, each read once for all the weights that take rows of it.
  const reading = new Map<string, Planned[]>();
  for (const p of plan.filter((p) => p.source !== null).sort((a, b) => a.source!.order - b.source!.order)) {
    reading.set(p.fileName, [...(reading.get(p.fileName) ?? []), p]);
  }
  const bytesTotal = [...reading.values()].reduce((s, ps) => s + ps[0]!.source!.byteLength, 0);
  let bytes = 0;
  let done = 0;
  for (const p of plan) {
    if (p.source !== null) continue;
    const n = p.tensor.shape.reduce((a, b) => a * b, 1);
    raws.set(p.tensor.irName, { dtype: "f32", shape: [...p.tensor.shape], bytes: new Uint8Array(tensorByteSize("f32", n)) });
  }
  for (const [fileName, parts] of reading) {
    const file = source.fileOf(fileName);
    const data = await source.read(fileName);
    for (const p of parts) {
      const raw: RawTensor = { dtype: p.source!.dtype!, shape: [...p.source!.shape], bytes: data };
      const fail = (problem: string) =>
        new WeightFileError(file, `${problem} (model weight '${p.tensor.irName}')`, { tensor: fileName, hint: "The .llm's transform does not fit this tensor; check its declaration" });
      raws.set(p.tensor.irName, applyLoadTransforms(raw, p.transforms, fail));
    }
    bytes += data.byteLength;
    done++;
    onProgress?.({ done, total: reading.size, tensor: fileName, bytes, bytesTotal });
  }
  return raws;
}

class LoadedWeights implements ModelWeights {
  private readonly values = new Map<string, Float32Array>();
  private closed = false;

  constructor(
    readonly file: string,
    readonly format: WeightFileFormat,
    readonly metadata: Readonly<Record<string, GGUFValue>>,
    private readonly raws: Map<string, RawTensor>,
    private readonly ties: ReadonlyMap<string, string>,
  ) {}

  names(): string[] {
    return [...this.raws.keys()];
  }

  private get(name: string): RawTensor {
    if (this.closed) throw new WeightFileError(this.file, "the weights have been closed", { tensor: name });
    const raw = this.raws.get(this.ties.get(name) ?? name);
    if (raw) return raw;
    const hint = closest(name, this.raws.keys(), 1);
    throw new WeightFileError(this.file, `the model has no weight of this name${hint.length ? `; did you mean "${hint[0]}"?` : ""}`, { tensor: name });
  }

  info(name: string): { shape: number[]; dtype: StorageDType } {
    const raw = this.get(name);
    return { shape: [...raw.shape], dtype: raw.dtype };
  }

  f32(name: string): Float32Array {
    const raw = this.get(name);
    const key = this.ties.get(name) ?? name;
    let v = this.values.get(key);
    if (!v) {
      v = decodeTensor(raw.dtype, raw.bytes);
      this.values.set(key, v);
    }
    return v;
  }

  raw(name: string): { dtype: StorageDType; shape: number[]; bytes: Uint8Array } {
    const raw = this.get(name);
    return { dtype: raw.dtype, shape: [...raw.shape], bytes: raw.bytes };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.raws.clear();
    this.values.clear();
  }
}

/** The CPU interpreter's weight source over loaded weights, checking each shape the graph asks for. */
export function weightSource(weights: ModelWeights): ((name: string, shape: readonly number[]) => Float32Array) & { raw: ModelWeights["raw"] } {
  const f32 = (name: string, shape: readonly number[]) => {
    const info = weights.info(name);
    if (!sameShape(info.shape, shape)) {
      throw new WeightFileError(weights.file, `the graph wants shape [${shape.join(", ")}] but the weight is [${info.shape.join(", ")}]`, { tensor: name });
    }
    return weights.f32(name);
  };
  // The storage form too, for backends that keep weights quantized on the device (WebGPU).
  return Object.assign(f32, { raw: (name: string) => weights.raw(name) });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Up to `n` names closest to `name` by edit distance (ties in name order). */
function closest(name: string, candidates: Iterable<string>, n: number): string[] {
  const scored = [...candidates].map((c) => ({ c, d: editDistance(name, c) }));
  const limit = Math.max(2, Math.floor(name.length / 2));
  return scored
    .filter((s) => s.d <= limit)
    .sort((a, b) => a.d - b.d || (a.c < b.c ? -1 : 1))
    .slice(0, n)
    .map((s) => s.c);
}

function listSome(names: string[], n: number): string {
  const shown = names.slice(0, n).map((x) => `"${x}"`).join(", ");
  return names.length > n ? `${shown}, …` : shown;
}

// Training data: text files, folders of them, or JSON Lines with a text field → the model's
// tokenizer → one token stream (each document BOS … EOS) → a held-out validation split from the end
// of the stream → windows of context + 1 tokens (inputs and the targets one position later), drawn
// in a shuffled order that a seed and the epoch decide, so the order can be saved and resumed.

import type { DropoutKey } from "../compiler/autodiff/index.js";
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { rng } from "../runtime/weights/random.js";
import type { Tokenizer } from "../runtime/tokenizer/index.js";

/** Bad training data: the message names the file (and line), and what to do. */
export class DataError extends Error {}

export interface Document {
  /** Where it came from: "notes.txt", "data.jsonl:12". */
  source: string;
  text: string;
}

export interface DataOptions {
  /** JSON Lines: the field that holds the text (default "text"). */
  textField?: string;
}

const JSONL = new Set([".jsonl", ".ndjson"]);

/** The files of the inputs: files as given, folders walked in name order (hidden files left out). */
export async function dataFiles(paths: readonly string[]): Promise<{ path: string; bytes: number }[]> {
  const out: { path: string; bytes: number }[] = [];
  const visit = async (path: string, given: boolean): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch (e) {
      throw new DataError(`${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (e as Error).message} (check --data)`);
    }
    if (info.isDirectory()) {
      const entries = (await readdir(path)).filter((e) => !e.startsWith(".")).sort();
      for (const e of entries) await visit(join(path, e), false);
    } else if (info.isFile()) {
      out.push({ path, bytes: info.size });
    } else if (given) {
      throw new DataError(`${path}: not a file or folder (check --data)`);
    }
  };
  for (const p of paths) await visit(p, true);
  if (out.length === 0) throw new DataError(`--data ${paths.join(" ")}: no files to read`);
  return out;
}

/** The documents of one file: a text file is one document, a JSON Lines file one per line. */
export async function readDocuments(path: string, opts: DataOptions = {}): Promise<Document[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new DataError(`${path}: cannot read it (${(e as Error).message})`);
  }
  if (!JSONL.has(extname(path).toLowerCase())) return text.length > 0 ? [{ source: path, text }] : [];
  const field = opts.textField ?? "text";
  const docs: Document[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const where = `${path}:${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${where}: not valid JSON (${(e as Error).message}); a .jsonl file holds one JSON object per line`);
    }
    const value = typeof record === "object" && record !== null ? (record as Record<string, unknown>)[field] : undefined;
    if (typeof value !== "string") {
      const keys = typeof record === "object" && record !== null ? Object.keys(record).slice(0, 5) : [];
      throw new DataError(
        `${where}: no string field "${field}"${keys.length ? ` (it has ${keys.map((k) => `"${k}"`).join(", ")})` : ""}; name the text field with --text-field`,
      );
    }
    if (value.length > 0) docs.push({ source: where, text: value });
  }
  return docs;
}

/** Pieces of at most about `size` characters that end at paragraph breaks where they can; joined they are the text. */
export function paragraphChunks(text: string, size = 1 << 16): string[] {
  const out: string[] = [];
  let start = 0;
  while (text.length - start > size) {
    const brk = text.lastIndexOf("\n\n", start + size);
    const end = brk > start ? brk + 2 : start + size;
    out.push(text.slice(start, end));
    start = end;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

export interface TokenizeProgress {
  bytesDone: number;
  bytesTotal: number;
  tokens: number;
}

/**
 * One token stream of every document, each as BOS text EOS (the marks the tokenizer has). Long
 * documents are encoded a paragraph chunk at a time, so progress moves and memory stays small.
 */
export async function tokenizeData(
  paths: readonly string[],
  tokenizer: Tokenizer,
  opts: DataOptions & { onProgress?: (p: TokenizeProgress) => void; signal?: AbortSignal } = {},
): Promise<{ tokens: Int32Array; documents: number }> {
  const files = await dataFiles(paths);
  const bytesTotal = files.reduce((s, f) => s + f.bytes, 0);
  const stream = new TokenStream();
  let bytesDone = 0;
  let documents = 0;
  for (const file of files) {
    const docs = await readDocuments(file.path, opts);
    const docBytes = docs.reduce((s, d) => s + Buffer.byteLength(d.text), 0);
    let fileDone = 0;
    for (const doc of docs) {
      if (tokenizer.bosId !== undefined) stream.push(tokenizer.bosId);
      for (const chunk of paragraphChunks(doc.text)) {
        opts.signal?.throwIfAborted();
        for (const id of tokenizer.encode(chunk, { addBos: false, addEos: false })) stream.push(id);
        fileDone += Buffer.byteLength(chunk);
        opts.onProgress?.({ bytesDone: bytesDone + Math.round((fileDone / Math.max(1, docBytes)) * file.bytes), bytesTotal, tokens: stream.length });
        await new Promise((r) => setImmediate(r)); // lets a progress bar draw and SIGINT arrive
      }
      if (tokenizer.eosId !== undefined) stream.push(tokenizer.eosId);
      documents++;
    }
    bytesDone += file.bytes;
    opts.onProgress?.({ bytesDone, bytesTotal, tokens: stream.length });
  }
  return { tokens: stream.toArray(), documents };
}

class TokenStream {
  private data = new Int32Array(1 << 16);
  length = 0;
  push(id: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = id;
  }
  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/**
 * The stream split into training and validation tokens: the last `valFraction` of the tokens
 * (rounded down) are held out. The same stream always splits the same way.
 */
export function splitValidation(tokens: Int32Array, valFraction: number): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`the validation fraction must lie in [0, 1), got ${valFraction}`);
  const nVal = Math.floor(tokens.length * valFraction);
  return { train: tokens.subarray(0, tokens.length - nVal), val: tokens.subarray(tokens.length - nVal) };
}

/** B sequences of `context` tokens each, row-major, and the token after each position. */
export interface Batch {
  batch: number;
  context: number;
  tokens: Int32Array;
  targets: Int32Array;
  /** Training batches: the dropout draw of the first sequence (sequence s has serial + s);
   *  validation batches have none, so no dropout. */
  dropout?: DropoutKey;
}

/** How many windows of context + 1 tokens (neighbours share one token) a stream holds. */
export function windowCount(tokens: number, context: number): number {
  return Math.max(0, Math.floor((tokens - 1) / context));
}

function batchOf(stream: Int32Array, starts: readonly number[], context: number): Batch {
  const tokens = new Int32Array(starts.length * context);
  const targets = new Int32Array(starts.length * context);
  starts.forEach((s, b) => {
    tokens.set(stream.subarray(s, s + context), b * context);
    targets.set(stream.subarray(s + 1, s + context + 1), b * context);
  });
  return { batch: starts.length, context, tokens, targets };
}

/** Where a sampler is in its data: saved with a checkpoint. */
export interface DataOrderState {
  seed: number;
  epoch: number;
  /** The next window of the epoch's order. */
  cursor: number;
}

/**
 * Training windows in a shuffled order: epoch e visits every window once, in the order a Fisher–Yates
 * shuffle seeded by (seed, e) gives; a batch that runs past the end continues in the next epoch.
 */
export class WindowSampler {
  private readonly windows: number;
  private order: Uint32Array;
  private epochValue: number;
  private cursor: number;

  constructor(
    private readonly stream: Int32Array,
    private readonly context: number,
    private readonly seed: number,
    start: { epoch: number; cursor: number } = { epoch: 0, cursor: 0 },
  ) {
    this.windows = windowCount(stream.length, context);
    if (this.windows === 0) {
      throw new DataError(`the training data has ${stream.length} tokens, fewer than context + 1 = ${context + 1}; give more text or a smaller --context`);
    }
    if (!(start.cursor >= 0 && start.cursor <= this.windows)) throw new DataError(`the saved data position ${start.cursor} is past the ${this.windows} windows of this data; resume with the same --data and --context`);
    this.epochValue = start.epoch;
    this.cursor = start.cursor;
    this.order = epochOrder(this.windows, seed, start.epoch);
  }

  get windowsPerEpoch(): number {
    return this.windows;
  }

  /** Fractional epochs done. */
  get epochs(): number {
    return this.epochValue + this.cursor / this.windows;
  }

  state(): DataOrderState {
    return { seed: this.seed, epoch: this.epochValue, cursor: this.cursor };
  }

  next(batch: number): Batch {
    const starts: number[] = [];
    // The draw number of the batch's first window: the same for a resumed run (epoch and cursor are saved).
    const serial = this.epochValue * this.windows + this.cursor;
    while (starts.length < batch) {
      if (this.cursor === this.windows) {
        this.epochValue++;
        this.cursor = 0;
        this.order = epochOrder(this.windows, this.seed, this.epochValue);
      }
      starts.push(this.order[this.cursor++]! * this.context);
    }
    return { ...batchOf(this.stream, starts, this.context), dropout: { seed: this.seed, serial } };
  }
}

/** A permutation of 0…n−1 for the epoch. */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rand = rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** The validation windows in stream order, in batches of at most `batch`, at most `maxBatches` of them. */
export function validationBatches(val: Int32Array, context: number, batch: number, maxBatches = Infinity): Batch[] {
  const n = Math.min(windowCount(val.length, context), maxBatches * batch);
  const out: Batch[] = [];
  for (let first = 0; first < n; first += batch) {
    const starts: number[] = [];
    for (let w = first; w < Math.min(n, first + batch); w++) starts.push(w * context);
    out.push(batchOf(val, starts, context));
  }
  return out;
}

// `llmc tokenizer train --kind sentencepiece|byte-level --vocab-size N FILES|FOLDERS… -o tokenizer.json`:
// trains a BPE tokenizer on text and writes it as Hugging Face files (tokenizer.json and, beside it,
// tokenizer_config.json) that llmc, @huggingface/tokenizers and `llmc init-weights --tokenizer` load.

import { createReadStream } from "node:fs";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { tokenizerFromJSON } from "../../runtime/tokenizer/json.js";
import {
  minimumVocabSize,
  tokenizerConfigJSON,
  tokenizerJSON,
  trainTokenizer,
  WordCounter,
  type TrainedTokenizer,
} from "../../runtime/tokenizer/train/index.js";
import type { TokenizerKind } from "../../runtime/tokenizer/types.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";

export const tokenizerUsage = `usage: llmc tokenizer train --kind sentencepiece|byte-level --vocab-size N [--min-frequency K]
                           [--character-coverage F] [--jsonl [--text-field NAME]] FILE|FOLDER… -o tokenizer.json

Trains a BPE tokenizer on text files (every file under a FOLDER, in name order) and writes it as
tokenizer.json, with tokenizer_config.json in the same folder.

  --kind sentencepiece   LLaMA 1/2 style: "▁" marks spaces, <unk> <s> </s>, 256 byte-fallback tokens <0xNN>
  --kind byte-level      GPT-2 / LLaMA 3 style: bytes as characters, LLaMA 3's pre-tokenizer regex,
                         <|begin_of_text|> and <|end_of_text|> at the end of the vocabulary

options:
  -o, --output FILE          the tokenizer.json to write (required)
  --vocab-size N             tokens in the vocabulary, special and byte tokens included (required)
  --min-frequency K          never merge a pair seen fewer than K times (default 2)
  --character-coverage F     sentencepiece: share of the text's characters that get a token of their
                             own, the rest go through byte fallback (default 0.9995)
  --jsonl                    inputs hold one JSON object per line; the text is its --text-field
  --text-field NAME          the field holding the text (default "text")`;

const KINDS: readonly TokenizerKind[] = ["sentencepiece", "byte-level"];
/** Plain text is read in pieces of about this size, cut at line ends, so large files need no more memory than this. */
const CHUNK_CHARS = 1 << 20;
/** The compression summary encodes about this much of the training text (a few seconds). */
const MEASURED_CHARS = 1 << 20;
/** Inputs from this size on show a progress line (on a terminal). */
const WORTH_A_PROGRESS_LINE = 16 << 20;

/** Bad input (an unreadable file, a malformed JSON line): exit code 1. */
class InputError extends Error {}

export async function runTokenizer(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "train") {
    throw new UsageError(sub === undefined ? "missing subcommand: llmc tokenizer train …" : `unknown subcommand '${sub}' (expected 'train')`, tokenizerUsage);
  }
  try {
    return await train(rest, io);
  } catch (err) {
    if (err instanceof InputError) {
      io.err(`llmc tokenizer: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function train(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kind: { type: "string" },
      "vocab-size": { type: "string" },
      "min-frequency": { type: "string", default: "2" },
      "character-coverage": { type: "string" },
      jsonl: { type: "boolean", default: false },
      "text-field": { type: "string" },
      output: { type: "string", short: "o" },
    },
  });
  const kind = values.kind as TokenizerKind | undefined;
  if (kind === undefined) throw new UsageError(`missing --kind (${KINDS.join(" or ")})`, tokenizerUsage);
  if (!KINDS.includes(kind)) throw new UsageError(`--kind must be ${KINDS.join(" or ")}, got '${kind}'`, tokenizerUsage);
  if (values["vocab-size"] === undefined) throw new UsageError("missing --vocab-size N", tokenizerUsage);
  const vocabSize = positiveInteger("--vocab-size", values["vocab-size"]);
  const minimum = minimumVocabSize({ kind });
  if (vocabSize < minimum) {
    const held = kind === "sentencepiece" ? "3 special tokens (<unk>, <s>, </s>) and 256 byte tokens" : "256 byte tokens and 2 special tokens";
    throw new UsageError(`--vocab-size ${vocabSize} is too small: a ${kind} vocabulary holds ${held}, so it needs at least ${minimum} (a few thousand is typical)`);
  }
  const minFrequency = positiveInteger("--min-frequency", values["min-frequency"]!);
  let coverage: number | undefined;
  if (values["character-coverage"] !== undefined) {
    if (kind !== "sentencepiece") throw new UsageError("--character-coverage applies to --kind sentencepiece only");
    coverage = Number(values["character-coverage"]);
    if (!(coverage > 0 && coverage <= 1)) throw new UsageError(`--character-coverage takes a number in (0, 1], got '${values["character-coverage"]}'`);
  }
  if (values["text-field"] !== undefined && !values.jsonl) throw new UsageError("--text-field needs --jsonl");
  if (positionals.length === 0) throw new UsageError("no input: give text files or folders to train on", tokenizerUsage);
  if (values.output === undefined) throw new UsageError("missing -o tokenizer.json", tokenizerUsage);
  const output = values.output;

  const files = await inputFiles(positionals);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const progress = progressLine(io, totalBytes >= WORTH_A_PROGRESS_LINE);

  const started = performance.now();
  const counter = new WordCounter(kind);
  const sample: string[] = [];
  let sampled = 0;
  let wholeTextSampled = true;
  let bytesDone = 0;
  for (const file of files) {
    const texts = values.jsonl ? jsonlTexts(file.path, values["text-field"] ?? "text") : plainTexts(file.path);
    for await (const { text, bytes } of texts) {
      counter.add(text);
      if (wholeTextSampled && (sampled === 0 || sampled + text.length <= MEASURED_CHARS)) {
        sample.push(text);
        sampled += text.length;
      } else wholeTextSampled = false;
      bytesDone += bytes;
      progress.show(`reading ${percent(bytesDone, totalBytes)} (${mib(bytesDone)}/${mib(totalBytes)} MiB), ${counter.words.toLocaleString("en-US")} words`);
    }
  }
  if (counter.words === 0) throw new InputError(`${positionals.join(", ")}: no text to train on`);
  const counted = performance.now();

  let trained: TrainedTokenizer;
  try {
    trained = trainTokenizer(counter.counts, {
      kind,
      vocabSize,
      minFrequency,
      ...(coverage !== undefined ? { characterCoverage: coverage } : {}),
      onProgress: (done, wanted) => progress.show(`merging ${done.toLocaleString("en-US")}/${wanted.toLocaleString("en-US")}`),
    });
  } finally {
    progress.done();
  }
  const merged = performance.now();

  const json = tokenizerJSON(trained);
  const config = tokenizerConfigJSON(trained);
  const configPath = join(dirname(output), "tokenizer_config.json");
  try {
    await mkdir(dirname(output), { recursive: true });
    await writeFile(output, JSON.stringify(json, null, 2) + "\n");
    await writeFile(configPath, JSON.stringify(config, null, 2) + "\n");
  } catch (e) {
    throw new InputError(`cannot write ${output}: ${(e as Error).message}`);
  }

  // Measured with the tokenizer as llmc loads the file, one line at a time.
  const tokenizer = tokenizerFromJSON(json, config);
  let chars = 0;
  let tokens = 0;
  for (const text of sample) {
    for (const line of text.split(/(?<=\n)/)) {
      chars += [...line].length;
      tokens += tokenizer.encode(line, { addBos: false, addEos: false }).length;
    }
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const c = trained.counts;
  const parts = [`${c.specials} special`, `${c.bytes} byte`, ...(c.characters > 0 ? [`${c.characters} characters`] : []), `${c.pieces.toLocaleString("en-US")} pieces`];
  io.out(
    [
      `wrote ${output} and ${configPath}: ${kind} BPE`,
      `  text          ${totalBytes.toLocaleString("en-US")} bytes in ${files.length} file${files.length === 1 ? "" : "s"}, ${counter.words.toLocaleString("en-US")} words (${counter.distinct.toLocaleString("en-US")} distinct)`,
      `  vocabulary    ${trained.tokens.length.toLocaleString("en-US")} tokens (${parts.join(", ")})`,
      `  merges        ${mergeSummary(trained, (json.model as { merges: unknown[] }).merges.length)}`,
      `  compression   ${(chars / tokens).toFixed(2)} characters per token on the training text${wholeTextSampled ? "" : ` (its first ${chars.toLocaleString("en-US")} characters)`}`,
      `  time          ${seconds(counted - started)} reading, ${seconds(merged - counted)} merging`,
      "",
    ].join("\n"),
  );
  if (trained.tokens.length < vocabSize) {
    io.err(
      `llmc tokenizer: note: the text has too few pairs seen at least ${minFrequency} times to fill ${vocabSize.toLocaleString("en-US")} tokens; ` +
        `the vocabulary has ${trained.tokens.length.toLocaleString("en-US")}. Give more text or a lower --min-frequency.\n`,
    );
  }
  return 0;
}

/** SentencePiece files list every split of a piece into two tokens, more than were learned. */
function mergeSummary(t: TrainedTokenizer, written: number): string {
  const n = (x: number) => x.toLocaleString("en-US");
  if (written === t.merges.length) return n(written);
  return `${n(written)} (${n(t.merges.length)} learned, the rest other splits of the same pieces)`;
}

function positiveInteger(flag: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < 1) throw new UsageError(`${flag} takes a positive integer, got '${text}'`);
  return Number(text);
}

interface InputFile {
  readonly path: string;
  readonly size: number;
}

/** The files named, and every file under the folders named (in name order, hidden ones skipped). */
async function inputFiles(paths: readonly string[]): Promise<InputFile[]> {
  const out: InputFile[] = [];
  const visit = async (path: string, named: boolean): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch (e) {
      throw new InputError(`cannot read ${path}: ${reason(e)}`);
    }
    if (info.isFile()) {
      out.push({ path, size: info.size });
      return;
    }
    if (!info.isDirectory()) {
      if (named) throw new InputError(`${path} is neither a file nor a folder`);
      return;
    }
    const entries = (await readdir(path)).filter((name) => !name.startsWith(".")).sort();
    const before = out.length;
    for (const name of entries) await visit(join(path, name), false);
    if (named && out.length === before) throw new InputError(`${path} is a folder with no files in it`);
  };
  for (const p of paths) await visit(p, true);
  return out;
}

interface Text {
  readonly text: string;
  /** The bytes of the file it covers, for progress. */
  readonly bytes: number;
}

/** A text file in pieces of about CHUNK_CHARS, each ending at a line end, so a piece is whole lines. */
async function* plainTexts(path: string): AsyncGenerator<Text> {
  let pending = "";
  try {
    for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: CHUNK_CHARS })) {
      pending += chunk as string;
      const end = pending.lastIndexOf("\n") + 1;
      if (end === 0) continue;
      const text = pending.slice(0, end);
      pending = pending.slice(end);
      yield { text, bytes: Buffer.byteLength(text) };
    }
  } catch (e) {
    throw new InputError(`cannot read ${path}: ${reason(e)}`);
  }
  if (pending !== "") yield { text: pending, bytes: Buffer.byteLength(pending) };
}

/** The `field` of every JSON object line of a file (blank lines skipped). */
async function* jsonlTexts(path: string, field: string): AsyncGenerator<Text> {
  let lineNo = 0;
  let lines;
  try {
    lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
    for await (const line of lines) {
      lineNo++;
      const bytes = Buffer.byteLength(line) + 1;
      if (line.trim() === "") continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        throw new InputError(`${path}:${lineNo}: not valid JSON (with --jsonl, every line is one JSON object)`);
      }
      const text = typeof record === "object" && record !== null ? (record as Record<string, unknown>)[field] : undefined;
      if (typeof text !== "string") {
        throw new InputError(`${path}:${lineNo}: no string field "${field}" (choose the field with --text-field)`);
      }
      yield { text, bytes };
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot read ${path}: ${reason(e)}`);
  }
}

/** One line on stderr, rewritten in place; only on a terminal and for inputs large enough to wait for. */
function progressLine(io: CliIO, worthIt: boolean): { show: (text: string) => void; done: () => void } {
  if (!io.progress || !worthIt) return { show: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  return {
    show: (text) => {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      io.err(`\r\x1b[Kllmc tokenizer: ${text}`);
    },
    done: () => {
      if (shown) io.err("\r\x1b[K");
    },
  };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const percent = (done: number, total: number) => `${total === 0 ? 100 : Math.floor((100 * done) / total)}%`;

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return "no such file or folder";
  if (err.code === "EACCES") return "permission denied";
  if (err.code === "EISDIR") return "it is a folder";
  return err.message;
}

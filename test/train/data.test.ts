// Training data: reading text, folders and JSON Lines; the token stream with document marks; the
// validation split; shuffled windows whose order a seed and the epoch decide.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  dataFiles,
  DataError,
  epochOrder,
  paragraphChunks,
  readDocuments,
  splitValidation,
  tokenizeData,
  validationBatches,
  windowCount,
  WindowSampler,
} from "../../src/train/data.js";
import type { Tokenizer } from "../../src/runtime/tokenizer/index.js";

/** One token per character (its code point), BOS 1, EOS 2. */
const charTokenizer = { bosId: 1, eosId: 2, encode: (text: string) => [...text].map((c) => c.codePointAt(0)!) } as unknown as Tokenizer;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-train-data-"));
  await mkdir(join(dir, "corpus", "sub"), { recursive: true });
  await writeFile(join(dir, "corpus", "b.txt"), "bb");
  await writeFile(join(dir, "corpus", "a.txt"), "a");
  await writeFile(join(dir, "corpus", ".hidden"), "nope");
  await writeFile(join(dir, "corpus", "sub", "c.jsonl"), '{"text": "c1"}\n\n{"text": "c2", "id": 3}\n');
  await writeFile(join(dir, "other.jsonl"), '{"body": "x"}\n{"body": "yz"}\n');
  await writeFile(join(dir, "bad.jsonl"), '{"text": "ok"}\n{"text": 5, "id": 1}\n');
  await writeFile(join(dir, "broken.jsonl"), '{"text": "ok"\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("reading data", () => {
  it("walks folders in name order, leaving out hidden files", async () => {
    const files = await dataFiles([join(dir, "corpus")]);
    expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual(["corpus/a.txt", "corpus/b.txt", "corpus/sub/c.jsonl"]);
    expect(files.map((f) => f.bytes)).toEqual([1, 2, 40]);
  });

  it("names the missing path and the flag", async () => {
    await expect(dataFiles([join(dir, "nope.txt")])).rejects.toThrow(/nope\.txt: no such file or directory \(check --data\)/);
  });

  it("reads a JSON Lines field, and names the line and --text-field when a record lacks it", async () => {
    expect(await readDocuments(join(dir, "other.jsonl"), { textField: "body" })).toEqual([
      { source: `${join(dir, "other.jsonl")}:1`, text: "x" },
      { source: `${join(dir, "other.jsonl")}:2`, text: "yz" },
    ]);
    await expect(readDocuments(join(dir, "other.jsonl"))).rejects.toThrow(/other\.jsonl:1: no string field "text" \(it has "body"\); name the text field with --text-field/);
    await expect(readDocuments(join(dir, "bad.jsonl"))).rejects.toThrow(/bad\.jsonl:2: no string field "text"/);
    await expect(readDocuments(join(dir, "broken.jsonl"))).rejects.toBeInstanceOf(DataError);
    await expect(readDocuments(join(dir, "broken.jsonl"))).rejects.toThrow(/broken\.jsonl:1: not valid JSON/);
  });

  it("splits long text at paragraph breaks into pieces that join to the text", () => {
    const text = "one two.\n\nthree four five.\n\nsix.\n\nseven eight nine ten eleven";
    const chunks = paragraphChunks(text, 12);
    expect(chunks.join("")).toBe(text);
    expect(chunks[0]).toBe("one two.\n\n");
    expect(chunks.every((c, i) => i === chunks.length - 1 || c.endsWith("\n\n") || c.length === 12)).toBe(true);
    expect(paragraphChunks("short")).toEqual(["short"]);
  });
});

describe("the token stream", () => {
  it("is each document as BOS text EOS, files in order, with progress to the last byte", async () => {
    const progress: number[] = [];
    const { tokens, documents } = await tokenizeData([join(dir, "corpus")], charTokenizer, { onProgress: (p) => progress.push(p.bytesDone) });
    const c = (s: string) => [...s].map((ch) => ch.codePointAt(0)!);
    expect([...tokens]).toEqual([1, ...c("a"), 2, 1, ...c("bb"), 2, 1, ...c("c1"), 2, 1, ...c("c2"), 2]);
    expect(documents).toBe(4);
    expect(progress.at(-1)).toBe(43);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
  });

  it("holds out the last fraction for validation, the same way every time", () => {
    const t = Int32Array.from({ length: 100 }, (_, i) => i);
    const { train, val } = splitValidation(t, 0.05);
    expect([...val]).toEqual([95, 96, 97, 98, 99]);
    expect(train.length).toBe(95);
    expect(splitValidation(t, 0.019).val.length).toBe(1);
    expect(splitValidation(t, 0).val.length).toBe(0);
    expect(() => splitValidation(t, 1)).toThrow(/\[0, 1\)/);
  });
});

describe("windows", () => {
  const stream = Int32Array.from({ length: 41 }, (_, i) => 100 + i); // 10 windows of 4 + 1

  it("give each sequence's targets one position later", () => {
    expect(windowCount(41, 4)).toBe(10);
    expect(windowCount(40, 4)).toBe(9);
    const b = new WindowSampler(stream, 4, 0).next(3);
    expect(b.batch).toBe(3);
    for (let s = 0; s < 3; s++) {
      const tokens = [...b.tokens.subarray(s * 4, s * 4 + 4)];
      const targets = [...b.targets.subarray(s * 4, s * 4 + 4)];
      expect((tokens[0]! - 100) % 4).toBe(0);
      expect(tokens).toEqual([0, 1, 2, 3].map((k) => tokens[0]! + k));
      expect(targets).toEqual(tokens.map((t) => t + 1));
    }
  });

  it("visit every window once an epoch, reshuffled each epoch, as the seed decides", () => {
    const sampler = new WindowSampler(stream, 4, 42);
    const firsts = (n: number) => [...sampler.next(n).tokens].filter((_, i) => i % 4 === 0).map((t) => (t - 100) / 4);
    const e0 = firsts(10);
    const e1 = firsts(10);
    expect([...e0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...e1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e1).not.toEqual(e0);
    expect(sampler.state()).toEqual({ seed: 42, epoch: 1, cursor: 10 });
    expect([...epochOrder(10, 42, 0)]).toEqual(e0);
    expect([...epochOrder(10, 43, 0)]).not.toEqual(e0);
  });

  it("continue from a saved position exactly, across an epoch boundary", () => {
    const a = new WindowSampler(stream, 4, 5);
    a.next(7);
    const saved = a.state();
    const rest = [a.next(4), a.next(4)];
    const b = new WindowSampler(stream, 4, 5, saved);
    expect([b.next(4), b.next(4)]).toEqual(rest);
  });

  it("need at least context + 1 tokens, and say which flag to change", () => {
    expect(() => new WindowSampler(Int32Array.from([1, 2, 3]), 4, 0)).toThrow(/3 tokens, fewer than context \+ 1 = 5.*--context/);
  });

  it("for validation come in stream order, at most the batches asked for", () => {
    const batches = validationBatches(stream, 4, 3);
    expect(batches.map((b) => b.batch)).toEqual([3, 3, 3, 1]);
    expect(batches[0]!.tokens[4]).toBe(104);
    expect(validationBatches(stream, 4, 3, 2).length).toBe(2);
    expect(validationBatches(Int32Array.from([1, 2]), 4, 3)).toEqual([]);
  });
});

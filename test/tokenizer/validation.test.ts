// A malformed tokenizer.json is refused when it is loaded, with the JSON path of what is wrong, and
// the CLI reports it as bad input (exit 1); a file that loads never fails at the first encode.

import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bufferIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { InputError, loadModel } from "../../src/index.js";
import { tokenizerFromJSON } from "../../src/runtime/tokenizer/index.js";
import { BPE_TOKENIZER_CONFIG, bpeTokenizerJson, SPM_TOKENIZER_CONFIG, spmTokenizerJson } from "../fixtures/tokenizer/vocabularies.js";

type Json = Record<string, any>; // the tests reach into nested fields freely

/** A copy of the LLaMA-2 fixture (which shares arrays between calls) with `change` applied. */
function spm(change: (json: Json) => void): Json {
  const json = structuredClone(spmTokenizerJson("llama2")) as Json;
  change(json);
  return json;
}

describe("tokenizer.json validation", () => {
  const refused: [string, Json | unknown, string][] = [
    ["an unknown model type", spm((j) => (j.model.type = "Foo")), 'model.type "Foo" is unsupported: expected "BPE" or "Unigram"'],
    ["no model type", spm((j) => delete j.model.type), 'model.type is missing: expected "BPE" or "Unigram"'],
    ["a BPE vocab given as an array", spm((j) => (j.model.vocab = Object.keys(j.model.vocab))), "model.vocab must be an object of token → id, got an array"],
    ["an empty vocab", spm((j) => (j.model.vocab = {})), "model.vocab is empty"],
    ["an id that is a string", spm((j) => (j.model.vocab["▁hello"] = "7")), 'model.vocab["▁hello"] must be a token id (an integer from 0 to 16777215), got "7"'],
    ["a huge id", spm((j) => (j.model.vocab["▁hello"] = 1e12)), 'model.vocab["▁hello"] must be a token id (an integer from 0 to 16777215), got number 1000000000000'],
    ["no merges", spm((j) => delete j.model.merges), "model.merges must be an array, got nothing"],
    ["a merge that is not a pair", spm((j) => (j.model.merges[3] = "a b c")), 'model.merges[3] must be "left right" like model.merges[0], got "a b c"'],
    ["mixed merge forms", spm((j) => (j.model.merges = [["a", "b"], "a b"])), 'model.merges[1] must be ["left", "right"] like model.merges[0], got "a b"'],
    ["an unknown token outside the vocab", spm((j) => (j.model.unk_token = "<zz>")), 'model.unk_token must be a token of model.vocab (or null), got "<zz>"'],
    ["added tokens that are not a list", spm((j) => (j.added_tokens = { id: 1 })), "added_tokens must be an array, got an object"],
    ["an added token without an id", spm((j) => delete j.added_tokens[1].id), "added_tokens[1].id must be a token id (an integer from 0 to 16777215), got nothing"],
    ["an added token without text", spm((j) => (j.added_tokens[0].content = 5)), "added_tokens[0].content must be a string, got number 5"],
    ["a normalizer that is not an object", spm((j) => (j.normalizer = "Prepend")), 'normalizer must be an object or null, got "Prepend"'],
    ["a Unigram vocab as an object", spm((j) => (j.model.type = "Unigram")), "model.vocab must be an array of [token, score] for a Unigram model, got an object"],
    ["a Unigram model without an unknown token", { model: { type: "Unigram", vocab: [["a", -1]] } }, "model.unk_id must be the id of a token in model.vocab (0 to 0), got nothing"],
    ["a model that is a list", { model: [] }, "model must be an object, got an array"],
    ["an array", [], "the top level must be an object, got an array"],
  ];
  it.each(refused)("refuses %s at load", (_, json, message) => {
    expect(() => tokenizerFromJSON(json, SPM_TOKENIZER_CONFIG)).toThrow(message);
  });

  it("accepts both merge forms and a Unigram model", () => {
    const pairs = spm((j) => (j.model.merges = (j.model.merges as string[]).map((m) => m.split(" "))));
    expect(tokenizerFromJSON(pairs, SPM_TOKENIZER_CONFIG).encode("hello world")).toEqual(tokenizerFromJSON(spm(() => {}), SPM_TOKENIZER_CONFIG).encode("hello world"));
    const unigram = {
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
      decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
      model: { type: "Unigram", unk_id: 0, vocab: [["<unk>", 0], ["▁", -1], ["a", -2], ["b", -2], ["▁ab", -1.5]] },
    };
    const tok = tokenizerFromJSON(unigram);
    expect(tok.encode("ab zz")).toEqual([4, 1, 0]);
  });

  it("loads a vocabulary as large as LLaMA 3's", () => {
    const json = bpeTokenizerJson() as Json;
    const start = Object.keys(json.model.vocab).length;
    for (let id = start; id < 150_000; id++) json.model.vocab[`tok${id}`] = id;
    (json.added_tokens as { id: number }[]).forEach((t, i) => (t.id = 150_000 + i));
    expect(tokenizerFromJSON(json, BPE_TOKENIZER_CONFIG).vocabSize).toBe(150_000 + (json.added_tokens as unknown[]).length);
  });

  it("either refuses a damaged file at load or encodes any text with it", () => {
    // A field of a good file replaced by any JSON value: loading may fail, encoding may not.
    const fields: ((j: Json, v: unknown) => void)[] = [
      (j, v) => (j.model.type = v),
      (j, v) => (j.model.vocab = v),
      (j, v) => (j.model.vocab["▁hello"] = v),
      (j, v) => (j.model.merges = v),
      (j, v) => (j.model.merges[0] = v),
      (j, v) => (j.model.unk_token = v),
      (j, v) => (j.model.byte_fallback = v),
      (j, v) => (j.added_tokens = v),
      (j, v) => (j.added_tokens[0] = v),
      (j, v) => (j.added_tokens[0].id = v),
      (j, v) => (j.added_tokens[0].content = v),
    ];
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom<unknown>(undefined, [], {}, "", "<unk>", 0, -1, 1.5, 1e9));
    const text = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("hello world", "<s>", "é😀\n"));
    fc.assert(
      fc.property(fc.boolean(), fc.nat(fields.length - 1), value, text, (byteLevel, field, v, s) => {
        const json = structuredClone(byteLevel ? bpeTokenizerJson() : spmTokenizerJson("llama2")) as Json;
        fields[field]!(json, v);
        let tok;
        try {
          tok = tokenizerFromJSON(json, byteLevel ? BPE_TOKENIZER_CONFIG : SPM_TOKENIZER_CONFIG);
        } catch {
          return;
        }
        const ids = tok.encode(s, { parseSpecial: true });
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
        tok.decode(ids);
      }),
      { numRuns: 500 },
    );
  });
});

describe("a Hugging Face folder with a malformed tokenizer.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmc-bad-tokenizer-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "llama", vocab_size: 283, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 64 }));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(spm((j) => (j.model.vocab = Object.keys(j.model.vocab)))));
  const expected = `${join(dir, "tokenizer.json")}: cannot build the tokenizer: model.vocab must be an object of token → id, got an array`;

  it("is refused by loadModel with an InputError naming the file and the JSON path", async () => {
    const load = loadModel(dir, { backend: "cpu" });
    await expect(load).rejects.toBeInstanceOf(InputError);
    await expect(load).rejects.toThrow(expected);
  });

  it("makes `llmc run` exit 1 with that message, not an internal error", async () => {
    const io = bufferIO();
    expect(await main(["run", dir, "--prompt", "hello", "--backend", "cpu"], io)).toBe(1);
    expect(io.stderr()).toBe(`llmc run: ${expected}\n`);
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { tokenizerFromGGUF, tokenizerFromJSON } from "../../src/runtime/tokenizer/index.js";
import {
  BPE,
  BPE_TOKENIZER_CONFIG,
  bpeMetadata,
  bpeTokenizerJson,
  SPM,
  SPM_TOKENIZER_CONFIG,
  spmByte,
  spmMetadata,
  spmTokenizerJson,
} from "../fixtures/tokenizer/vocabularies.js";

const words = fc
  .array(fc.constantFrom("hello", "world", "the", "ab", "ba", " ", "  ", "\n", "\n\n", "é", "😀", "xyz", "</s>", "!"), {
    maxLength: 16,
  })
  .map((parts) => parts.join(""));
const anyText = fc.string({ unit: "binary", maxLength: 30 }).filter((s) => !s.includes("\u2581"));

describe("tokenizer.json", () => {
  describe("LLaMA-2 style (Prepend/Replace normalizer, byte fallback)", () => {
    const tok = tokenizerFromJSON(spmTokenizerJson("llama2"), SPM_TOKENIZER_CONFIG);

    it("reads the vocabulary, added tokens and config", () => {
      expect(tok.kind).toBe("sentencepiece");
      expect(tok.vocabSize).toBe(283);
      expect([tok.bosId, tok.eosId, tok.unkId, tok.addBos, tok.addEos]).toEqual([1, 2, 0, true, false]);
      expect([...tok.eotIds]).toEqual([2]);
    });

    it("encodes as worked out by hand", () => {
      expect(tok.encode("hello world")).toEqual([SPM.bos, SPM["▁hello"], SPM["▁wor"], SPM.l, SPM.d]);
      expect(tok.encode("h\n", { addBos: false })).toEqual([SPM["▁"], SPM.h, spmByte(0x0a)]);
      expect(tok.encode("<s>hello", { addBos: false, parseSpecial: true })).toEqual([SPM.bos, SPM["▁hello"]]);
      expect(tok.decode([SPM.bos, SPM["▁hello"], SPM.eos], { skipSpecial: true })).toBe("hello");
    });

    it("agrees with the GGUF form of the same vocabulary where scores have no ties", () => {
      const gguf = tokenizerFromGGUF(spmMetadata());
      const noTies = words.filter((s) => !/ab|ba/.test(s));
      fc.assert(
        fc.property(fc.oneof(noTies, anyText.filter((s) => !/ab|ba/.test(s))), fc.boolean(), (s, parseSpecial) => {
          expect(tok.encode(s, { parseSpecial })).toEqual(gguf.encode(s, { parseSpecial }));
        }),
        { numRuns: 200 },
      );
    });

    it("round-trips any text", () => {
      fc.assert(
        fc.property(fc.oneof(words, anyText), (s) => {
          expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe("Mistral style (Metaspace, prepend_scheme first)", () => {
    const tok = tokenizerFromJSON(spmTokenizerJson("mistral"), SPM_TOKENIZER_CONFIG);

    it("prefixes a space only at the start of the text, not after special tokens", () => {
      expect(tok.encode("hello</s>world", { parseSpecial: true })).toEqual([
        SPM.bos,
        SPM["▁hello"],
        SPM.eos,
        SPM.w,
        SPM.or,
        SPM.l,
        SPM.d,
      ]);
      expect(tok.encode(" hello", { addBos: false })).toEqual([SPM["▁hello"]]);
      expect(tok.decode([SPM["▁hello"]])).toBe("hello");
    });
  });

  describe("LLaMA-3 style (Split + ByteLevel, added special tokens)", () => {
    const tok = tokenizerFromJSON(bpeTokenizerJson(), BPE_TOKENIZER_CONFIG);
    const gguf = tokenizerFromGGUF(bpeMetadata());

    it("reads the vocabulary, added tokens and config", () => {
      expect(tok.kind).toBe("byte-level");
      expect(tok.vocabSize).toBe(274);
      expect([tok.bosId, tok.eosId, tok.addBos]).toEqual([BPE.bos, BPE.eot, true]);
      expect(tok.tokenToId("<|start_header_id|>")).toBe(BPE.startHeader);
    });

    it("encodes as the GGUF form of the same vocabulary", () => {
      expect(tok.encode("hello worlds")).toEqual([BPE.bos, BPE.hello, BPE["Ġworld"], 0x73]);
      fc.assert(
        fc.property(fc.oneof(words, fc.string({ unit: "binary", maxLength: 30 })), fc.boolean(), (s, parseSpecial) => {
          expect(tok.encode(s, { parseSpecial })).toEqual(gguf.encode(s, { parseSpecial }));
        }),
        { numRuns: 200 },
      );
    });

    it("round-trips any text", () => {
      fc.assert(
        fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
          expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
        }),
        { numRuns: 200 },
      );
    });
  });

  it("honours lstrip / rstrip on added tokens", () => {
    const json = bpeTokenizerJson();
    const added = json.added_tokens as { content: string; lstrip: boolean; rstrip: boolean }[];
    const eot = added.find((t) => t.content === "<|eot_id|>")!;
    eot.lstrip = true;
    eot.rstrip = true;
    const tok = tokenizerFromJSON(json, BPE_TOKENIZER_CONFIG);
    expect(tok.encode("hi  <|eot_id|>  hi", { addBos: false, parseSpecial: true })).toEqual([0x68, 0x69, BPE.eot, 0x68, 0x69]);
  });

  it("rejects what it cannot run", () => {
    expect(() => tokenizerFromJSON({})).toThrow(/model/);
    const wordPiece = { model: { type: "WordPiece", vocab: { a: 0 } }, decoder: { type: "WordPiece" } };
    expect(() => tokenizerFromJSON(wordPiece)).toThrow(/unsupported/);
  });
});

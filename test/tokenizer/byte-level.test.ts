import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { tokenizerFromGGUF, TokenType } from "../../src/runtime/tokenizer/index.js";
import { BPE, bpeMetadata } from "../fixtures/tokenizer/vocabularies.js";

const tok = tokenizerFromGGUF(bpeMetadata());
// Token b is byte b in this vocabulary.
const bytes = (s: string) => Array.from(new TextEncoder().encode(s));

const text = fc.string({ unit: "binary", maxLength: 40 });
const wordy = fc
  .array(
    fc.constantFrom("hello", "the", " ", "  ", "\n", "\n\n", "\r\n", "world", "'s", "123456", "é", "😀", "xyz", "!?", "\t"),
    { maxLength: 20 },
  )
  .map((parts) => parts.join(""));

describe("byte-level BPE from GGUF (tokenizer.ggml.model = gpt2)", () => {
  it("reads the vocabulary and special ids", () => {
    expect(tok.kind).toBe("byte-level");
    expect(tok.vocabSize).toBe(274);
    expect([tok.bosId, tok.eosId]).toEqual([BPE.bos, BPE.eos]);
    // <|eot_id|> is recognised as end of turn by its text.
    expect([...tok.eotIds].sort()).toEqual([BPE.eos, BPE.eot]);
    expect(tok.addBos).toBe(true); // llama-bpe defaults to adding BOS
    expect(tok.tokenToId("Ġworld")).toBe(BPE["Ġworld"]);
    expect(tok.tokenType(BPE.eot)).toBe(TokenType.Control);
  });

  // Worked out by hand. LLaMA 3's regex splits "hello worlds" into "hello", " worlds".
  // "hello" is a token (ignore_merges). "Ġworlds": Ġ+w, o+r, Ġw+or, Ġwor+l, Ġworl+d; "s" stays.
  it("splits with the LLaMA 3 regex and merges by rank", () => {
    expect(tok.encode("hello worlds")).toEqual([BPE.bos, BPE.hello, BPE["Ġworld"], 0x73]);
    expect(tok.encode("the the", { addBos: false })).toEqual([0x74, BPE.he, BPE["Ġthe"]]);
  });

  it("keeps a word that is a token whole under llama-bpe, splits it under gpt-2", () => {
    expect(tok.encode("xyz", { addBos: false })).toEqual([BPE.xyz]);
    const gpt2 = tokenizerFromGGUF(bpeMetadata({ "tokenizer.ggml.pre": "gpt-2" }));
    expect(gpt2.addBos).toBe(false);
    expect(gpt2.encode("xyz")).toEqual(bytes("xyz"));
  });

  it("splits newlines and runs of spaces as LLaMA 3 does", () => {
    expect(tok.encode("a\n\nb", { addBos: false })).toEqual([0x61, BPE["ĊĊ"], 0x62]);
    expect(tok.encode("a  b", { addBos: false })).toEqual([0x61, BPE["Ġ"], BPE["Ġ"], 0x62]);
    expect(tok.encode("12345", { addBos: false })).toEqual(bytes("12345"));
  });

  it("parses control tokens only with parseSpecial", () => {
    const prompt = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>";
    expect(tok.encode(prompt, { addBos: false, parseSpecial: true })).toEqual([
      BPE.startHeader,
      ...bytes("user"),
      BPE.endHeader,
      BPE["ĊĊ"],
      ...bytes("hi"),
      BPE.eot,
    ]);
    expect(tok.encode("<|eot_id|>", { addBos: false })).toEqual(bytes("<|eot_id|>"));
  });

  it("decodes bytes back to text and special tokens to their names", () => {
    expect(tok.decode([BPE.bos, BPE.hello, BPE["Ġworld"], 0x73, BPE.eot])).toBe("<|begin_of_text|>hello worlds<|eot_id|>");
    expect(tok.decode([BPE.bos, BPE.hello, BPE.eot], { skipSpecial: true })).toBe("hello");
    expect(tok.decode([0xe2, 0x82, 0xac])).toBe("€");
    expect(tok.decode([0xe2, 0x82])).toBe("\uFFFD");
  });

  it("round-trips any text", () => {
    fc.assert(
      fc.property(fc.oneof(text, wordy), (s) => {
        expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
        expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it("streams the same text as decode, never splitting a character", () => {
    fc.assert(
      fc.property(fc.oneof(text, wordy), (s) => {
        const ids = tok.encode(s);
        const decoder = tok.createDecoder();
        const chunks = ids.map((id) => decoder.push(id));
        chunks.push(decoder.flush());
        for (const c of chunks) expect(c.isWellFormed() && (!c.includes("\uFFFD") || s.includes("\uFFFD"))).toBe(true);
        expect(chunks.join("")).toBe(tok.decode(ids));
      }),
      { numRuns: 300 },
    );
  });

  it("streams arbitrary id sequences as decode does", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: tok.vocabSize - 1 }), { maxLength: 30 }), fc.boolean(), (ids, skipSpecial) => {
        const decoder = tok.createDecoder({ skipSpecial });
        const first = ids.map((i) => decoder.push(i)).join("") + decoder.flush();
        expect(first).toBe(tok.decode(ids, { skipSpecial }));
        // flush starts over: the decoder can be reused.
        expect(ids.map((i) => decoder.push(i)).join("") + decoder.flush()).toBe(first);
      }),
      { numRuns: 300 },
    );
  });

  it("runs every supported pre-tokenizer", () => {
    const sample = "Hello, world! It's 12345 items\n\n  <b>$x+y=z</b> \u00e9t\u00e9 \u{1F600}";
    for (const pre of [undefined, "default", "gpt-2", "qwen2", "starcoder", "dbrx", "llama3"]) {
      const t = tokenizerFromGGUF(bpeMetadata({ "tokenizer.ggml.pre": pre }));
      expect(t.decode(t.encode(sample, { addBos: false }))).toBe(sample);
    }
    // Digits: LLaMA 3 groups up to three, Qwen2 and the default keep each digit alone; the
    // vocabulary's merge "1 2" shows the difference.
    const withDigitMerge = (pre: string) => {
      const meta = bpeMetadata({ "tokenizer.ggml.pre": pre });
      const tokens = [...(meta["tokenizer.ggml.tokens"] as string[]), "12"];
      return tokenizerFromGGUF({
        ...meta,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [...(meta["tokenizer.ggml.token_type"] as number[]), 1],
        "tokenizer.ggml.merges": [...(meta["tokenizer.ggml.merges"] as string[]), "1 2"],
      });
    };
    expect(withDigitMerge("llama-bpe").encode("123", { addBos: false })).toEqual([274, 0x33]);
    expect(withDigitMerge("qwen2").encode("123", { addBos: false })).toEqual(bytes("123"));
  });

  it("rejects pre-tokenizers it does not know", () => {
    expect(() => tokenizerFromGGUF(bpeMetadata({ "tokenizer.ggml.pre": "tekken" }))).toThrow(/tokenizer.ggml.pre/);
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { tokenizerFromGGUF, TokenType } from "../../src/runtime/tokenizer/index.js";
import { SPM, spmByte, spmMetadata } from "../fixtures/tokenizer/vocabularies.js";

const tok = tokenizerFromGGUF(spmMetadata());
const bytes = (s: string) => Array.from(new TextEncoder().encode(s), spmByte);

// Text without U+2581, which SentencePiece cannot tell from a space.
const text = fc.string({ unit: "binary", maxLength: 40 }).filter((s) => !s.includes("\u2581"));
const spacey = fc
  .array(fc.constantFrom("a", "b", "h", "e", "l", "o", " ", "  ", "\n", "é", "😀", "€", "ab", "<s>", "\t"), {
    maxLength: 20,
  })
  .map((parts) => parts.join(""));

describe("SentencePiece BPE from GGUF (tokenizer.ggml.model = llama)", () => {
  it("reads the vocabulary and special ids", () => {
    expect(tok.kind).toBe("sentencepiece");
    expect(tok.vocabSize).toBe(283);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.padId]).toEqual([1, 2, 0, undefined]);
    expect([...tok.eotIds]).toEqual([2]);
    expect(tok.tokenToId("▁hello")).toBe(SPM["▁hello"]);
    expect(tok.idToToken(SPM["▁wor"])).toBe("▁wor");
    expect(tok.idToToken(spmByte(0x0a))).toBe("<0x0A>");
    expect(tok.tokenType(spmByte(0x0a))).toBe(TokenType.Byte);
    expect(tok.tokenType(SPM.inst)).toBe(TokenType.Control);
  });

  // Worked out by hand: best score first, "ll"(-1) "he"(-2) "▁he"(-3) "llo"(-4) "▁hello"(-5),
  // then "or"(-6) "▁w"(-7) "▁wor"(-8); "l" and "d" are left over.
  it("merges the best-scoring pair first", () => {
    expect(tok.encode("hello world")).toEqual([SPM.bos, SPM["▁hello"], SPM["▁wor"], SPM.l, SPM.d]);
  });

  it("breaks score ties by position, leftmost first, as llama.cpp", () => {
    // "ab" and "ba" have the same score.
    expect(tok.encode("aba", { addBos: false })).toEqual([SPM["▁"], SPM.ab, SPM.a]);
    expect(tok.encode("bab", { addBos: false })).toEqual([SPM["▁"], SPM.ba, SPM.b]);
  });

  it("falls back to byte tokens for characters not in the vocabulary", () => {
    expect(tok.encode("h\n", { addBos: false })).toEqual([SPM["▁"], SPM.h, spmByte(0x0a)]);
    expect(tok.encode("é€", { addBos: false })).toEqual([SPM["▁"], SPM["é"], spmByte(0xe2), spmByte(0x82), spmByte(0xac)]);
    expect(tok.encode("😀", { addBos: false })).toEqual([SPM["▁"], ...bytes("😀")]);
  });

  it("escapes spaces as ▁, runs of them included", () => {
    expect(tok.encode("a  b", { addBos: false })).toEqual([SPM["▁"], SPM.a, SPM["▁▁"], SPM.b]);
    expect(tok.encode("a   b", { addBos: false })).toEqual([SPM["▁"], SPM.a, SPM["▁▁"], SPM["▁"], SPM.b]);
  });

  it("parses control tokens only with parseSpecial, and prefixes a space after them", () => {
    expect(tok.encode("<s>hello", { addBos: false, parseSpecial: true })).toEqual([SPM.bos, SPM["▁hello"]]);
    expect(tok.encode("<s>hello", { addBos: false })).toEqual([
      SPM["▁"],
      ...bytes("<s>"),
      SPM.he,
      SPM.llo,
    ]);
    expect(tok.encode("[INST]", { addBos: false, parseSpecial: true })).toEqual([SPM.inst]);
    expect(tok.encode("[INST]", { addBos: false })).toEqual([SPM["▁"], ...bytes("[INST]")]);
  });

  it("always parses user-defined tokens", () => {
    expect(tok.encode("hi<|user|>hello", { addBos: false })).toEqual([
      SPM["▁"],
      SPM.h,
      spmByte(0x69),
      SPM.user,
      SPM["▁hello"],
    ]);
  });

  it("adds BOS and EOS as the metadata says, unless told otherwise", () => {
    expect(tok.encode("")).toEqual([SPM.bos]);
    expect(tok.encode("hello", { addEos: true })).toEqual([SPM.bos, SPM["▁hello"], SPM.eos]);
    const noBos = tokenizerFromGGUF(spmMetadata({ "tokenizer.ggml.add_bos_token": false }));
    expect(noBos.addBos).toBe(false);
    expect(noBos.encode("hello")).toEqual([SPM["▁hello"]]);
    expect(noBos.encode("hello", { addBos: true })).toEqual([SPM.bos, SPM["▁hello"]]);
    const withEos = tokenizerFromGGUF(spmMetadata({ "tokenizer.ggml.add_eos_token": true }));
    expect(withEos.encode("hello")).toEqual([SPM.bos, SPM["▁hello"], SPM.eos]);
  });

  it("adds no space prefix when add_space_prefix is false", () => {
    const t = tokenizerFromGGUF(spmMetadata({ "tokenizer.ggml.add_space_prefix": false }));
    expect(t.encode("hello", { addBos: false })).toEqual([SPM.he, SPM.llo]);
    expect(t.decode([SPM["▁hello"]])).toBe(" hello");
  });

  it("decodes, dropping the prefix space at the start and special tokens when asked", () => {
    const ids = [SPM.bos, SPM["▁hello"], SPM["▁wor"], SPM.l, SPM.d, SPM.eos];
    expect(tok.decode(ids)).toBe("<s> hello world</s>");
    expect(tok.decode(ids, { skipSpecial: true })).toBe("hello world");
    expect(tok.decode([SPM["▁wor"], SPM.l, SPM.d], { continuation: true })).toBe(" world");
    expect(tok.decode([spmByte(0xe2), spmByte(0x82), spmByte(0xac)])).toBe("€");
    expect(() => tok.decode([tok.vocabSize])).toThrow(RangeError);
  });

  it("round-trips any text", () => {
    fc.assert(
      fc.property(fc.oneof(text, spacey), (s) => {
        expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
        expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it("streams the same text as decode, never splitting a character", () => {
    fc.assert(
      fc.property(fc.oneof(text, spacey), fc.boolean(), (s, skipSpecial) => {
        const ids = tok.encode(s, { addEos: true });
        const decoder = tok.createDecoder({ skipSpecial });
        const chunks = ids.map((id) => decoder.push(id));
        chunks.push(decoder.flush());
        for (const c of chunks) expect(c.includes("\uFFFD") && !s.includes("\uFFFD")).toBe(false);
        expect(chunks.join("")).toBe(tok.decode(ids, { skipSpecial }));
      }),
      { numRuns: 300 },
    );
  });

  it("streams arbitrary id sequences (cut characters included) as decode does", () => {
    const id = fc.oneof(fc.integer({ min: 0, max: tok.vocabSize - 1 }), fc.integer({ min: 0xc0 + 3, max: 0xff + 3 }));
    fc.assert(
      fc.property(fc.array(id, { maxLength: 30 }), fc.boolean(), (ids, continuation) => {
        const decoder = tok.createDecoder({ continuation });
        const streamed = ids.map((i) => decoder.push(i)).join("") + decoder.flush();
        expect(streamed).toBe(tok.decode(ids, { continuation }));
      }),
      { numRuns: 300 },
    );
  });

  it("matches llama.cpp's algorithm on random vocabularies with tied scores", () => {
    const alphabet = ["a", "b", "é", "▁"];
    const piece = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 3 }).map((cs) => cs.join(""));
    const vocabulary = fc.uniqueArray(fc.tuple(piece, fc.integer({ min: -3, max: 0 })), {
      selector: ([t]) => t,
      minLength: 1,
      maxLength: 25,
    });
    const input = fc.array(fc.constantFrom("a", "b", "é", " ", "d"), { maxLength: 16 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(vocabulary, input, (pieces, s) => {
        const { tokens, scores, types } = withBytes(pieces);
        const t = tokenizerFromGGUF(spmMetadata({
          "tokenizer.ggml.tokens": tokens,
          "tokenizer.ggml.scores": scores,
          "tokenizer.ggml.token_type": types,
        }));
        // llama.cpp tokenizes an empty text to nothing, without the space prefix.
        expect(t.encode(s, { addBos: false })).toEqual(s === "" ? [] : llamaCppSpm(tokens, scores, " " + s));
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects vocabularies it does not know", () => {
    expect(() => tokenizerFromGGUF({ ...spmMetadata(), "tokenizer.ggml.model": "bert" })).toThrow(/unsupported/);
    expect(() => tokenizerFromGGUF({ ...spmMetadata(), "tokenizer.ggml.tokens": undefined })).toThrow(/tokens/);
  });
});

/** <unk> <s> </s>, the byte tokens, then `pieces`. */
function withBytes(pieces: [string, number][]): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [TokenType.Unknown, TokenType.Control, TokenType.Control] as number[];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.Byte);
  }
  for (const [text] of pieces) {
    tokens.push(text);
    types.push(TokenType.Normal);
  }
  return { tokens, scores: [...tokens.slice(0, 259).map(() => 0), ...pieces.map(([, s]) => s)], types };
}

/**
 * Reference: llama.cpp's SentencePiece BPE, written naively. Repeatedly merge the adjacent pair
 * whose concatenation is a token with the best score, the leftmost among equals; then each symbol
 * is its token, or its UTF-8 bytes as byte tokens.
 */
function llamaCppSpm(tokens: string[], scores: number[], text: string): number[] {
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const symbols = Array.from(text.replaceAll(" ", "▁"));
  for (;;) {
    let best = -1;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const id = idOf.get(symbols[i] + symbols[i + 1]);
      if (id === undefined) continue;
      const bestId = best < 0 ? undefined : idOf.get(symbols[best] + symbols[best + 1])!;
      if (bestId === undefined || scores[id] > scores[bestId]) best = i;
    }
    if (best < 0) break;
    symbols.splice(best, 2, symbols[best] + symbols[best + 1]);
  }
  return symbols.flatMap((s) => {
    const id = idOf.get(s);
    return id !== undefined ? [id] : Array.from(new TextEncoder().encode(s), (b) => idOf.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`)!);
  });
}

// `llmc init-weights`: the vocabulary it trains, the GGUF metadata it writes (read back by `llmc
// import`'s reader, which shares its key table), the tokenizer llmc builds from the file, LLaMA 3.1
// RoPE factors for llama.cpp, and the command line.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferIO } from "../../src/cli/io.js";
import { UsageError } from "../../src/cli/commands/common.js";
import { runInitWeights } from "../../src/cli/commands/init-weights.js";
import type { ResolvedModel } from "../../src/compiler/check/model.js";
import { importGgufMetadata, readGgufHeader } from "../../src/compiler/import/gguf-metadata.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { tokenizerFromGGUF } from "../../src/runtime/tokenizer/index.js";
import { TokenType } from "../../src/runtime/tokenizer/types.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { ggufArchitecture, initWeights, llama3RopeFactors, randomWeightSource } from "../../src/runtime/weights/init.js";
import { loadModelWeights, weightSource } from "../../src/runtime/weights/loader.js";
import { trainSentencePieceVocab } from "../../src/runtime/weights/vocab.js";
import { compileModel, maxAbsDiff, SMALL, type Config } from "../weights/model-helpers.js";

let dir: string;
let counter = 0;
const temp = () => join(dir, `m${counter++}.gguf`);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-init-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function metadataOf(path: string) {
  const f = await openGGUF(path);
  await f.close();
  return { metadata: f.metadata, tensors: [...f.tensors.keys()], types: f.metadataTypes };
}

describe("the trained vocabulary", () => {
  it("has exactly vocab_size unique tokens, LLaMA's layout, and is the same every time", () => {
    for (const size of [3, 4, 32, 259, 260, 300, 1000, 5000]) {
      const v = trainSentencePieceVocab(size);
      expect(v.tokens.length).toBe(size);
      expect(v.scores.length).toBe(size);
      expect(v.types.length).toBe(size);
      expect(new Set(v.tokens).size).toBe(size);
      expect(v.tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
      expect(v.types.slice(0, 3)).toEqual([TokenType.Unknown, TokenType.Control, TokenType.Control]);
      expect(v.byteFallback).toBe(size >= 260);
      if (v.byteFallback) {
        expect(v.tokens[3]).toBe("<0x00>");
        expect(v.tokens[3 + 0x0a]).toBe("<0x0A>");
        expect(v.tokens[258]).toBe("<0xFF>");
        expect(v.types.slice(3, 259).every((t) => t === TokenType.Byte)).toBe(true);
      }
      expect(trainSentencePieceVocab(size)).toEqual(v);
    }
    expect(() => trainSentencePieceVocab(2)).toThrow(/at least 3/);
  });

  it("learns English pieces: common words are single tokens, merges are scored in order", () => {
    const v = trainSentencePieceVocab(2000);
    for (const piece of ["▁the", "▁and", "▁of", "ing", "▁token"]) expect(v.tokens).toContain(piece);
    expect(v.learned).toBeGreaterThan(500);
    const merged = v.tokens.map((t, i) => ({ t, s: v.scores[i]! })).filter(({ t }, i) => v.types[i] === TokenType.Normal && [...t].length > 1);
    for (let i = 1; i < merged.length; i++) expect(merged[i]!.s).toBeLessThan(merged[i - 1]!.s);
    // a larger vocabulary than the corpus fills ends in unused tokens
    const big = trainSentencePieceVocab(40000);
    expect(big.tokens.at(-1)).toMatch(/^<unused_\d+>$/);
    expect(big.types.at(-1)).toBe(TokenType.Unused);
  });
});

describe("the tokenizer llmc builds from an init-weights file", () => {
  let path: string;
  beforeAll(async () => {
    path = temp();
    await initWeights(compileModel("llama", { ...SMALL.llama, vocab_size: 2000 }).model, path);
  });

  it("round-trips any text (byte fallback for what the vocabulary lacks)", async () => {
    const { metadata } = await metadataOf(path);
    const tok = tokenizerFromGGUF(metadata);
    expect(tok.vocabSize).toBe(2000);
    expect(tok.kind).toBe("sentencepiece");
    expect([tok.bosId, tok.eosId, tok.unkId, tok.addBos]).toEqual([1, 2, 0, true]);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\u2581")), (text) => {
        const ids = tok.encode(text);
        expect(ids[0]).toBe(1);
        expect(tok.decode(ids, { skipSpecial: true })).toBe(text);
      }),
      { numRuns: 200 },
    );
    const ids = tok.encode("The keeper and the students", { addBos: false });
    expect(ids.map((i) => tok.idToToken(i))).toEqual(["▁The", "▁keeper", "▁and", "▁the", "▁students"]);
    expect(tok.decode(tok.encode("Ünïcode 😀\nline two\ttab"), { skipSpecial: true })).toBe("Ünïcode 😀\nline two\ttab");
  });

  it("a vocabulary too small for byte tokens still loads; unknown characters become <unk>", async () => {
    const small = temp();
    await initWeights(compileModel("llama", { ...SMALL.llama, vocab_size: 32 }).model, small);
    const tok = tokenizerFromGGUF((await metadataOf(small)).metadata);
    expect(tok.vocabSize).toBe(32);
    expect(tok.decode(tok.encode("the sea"), { skipSpecial: true })).toBe("the sea");
    expect(tok.encode("Zz€", { addBos: false })).toContain(0);
  });
});

describe("GGUF metadata: init-weights writes what `llmc import` reads back", () => {
  const cases: [string, string, Config][] = [
    ["llama", "llama", SMALL.llama],
    ["llama, tied, qkv biases, linear RoPE scaling", "llama", { ...SMALL.llama, tie_embeddings: true, qkv_bias: true, rope_scaling: "linear", rope_factor: 4.0, norm_eps: 1e-6, rope_theta: 500000.0 }],
    ["llama, attention biases, RoPE factors", "llama", { ...SMALL.llama, attn_bias: true, rope_scaling: "factors" }],
    ["qwen2", "qwen2", SMALL.qwen2],
    ["gemma (head_dim ≠ dim / n_heads)", "gemma", SMALL.gemma],
    ["mistral (llama to llama.cpp)", "mistral", SMALL.mistral],
  ];
  for (const [title, arch, cfg] of cases) {
    it(title, async () => {
      const { model } = compileModel(arch, cfg);
      const path = temp();
      await initWeights(model, path, { dtype: "q8_0" });
      const imported = importGgufMetadata(await readGgufHeader(path), path);
      expect(imported.arch).toBe(arch === "mistral" ? "llama" : arch);
      expect(imported.fileModelName).toBe(model.name);
      const config = (n: string) => model.config.get(n)!.value!.value;
      const bound = Object.fromEntries(imported.bindings.map((b) => [b.name, b.value.value]));
      for (const [name, value] of Object.entries(bound)) expect(value, name).toEqual(config(name));
      const always = ["vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "ffn_dim", "norm_eps", "rope_theta", "rope_scaling", "max_seq_len", "tie_embeddings"];
      expect(Object.keys(bound)).toEqual(expect.arrayContaining(always));
      expect(bound["head_dim"]).toBe(config("head_dim"));
      if (arch === "gemma") expect(bound["head_dim"]).toBe(16);
    });
  }

  it("writes llama.cpp's keys: architecture of the base chain, file type, RoPE size, vocabulary ids", async () => {
    const path = temp();
    const { model } = compileModel("gemma", SMALL.gemma);
    await initWeights(model, path, { dtype: "q4_0", name: "Tiny Gemma" });
    const { metadata, types, tensors } = await metadataOf(path);
    expect(metadata).toMatchObject({
      "general.architecture": "gemma",
      "general.name": "Tiny Gemma",
      "general.file_type": 2,
      "general.quantization_version": 2,
      "gemma.context_length": 32,
      "gemma.embedding_length": 64,
      "gemma.block_count": 2,
      "gemma.feed_forward_length": 96,
      "gemma.attention.head_count": 2,
      "gemma.attention.head_count_kv": 1,
      "gemma.attention.key_length": 16,
      "gemma.attention.value_length": 16,
      "gemma.rope.dimension_count": 16,
      "gemma.vocab_size": 300,
      "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.bos_token_id": 1,
      "tokenizer.ggml.eos_token_id": 2,
      "tokenizer.ggml.unknown_token_id": 0,
      "tokenizer.ggml.add_bos_token": true,
    });
    expect(types.get("gemma.attention.layer_norm_rms_epsilon")).toEqual({ type: "float32" });
    expect(types.get("gemma.block_count")).toEqual({ type: "uint32" });
    expect(types.get("tokenizer.ggml.token_type")).toEqual({ type: "array", elementType: "int32" });
    expect(tensors).not.toContain("output.weight");
    expect(tensors).toContain("blk.1.ffn_down.weight");

    const llamaPath = temp();
    await initWeights(compileModel("llama", SMALL.llama).model, llamaPath);
    const llama = (await metadataOf(llamaPath)).metadata;
    expect(llama["llama.attention.key_length"]).toBeUndefined();
    expect(llama["general.file_type"]).toBe(0);
    expect(llama["general.quantization_version"]).toBeUndefined();
  });

  it("general.architecture is that of the nearest bundled architecture in the extends chain", () => {
    const arch = (m: ResolvedModel) => ggufArchitecture(m).name;
    expect(arch(compileModel("mistral", SMALL.mistral).model)).toBe("llama");
    expect(arch(compileModel("qwen2", SMALL.qwen2).model)).toBe("qwen2");
    expect(arch(compileModel("test/fixtures/weights/optional-bias.llm", SMALL.llama).model)).toBe("llama");
  });
});

describe("LLaMA 3.1 RoPE scaling", () => {
  it("is written as llama.cpp's rope_freqs.weight, which a 'factors' model reads to the same logits", async () => {
    const cfg: Config = { ...SMALL.llama, n_heads: 4, rope_factor: 8.0, rope_original_max_pos: 64 };
    const llama3 = compileModel("llama", { ...cfg, rope_scaling: "llama3" });
    const factorsModel = compileModel("llama", { ...cfg, rope_scaling: "factors" });
    const path = temp();
    await initWeights(llama3.model, path, { seed: 2 });
    const { tensors } = await metadataOf(path);
    expect(tensors).toContain("rope_freqs.weight");
    const factors = llama3RopeFactors(16, { theta: 10000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPos: 64 });
    expect(factors[0]).toBe(1); // short wavelengths are kept
    expect(factors.at(-1)).toBe(8); // long ones slowed down by the factor
    expect(factors.some((f) => f > 1 && f < 8)).toBe(true); // and some are in the smooth band

    const w = await loadModelWeights(factorsModel.model, path);
    expect(w.f32("rope_factors")).toEqual(factors);
    const tokens = Int32Array.from({ length: 20 }, (_, i) => (i * 37) % 300);
    const direct = new CpuInterpreter(llama3.graph, randomWeightSource(llama3.model, 2)).step({ tokens }).data as Float32Array;
    const viaFactors = new CpuInterpreter(factorsModel.graph, weightSource(w)).step({ tokens }).data as Float32Array;
    expect(maxAbsDiff(direct, viaFactors)).toBeLessThan(1e-4);
    expect(importGgufMetadata(await readGgufHeader(path), path).bindings).toContainEqual({ name: "rope_scaling", value: { type: "enum", value: "factors" } });
  });
});

describe("llmc init-weights", () => {
  const llm = "models/llama.llm";
  const sets = Object.entries(SMALL.llama).flatMap(([k, v]) => ["--set", `${k}=${v}`]);

  it("writes the file and says what it wrote", async () => {
    const out = temp();
    const io = bufferIO();
    expect(await runInitWeights([llm, ...sets, "--dtype", "q8_0", "--seed", "9", "-o", out], io)).toBe(0);
    const text = io.stdout();
    expect(text).toContain(`wrote ${out}: `);
    expect(text).toMatch(/\d+ tensors, [\d,]+ bytes/);
    expect(text).toContain("architecture  llama");
    expect(text).toMatch(/dtype +q8_0 \(\d+ q8_0, \d+ f32/);
    expect(text).toContain("vocabulary    300 tokens (3 special, 256 byte, 41 learned)");
    expect(text).toContain("seed          9");
    expect(io.stderr()).toBe("");
    const { size } = await import("node:fs/promises").then((fs) => fs.stat(out));
    expect(text).toContain(`${size.toLocaleString("en-US")} bytes`);
  });

  it("is deterministic: the same seed writes the same bytes, another seed other weights", async () => {
    const a = temp();
    const b = temp();
    const c = temp();
    await runInitWeights([llm, ...sets, "--seed", "5", "-o", a], bufferIO());
    await runInitWeights([llm, ...sets, "--seed", "5", "-o", b], bufferIO());
    await runInitWeights([llm, ...sets, "--seed", "6", "-o", c], bufferIO());
    const [ba, bb, bc] = await Promise.all([readFile(a), readFile(b), readFile(c)]);
    expect(ba.equals(bb)).toBe(true);
    expect(ba.length).toBe(bc.length);
    expect(ba.equals(bc)).toBe(false);
  });

  it("notes matrices whose rows do not fill quantization blocks (stored as f16)", async () => {
    const out = temp();
    const io = bufferIO();
    const odd = Object.entries({ ...SMALL.llama, ffn_dim: 48 }).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
    expect(await runInitWeights([llm, ...odd, "--dtype", "q4_0", "-o", out], io)).toBe(0);
    expect(io.stderr()).toContain("2 matrices whose rows are not a multiple of 32 are stored as f16");
    expect(io.stdout()).toMatch(/2 f16/);
    const w = await loadModelWeights(compileModel("llama", { ...SMALL.llama, ffn_dim: 48 }).model, out);
    expect(w.info("layers.0.w_down").dtype).toBe("f16");
    expect(w.info("layers.0.w_up").dtype).toBe("q4_0");
  });

  it("bad input: usage errors, a broken .llm, an unwritable path", async () => {
    await expect(runInitWeights([llm, ...sets], bufferIO())).rejects.toThrow(UsageError);
    await expect(runInitWeights([llm, ...sets, "--dtype", "q6_k", "-o", temp()], bufferIO())).rejects.toThrow(/--dtype must be one of f32, f16, q8_0, q4_0/);
    await expect(runInitWeights([llm, ...sets, "--seed", "-1", "-o", temp()], bufferIO())).rejects.toThrow(/--seed/);
    await expect(runInitWeights(["-o", temp()], bufferIO())).rejects.toThrow(UsageError);

    const unbound = bufferIO();
    expect(await runInitWeights([llm, "-o", temp()], unbound)).toBe(1);
    expect(unbound.stderr()).toContain("vocab_size");

    const broken = join(dir, "broken.llm");
    await writeFile(broken, "model m extends nothing_here {}\n");
    const io = bufferIO();
    expect(await runInitWeights([broken, "-o", temp()], io)).toBe(1);
    expect(io.stderr()).toContain("broken.llm:1:");

    const nowhere = bufferIO();
    expect(await runInitWeights([llm, ...sets, "-o", join(dir, "no", "such", "dir", "m.gguf")], nowhere)).toBe(1);
    expect(nowhere.stderr()).toMatch(/^llmc init-weights: .*m\.gguf: writing the file failed/);
  });
});

// `llmc import` from a GGUF header: llama.cpp's metadata keys, and what only the tensor list tells
// (tied output, attention biases, LLaMA 3.1 RoPE factors). One end-to-end test reads a GGUF file
// written by the project's own writer through @huggingface/gguf.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { supportedNames } from "../../src/compiler/import/architectures.js";
import { importGgufMetadata, readGgufHeader, type GgufHeader } from "../../src/compiler/import/gguf-metadata.js";
import { ImportError, writeLlm, type ImportedModel } from "../../src/compiler/import/write-llm.js";
import { meta, writeGGUF } from "../../src/runtime/weights/gguf-writer.js";

/** TinyLlama's header, as llama.cpp's converter writes it (f32 values arrive rounded to f32). */
function tinyLlama(): GgufHeader {
  return {
    metadata: {
      "general.architecture": "llama",
      "general.name": "TinyLlama 1.1B Chat v1.0",
      "llama.context_length": 2048,
      "llama.embedding_length": 2048,
      "llama.block_count": 22,
      "llama.feed_forward_length": 5632,
      "llama.rope.dimension_count": 64,
      "llama.attention.head_count": 32,
      "llama.attention.head_count_kv": 4,
      "llama.attention.layer_norm_rms_epsilon": Math.fround(1e-5),
      "llama.rope.freq_base": 10000,
      "tokenizer.ggml.tokens": Array.from({ length: 32000 }, (_, i) => `t${i}`),
    },
    // One tensor per block: the import counts the blocks.
    tensorNames: ["token_embd.weight", ...Array.from({ length: 22 }, (_, i) => `blk.${i}.attn_q.weight`), "output_norm.weight", "output.weight"],
  };
}

function bindings(model: ImportedModel): Record<string, number | string | boolean> {
  return Object.fromEntries(model.bindings.map((b) => [b.name, b.value.value]));
}

function refused(header: GgufHeader): string {
  try {
    importGgufMetadata(header, "m.gguf");
  } catch (e) {
    expect(e).toBeInstanceOf(ImportError);
    return (e as Error).message;
  }
  throw new Error("expected the import to be refused");
}

describe("importGgufMetadata", () => {
  // A missing key_length (and value_length) is dim / n_heads, as llama.cpp reads it; llama.llm's
  // `else` binds it explicitly because an architecture may default head_dim otherwise (Gemma's .llm
  // says 256).
  it("reads llama.cpp's keys and the vocabulary size from the token list", () => {
    const model = importGgufMetadata(tinyLlama(), "tinyllama.gguf");
    expect(model.arch).toBe("llama");
    expect(model.fileModelName).toBe("TinyLlama 1.1B Chat v1.0");
    expect(bindings(model)).toEqual({
      vocab_size: 32000, dim: 2048, n_layers: 22, n_heads: 32, n_kv_heads: 4, head_dim: 64, v_head_dim: 64, rope_dim: 64, ffn_dim: 5632,
      norm_eps: 1e-5, rope_theta: 10000, rope_scaling: "none", max_seq_len: 2048, tie_embeddings: false,
    });
    expect(model.warnings).toEqual([]);
    const { diagnostics } = parseModule("t.llm", writeLlm(model, { source: "tinyllama.gguf", modelName: "tinyllama" }));
    expect(diagnostics).toEqual([]);
  });

  it("reads a missing output tensor as tied embeddings, rope_freqs.weight as LLaMA 3.1 factors, key_length as head_dim", () => {
    const h = tinyLlama();
    h.metadata["llama.vocab_size"] = 128256;
    h.metadata["llama.attention.key_length"] = 64;
    h.tensorNames = ["token_embd.weight", "rope_freqs.weight", "output_norm.weight"];
    expect(bindings(importGgufMetadata(h, "m.gguf"))).toMatchObject({ vocab_size: 128256, head_dim: 64, rope_scaling: "factors", tie_embeddings: true });
  });

  it("reads linear RoPE scaling", () => {
    const h = tinyLlama();
    h.metadata["llama.rope.scaling.type"] = "linear";
    h.metadata["llama.rope.scaling.factor"] = 4;
    expect(bindings(importGgufMetadata(h, "m.gguf"))).toMatchObject({ rope_scaling: "linear", rope_factor: 4 });
  });

  it("reads attention biases of a llama-architecture file off its tensors", () => {
    const h = tinyLlama();
    h.tensorNames.push("blk.0.attn_q.bias");
    expect(bindings(importGgufMetadata(h, "m.gguf"))).toMatchObject({ qkv_bias: true });
    h.tensorNames.push("blk.0.attn_output.bias");
    expect(bindings(importGgufMetadata(h, "m.gguf"))).toMatchObject({ attn_bias: true, qkv_bias: true });
  });

  it("maps qwen2 and gemma to their architectures, and accepts uniform per-layer arrays and bigints", () => {
    const h = tinyLlama();
    h.metadata = Object.fromEntries(Object.entries(h.metadata).map(([k, v]) => [k.replace(/^llama\./, "qwen2."), v]));
    h.metadata["general.architecture"] = "qwen2";
    h.metadata["qwen2.attention.head_count_kv"] = Array(22).fill(4);
    h.metadata["qwen2.context_length"] = 32768n;
    const model = importGgufMetadata(h, "m.gguf");
    expect(model.arch).toBe("qwen2");
    expect(bindings(model)).toMatchObject({ n_kv_heads: 4, max_seq_len: 32768 });
    h.metadata["general.architecture"] = "gemma";
    expect(() => importGgufMetadata(h, "m.gguf")).toThrow('missing required key "gemma.context_length"');
  });

  it("names an unsupported architecture and lists the supported ones", () => {
    const h = tinyLlama();
    h.metadata["general.architecture"] = "falcon";
    const msg = refused(h);
    expect(msg).toContain('m.gguf: unsupported general.architecture "falcon"');
    expect(supportedNames("gguf")).toEqual(["llama", "gemma", "gemma2", "gemma3", "phi3", "qwen2", "qwen3"]);
    for (const a of supportedNames("gguf")) expect(msg).toContain(a);
  });

  it("names a missing or malformed key", () => {
    const h = tinyLlama();
    delete h.metadata["llama.block_count"];
    expect(refused(h)).toContain('missing required key "llama.block_count"');
    const g = tinyLlama();
    g.metadata["llama.embedding_length"] = "2048";
    expect(refused(g)).toContain('"llama.embedding_length" must be an integer');
    const v = tinyLlama();
    delete v.metadata["tokenizer.ggml.tokens"];
    expect(refused(v)).toMatch(/missing required key "llama.vocab_size" \(or "tokenizer.ggml.tokens"\) for config 'vocab_size' \(models\/llama.llm:\d+\)/);
  });

  it("refuses what the architecture does not compute", () => {
    const h = tinyLlama();
    h.metadata["llama.rope.dimension_count"] = 32;
    expect(refused(h)).toContain("RoPE over part of each head");
    const y = tinyLlama();
    y.metadata["llama.rope.scaling.type"] = "yarn";
    expect(refused(y)).toContain('"yarn" is not supported');
    const l = tinyLlama();
    l.metadata["llama.attention.head_count_kv"] = [4, 8];
    expect(refused(l)).toContain("differs between layers");
  });
});

/** Phi-3-mini-4k-instruct's header as llama.cpp's converter writes it: fused qkv and gate_up tensors. */
function phi3Mini(extra: Record<string, unknown> = {}, tensors: string[] = []): GgufHeader {
  const shapes = new Map<string, number[]>([["token_embd.weight", [32064, 3072]], ["output.weight", [32064, 3072]]]);
  for (let i = 0; i < 32; i++) {
    shapes.set(`blk.${i}.attn_qkv.weight`, [9216, 3072]);
    shapes.set(`blk.${i}.ffn_up.weight`, [16384, 3072]);
  }
  return {
    metadata: {
      "general.architecture": "phi3",
      "general.name": "Phi3",
      "phi3.context_length": 4096,
      "phi3.rope.scaling.original_context_length": 4096,
      "phi3.embedding_length": 3072,
      "phi3.feed_forward_length": 8192,
      "phi3.block_count": 32,
      "phi3.attention.head_count": 32,
      "phi3.attention.head_count_kv": 32,
      "phi3.attention.layer_norm_rms_epsilon": Math.fround(1e-5),
      "phi3.rope.dimension_count": 96,
      "phi3.rope.freq_base": 10000,
      "phi3.attention.sliding_window": 2047,
      "tokenizer.ggml.tokens": Array.from({ length: 32064 }, (_, i) => `t${i}`),
      ...extra,
    },
    tensorNames: [...shapes.keys(), ...tensors],
    tensorShapes: shapes,
  };
}

describe("importGgufMetadata of a Phi-3 file (models/phi3.llm)", () => {
  it("reads llama.cpp's phi3.* keys without warnings, checking the fused tensors' shapes", () => {
    const model = importGgufMetadata(phi3Mini(), "phi3.gguf");
    expect(model.arch).toBe("phi3");
    expect(model.warnings).toEqual([]);
    expect(bindings(model)).toMatchObject({ vocab_size: 32064, dim: 3072, n_layers: 32, n_heads: 32, n_kv_heads: 32, ffn_dim: 8192, sliding_window: 2047, max_seq_len: 4096 });
  });

  it("refuses a fused tensor the config does not split, and LongRoPE by name", () => {
    expect(refused(phi3Mini({ "phi3.feed_forward_length": 8000 }))).toBe(
      'm.gguf: with phi3.feed_forward_length = 8000, the weights w_gate (rows 0..8000), w_up (rows 8000..16000) would split tensor "blk.0.ffn_up.weight", but in the file it has 16384 rows; the config does not describe this file',
    );
    // A part past the end is a shape the file contradicts.
    expect(refused(phi3Mini({ "phi3.feed_forward_length": 9000 }))).toContain('tensor "blk.0.ffn_up.weight" would be [9000, 3072], but in the file it is [16384, 3072]');
    expect(refused(phi3Mini({}, ["rope_factors_long.weight", "rope_factors_short.weight"]))).toContain("LongRoPE scaling (Phi-3 128k and Phi-3.5 models");
  });
});

describe("readGgufHeader", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "llmc-import-gguf-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a GGUF file written by the project's writer", async () => {
    const path = join(dir, "tiny.gguf");
    await writeGGUF(path, {
      metadata: [
        meta.string("general.architecture", "llama"),
        meta.string("general.name", "tiny"),
        meta.uint32("llama.context_length", 256),
        meta.uint32("llama.embedding_length", 8),
        meta.uint32("llama.block_count", 1),
        meta.uint32("llama.feed_forward_length", 16),
        meta.uint32("llama.attention.head_count", 2),
        meta.uint32("llama.attention.head_count_kv", 1),
        meta.float32("llama.attention.layer_norm_rms_epsilon", 1e-6),
        meta.float32("llama.rope.freq_base", 500000),
        meta.array("tokenizer.ggml.tokens", "string", ["a", "b", "c", "d"]),
      ],
      tensors: [
        { name: "token_embd.weight", shape: [4, 8], dtype: "f32", data: new Float32Array(32) },
        { name: "rope_freqs.weight", shape: [2], dtype: "f32", data: new Float32Array(2) },
      ],
    });
    const header = await readGgufHeader(path);
    expect(header.tensorNames).toEqual(["token_embd.weight", "rope_freqs.weight"]);
    expect(bindings(importGgufMetadata(header, path))).toEqual({
      vocab_size: 4, dim: 8, n_layers: 1, n_heads: 2, n_kv_heads: 1, head_dim: 4, v_head_dim: 4, ffn_dim: 16, norm_eps: 1e-6,
      rope_theta: 500000, rope_scaling: "factors", max_seq_len: 256, tie_embeddings: true,
    });
  });

  it("names a file that is not GGUF", async () => {
    await expect(readGgufHeader(join(dir, "missing.gguf"))).rejects.toThrow(/missing\.gguf: cannot read the GGUF header/);
  });
});

// The compile report on a real configuration (Llama-3-8B shapes): figures that can be worked out by
// hand from the architecture.

import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { compileReport } from "../../src/compiler/report.js";

const llama3 = { vocab_size: "128256", dim: "4096", n_layers: "32", n_heads: "32", n_kv_heads: "8", ffn_dim: "14336", rope_theta: "500000", max_seq_len: "8192" };

describe("compile report", () => {
  const res = compileFile(join("models", "llama.llm"), { overrides: new Map(Object.entries(llama3)) });
  const c = res.compiled!;

  it("counts parameters like llmc info (8,030,261,248 for Llama-3-8B)", () => {
    expect(c.params).toBe(8_030_261_248);
    expect(compileReport(c.graph, c.params, { context: 0, promptTokens: 16 }).params).toBe(8_030_261_248);
  });

  it("has decode FLOPs ≈ 2 × non-embedding parameters at context 0", () => {
    const r = compileReport(c.graph, c.params, { context: 0, promptTokens: 16 });
    const nonEmbedding = c.params - 128256 * 4096; // the embedding is a lookup, not a matmul
    expect(r.decode.flops_per_token).toBeGreaterThan(2 * nonEmbedding);
    expect(r.decode.flops_per_token).toBeLessThan(2 * nonEmbedding * 1.01);
  });

  it("grows attention FLOPs with the context: 4 · layers · heads · head_dim per past token", () => {
    const a = compileReport(c.graph, c.params, { context: 0, promptTokens: 16 }).decode.flops_per_token;
    const b = compileReport(c.graph, c.params, { context: 1000, promptTokens: 16 }).decode.flops_per_token;
    const perPast = 32 * 32 * (4 * 128 + 5);
    expect(b - a).toBeGreaterThan(1000 * perPast * 0.99);
    expect(b - a).toBeLessThan(1000 * perPast * 1.01);
  });

  it("reports KV bytes per token and bytes moved per decode step", () => {
    const r = compileReport(c.graph, c.params, { context: 1024, promptTokens: 16 });
    expect(r.kv_bytes_per_token).toBe(32 * 8 * 128 * 2 * 4);
    // Decode reads every weight once (f32) except the embedding, of which it reads one row.
    expect(r.decode.bytes.weights).toBe((c.params - 128256 * 4096) * 4 + 4096 * 4);
    // …and the whole cache of 1025 positions, K and V, every layer.
    expect(r.decode.bytes.kv_read).toBe(1025 * 32 * 8 * 128 * 2 * 4);
    expect(r.decode.peak_activation_bytes).toBeGreaterThan(0);
    expect(r.prefill.flops_per_token).toBeGreaterThan(r.decode.flops_per_token * 0.9);
  });
});

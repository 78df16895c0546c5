// The RoPE frequencies llama.llm computes (std/nn.llm's rope_inv_freq and its scalings, picked by the
// `rope_scaling` config value) equal transformers' formulas, run through the real compiler and the
// CPU interpreter. The reference below is a transcription of transformers'
// _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters and
// _compute_llama3_parameters, in f64.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";

function defaultInvFreq(headDim: number, theta: number): number[] {
  return Array.from({ length: headDim / 2 }, (_, j) => 1 / theta ** ((2 * j) / headDim));
}

function llama3InvFreq(invFreq: number[], factor: number, low: number, high: number, oldContextLen: number): number[] {
  const lowFreqWavelen = oldContextLen / low;
  const highFreqWavelen = oldContextLen / high;
  return invFreq.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const llama = wavelen > lowFreqWavelen ? f / factor : f;
    const smooth = (oldContextLen / wavelen - low) / (high - low);
    const smoothed = ((1 - smooth) * llama) / factor + smooth * llama;
    const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    return isMedium ? smoothed : llama;
  });
}

// A model that extends llama and returns its RoPE frequencies (broadcast to [T, head_dim / 2]) instead of logits.
const PROBE = `import "llama.llm"

fn rows(pos: [N] i32, f: [R]) -> [N, R] {
  return reshape(to_f32(pos), [N, 1]) * 0.0 + reshape(f, [1, R])
}

model rope_probe extends llama {
  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size] {
    return rows(pos, rope_freqs())
  }
}
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-rope-"));
  await writeFile(join(dir, "probe.llm"), PROBE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ropeFreqs(headDim: number, cfg: Record<string, string | number>): number[] {
  const overrides = new Map(
    Object.entries({ vocab_size: headDim / 2, dim: 2 * headDim, n_layers: 1, n_heads: 2, head_dim: headDim, ffn_dim: 8, max_seq_len: 4, ...cfg }).map(
      ([k, v]) => [k, typeof v === "string" ? JSON.stringify(v) : String(v)],
    ),
  );
  const res = compileFile(join(dir, "probe.llm"), { overrides });
  const errors = res.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
  expect(errors).toEqual([]);
  const out = new CpuInterpreter(res.compiled!.graph, () => {
    throw new Error("rope_freqs reads no weights");
  }).step({ tokens: Int32Array.of(0) });
  expect(out.shape).toEqual([1, headDim / 2]);
  return Array.from(out.data as Float32Array);
}

function expectClose(actual: number[], expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!) / expected[i]!, `frequency ${i}: ${a} vs ${expected[i]}`).toBeLessThan(2e-5));
}

describe("llama.llm rope_freqs", () => {
  it("is theta^(-2j/head_dim) without scaling (LLaMA 2, head_dim 128)", () => {
    expectClose(ropeFreqs(128, { rope_theta: 10000 }), defaultInvFreq(128, 10000));
  });

  it("divides by the factor with linear scaling", () => {
    expectClose(ropeFreqs(64, { rope_theta: 10000, rope_scaling: "linear", rope_factor: 4 }), defaultInvFreq(64, 10000).map((f) => f / 4));
  });

  it.each([
    ["LLaMA 3.1 8B", 128, 8],
    ["LLaMA 3.2 1B", 64, 32],
  ])("follows transformers' llama3 scaling (%s)", (_, headDim, factor) => {
    const got = ropeFreqs(headDim, { rope_theta: 500000, rope_scaling: "llama3", rope_factor: factor, rope_low_freq_factor: 1, rope_high_freq_factor: 4, rope_original_max_pos: 8192 });
    const want = llama3InvFreq(defaultInvFreq(headDim, 500000), factor, 1, 4, 8192);
    expectClose(got, want);
    // All three regimes occur: kept, interpolated and slowed down by the full factor.
    const base = defaultInvFreq(headDim, 500000);
    const ratios = want.map((w, i) => base[i]! / w);
    expect(ratios.some((r) => r === 1)).toBe(true);
    expect(ratios.some((r) => Math.abs(r - factor) < 1e-9)).toBe(true);
    expect(ratios.some((r) => r > 1 && r < factor - 1e-9)).toBe(true);
  });
});

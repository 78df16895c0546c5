// Weight initialisers end to end: what each `init` clause resolves to (numbers worked out here by
// hand from the shapes), the statistics of what is drawn, the defaults of the language and of the
// bundled models, and `llmc init-weights` writing what the clauses say.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkFile } from "../../src/compiler/check/index.js";
import type { ResolvedModel, WeightField, WeightGroupInfo } from "../../src/compiler/check/model.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initialWeights, initWeights } from "../../src/runtime/weights/init.js";
import { loadModelWeights } from "../../src/runtime/weights/loader.js";

type Config = Record<string, number | string | boolean>;

/** Large enough matrices for tight statistics: head_dim 64, matrices of 32k to 131k elements. */
const BIG: Config = { vocab_size: 300, dim: 256, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 512, max_seq_len: 32 };
const SMALL: Config = { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 };
const EVERY = join("test", "fixtures", "init", "every-initialiser.llm");

function resolved(file: string, cfg: Config): ResolvedModel {
  const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
  const res = checkFile(file.endsWith(".llm") ? file : join("models", `${file}.llm`), { overrides, requireConcrete: true });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || !res.model) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.model;
}

function field(model: ResolvedModel, path: string): WeightField {
  const [group, name] = path.split(".");
  const w = model.weights.get(group!);
  if (!w) throw new Error(`no weight ${path}`);
  if (name === undefined) return w as WeightField;
  const f = (w as WeightGroupInfo).fields.get(name);
  if (!f) throw new Error(`no weight ${path}`);
  return f;
}

function stats(v: Float32Array) {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of v) {
    sum += x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = sum / v.length;
  let sq = 0;
  for (const x of v) sq += (x - mean) ** 2;
  return { mean, std: Math.sqrt(sq / (v.length - 1)), min, max };
}

/** Mean within 5 standard errors, and the sample std within 3% (its relative error is ~1/sqrt(2n) < 0.4%). */
function expectNormal(v: Float32Array, mean: number, std: number) {
  const s = stats(v);
  expect(Math.abs(s.mean - mean)).toBeLessThan((5 * std) / Math.sqrt(v.length));
  expect(s.std / std).toBeGreaterThan(0.97);
  expect(s.std / std).toBeLessThan(1.03);
}

function expectUniform(v: Float32Array, low: number, high: number) {
  const s = stats(v);
  const width = high - low;
  expect(s.min).toBeGreaterThanOrEqual(low);
  expect(s.max).toBeLessThanOrEqual(high);
  // With 32k draws the extremes come within 0.1% of the bounds.
  expect(s.min - low).toBeLessThan(width * 1e-3);
  expect(high - s.max).toBeLessThan(width * 1e-3);
  expect(Math.abs(s.mean - (low + high) / 2)).toBeLessThan((5 * width) / Math.sqrt(12 * v.length));
  expect(s.std / (width / Math.sqrt(12))).toBeCloseTo(1, 1);
}

describe("each initialiser draws from its distribution", () => {
  const model = resolved(EVERY, BIG);
  const values = initialWeights(model, 0);
  const w = (name: string) => values.get(name)!;

  it("normal(mean, std) with a config expression: N(0.5, (0.25·n_layers)²)", () => {
    expect(field(model, "embed").init).toMatchObject({ name: "normal", declared: true, distribution: { kind: "normal", mean: 0.5, std: 0.5 } });
    expect(w("embed").length).toBe(300 * 256);
    expectNormal(w("embed"), 0.5, 0.5);
  });

  it("uniform(low, high)", () => {
    expect(field(model, "layers.wv").init.distribution).toEqual({ kind: "uniform", low: -0.1, high: 0.3 });
    expectUniform(w("layers.0.wv"), -0.1, 0.3);
  });

  it("xavier_uniform: U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)) of the [out, in] shape", () => {
    // wq is [n_heads·head_dim, dim] = [256, 256]
    const a = Math.sqrt(6 / (256 + 256));
    const d = field(model, "layers.wq").init.distribution;
    expect(d.kind).toBe("uniform");
    if (d.kind !== "uniform") return;
    expect(d.high).toBeCloseTo(a, 12);
    expect(d.low).toBeCloseTo(-a, 12);
    expectUniform(w("layers.1.wq"), -a, a);
    // w_gate is [ffn_dim, dim] = [512, 256], gain sqrt(2) given positionally
    const g = Math.sqrt(2) * Math.sqrt(6 / (256 + 512));
    expect(field(model, "layers.w_gate").init.args).toEqual({ gain: Math.sqrt(2) });
    expectUniform(w("layers.0.w_gate"), -g, g);
  });

  it("xavier_normal(gain: 2): N(0, (gain·sqrt(2 / (fan_in + fan_out)))²)", () => {
    // wk is [n_kv_heads·head_dim, dim] = [128, 256]
    const std = 2 * Math.sqrt(2 / (256 + 128));
    const d = field(model, "layers.wk").init.distribution;
    expect(d.kind).toBe("normal");
    if (d.kind !== "normal") return;
    expect(d.mean).toBe(0);
    expect(d.std).toBeCloseTo(std, 12);
    expectNormal(w("layers.0.wk"), 0, std);
  });

  it("zeros, ones, and a normal of zero spread", () => {
    expect(w("layers.0.w_up").every((x) => x === 0)).toBe(true);
    expect(w("layers.1.ffn_norm").every((x) => x === 1)).toBe(true);
  });

  it("without a clause: N(0, 0.02²) for a matrix, ones for a vector", () => {
    expect(field(model, "layers.w_down").init).toMatchObject({ name: "normal", declared: false, args: { mean: 0, std: 0.02 } });
    expectNormal(w("layers.0.w_down"), 0, 0.02);
    expect(field(model, "layers.attn_norm").init).toMatchObject({ name: "ones", declared: false });
    expect(w("layers.0.attn_norm").every((x) => x === 1)).toBe(true);
  });

  it("each tensor has its own stream; a seed gives the same values every time, another seed others", () => {
    expect(w("layers.0.wv")).not.toEqual(w("layers.1.wv"));
    const again = initialWeights(model, 0);
    const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    for (const [name, v] of values) expect(bytes(again.get(name)!).equals(bytes(v)), name).toBe(true);
    const other = initialWeights(model, 1);
    expect(other.get("embed")).not.toEqual(w("embed"));
    expectNormal(other.get("embed")!, 0.5, 0.5);
  });
});

describe("the bundled models declare LLaMA and GPT-2 practice", () => {
  it("llama: N(0, 0.02²) matrices, GPT-2's N(0, (0.02 / sqrt(2·n_layers))²) output projections, ones for norms, zeros for biases", () => {
    const model = resolved("llama", { ...SMALL, n_layers: 8, qkv_bias: true, attn_bias: true, rope_scaling: "factors" });
    const scaled = 0.02 / Math.sqrt(2 * 8);
    for (const name of ["layers.wo", "layers.w_down"]) {
      const d = field(model, name).init.distribution;
      expect(d.kind, name).toBe("normal");
      if (d.kind === "normal") expect(d.std, name).toBeCloseTo(scaled, 12);
    }
    for (const name of ["embed", "lm_head", "layers.wq", "layers.wk", "layers.wv", "layers.w_gate", "layers.w_up"]) {
      expect(field(model, name).init.distribution, name).toEqual({ kind: "normal", mean: 0, std: 0.02 });
    }
    for (const name of ["output_norm", "layers.attn_norm", "layers.ffn_norm", "rope_factors"]) {
      expect(field(model, name).init.distribution, name).toEqual({ kind: "constant", value: 1 });
    }
    for (const name of ["layers.bq", "layers.bk", "layers.bv", "layers.bo"]) {
      expect(field(model, name).init.distribution, name).toEqual({ kind: "constant", value: 0 });
    }
  });

  it("every weight of every bundled architecture has an init clause", () => {
    const configs: [string, Config][] = [
      ["llama", { ...SMALL, qkv_bias: true, attn_bias: true, rope_scaling: "factors" }],
      ["mistral", { ...SMALL, sliding_window: 4 }],
      ["qwen2", SMALL],
      ["qwen3", SMALL],
      ["gemma", { ...SMALL, head_dim: 16, tie_embeddings: false }],
      ["gemma2", { ...SMALL, head_dim: 16 }],
      ["gemma3", { ...SMALL, head_dim: 16 }],
    ];
    for (const [arch, cfg] of configs) {
      const model = resolved(arch, cfg);
      for (const w of model.weights.values()) {
        for (const f of "count" in w ? w.fields.values() : [w]) expect(f.init.declared, `${arch}: ${f.name}`).toBe(true);
      }
    }
  });

  it("Gemma's (1 + w) norms start at zeros, so their scale starts at one", () => {
    const zeros = { kind: "constant", value: 0 };
    const gemma = resolved("gemma", { ...SMALL, head_dim: 16 });
    for (const name of ["output_norm", "layers.attn_norm", "layers.ffn_norm"]) expect(field(gemma, name).init.distribution, name).toEqual(zeros);
    const gemma3 = resolved("gemma3", { ...SMALL, head_dim: 16 });
    for (const name of ["layers.attn_post_norm", "layers.ffn_post_norm", "layers.q_norm", "layers.k_norm"]) {
      expect(field(gemma3, name).init.distribution, name).toEqual(zeros);
    }
    // Qwen3's q/k norms are plain RMSNorm gains.
    expect(field(resolved("qwen3", SMALL), "layers.q_norm").init.distribution).toEqual({ kind: "constant", value: 1 });
  });

  it("a tied weight is its target: no values of its own", () => {
    const tied = initialWeights(resolved("llama", { ...SMALL, tie_embeddings: true }), 3);
    expect(tied.has("lm_head")).toBe(false);
    expect(tied.has("embed")).toBe(true);
    const untied = initialWeights(resolved("llama", SMALL), 3);
    expectNormal(untied.get("lm_head")!, 0, 0.02);
  });
});

describe("llmc init-weights writes what the clauses say", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "llmc-initialisers-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("init zeros gives zeros in the file, through GGUF transforms too, and loads back as declared", async () => {
    const model = resolved(join("test", "fixtures", "init", "zeros-wo.llm"), SMALL);
    const path = join(dir, "zeros-wo.gguf");
    await initWeights(model, path, { seed: 4 });
    const file = await openGGUF(path);
    try {
      for (const l of [0, 1]) {
        const wo = await file.readTensorF32(`blk.${l}.attn_output.weight`);
        expect(wo.length).toBe(64 * 64);
        expect(wo.every((x) => x === 0)).toBe(true);
        // add(-1.0) on load: the file holds w + 1
        expect((await file.readTensorF32(`blk.${l}.ffn_norm.weight`)).every((x) => x === 1)).toBe(true);
        // the other layers' weights keep llama's clauses
        expectNormal(await file.readTensorF32(`blk.${l}.ffn_up.weight`), 0, 0.02);
      }
      const norm = await file.readTensorF32("output_norm.weight");
      expect(norm.every((x) => x >= -0.5 && x <= 0.25)).toBe(true);
      expect(new Set(norm).size).toBeGreaterThan(60);
    } finally {
      await file.close();
    }
    const loaded = await loadModelWeights(model, path);
    expect(loaded.f32("layers.1.ffn_norm").every((x) => x === 0)).toBe(true);
    expect(loaded.f32("layers.0.wo").every((x) => x === 0)).toBe(true);
    expect(loaded.f32("output_norm")).toEqual(initialWeights(model, 4).get("output_norm"));
  });
});

// Qwen3, Gemma 2 and Gemma 3 (models/qwen3.llm, models/gemma2.llm, models/gemma3.llm): their published configs import without
// warnings to the published parameter counts, `llmc init-weights` writes the keys and tensor names
// llama.cpp reads, and a Hugging Face checkpoint computes the same logits as the GGUF. Agreement
// with llama.cpp itself, on the CPU and WebGPU, is in llama-cpp-agreement.test.ts (fixtures qwen3-qknorm-f32,
// gemma2-softcap-window-f32 and gemma3-local-global-f32); here the emulated CUDA backend is held to the CPU interpreter.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readGgufHeader } from "../../src/compiler/import/gguf-metadata.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { loadModel } from "../../src/runtime/model.js";
import { initWeights, randomWeightSource } from "../../src/runtime/weights/init.js";
import { loadModelWeights, weightSource } from "../../src/runtime/weights/loader.js";
import { modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { emulated, expectClose } from "../cuda/helpers.js";
import { compileModel, writeHfCheckpoint, type Config } from "../weights/model-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "llmc-new-archs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SMALL: Record<"qwen3" | "gemma2" | "gemma3", Config> = {
  // head_dim 32 ≠ dim / n_heads = 16: Qwen3 gives its head size explicitly; tied as Qwen3-0.6B to 4B.
  qwen3: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, head_dim: 32, ffn_dim: 96, max_seq_len: 32, tie_embeddings: true },
  gemma2: {
    vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, head_dim: 16, ffn_dim: 96, max_seq_len: 32,
    sliding_window: 4, attn_softcap: 2.0, final_softcap: 5.0,
  },
  // Pattern 2: layer 0 local (window 4, RoPE base 10000), layer 1 global (RoPE base 1e6); MQA as 1B.
  gemma3: {
    vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 1, head_dim: 16, ffn_dim: 96, max_seq_len: 32,
    sliding_window: 4, sliding_window_pattern: 2,
  },
};

function importConfig(fixture: string): Config {
  const json = JSON.parse(readFileSync(join("test", "fixtures", "configs", `${fixture}.json`), "utf8")) as unknown;
  const imported = importHfConfig(json, fixture);
  expect(imported.warnings).toEqual([]);
  return Object.fromEntries(imported.bindings.map((b) => [b.name, b.value.value as number | string | boolean]));
}

describe("published configs", () => {
  // Qwen3-0.6B: embed 151936·1024 = 155,582,464 (tied: counted once); per layer q 2048·1024 +
  // k, v 2·1024·1024 + o 1024·2048 = 6,291,456, gate/up/down 3·3072·1024 = 9,437,184, norms
  // 2·1024 + q_norm, k_norm 2·128 = 2,304: 15,730,944 × 28 = 440,466,432; final norm 1,024.
  // 155,582,464 + 440,466,432 + 1,024 = 596,049,920.
  // gemma-2-2b: embed 256000·2304 = 589,824,000 (tied); per layer q, o 2·2048·2304 + k, v
  // 2·1024·2304 = 14,155,776, gate/up/down 3·9216·2304 = 63,700,992, four norms 4·2304 = 9,216:
  // 77,865,984 × 26 = 2,024,515,584; final norm 2,304. Total 2,614,341,888.
  // gemma-3-1b: embed 262144·1152 = 301,989,888 (tied); per layer q, o 2·1024·1152 + k, v
  // 2·256·1152 = 2,949,120, gate/up/down 3·6912·1152 = 23,887,872, four norms 4·1152 + q_norm,
  // k_norm 2·256 = 5,120: 26,842,112 × 26 = 697,894,912; final norm 1,152. Total 999,885,952.
  it.each([
    ["Qwen3-0.6B", "qwen3", 596_049_920],
    ["gemma-2-2b", "gemma2", 2_614_341_888],
    ["gemma-3-1b", "gemma3", 999_885_952],
  ])("%s imports as %s with %d parameters", (fixture, arch, count) => {
    const config = importConfig(fixture);
    const { model } = compileModel(arch, config);
    expect(model.name).toBe(arch);
    const total = modelTensors(model).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(total).toBe(count);
  });

  it("gemma-2-2b's soft-caps, window and query scale reach the config", () => {
    expect(importConfig("gemma-2-2b")).toMatchObject({
      attn_softcap: 50, final_softcap: 30, sliding_window: 4096, query_pre_attn_scalar: 256, head_dim: 256,
    });
  });

  it("gemma-3-1b's window, pattern, two RoPE bases and null caps reach the config", () => {
    expect(importConfig("gemma-3-1b")).toMatchObject({
      attn_softcap: 0, final_softcap: 0, sliding_window: 512, sliding_window_pattern: 6,
      rope_theta: 1_000_000, rope_local_theta: 10_000, query_pre_attn_scalar: 256, head_dim: 256, n_kv_heads: 1,
    });
  });
});

describe("GGUF files as llama.cpp writes them", () => {
  it("qwen3: qwen3.* keys, explicit key length, per-head q/k norm tensors", async () => {
    const path = join(dir, "qwen3.gguf");
    await initWeights(compileModel("qwen3", SMALL.qwen3).model, path);
    const { metadata, tensorNames } = await readGgufHeader(path);
    expect(metadata).toMatchObject({ "general.architecture": "qwen3", "qwen3.attention.key_length": 32, "qwen3.attention.head_count_kv": 2 });
    expect(tensorNames).toEqual(expect.arrayContaining(["blk.1.attn_q_norm.weight", "blk.1.attn_k_norm.weight"]));
    expect(tensorNames).not.toContain("output.weight");
    expect(tensorNames).not.toContain("blk.0.attn_q.bias");
    const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
    try {
      expect(model.config).toMatchObject({ head_dim: 32, qkv_bias: false, tie_embeddings: true });
    } finally {
      model.dispose();
    }
  });

  it("gemma2: soft-caps and window under gemma2.*, post-attention and post-FFN norms", async () => {
    const path = join(dir, "gemma2.gguf");
    await initWeights(compileModel("gemma2", SMALL.gemma2).model, path);
    const { metadata, tensorNames } = await readGgufHeader(path);
    expect(metadata).toMatchObject({
      "general.architecture": "gemma2",
      "gemma2.attn_logit_softcapping": 2,
      "gemma2.final_logit_softcapping": 5,
      "gemma2.attention.sliding_window": 4,
    });
    expect(tensorNames).toEqual(expect.arrayContaining(["blk.0.post_attention_norm.weight", "blk.0.ffn_norm.weight", "blk.0.post_ffw_norm.weight"]));
    const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
    try {
      expect(model.config).toMatchObject({ attn_softcap: 2, final_softcap: 5, sliding_window: 4, query_pre_attn_scalar: 16 });
    } finally {
      model.dispose();
    }
  });

  it("gemma3: window, pattern and RoPE base under gemma3.*, per-head q/k norms, no caps written", async () => {
    const path = join(dir, "gemma3.gguf");
    await initWeights(compileModel("gemma3", SMALL.gemma3).model, path);
    const { metadata, tensorNames } = await readGgufHeader(path);
    expect(metadata).toMatchObject({
      "general.architecture": "gemma3",
      "gemma3.attention.sliding_window": 4,
      "gemma3.attention.sliding_window_pattern": 2,
      "gemma3.rope.freq_base": 1_000_000,
    });
    // llama.cpp's defaults: no soft-caps, local RoPE base 10000.
    expect(metadata).not.toHaveProperty("gemma3.attn_logit_softcapping");
    expect(metadata).not.toHaveProperty("gemma3.final_logit_softcapping");
    expect(metadata).not.toHaveProperty("gemma3.rope.freq_base_swa");
    expect(tensorNames).toEqual(expect.arrayContaining([
      "blk.1.attn_q_norm.weight", "blk.1.attn_k_norm.weight", "blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight",
    ]));
    expect(tensorNames).not.toContain("output.weight");
    const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
    try {
      expect(model.config).toMatchObject({
        attn_softcap: 0, final_softcap: 0, sliding_window: 4, sliding_window_pattern: 2, rope_local_theta: 10000, query_pre_attn_scalar: 16,
      });
    } finally {
      model.dispose();
    }
  });
});

describe("a Hugging Face checkpoint and the GGUF compute the same logits", () => {
  const tokens = Int32Array.of(1, 17, 260, 42, 5, 299, 8, 3);
  for (const arch of ["qwen3", "gemma2", "gemma3"] as const) {
    it(arch, async () => {
      const { model, graph } = compileModel(arch, SMALL[arch]);
      const direct = new CpuInterpreter(graph, randomWeightSource(model, 3)).step({ tokens });
      const gguf = join(dir, `${arch}-logits.gguf`);
      await initWeights(model, gguf, { seed: 3 });
      const fromGguf = await loadModelWeights(model, gguf);
      expect(new CpuInterpreter(graph, weightSource(fromGguf)).step({ tokens }).data).toEqual(direct.data);
      const hfDir = join(dir, `${arch}-hf`);
      const values = randomWeightSource(model, 3);
      await writeHfCheckpoint(model, hfDir, (n) => values(n, []));
      const fromHf = await loadModelWeights(model, hfDir);
      expect(new CpuInterpreter(graph, weightSource(fromHf)).step({ tokens }).data).toEqual(direct.data);
      await Promise.all([fromGguf.close(), fromHf.close()]);
    });
  }
});

describe("the CUDA backend (emulated) computes the CPU interpreter's logits", () => {
  // Prefill in chunks of 5, then decode steps past the window of Gemma 2's and Gemma 3's local layer.
  const prompt = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2];
  const decode = [38, 4, 6, 26, 11];
  for (const arch of ["qwen3", "gemma2", "gemma3"] as const) {
    it(arch, async () => {
      const { model, graph } = compileModel(arch, SMALL[arch]);
      const weights = randomWeightSource(model, 7);
      const cpu = new CpuInterpreter(graph, weights);
      const ex = new CudaExecutor(graph, weights, emulated({ prefillChunk: 5 }));
      try {
        await ex.init();
        const tokens = Int32Array.from(prompt);
        expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-4, "prompt");
        for (const t of decode) {
          const one = Int32Array.of(t);
          expectClose(await ex.step({ tokens: one }), cpu.step({ tokens: one }), 1e-4, `decode at P = ${ex.past}`);
        }
      } finally {
        ex.dispose();
      }
    });
  }
});

// Qwen3, Gemma 2, Gemma 3 and Phi-3 (models/qwen3.llm, gemma2.llm, gemma3.llm, phi3.llm): their published configs import without
// warnings to the published parameter counts, `llmc init-weights` writes the keys and tensor names
// llama.cpp reads, and a Hugging Face checkpoint computes the same logits as the GGUF. Agreement
// with llama.cpp itself, on the CPU and WebGPU, is in llama-cpp-agreement.test.ts (fixtures qwen3-qknorm-f32,
// gemma2-softcap-window-f32, gemma3-local-global-f32 and phi3-fused-gqa-f32); here the emulated CUDA backend is held
// to the CPU interpreter.

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
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { loadModelWeights, weightSource } from "../../src/runtime/weights/loader.js";
import { modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { emulated, expectClose } from "../cuda/helpers.js";
import { compileModel, writeHfCheckpoint, type Config } from "../weights/model-helpers.js";

const dir = mkdtempSync(join(tmpdir(), "llmc-new-archs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SMALL: Record<"qwen3" | "gemma2" | "gemma3" | "phi3", Config> = {
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
  // GQA, so the fused qkv tensor's key and value parts are smaller than its query part; a window of 4.
  phi3: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32, sliding_window: 4 },
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
  // Phi-3-mini-4k-instruct: embed and lm_head 2·32064·3072 = 197,001,216 (untied); per layer qkv
  // 3·3072·3072 + o 3072·3072 = 37,748,736, gate_up 2·8192·3072 + down 8192·3072 = 75,497,472, norms
  // 2·3072 = 6,144: 113,252,352 × 32 = 3,624,075,264; final norm 3,072. Total 3,821,079,552.
  // gemma-3-4b-it's language model (keys in text_config, the rest Gemma3TextConfig defaults): embed
  // 262208·2560 = 671,252,480 (tied); per layer q, o 2·2048·2560 + k, v 2·1024·2560 = 15,728,640,
  // gate/up/down 3·10240·2560 = 78,643,200, four norms 4·2560 + q_norm, k_norm 2·256 = 10,752:
  // 94,382,592 × 34 = 3,209,008,128 (the Gemma 3 report's 3,209M non-embedding); final norm 2,560.
  // Total 3,880,263,168.
  it.each([
    ["Qwen3-0.6B", "qwen3", 596_049_920],
    ["gemma-2-2b", "gemma2", 2_614_341_888],
    ["gemma-3-1b", "gemma3", 999_885_952],
    ["Phi-3-mini-4k-instruct", "phi3", 3_821_079_552],
    ["gemma-3-4b-it", "gemma3", 3_880_263_168],
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

  it("Phi-3-mini-4k's window and untied head reach the config", () => {
    expect(importConfig("Phi-3-mini-4k-instruct")).toMatchObject({
      sliding_window: 2047, tie_embeddings: false, n_kv_heads: 32, max_seq_len: 4096, norm_eps: 1e-5, rope_scaling: "none",
    });
  });

  it("LongRoPE (Phi-3 128k, Phi-3.5) is refused by the .llm's require, naming the scaling", () => {
    const json = JSON.parse(readFileSync(join("test", "fixtures", "configs", "Phi-3-mini-4k-instruct.json"), "utf8")) as Record<string, unknown>;
    const longrope = { ...json, max_position_embeddings: 131072, rope_scaling: { type: "longrope", short_factor: [1, 1], long_factor: [2, 2] } };
    expect(() => importHfConfig(longrope, "Phi-3-mini-128k")).toThrow(/LongRoPE scaling .* is not supported/);
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

  it("phi3: fused attn_qkv and ffn_up tensors of llama.cpp's shapes, no separate q/k/v or gate", async () => {
    const path = join(dir, "phi3.gguf");
    await initWeights(compileModel("phi3", SMALL.phi3).model, path);
    const { metadata, tensorNames } = await readGgufHeader(path);
    expect(metadata).toMatchObject({ "general.architecture": "phi3", "phi3.attention.sliding_window": 4, "phi3.attention.head_count_kv": 2 });
    expect(tensorNames).toEqual(expect.arrayContaining(["blk.0.attn_qkv.weight", "blk.0.ffn_up.weight", "blk.1.attn_output.weight", "output.weight"]));
    for (const gone of ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_gate.weight"]) expect(tensorNames).not.toContain(gone);
    const file = await openGGUF(path);
    try {
      // [(4 + 2 + 2) heads · 16, 64] and [2 · 96, 64], row-major.
      expect(file.tensors.get("blk.0.attn_qkv.weight")!.shape).toEqual([128, 64]);
      expect(file.tensors.get("blk.0.ffn_up.weight")!.shape).toEqual([192, 64]);
    } finally {
      await file.close();
    }
    const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
    try {
      expect(model.config).toMatchObject({ sliding_window: 4, n_kv_heads: 2, ffn_dim: 96 });
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
  for (const arch of ["qwen3", "gemma2", "gemma3", "phi3"] as const) {
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
  // Prefill in chunks of 5, then decode steps past the window of Gemma 2's and Gemma 3's local layer
  // and of Phi-3's.
  const prompt = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9, 3, 2];
  const decode = [38, 4, 6, 26, 11];
  for (const arch of ["qwen3", "gemma2", "gemma3", "phi3"] as const) {
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

// `llmc import` from Hugging Face config.json: every fixture (published configs) becomes .llm text
// that parses and binds the expected values; unsupported inputs are refused with a message that
// names the file and what is wrong.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseModule, type ModelDecl } from "../../src/compiler/parse/index.js";
import { supportedNames } from "../../src/compiler/import/architectures.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { ImportError, sanitizeModelName, writeLlm } from "../../src/compiler/import/write-llm.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { llmWriter } from "../helpers/llm-files.js";

const configsDir = fileURLToPath(new URL("../fixtures/configs/", import.meta.url));
const write = llmWriter("hf-config");
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(configsDir, `${name}.json`), "utf8"));

/** Imports a config, writes the .llm text, parses it back and returns what its config block binds. */
function importAndParse(json: unknown, file = "config.json") {
  const model = importHfConfig(json, file);
  expect(model.warnings).toEqual([]);
  const text = writeLlm(model, { source: file, modelName: sanitizeModelName("imported", model.arch) });
  const { module, diagnostics } = parseModule("imported.llm", text);
  expect(diagnostics).toEqual([]);
  expect(module.imports.map((i) => i.path)).toEqual([`${model.arch}.llm`]);
  const decl = module.items[0] as ModelDecl;
  expect(decl.extends?.name).toBe(model.arch);
  const bound: Record<string, number | string | boolean> = {};
  for (const member of decl.members) {
    if (member.kind !== "Config") continue;
    for (const item of member.items) {
      if (item.kind !== "ConfigParam" || !item.value) continue;
      expect(item.type, `${item.name.name} is an override, not a new parameter`).toBeNull();
      const v = item.value;
      if (v.kind === "Number" || v.kind === "String" || v.kind === "Bool") bound[item.name.name] = v.value;
      else throw new Error(`${item.name.name} is bound to a ${v.kind}, not a literal`);
    }
  }
  return { arch: model.arch, bound, text };
}

const EXPECTED: Record<string, { arch: string; bound: Record<string, number | string | boolean>; absent?: string[] }> = {
  "Meta-Llama-3-8B": {
    arch: "llama",
    bound: { vocab_size: 128256, dim: 4096, n_layers: 32, n_heads: 32, n_kv_heads: 8, ffn_dim: 14336, norm_eps: 1e-5, rope_theta: 500000, rope_scaling: "none", max_seq_len: 8192, tie_embeddings: false, attn_bias: false },
    absent: ["head_dim", "rope_factor"],
  },
  "Meta-Llama-3.1-8B": {
    arch: "llama",
    bound: { vocab_size: 128256, dim: 4096, n_kv_heads: 8, rope_theta: 500000, rope_scaling: "llama3", rope_factor: 8, rope_low_freq_factor: 1, rope_high_freq_factor: 4, rope_original_max_pos: 8192, max_seq_len: 131072, tie_embeddings: false },
  },
  "Llama-3.2-1B": {
    arch: "llama",
    bound: { vocab_size: 128256, dim: 2048, n_layers: 16, n_heads: 32, n_kv_heads: 8, head_dim: 64, ffn_dim: 8192, rope_scaling: "llama3", rope_factor: 32, rope_original_max_pos: 8192, tie_embeddings: true },
  },
  "Llama-2-7b-hf": {
    // No rope_theta in the file: transformers' default.
    arch: "llama",
    bound: { vocab_size: 32000, dim: 4096, n_layers: 32, n_heads: 32, n_kv_heads: 32, ffn_dim: 11008, rope_theta: 10000, max_seq_len: 4096, tie_embeddings: false },
  },
  "TinyLlama-1.1B-Chat-v1.0": {
    arch: "llama",
    bound: { vocab_size: 32000, dim: 2048, n_layers: 22, n_heads: 32, n_kv_heads: 4, ffn_dim: 5632, max_seq_len: 2048 },
  },
  "Mistral-7B-v0.1": {
    arch: "mistral",
    bound: { vocab_size: 32000, dim: 4096, n_kv_heads: 8, ffn_dim: 14336, sliding_window: 4096, max_seq_len: 32768, rope_theta: 10000 },
    absent: ["attn_bias"],
  },
  "Qwen2-0.5B": {
    arch: "qwen2",
    bound: { vocab_size: 151936, dim: 896, n_layers: 24, n_heads: 14, n_kv_heads: 2, ffn_dim: 4864, norm_eps: 1e-6, rope_theta: 1000000, tie_embeddings: true },
    absent: ["attn_bias", "qkv_bias"],
  },
  "Qwen2-7B": {
    arch: "qwen2",
    bound: { vocab_size: 152064, dim: 3584, n_layers: 28, n_heads: 28, n_kv_heads: 4, ffn_dim: 18944, tie_embeddings: false },
  },
  "gemma-2b": {
    arch: "gemma",
    bound: { vocab_size: 256000, dim: 2048, n_layers: 18, n_heads: 8, n_kv_heads: 1, head_dim: 256, ffn_dim: 16384, norm_eps: 1e-6, tie_embeddings: true, max_seq_len: 8192 },
  },
  "gemma-7b": {
    arch: "gemma",
    bound: { vocab_size: 256000, dim: 3072, n_layers: 28, n_heads: 16, n_kv_heads: 16, head_dim: 256, ffn_dim: 24576, tie_embeddings: true },
  },
  "Qwen3-0.6B": {
    arch: "qwen3",
    bound: { dim: 1024, n_layers: 28, n_heads: 16, n_kv_heads: 8, head_dim: 128, ffn_dim: 3072, tie_embeddings: true, max_seq_len: 40960 },
  },
  "gemma-2-2b": {
    arch: "gemma2",
    bound: { dim: 2304, n_layers: 26, n_kv_heads: 4, head_dim: 256, query_pre_attn_scalar: 256, attn_softcap: 50, final_softcap: 30, sliding_window: 4096 },
  },
  "gemma-3-1b": {
    arch: "gemma3",
    bound: {
      vocab_size: 262144, dim: 1152, n_layers: 26, n_heads: 4, n_kv_heads: 1, head_dim: 256, ffn_dim: 6912, max_seq_len: 32768, tie_embeddings: true,
      rope_theta: 1000000, rope_local_theta: 10000, sliding_window: 512, sliding_window_pattern: 6, attn_softcap: 0, final_softcap: 0,
    },
  },
  // Multimodal: the text model's keys in text_config, the rest Gemma3TextConfig's defaults.
  "gemma-3-4b-it": {
    arch: "gemma3",
    bound: {
      vocab_size: 262208, dim: 2560, n_layers: 34, n_heads: 8, n_kv_heads: 4, head_dim: 256, ffn_dim: 10240, max_seq_len: 131072, tie_embeddings: true,
      rope_scaling: "linear", rope_factor: 8, rope_theta: 1000000, rope_local_theta: 10000, sliding_window: 1024, sliding_window_pattern: 6,
      query_pre_attn_scalar: 256, attn_softcap: 0, final_softcap: 0, norm_eps: 1e-6,
    },
  },
  "Phi-3-mini-4k-instruct": {
    arch: "phi3",
    bound: { vocab_size: 32064, dim: 3072, n_layers: 32, n_heads: 32, n_kv_heads: 32, ffn_dim: 8192, max_seq_len: 4096, sliding_window: 2047, norm_eps: 1e-5, tie_embeddings: false },
  },
};

describe("importHfConfig on published configs", () => {
  it("has expectations for every fixture", () => {
    const fixtures = readdirSync(configsDir).filter((f) => f.endsWith(".json") && f !== "expected-params.json").map((f) => f.slice(0, -5));
    expect(fixtures.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))("%s", (name, want) => {
    const { arch, bound } = importAndParse(fixture(name), `${name}.json`);
    expect(arch).toBe(want.arch);
    expect(bound).toMatchObject(want.bound);
    for (const key of want.absent ?? []) expect(bound).not.toHaveProperty(key);
  });

  it("writes f32 values as float literals and ints as integers", () => {
    const { text } = importAndParse(fixture("Meta-Llama-3-8B"));
    expect(text).toMatch(/rope_theta\s*= 500000\.0\n/);
    expect(text).toMatch(/norm_eps\s*= 1e-5\n/);
    expect(text).toMatch(/vocab_size\s*= 128256\n/);
    expect(text).toMatch(/rope_scaling\s*= "none"\n/);
  });
});

function refused(json: unknown, file = "config.json"): string {
  try {
    importHfConfig(json, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ImportError);
    return (e as Error).message;
  }
  throw new Error("expected the import to be refused");
}

describe("importHfConfig refuses what the bundled architectures cannot run", () => {
  const llama = fixture("Meta-Llama-3-8B");

  it("names an unknown model_type and lists the supported ones", () => {
    const msg = refused({ ...llama, model_type: "gpt_neox" }, "models/neox/config.json");
    expect(msg).toContain("models/neox/config.json");
    expect(msg).toContain('"gpt_neox"');
    for (const t of supportedNames("hf")) expect(msg).toContain(t);
    expect([...supportedNames("hf")].sort()).toEqual(["gemma", "gemma2", "gemma3", "gemma3_text", "llama", "mistral", "phi3", "qwen2", "qwen3"]);
  });

  it("names a missing model_type", () => {
    const { model_type: _, ...rest } = llama;
    expect(refused(rest)).toContain('missing required key "model_type"');
  });

  it.each(["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"])("names the missing required key %s", (key) => {
    const json = { ...llama };
    delete json[key];
    const msg = refused(json, "x/config.json");
    expect(msg).toContain(`missing required key "${key}"`);
    expect(msg).toContain("x/config.json");
  });

  it("names a value of the wrong kind", () => {
    expect(refused({ ...llama, hidden_size: "4096" })).toContain('"hidden_size" must be an integer, got "4096"');
    // Sizes and constants out of range fail llama.llm's shapes and requires, naming the key the value came from.
    expect(refused({ ...llama, num_hidden_layers: 0 })).toMatch(/the size of weight group 'layers' must be positive, got 0 \(models\/llama.llm:\d+\); n_layers = 0 was read from the model file's "num_hidden_layers"/);
    expect(refused({ ...llama, rms_norm_eps: -1 })).toContain("requirement failed: norm_eps and rope_theta must be positive (norm_eps = -1.0)");
    expect(refused({ ...llama, tie_word_embeddings: "no" })).toContain('"tie_word_embeddings" must be true or false');
  });

  it("refuses a document that is not an object", () => {
    expect(refused([1, 2, 3], "list.json")).toContain("list.json: expected a JSON object");
  });

  it("refuses RoPE scaling it does not implement, and incomplete llama3 scaling", () => {
    expect(refused({ ...llama, rope_scaling: { type: "yarn", factor: 4 } })).toContain('"rope_scaling.type" = "yarn" is not supported');
    expect(refused({ ...llama, rope_scaling: { rope_type: "llama3", factor: 8 } })).toContain('missing required key "rope_scaling.low_freq_factor"');
  });

  it("refuses an activation, bias or window the architecture does not compute", () => {
    expect(refused({ ...llama, hidden_act: "gelu" })).toMatch(/"hidden_act" = "gelu" is not supported: .* \(for config 'hidden_act' \(models\/llama.llm:\d+\)\)/);
    expect(refused({ ...llama, mlp_bias: true })).toContain('"mlp_bias": true is not supported');
    expect(refused({ ...fixture("Qwen2-7B"), use_sliding_window: true })).toContain('"use_sliding_window": true is not supported');
    expect(refused({ ...fixture("gemma-2b"), hidden_activation: "gelu" })).toMatch(/"hidden_activation" = "gelu" is not supported: .* \(for config 'hidden_act' \(models\/gemma.llm:\d+\)\)/);
  });
});

describe("importHfConfig fills in what a config.json leaves out", () => {
  it("uses transformers' per-model defaults", () => {
    // 32 heads: every default n_kv_heads divides it (llama.llm requires it).
    const base = { vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 32, intermediate_size: 128 };
    expect(importAndParse({ ...base, model_type: "llama" }).bound).toMatchObject({ n_kv_heads: 32, norm_eps: 1e-6, rope_theta: 10000, max_seq_len: 2048, tie_embeddings: false });
    expect(importAndParse({ ...base, model_type: "mistral" }).bound).toMatchObject({ n_kv_heads: 8, sliding_window: 4096, max_seq_len: 131072 });
    expect(importAndParse({ ...base, model_type: "qwen2" }).bound).toMatchObject({ n_kv_heads: 32, max_seq_len: 32768 });
    expect(importAndParse({ ...base, model_type: "gemma" }).bound).toMatchObject({ n_kv_heads: 16, head_dim: 256, tie_embeddings: true });
    expect(importAndParse({ ...base, model_type: "phi3" }).bound).toMatchObject({ n_kv_heads: 32, norm_eps: 1e-5, max_seq_len: 4096, sliding_window: 0, tie_embeddings: false });
  });

  it("treats a null value as absent", () => {
    const json = { ...fixture("TinyLlama-1.1B-Chat-v1.0"), num_key_value_heads: null, rope_theta: null };
    expect(importAndParse(json).bound).toMatchObject({ n_kv_heads: 32, rope_theta: 10000 });
  });

  it("spells Mistral's `sliding_window: null` (no window) as 0", () => {
    expect(importAndParse({ ...fixture("Mistral-7B-v0.1"), sliding_window: null }).bound).toMatchObject({ sliding_window: 0 });
  });

  it("reads linear RoPE scaling and the `type` spelling of older configs", () => {
    expect(importAndParse({ ...fixture("Llama-2-7b-hf"), rope_scaling: { type: "linear", factor: 4.0 } }).bound).toMatchObject({ rope_scaling: "linear", rope_factor: 4 });
  });

  it("reads transformers 5 `rope_parameters`", () => {
    const json = { ...fixture("Meta-Llama-3.1-8B"), rope_theta: undefined, rope_scaling: undefined, rope_parameters: { rope_type: "llama3", rope_theta: 500000.0, factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 } };
    expect(importAndParse(json).bound).toMatchObject({ rope_theta: 500000, rope_scaling: "llama3", rope_factor: 8 });
  });
});

describe("a multimodal config.json keeps the text model's keys in text_config (gemma3.llm: within hf \"text_config\")", () => {
  const multimodal = fixture("gemma-3-4b-it");
  const text = multimodal["text_config"] as Record<string, unknown>;

  it("reads them there, and not the vision tower's keys beside them", () => {
    // vision_config.num_hidden_layers is 27, the text model's 34.
    expect(importAndParse(multimodal).bound).toMatchObject({ n_layers: 34, dim: 2560 });
  });

  it("warns about an undeclared key inside text_config, and says where it is", () => {
    const model = importHfConfig({ ...multimodal, text_config: { ...text, novel_setting: 1 } }, "config.json");
    expect(model.warnings).toHaveLength(1);
    expect(model.warnings[0]).toMatch(/^config\.json \(text_config\): key "novel_setting" is not declared by model 'gemma3'/);
  });

  it("names a bad value inside text_config", () => {
    expect(refused({ ...multimodal, text_config: { ...text, num_hidden_layers: "many" } })).toMatch(/^config\.json \(text_config\): "num_hidden_layers" must be an integer/);
  });

  it("is a config.json notion: `within gguf` is an error at its line", () => {
    const path = write('import "llama.llm"\nmodel m extends llama {\n  config {\n    within gguf "text"\n  }\n}\n');
    const errors = checkFile(path).diagnostics.filter((d) => d.severity === "error");
    expect(errors.map((d) => [d.code, d.span?.start.line, d.message])).toEqual([
      ["E0205", 4, "'within' names objects of a config.json (within hf \"…\"); GGUF metadata keys are not nested"],
    ]);
  });

  it("reads the top level when the file has no text_config (gemma-3-1b), with the same model", () => {
    const flat = { ...text, model_type: "gemma3_text" };
    expect(importAndParse(flat).bound).toMatchObject({ n_layers: 34, dim: 2560, vocab_size: 262208 });
    // A text-only config whose model_type is "gemma3" also reads the top level.
    expect(importAndParse({ ...text, model_type: "gemma3" }).bound).toMatchObject({ n_layers: 34 });
  });
});

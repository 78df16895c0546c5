// The embedding API on a tiny random LLaMA written as GGUF: generation checked step by step against
// the CPU interpreter, seeds, stop strings, max tokens, end-of-turn, logprobs and perplexity, the
// chat template, a full context, a sliding window, and the errors bad input gets.

import fc from "fast-check";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { argmax } from "../../src/runtime/generate/sampler.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { writeSafetensors } from "../../src/runtime/weights/safetensors.js";
import { spmTokenizerJson } from "../fixtures/tokenizer/vocabularies.js";
import { hfName, toHfOrder } from "../weights/model-helpers.js";
import { applyChatTemplate } from "../../src/runtime/tokenizer/index.js";
import { BackendError, ContextOverflowError, GenerationSupersededError, ImportError, InputError, loadModel, type GeneratedToken, type Model } from "../../src/index.js";
import { lastRow, logSoftmax, oracle, TINY, VOCAB, writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-api-"));
const tinyPath = join(tmp, "tiny.gguf");
let model: Model;

beforeAll(async () => {
  await writeTinyModel(tinyPath);
  model = await loadModel(tinyPath, { backend: "cpu" });
});
afterAll(() => model?.dispose());

async function collect(it: AsyncIterable<GeneratedToken>): Promise<{ tokens: number[]; text: string }> {
  const tokens: number[] = [];
  let text = "";
  for await (const t of it) {
    tokens.push(t.token);
    text += t.text;
  }
  return { tokens, text };
}

/** Greedy decoding by hand on the interpreter: prefill, then one token at a time. */
function greedyOracle(interp: CpuInterpreter, prompt: number[], n: number): number[] {
  const out: number[] = [];
  let logits = lastRow(interp.step({ tokens: Int32Array.from(prompt) }));
  for (let i = 0; i < n; i++) {
    const t = argmax(logits);
    out.push(t);
    if (i + 1 < n) logits = lastRow(interp.step({ tokens: Int32Array.of(t) }));
  }
  return out;
}

const greedy = { temperature: 0 };

describe("loadModel", () => {
  it("reads the architecture, config and tokenizer from the GGUF file", () => {
    expect(model.config).toMatchObject(TINY);
    expect(model.tokenizer.vocabSize).toBe(VOCAB);
    expect(model.backend).toMatch(/^cpu/);
    expect(model.maxSeqLen).toBe(TINY.max_seq_len);
  });

  it("greedy generation is the argmax of the CPU interpreter's logits at every step", async () => {
    for (const text of ["hello world", "ab ba", "w"]) {
      const prompt = model.tokenizer.encode(text);
      const { tokens } = await collect(model.generate(prompt, { ...greedy, maxTokens: 24 }));
      expect(tokens.length).toBeGreaterThan(0);
      const expected = greedyOracle(oracle(), prompt, tokens.length);
      expect(tokens).toEqual(expected);
      // Either it ran to maxTokens or its last token ended the turn.
      if (tokens.length < 24) expect(model.tokenizer.eotIds.has(tokens.at(-1)!)).toBe(true);
    }
  });

  it("a string prompt is tokenized with the model's defaults (BOS first)", async () => {
    const a = await collect(model.generate("hello world", { ...greedy, maxTokens: 8 }));
    const b = await collect(model.generate(model.tokenizer.encode("hello world"), { ...greedy, maxTokens: 8 }));
    expect(model.promptTokens("hello world")[0]).toBe(1);
    expect(a).toEqual(b);
  });

  it("with a seed, generation is reproducible; different seeds give different text", async () => {
    const opts = { temperature: 1, topK: 0, topP: 1, minP: 0, maxTokens: 16 };
    const run = (seed: number) => collect(model.generate("hello", { ...opts, seed }));
    const first = await run(42);
    expect(await run(42)).toEqual(first);
    const texts = new Set([first.tokens.join(",")]);
    for (const seed of [1, 2, 3]) texts.add((await run(seed)).tokens.join(","));
    expect(texts.size).toBe(4);
  });

  it("stops after maxTokens", async () => {
    for (const n of [0, 1, 2, 7]) {
      const { tokens } = await collect(model.generate("hello", { ...greedy, maxTokens: n }));
      const ended = tokens.length > 0 && model.tokenizer.eotIds.has(tokens.at(-1)!);
      expect(ended ? tokens.length <= n + 1 : tokens.length === n).toBe(true);
    }
  });

  it("stops at a stop string, emitting the text before it and nothing of it", async () => {
    const full = await collect(model.generate("hello world", { ...greedy, maxTokens: 30 }));
    expect(full.text.length).toBeGreaterThan(5);
    await fc.assert(
      fc.asyncProperty(fc.nat(full.text.length - 1), fc.integer({ min: 1, max: 4 }), async (start, len) => {
        const stop = full.text.slice(start, start + len);
        const r = await collect(model.generate("hello world", { ...greedy, maxTokens: 30, stop: ["\u0000never", stop] }));
        expect(r.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
        // It stopped at the token that completed the stop string.
        expect(r.tokens).toEqual(full.tokens.slice(0, r.tokens.length));
        expect(model.tokenizer.decode(r.tokens, { continuation: true })).toContain(stop);
      }),
      { numRuns: 12 },
    );
  });

  it("ends at the end-of-turn token, which comes last", async () => {
    // Make the greedy sequence's fourth new token the file's EOS.
    const prompt = model.tokenizer.encode("hello");
    const plain = greedyOracle(oracle(), prompt, 12);
    const k = plain.findIndex((t, i) => i >= 3 && !plain.slice(0, i).includes(t));
    expect(k).toBeGreaterThan(0);
    const path = join(tmp, "eos.gguf");
    await writeTinyModel(path, { eosId: plain[k]! });
    const m = await loadModel(path, { backend: "cpu" });
    try {
      const r = await collect(m.generate(prompt, { ...greedy, maxTokens: 12 }));
      expect(r.tokens).toEqual(plain.slice(0, k + 1));
      expect(r.text).toBe(m.tokenizer.decode(plain.slice(0, k), { continuation: true, skipSpecial: true }));
    } finally {
      m.dispose();
    }
  });

  it("applies the chat template the file implies (LLaMA 2 here) when asked", async () => {
    expect(model.chatTemplate).toBe("llama2");
    const templated = applyChatTemplate("llama2", [{ role: "user", content: "hello" }], { addGenerationPrompt: true });
    const ids = model.tokenizer.encode(templated, { addBos: false, parseSpecial: true });
    expect(ids.slice(0, 2)).toEqual([1, 281]); // <s> [INST] as special tokens
    expect(model.promptTokens("hello", { chat: true })).toEqual(ids);
    const chat = await collect(model.generate("hello", { ...greedy, chat: true, maxTokens: 10 }));
    expect(chat.tokens).toEqual(greedyOracle(oracle(), ids, chat.tokens.length));
    const plain = await collect(model.generate("hello", { ...greedy, maxTokens: 10 }));
    expect(chat.tokens).not.toEqual(plain.tokens);
  });

  it("never picks a token past the tokenizer's vocabulary (a padded embedding)", async () => {
    const path = join(tmp, "padded.gguf");
    await writeTinyModel(path, { vocabSize: VOCAB + 200 });
    const m = await loadModel(path, { backend: "cpu" });
    try {
      expect(m.config["vocab_size"]).toBe(VOCAB + 200);
      const { tokens } = await collect(m.generate("hello", { temperature: 5, topK: 0, topP: 1, minP: 0, maxTokens: 60, seed: 1 }));
      expect(tokens.length).toBeGreaterThan(0);
      expect(Math.max(...tokens)).toBeLessThan(VOCAB);
      expect((await m.logprobs([1, VOCAB + 100], { top: 1 })).positions).toHaveLength(2);
    } finally {
      m.dispose();
    }
  });

  it("continues a prompt that extends the cached one without running the cached part again", async () => {
    const prompt = model.tokenizer.encode("hello world");
    const first = await collect(model.generate(prompt, { ...greedy, maxTokens: 4 }));
    // The cache now holds the prompt and the first three generated tokens.
    const next = [...prompt, ...first.tokens, 273];
    const again = await collect(model.generate(next, { ...greedy, maxTokens: 6 }));
    expect(again.tokens).toEqual(greedyOracle(oracle(), next, again.tokens.length));
  });
});

describe("a Hugging Face folder", () => {
  it("config.json, tokenizer.json and safetensors give the same model as the GGUF file", async () => {
    const dir = join(tmp, "hf-tiny");
    mkdirSync(dir);
    const config = {
      model_type: "llama",
      vocab_size: TINY.vocab_size,
      hidden_size: TINY.dim,
      num_hidden_layers: TINY.n_layers,
      num_attention_heads: TINY.n_heads,
      num_key_value_heads: TINY.n_kv_heads,
      intermediate_size: TINY.ffn_dim,
      max_position_embeddings: TINY.max_seq_len,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: false,
    };
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(spmTokenizerJson("llama2")));
    const chatTemplate = "{{ bos_token }}{% for m in messages %}[INST] <<SYS>> … [/INST]{% endfor %}";
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true, chat_template: chatTemplate }));
    const overrides = new Map(Object.entries(TINY).map(([k, v]) => [k, String(v)]));
    const resolved = compileFile("models/llama.llm", { overrides }).compiled!.model;
    await writeSafetensors(
      join(dir, "model.safetensors"),
      modelTensors(resolved).map((t) => ({ name: hfName(t), shape: t.shape, dtype: "f32" as const, data: toHfOrder(t, randomTensor(t.irName, t.shape, { seed: 7 })) })),
    );

    const hf = await loadModel(dir, { backend: "cpu" });
    try {
      expect(hf.chatTemplate).toEqual({ jinja: chatTemplate, bosToken: "<s>", eosToken: "</s>" });
      expect(hf.promptTokens("hello world")).toEqual(model.promptTokens("hello world"));
      const a = await collect(hf.generate("hello world", { ...greedy, maxTokens: 12 }));
      const b = await collect(model.generate("hello world", { ...greedy, maxTokens: 12 }));
      expect(a).toEqual(b);
      const lp = await hf.logprobs([1, 273, 276]);
      expect(lp.perplexity! / (await model.logprobs([1, 273, 276])).perplexity!).toBeCloseTo(1, 5);
    } finally {
      hf.dispose();
    }
    // The same folder, named by its safetensors file.
    const byFile = await loadModel(join(dir, "model.safetensors"), { backend: "cpu" });
    byFile.dispose();
  });
});

describe("logprobs", () => {
  it("equals the log-softmax of the interpreter's logits; top sorted; perplexity = exp(mean NLL)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(VOCAB - 1), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 6 }), async (tokens, top) => {
        const r = await model.logprobs(tokens, { top });
        const logits = oracle().step({ tokens: Int32Array.from(tokens) }).data as Float32Array;
        const rows = tokens.map((_, i) => logSoftmax(logits.subarray(i * VOCAB, (i + 1) * VOCAB)));
        expect(r.tokens).toEqual(tokens);
        expect(r.positions.length).toBe(tokens.length);
        r.positions.forEach((p, i) => {
          expect(p.token).toBe(tokens[i]);
          expect(p.top.length).toBe(top);
          const expected = [...rows[i]!].map((lp, id) => ({ id, lp })).sort((a, b) => b.lp - a.lp || a.id - b.id).slice(0, top);
          p.top.forEach((t, k) => {
            expect(t.logprob).toBeCloseTo(expected[k]!.lp, 5);
            expect(t.logprob).toBeCloseTo(rows[i]![t.id]!, 5);
            if (k > 0) expect(t.logprob).toBeLessThanOrEqual(p.top[k - 1]!.logprob);
          });
        });
        if (tokens.length === 1) {
          expect(r.perplexity).toBeNull();
        } else {
          const nll = tokens.slice(1).map((t, i) => -rows[i]![t]!);
          const ppl = Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length);
          expect(r.perplexity! / ppl).toBeCloseTo(1, 6);
        }
      }),
      { numRuns: 8 },
    );
  });

  it("the whole distribution sums to 1", async () => {
    const r = await model.logprobs([1, 273], { top: VOCAB });
    for (const p of r.positions) expect(p.top.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeCloseTo(1, 6);
  });
});

describe("context length", () => {
  const shortPath = join(tmp, "short.gguf");
  beforeAll(() => writeTinyModel(shortPath, { contextLength: 16 }));

  it("a prompt longer than max_seq_len is an error naming it", async () => {
    const m = await loadModel(shortPath, { backend: "cpu" });
    try {
      const prompt = Array.from({ length: 20 }, (_, i) => 259 + (i % 10));
      await expect(collect(m.generate(prompt, { maxTokens: 1 }))).rejects.toThrow(ContextOverflowError);
      await expect(collect(m.generate(prompt, { maxTokens: 1 }))).rejects.toThrow(/max_seq_len is 16/);
      // Generation that runs into the limit streams what fits, then fails the same way.
      const seen: number[] = [];
      await expect(
        (async () => {
          for await (const t of m.generate(prompt.slice(0, 10), { ...greedy, maxTokens: 30 })) seen.push(t.token);
        })(),
      ).rejects.toThrow(/max_seq_len is 16/);
      expect(seen.length).toBe(7); // one from the prefill, six decode steps fill positions 10…15
    } finally {
      m.dispose();
    }
  });

  it("a model with a sliding window keeps going past max_seq_len", async () => {
    const m = await loadModel(shortPath, { backend: "cpu", arch: "models/mistral.llm", overrides: { sliding_window: 4 } });
    try {
      expect(m.config["sliding_window"]).toBe(4);
      const prompt = model.tokenizer.encode("hello world ab ba");
      expect(prompt.length).toBeLessThan(16);
      const { tokens } = await collect(m.generate(prompt, { temperature: 1, seed: 3, topK: 0, topP: 1, minP: 0, maxTokens: 40 }));
      expect(tokens.length).toBe(40);
      // Until the cache fills, it is exactly Mistral's attention.
      const overrides = new Map(Object.entries({ ...TINY, max_seq_len: 16, sliding_window: 4 }).map(([k, v]) => [k, String(v)]));
      const { graph } = compileFile("models/mistral.llm", { overrides }).compiled!;
      const interp = new CpuInterpreter(graph, (name, shape) => randomTensor(name, shape, { seed: 7 }));
      const exact = 16 - prompt.length + 1;
      const g = await collect(m.generate(prompt, { ...greedy, maxTokens: exact }));
      expect(g.tokens).toEqual(greedyOracle(interp, prompt, exact));
    } finally {
      m.dispose();
    }
  });

  it("maxSeqLen sizes the cache", async () => {
    const m = await loadModel(tinyPath, { backend: "cpu", maxSeqLen: 8 });
    try {
      expect(m.maxSeqLen).toBe(8);
      expect(m.config["max_seq_len"]).toBe(8);
    } finally {
      m.dispose();
    }
  });
});

describe("bad input", () => {
  it("a missing file, a file that is not GGUF, an unknown architecture: clear errors", async () => {
    await expect(loadModel(join(tmp, "nope.gguf"))).rejects.toThrow(new InputError(`${join(tmp, "nope.gguf")}: no such file or directory`));
    const text = join(tmp, "notes.txt");
    writeFileSync(text, "hello, I am not a model\n");
    await expect(loadModel(text)).rejects.toThrow(InputError);
    await expect(loadModel(text)).rejects.toThrow(/is not a GGUF file/);
    const gpt2 = join(tmp, "gpt2.gguf");
    await writeTinyModel(gpt2, { architecture: "gpt2" });
    await expect(loadModel(gpt2)).rejects.toThrow(ImportError);
    await expect(loadModel(gpt2)).rejects.toThrow(/unsupported general\.architecture "gpt2"/);
  });

  it("an architecture file with errors is reported with its diagnostics", async () => {
    const bad = join(tmp, "bad.llm");
    writeFileSync(bad, 'import "llama.llm"\nmodel broken extends llama {\n  fn ffn(x: [T, dim], w: layers) -> [T, dim] { return x + nope }\n}\n');
    const err = await loadModel(tinyPath, { backend: "cpu", arch: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toMatch(/bad\.llm:3:\d+: error\[E0201\]: unknown name 'nope'/);
    expect((err as InputError).diagnostics?.list.length).toBeGreaterThan(0);
  });

  it("token ids outside the vocabulary", async () => {
    await expect(model.logprobs([1, VOCAB])).rejects.toThrow(new InputError(`token id ${VOCAB} is out of range: the vocabulary has ${VOCAB} tokens (ids 0…${VOCAB - 1})`));
    await expect(collect(model.generate([-1]))).rejects.toThrow(/token id -1 is out of range/);
    await expect(collect(model.generate([]))).rejects.toThrow(/the prompt is empty/);
  });

  it("bad options", async () => {
    await expect(collect(model.generate("hi", { topP: 2 }))).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(collect(model.generate("hi", { maxTokens: -1 }))).rejects.toThrow(/maxTokens/);
    await expect(model.logprobs([1], { top: -1 })).rejects.toThrow(/top must be/);
  });

  it("the CUDA backend, without a driver, names libcuda.so.1", async () => {
    await expect(loadModel(tinyPath, { backend: "cuda" })).rejects.toThrow(BackendError);
    await expect(loadModel(tinyPath, { backend: "cuda" })).rejects.toThrow(/the CUDA backend is unavailable: .*libcuda\.so\.1/);
  });

  it("one generation at a time: a new one ends the one that waits for its consumer (test/api/lifecycle.test.ts has the rest)", async () => {
    const a = model.generate("hello", { maxTokens: 5 })[Symbol.asyncIterator]();
    await a.next();
    await collect(model.generate("hello", { maxTokens: 2 }));
    await expect(a.next()).rejects.toThrow(GenerationSupersededError);
  });
});

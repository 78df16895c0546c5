// llama.cpp (through node-llama-cpp) loads init-weights files, tokenizes text as llmc does, and
// gives the same next-token probabilities at f32 as llmc's CPU interpreter on the random values the
// file was written from. Skipped when
// node-llama-cpp is not installed (it is not a dependency of llmc; `npm i --no-save node-llama-cpp`).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { tokenizerFromGGUF } from "../../src/runtime/tokenizer/index.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initWeights, randomWeightSource } from "../../src/runtime/weights/init.js";
import { compileModel, type Config } from "../weights/model-helpers.js";

// A variable, so that the bundler does not try to resolve a package that may be absent.
const PACKAGE = "node-llama-cpp";
type NodeLlamaCpp = typeof import("node-llama-cpp");
const lib: NodeLlamaCpp | null = await import(PACKAGE).catch(() => null);

const base: Config = { vocab_size: 512, dim: 128, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 256, max_seq_len: 64 };
// llama.cpp's CPU GELU goes through an f16 lookup table, so Gemma (GeGLU) agrees less closely.
const cases: [string, Config, number][] = [
  ["llama", base, 1e-4],
  ["qwen2", base, 1e-4],
  // llama.cpp runs Mistral as "llama", without a sliding window: keep the prompt inside the window.
  ["mistral", { ...base, sliding_window: 48 }, 1e-4],
  ["gemma", { ...base, n_heads: 2, n_kv_heads: 1, head_dim: 32 }, 3e-2],
  ["llama", { ...base, rope_scaling: "llama3", rope_factor: 8.0, rope_original_max_pos: 64, tie_embeddings: true }, 1e-4],
];

describe.skipIf(lib === null)("llama.cpp on init-weights files", () => {
  let dir: string;
  let llama: Awaited<ReturnType<NodeLlamaCpp["getLlama"]>>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "llmc-llama-cpp-"));
    llama = await lib!.getLlama({ gpu: false, build: "never", logLevel: lib!.LlamaLogLevel.error });
  });
  afterAll(async () => {
    await llama?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [arch, cfg, tolerance] of cases) {
    it(`${arch}${cfg["rope_scaling"] ? ` (${String(cfg["rope_scaling"])} RoPE)` : ""}: same tokens, same log-probabilities within ${tolerance}`, async () => {
      const { model, graph } = compileModel(arch, cfg);
      const path = join(dir, `${arch}-${String(cfg["rope_scaling"] ?? "none")}.gguf`);
      await initWeights(model, path, { seed: 11 });
      const file = await openGGUF(path);
      const tok = tokenizerFromGGUF(file.metadata);
      await file.close();

      const text = "The keeper watched the boat through his telescope, and the students were asleep.";
      const lm = await llama.loadModel({ modelPath: path });
      try {
        const ids = tok.encode(text);
        expect(ids.length).toBeLessThan(48);
        expect(ids).toEqual([lm.tokens.bos, ...lm.tokenize(text)]);
        expect(lm.detokenize(lm.tokenize(text))).toBe(text);

        // The values init-weights drew, fed to llmc directly: llama.cpp must compute the same model from the file.
        const logits = new CpuInterpreter(graph, randomWeightSource(model, 11)).step({ tokens: Int32Array.from(ids) }).data as Float32Array;
        const ctx = await lm.createContext({ contextSize: 64, batchSize: 64, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
        const V = cfg["vocab_size"] as number;
        const out = await ctx.getSequence().controlledEvaluate(
          ids.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: V, topP: 1, minP: 0 } } }]),
        );
        let worst = 0;
        ids.forEach((_, t) => {
          const row = logits.subarray(t * V, (t + 1) * V);
          const max = Math.max(...row);
          const logSum = Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
          const probs = out[t]!.next.probabilities!;
          for (let v = 0; v < V; v++) {
            const lp = row[v]! - max - logSum;
            const p = probs.get(v) ?? 0;
            if (Math.exp(lp) > 1e-3) worst = Math.max(worst, Math.abs(lp - Math.log(p)));
          }
        });
        expect(worst).toBeLessThan(tolerance);
        await ctx.dispose();
      } finally {
        await lm.dispose();
      }
    });
  }
});

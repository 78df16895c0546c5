// Writes test/fixtures/llama-cpp/*.json: llama.cpp's next-token log-probabilities for small random
// GGUFs, so `npm test` can hold llmc to an independent reference without installing llama.cpp.
// Each fixture names how its GGUF is made (`llmc init-weights` with the architecture, config, dtype
// and seed) and the file's SHA-256; the test rebuilds the file and refuses to compare when the
// bytes differ (then rerun this script).
//
//   cd bench && npm ci && npm run fixtures       (ONLY=<case> for one)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getLlama } from "node-llama-cpp";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// The token ids come from llmc's own seeded generator, so the test can tell what was asked.
const { rng } = await import(pathToFileURL(join(root, "dist", "src", "runtime", "weights", "random.js")).href);
const llmcBin = join(root, "bin", "llmc");
const out = join(root, "test", "fixtures", "llama-cpp");

const COMMON = { vocab_size: 512, n_layers: 2, dim: 64, ffn_dim: 128, max_seq_len: 64 };
// Tolerances are |Δ log-probability|: f32 agrees to ~1e-5; q8_0 differs because llama.cpp quantizes
// activations to q8 for its dot products; Gemma because llama.cpp's CPU GELU reads an f16 table.
const CASES = [
  { name: "llama-gqa-f32", arch: "llama", set: { n_heads: 4, n_kv_heads: 2 }, dtype: "f32", tol: 1e-3 },
  { name: "llama-mqa-tied-f32", arch: "llama", set: { n_heads: 4, n_kv_heads: 1, tie_embeddings: true }, dtype: "f32", tol: 1e-3 },
  { name: "qwen2-bias-f32", arch: "qwen2", set: { n_heads: 4, n_kv_heads: 2 }, dtype: "f32", tol: 1e-3 },
  { name: "mistral-window-f32", arch: "mistral", set: { n_heads: 4, n_kv_heads: 2, sliding_window: 8 }, dtype: "f32", tol: 1e-3 },
  { name: "gemma-mqa-f32", arch: "gemma", set: { n_heads: 4, n_kv_heads: 1, head_dim: 16 }, dtype: "f32", tol: 1e-2 },
  // head_dim 32 over dim 64 and 4 heads: Qwen3's explicit head size, not dim / n_heads.
  { name: "qwen3-qknorm-f32", arch: "qwen3", set: { n_heads: 4, n_kv_heads: 2, head_dim: 32, tie_embeddings: true }, dtype: "f32", tol: 1e-3 },
  // Caps small enough to bend random scores and logits; a window of 8 on the local layer 0.
  { name: "gemma2-softcap-window-f32", arch: "gemma2", set: { n_heads: 4, n_kv_heads: 2, head_dim: 16, attn_softcap: 2, final_softcap: 5, sliding_window: 8 }, dtype: "f32", tol: 1e-2 },
  // Six layers for Gemma 3's default pattern (llama.cpp's too: no key written): layers 0-4 local with a
  // window of 8 and RoPE base 10000, layer 5 global with base 1e6; per-head q/k norms, MQA.
  { name: "gemma3-local-global-f32", arch: "gemma3", set: { n_layers: 6, n_heads: 4, n_kv_heads: 1, head_dim: 16, sliding_window: 8 }, dtype: "f32", tol: 1e-2 },
  // Fused qkv and gate_up tensors split on load; GQA, so the key and value parts are smaller than the query's.
  // llama.cpp looks up Phi-3's own special tokens when general.name contains "phi3", which a random
  // vocabulary lacks, so the file is named otherwise.
  { name: "phi3-fused-gqa-f32", arch: "phi3", set: { n_heads: 4, n_kv_heads: 2 }, dtype: "f32", tol: 1e-3, generalName: "random fused-qkv model" },
  { name: "llama-gqa-q8_0", arch: "llama", set: { n_heads: 4, n_kv_heads: 2 }, dtype: "q8_0", tol: 0.1 },
];
const POSITIONS = 20;
// Noise on every weight: initialisers give zero biases and unit norm gains, which would not show a
// bias or gain that llmc dropped.
const PERTURB = 0.05;
const TOP = 8;

mkdirSync(out, { recursive: true });
const work = mkdtempSync(join(tmpdir(), "llmc-fixtures-"));
const llama = await getLlama({ gpu: false, logLevel: "error" });
for (const c of CASES.filter((c) => !process.env.ONLY || c.name === process.env.ONLY)) {
  console.log(`${c.name} …`);
  const config = { ...COMMON, ...c.set };
  const seed = 7;
  const file = join(work, `${c.name}.gguf`);
  const sets = Object.entries(config).map(([k, v]) => `${k}=${v}`).join(",");
  execFileSync(process.execPath, [llmcBin, "init-weights", join(root, "models", `${c.arch}.llm`), "--set", sets, "--dtype", c.dtype, "--seed", String(seed), "--perturb", String(PERTURB), ...(c.generalName ? ["--name", c.generalName] : []), "-o", file], { stdio: ["ignore", "ignore", "inherit"] });
  const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
  const next = rng(1234);
  const tokens = Array.from({ length: POSITIONS }, () => 3 + Math.floor(next() * (COMMON.vocab_size - 3)));

  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  // f32 KV cache: llama.cpp's default f16 cache alone moves log-probabilities by ~1e-3.
  const context = await model.createContext({ contextSize: COMMON.max_seq_len, threads: 2, batchSize: COMMON.max_seq_len, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
  const seq = context.getSequence();
  const evaluated = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: COMMON.vocab_size, topP: 1, minP: 0 } } }]));
  await context.dispose();
  await model.dispose();

  // Per position: the next token's log-probability (when there is a next token) and the top ones.
  const positions = evaluated.map((o, i) => {
    const probs = [...o.next.probabilities.entries()];
    const top = probs.slice(0, TOP).map(([id, p]) => [id, Math.log(p)]);
    const nextToken = tokens[i + 1];
    const p = nextToken === undefined ? undefined : o.next.probabilities.get(nextToken);
    return { top, ...(p !== undefined ? { next: Math.log(p) } : {}) };
  });
  const fixture = { case: c.name, made_by: "node-llama-cpp 3.21.1 (llama.cpp, CPU, f32 KV cache)", arch: c.arch, config, dtype: c.dtype, seed, perturb: PERTURB, ...(c.generalName ? { general_name: c.generalName } : {}), sha256, tolerance: c.tol, tokens, positions };
  writeFileSync(join(out, `${c.name}.json`), JSON.stringify(fixture, null, 1) + "\n");
  console.log(`${c.name}: ${tokens.length} positions`);
}
rmSync(work, { recursive: true, force: true });

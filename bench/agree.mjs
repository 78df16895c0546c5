// Agreement with llama.cpp: random GGUFs of several shapes (written by `llmc init-weights`), the same
// token ids through llmc and through llama.cpp (node-llama-cpp, CPU), next-token log-probabilities
// compared after every prefix. At f32: max |Δ logprob| ≤ 1e-3 and the same top-1 everywhere.
//
//   cd bench && npm ci && npm run agree [-- --backend cpu|webgpu] [--json]      (ONLY=<case> for one)

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const llmcBin = join(root, "bin", "llmc");
const { loadModel } = await import(pathToFileURL(join(root, "dist", "src", "index.js")).href);
const { rng } = await import(pathToFileURL(join(root, "dist", "src", "runtime", "weights", "random.js")).href);

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "cpu" },
    json: { type: "boolean", default: false },
    tokens: { type: "string", default: "24" },
  },
});

// Shapes: multi-head, grouped-query, multi-query, tied embeddings; head_dim 64 and 128; Qwen2 biases; Gemma.
const CASES = [
  { name: "llama-mha-hd64", arch: "llama", set: { dim: 256, n_heads: 4, n_kv_heads: 4 }, dtypes: ["f32"] },
  { name: "llama-gqa-hd64", arch: "llama", set: { dim: 256, n_heads: 4, n_kv_heads: 2 }, dtypes: ["f32", "f16", "q8_0"] },
  { name: "llama-mqa-hd128", arch: "llama", set: { dim: 256, n_heads: 2, n_kv_heads: 1 }, dtypes: ["f32"] },
  { name: "llama-tied-gqa", arch: "llama", set: { dim: 256, n_heads: 4, n_kv_heads: 2, tie_embeddings: true }, dtypes: ["f32"] },
  { name: "qwen2-gqa-bias", arch: "qwen2", set: { dim: 256, n_heads: 4, n_kv_heads: 2 }, dtypes: ["f32"] },
  // llama.cpp's CPU GELU reads an f16 table (GGML_GELU_FP16), which alone moves Gemma's log-probabilities
  // by a few 1e-3; reported, not held to 1e-3.
  { name: "gemma-mqa-hd64", arch: "gemma", set: { dim: 256, n_heads: 4, n_kv_heads: 1, head_dim: 64 }, dtypes: ["f32"], approximate: true },
  // Fused qkv and gate_up tensors. llama.cpp looks up Phi-3's own special tokens when general.name
  // contains "phi3", which the random vocabulary lacks, so the file is named otherwise.
  { name: "phi3-fused-gqa", arch: "phi3", set: { dim: 256, n_heads: 4, n_kv_heads: 2 }, dtypes: ["f32", "q8_0"], generalName: "random fused-qkv model" },
];
const COMMON = { vocab_size: 512, n_layers: 2, ffn_dim: 512, max_seq_len: 256 };

const work = mkdtempSync(join(tmpdir(), "llmc-agree-"));
const llama = await getLlama({ gpu: false, logLevel: "error" });
const results = [];
let failed = false;

for (const c of CASES.filter((c) => !process.env.ONLY || c.name === process.env.ONLY)) {
  for (const dtype of c.dtypes) {
    const file = join(work, `${c.name}-${dtype}.gguf`);
    const sets = Object.entries({ ...COMMON, ...c.set }).map(([k, v]) => `${k}=${v}`).join(",");
    execFileSync(process.execPath, [llmcBin, "init-weights", join(root, "models", `${c.arch}.llm`), "--set", sets, "--dtype", dtype, "--seed", "7", ...(c.generalName ? ["--name", c.generalName] : []), "-o", file], { stdio: ["ignore", "ignore", "inherit"] });

    const next = rng(1234);
    const tokens = Array.from({ length: Number(values.tokens) }, () => 3 + Math.floor(next() * (COMMON.vocab_size - 3)));

    // llama.cpp: one evaluation, the full next-token distribution after every prefix.
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    // f32 KV cache: llama.cpp defaults to f16, which alone moves log-probabilities by ~1e-3.
    const context = await model.createContext({ contextSize: 256, threads: 2, batchSize: 256, flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32" });
    const seq = context.getSequence();
    const out = await seq.controlledEvaluate(tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: COMMON.vocab_size, topP: 1, minP: 0 } } }]));
    const ref = out.map((o) => o?.next?.probabilities);
    await context.dispose();
    await model.dispose();

    // llmc: the same tokens.
    const ours = await loadModel(file, { backend: values.backend });
    const lp = await ours.logprobs(tokens, { top: COMMON.vocab_size });
    await ours.dispose();

    let maxDiff = 0;
    let top1 = 0;
    for (let i = 0; i < tokens.length; i++) {
      const theirs = ref[i];
      const mine = new Map(lp.positions[i].top.map((e) => [e.id, e.logprob]));
      const theirTop = theirs.entries().next().value[0];
      if (lp.positions[i].top[0].id === theirTop) top1++;
      for (const [id, p] of theirs) {
        if (p < 1e-12) continue; // log of a probability llama.cpp rounded to ~0 says nothing
        maxDiff = Math.max(maxDiff, Math.abs(Math.log(p) - mine.get(id)));
      }
    }
    const r = { case: c.name, dtype, positions: tokens.length, max_abs_dlogprob: maxDiff, top1_agreement: top1 / tokens.length };
    if (dtype === "f32" && !c.approximate && (maxDiff > 1e-3 || top1 !== tokens.length)) {
      r.fail = true;
      failed = true;
    }
    results.push(r);
    if (!values.json) {
      console.log(`${c.name.padEnd(18)} ${dtype.padEnd(5)} max|Δlogprob| ${maxDiff.toExponential(2).padStart(9)}  top-1 ${(100 * top1 / tokens.length).toFixed(1).padStart(5)}%${r.fail ? "  FAIL" : c.approximate ? "  (llama.cpp approximates GELU)" : ""}`);
    }
  }
}

rmSync(work, { recursive: true, force: true });
if (values.json) console.log(JSON.stringify({ backend: values.backend, results }, null, 2));
else console.log(failed ? "\nFAILED: f32 cases must agree to 1e-3 with the same top-1" : "\nall f32 cases agree with llama.cpp (≤ 1e-3, top-1 100%)");
process.exitCode = failed ? 1 : 0;

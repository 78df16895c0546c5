// Attention as a pattern (passes/attention.ts) against the built-in op, on this machine's WebGPU
// adapter: LLaMA with std/nn.llm's written `attention` (fused by the pass) and with the built-in
// `attention` (a copy of std/nn.llm without the library function, so the call reaches the built-in);
// Gemma 2's soft-capped attention fused and left as written (the pipeline without fuse-attention).
// Variants alternate in blocks of 8 decode steps over a past of 128+ positions (and, every other
// round, a prefill of 128 tokens) on one device, so a shared, noisy machine disturbs them alike; each
// reports wall tokens/s of decode (median, 20th percentile) and the prefill's median milliseconds. The first two must match within noise: their kernels
// are the same text (checked here too).
//
//   npx tsc -p tsconfig.json && EGL_PLATFORM=surfaceless node test/webgpu/bench-attention.mjs [rounds]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFile } from "../../dist/src/compiler/compile.js";
import { DEFAULT_PIPELINE } from "../../dist/src/compiler/passes/index.js";
import { requestGpu } from "../../dist/src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../dist/src/runtime/webgpu/executor.js";
import { randomTensor } from "../../dist/src/runtime/weights/random.js";

const rounds = Number(process.argv[2] ?? 10);
const models = new URL("../../models/", import.meta.url).pathname;
const cfg = { vocab_size: 2048, dim: 256, n_layers: 4, n_heads: 8, n_kv_heads: 4, ffn_dim: 688, max_seq_len: 512 };
const gemmaCfg = { ...cfg, head_dim: 32, sliding_window: 64 };

// The built-in's LLaMA: llama.llm beside a std/nn.llm without the library's `attention`.
const dir = mkdtempSync(join(tmpdir(), "llmc-bench-attention-"));
mkdirSync(join(dir, "std"));
// The built-in has no dropout_p (dropout acts only in training, and inference graphs drop it).
const llama = readFileSync(join(models, "llama.llm"), "utf8");
const builtinCall = llama.replace(", dropout_p: attn_dropout)", ")");
if (builtinCall === llama) throw new Error("llama.llm's attention call has no dropout_p to leave out");
writeFileSync(join(dir, "llama.llm"), builtinCall);
const std = readFileSync(join(models, "std/nn.llm"), "utf8");
const withoutAttention = std.replace(/\nfn attention\([\s\S]*?\n}\n/, "\n");
if (withoutAttention === std) throw new Error("std/nn.llm has no `fn attention` to leave out");
writeFileSync(join(dir, "std/nn.llm"), withoutAttention);

const specs = [
  { name: "llama pattern", path: join(models, "llama.llm"), cfg, pipeline: DEFAULT_PIPELINE },
  { name: "llama built-in", path: join(dir, "llama.llm"), cfg, pipeline: DEFAULT_PIPELINE },
  { name: "gemma2 fused", path: join(models, "gemma2.llm"), cfg: gemmaCfg, pipeline: DEFAULT_PIPELINE },
  { name: "gemma2 written", path: join(models, "gemma2.llm"), cfg: gemmaCfg, pipeline: DEFAULT_PIPELINE.filter((p) => p !== "fuse-attention") },
];
const gpu = await requestGpu(process.env.BACKEND ?? "auto");
const prompt = Int32Array.from({ length: 128 }, (_, i) => (i * 31 + 7) % cfg.vocab_size);
const variants = [];
for (const s of specs) {
  const res = compileFile(s.path, { overrides: new Map(Object.entries(s.cfg).map(([k, x]) => [k, String(x)])), pipeline: s.pipeline });
  if (!res.compiled) throw new Error(`${s.name}: ${res.diagnostics.map((d) => d.message).join("\n")}`);
  const graph = res.compiled.graph;
  const ex = await createWebGpuExecutor(graph, (n, sh) => randomTensor(n, sh, { seed: 1 }), gpu);
  // Pipelines are made on a step shape's first use: not timed.
  await ex.step({ tokens: prompt });
  await ex.step({ tokens: Int32Array.of(1) });
  variants.push({ ...s, ex, graph, attentions: graph.nodes.filter((n) => n.op === "attention").length, times: [], prefill: [], dispatches: await ex.dispatchesPerStep(1) });
}
const [pattern, builtin] = variants;
const ir = (v) => v.graph.nodes.filter((n) => n.op === "attention").map((n) => JSON.stringify({ ...n.attrs, scale: Math.fround(n.attrs.scale) })).join();
if (ir(pattern) !== ir(builtin)) throw new Error(`the pattern's attention differs from the built-in's: ${ir(pattern)} vs ${ir(builtin)}`);

for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    if (r % 2 === 0) {
      v.ex.reset();
      const t0 = performance.now();
      await v.ex.step({ tokens: prompt });
      v.prefill.push(performance.now() - t0);
    }
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      await v.ex.step({ tokens: Int32Array.of((i * 7 + 3) % cfg.vocab_size) });
      v.times.push(performance.now() - t0);
    }
  }
}
const q = (xs, f) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * f)];
console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend})`);
for (const v of variants) {
  console.log(`${v.name.padEnd(15)} attention nodes ${v.attentions}  dispatches/decode step ${String(v.dispatches).padStart(3)}  decode tok/s p50 ${(1000 / q(v.times, 0.5)).toFixed(1)}  p20 ${(1000 / q(v.times, 0.2)).toFixed(1)}  prefill 128 p50 ${q(v.prefill, 0.5).toFixed(0)} ms`);
  v.ex.dispose();
}
gpu.destroy();
rmSync(dir, { recursive: true, force: true });

// Decode speed of the 27M LLaMA of DESIGN.md ("Measured": dim 512, 8 layers, 8/4 heads, ffn 1376,
// vocab 4096, f32, random weights) on this machine's WebGPU adapter, for fusion-rule and kernel-shape
// variants. Variants alternate in blocks of 8 decode steps on one device, so a shared, noisy machine
// disturbs them alike; each reports wall tokens/s (median and 20th percentile of step times) and CPU
// milliseconds per token (process.cpuUsage, which counts llvmpipe's threads).
//
//   npx tsc -p tsconfig.json && EGL_PLATFORM=surfaceless node test/webgpu/bench-fusion.mjs [rounds]
//   VARIANTS="name:pipeline:rows:workgroup:merge,…"  pipeline: none | norotary | noprologue | all
import { compileFile } from "../../dist/src/compiler/compile.js";
import { CPU_TUNING } from "../../dist/src/compiler/emit/wgsl/index.js";
import { DEFAULT_PIPELINE } from "../../dist/src/compiler/passes/index.js";
import { requestGpu } from "../../dist/src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../dist/src/runtime/webgpu/executor.js";
import { randomTensor } from "../../dist/src/runtime/weights/random.js";

const rounds = Number(process.argv[2] ?? 20);
const cfg = { vocab_size: 4096, dim: 512, n_layers: 8, n_heads: 8, n_kv_heads: 4, ffn_dim: 1376, max_seq_len: 512 };
const without = (...names) => DEFAULT_PIPELINE.filter((p) => !names.includes(p));
const pipelines = { none: without("fuse-rotary", "fuse-prologue"), norotary: without("fuse-rotary"), noprologue: without("fuse-prologue"), all: DEFAULT_PIPELINE };
const spec = process.env.VARIANTS ?? "rules-off:none:8:32:0,no-prologue:noprologue:8:32:1,no-rotary:norotary:8:32:1,no-merge:all:8:32:0,all:all:8:32:1,all-r4w64:all:4:64:1";
const gpu = await requestGpu(process.env.BACKEND ?? "auto");
const model = new URL("../../models/llama.llm", import.meta.url).pathname;
const variants = [];
for (const v of spec.split(",")) {
  const [name, pipeline, rows, wg, merge] = v.split(":");
  const res = compileFile(model, { overrides: new Map(Object.entries(cfg).map(([k, x]) => [k, String(x)])), pipeline: pipelines[pipeline] });
  const tuning = { ...CPU_TUNING, linear: { ...CPU_TUNING.linear, rowsPerInvocation: Number(rows), workgroupSize: Number(wg), merge: merge === "1" } };
  const ex = await createWebGpuExecutor(res.compiled.graph, (n, s) => randomTensor(n, s, { seed: 1 }), gpu, { tuning });
  await ex.step({ tokens: Int32Array.of(1, 2, 3, 4) });
  variants.push({ name, ex, times: [], cpu: [], dispatches: await ex.dispatchesPerStep(1) });
}
for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    if (v.ex.past > 400) (v.ex.reset(), await v.ex.step({ tokens: Int32Array.of(1, 2, 3, 4) }));
    await v.ex.step({ tokens: Int32Array.of(9) });
    for (let i = 0; i < 8; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await v.ex.step({ tokens: Int32Array.of((i * 7 + 3) % cfg.vocab_size) });
      const c = process.cpuUsage(c0);
      v.times.push(performance.now() - t0);
      v.cpu.push((c.user + c.system) / 1000);
    }
  }
}
const q = (xs, f) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * f)];
console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend})`);
for (const v of variants) {
  console.log(`${v.name.padEnd(12)} dispatches/decode step ${String(v.dispatches).padStart(3)}  tok/s p50 ${(1000 / q(v.times, 0.5)).toFixed(1)}  p20 ${(1000 / q(v.times, 0.2)).toFixed(1)}  cpu-ms/token ${q(v.cpu, 0.5).toFixed(2)}`);
  v.ex.dispose();
}
gpu.destroy();

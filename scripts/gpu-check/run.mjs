// The GPU check: llmc's CUDA backend on a real NVIDIA GPU, against the CPU reference, then a decode
// benchmark of a Llama-3-8B-shaped model with random f16 weights, measured against the memory-
// bandwidth roofline (weight bytes per token ÷ the GPU's bandwidth from its memory clock and bus
// width). Started by scripts/gpu-check.sh. (scripts/gpu-bench.sh measures more: q8_0 and q4_0,
// prefill, long contexts, WebGPU.)
//
//   node scripts/gpu-check/run.mjs [--dry-run] [--kernels DIR] [--tokens N] [--context N] [--skip-bench]
//   node scripts/gpu-check/run.mjs --prebuild DIR     (where nvcc is: PTX for every case and profile)
//   node scripts/gpu-check/run.mjs --emulate          (in the repository, with g++: every step on the
//                                                      CPU emulation of CUDA; the benchmark on a small model)
//
// --dry-run does everything that needs no GPU: compiles the models, emits their CUDA for every
// tuning profile, checks the prebuilt PTX holds every kernel, and runs the CPU reference.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  CHECKS, checkPrebuilt, checkWeights, compareLogits, compile, cudaFacts, findNvcc, fmt, gib, libraries, log, measuredBandwidth, prebuild,
  referenceLogits, root, startEmulation,
} from "./shared.mjs";

const dist = (p) => join(root, "dist", "src", p);
const { CudaExecutor } = await import(dist("runtime/cuda/executor.js"));
const { tiledRandomWeights } = await import(dist("runtime/weights/random-fast.js"));

const BENCH = { name: "Llama-3-8B shape, f16 weights", model: "models/examples/llama-3-8b.llm", format: "f16", chunk: 128 };

/** Architectures the prebuilt PTX covers (the driver compiles PTX for newer GPUs too). */
const ARCHS = ["sm_75", "sm_80", "sm_90"];

function args() {
  const a = process.argv.slice(2);
  const opt = { dryRun: false, emulate: false, prebuild: null, kernels: null, tokens: 64, context: 1024, skipBench: false, prompt: 128 };
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v === "--dry-run") opt.dryRun = true;
    else if (v === "--emulate") opt.emulate = true;
    else if (v === "--prebuild") opt.prebuild = a[++i];
    else if (v === "--kernels") opt.kernels = a[++i];
    else if (v === "--tokens") opt.tokens = Number(a[++i]);
    else if (v === "--context") opt.context = Number(a[++i]);
    else if (v === "--prompt") opt.prompt = Number(a[++i]);
    else if (v === "--skip-bench") opt.skipBench = true;
    else throw new Error(`unknown argument ${v}`);
  }
  if (opt.emulate) Object.assign(opt, { tokens: 4, prompt: 8, context: 64 });
  if (!(opt.tokens > 0) || !(opt.context > opt.prompt + opt.tokens)) throw new Error("need --tokens > 0 and --context > --prompt + --tokens");
  return opt;
}

/** The emulation's image maker under --emulate. */
let image = null;
const executorOpts = (o) => (image ? { ...o, image } : o);

const benchGraph = (opt) =>
  compile(BENCH, { max_seq_len: String(opt.context), ...(opt.emulate ? { vocab_size: "512", dim: "256", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "512" } : {}) });

// ------------------------------------------------------------------------------------------ checks

async function correctness(c, graph, kernelDirs, dryRun) {
  const want = referenceLogits(c, graph);
  if (dryRun) return { ok: true, text: `CPU reference only (${want.length} steps)` };
  const ex = new CudaExecutor(graph, checkWeights, executorOpts({ weightDType: c.format, prefillChunk: c.chunk, kernelDirs }));
  try {
    await ex.init();
    const r = await compareLogits(c, ex, want);
    return { ok: r.ok, text: `${r.text}; ${ex.lastStep.launches} launches per decode step, CUDA graph ${ex.lastStep.graphs ? "on" : "off"}` };
  } finally {
    ex.dispose();
  }
}

// ------------------------------------------------------------------------------------------ benchmark

function deviceReport() {
  const g = cudaFacts();
  log(`GPU: ${g.name}, compute capability ${g.computeCapability}, ${g.multiprocessors} SMs, ${gib(g.totalMemory)}`);
  log(`driver: ${g.driver} (${g.libcuda}); memory clock ${g.memoryClockMHz} MHz × ${g.busWidthBits}-bit bus → ${fmt(g.peakBandwidth / 1e9)} GB/s peak`);
}

async function benchmark(opt, kernelDirs) {
  const graph = benchGraph(opt);
  log(`\n${BENCH.name}: compiling and uploading (max_seq_len ${opt.context}) …`);
  const t0 = performance.now();
  let last = 0;
  const ex = new CudaExecutor(graph, tiledRandomWeights(3), executorOpts({
    weightDType: BENCH.format, prefillChunk: opt.emulate ? 8 : BENCH.chunk, kernelDirs,
    onProgress: (done, total) => {
      if (done / total >= last + 0.25) {
        last = Math.floor((done / total) * 4) / 4;
        log(`  uploaded ${gib(done)} of ${gib(total)}`);
      }
    },
  }));
  try {
    await ex.init();
    const info = ex.info;
    log(`  ready in ${fmt((performance.now() - t0) / 1000)} s; profile ${info.profile}; kernels from ${info.library}`);
    const weightBytes = ex.module.weights.reduce((a, w) => a + w.layout.bytes, 0);
    // A decode step reads every weight once, except an untied embedding table, of which it reads one row.
    const embed = ex.module.weights.find((w) => w.name === "embed");
    const tied = !ex.module.weights.some((w) => w.name === "lm_head");
    const perToken = weightBytes - (embed && !tied ? embed.layout.bytes : 0);
    const vocab = graph.nodes.find((n) => n.op === "weight" && n.attrs.name === "embed").ty.shape[0].get("");
    const prompt = Int32Array.from({ length: opt.prompt }, (_, i) => (i * 7919) % vocab);
    let t = performance.now();
    await ex.step({ tokens: prompt });
    const prefillS = (performance.now() - t) / 1000;
    await ex.step({ tokens: Int32Array.of(1) }); // captures the decode graph
    t = performance.now();
    for (let i = 0; i < opt.tokens; i++) await ex.step({ tokens: Int32Array.of((i * 31) % vocab) });
    const s = (performance.now() - t) / 1000;
    const tps = opt.tokens / s;
    const roofline = info.peakBandwidth / perToken;
    log(`  prefill: ${opt.prompt} tokens in ${fmt(prefillS * 1000)} ms (${fmt(opt.prompt / prefillS)} tokens/s)`);
    log(`  decode: ${opt.tokens} tokens at P ${opt.prompt + 1}…${opt.prompt + opt.tokens} in ${fmt(s * 1000)} ms → ${fmt(tps)} tokens/s, ${ex.lastStep.launches} launches per step (one CUDA graph)`);
    log(`  weights read per token: ${gib(perToken)}; roofline ${fmt(info.peakBandwidth / 1e9)} GB/s ÷ that = ${fmt(roofline)} tokens/s`);
    log(`  fraction of the bandwidth roofline: ${fmt((100 * tps) / roofline)}% (achieved ${fmt((tps * perToken) / 1e9)} GB/s of weights)`);
    try {
      const bw = measuredBandwidth(opt.emulate ? 1 << 24 : 1 << 30);
      log(`  device-to-device copy bandwidth: ${fmt(bw / 1e9)} GB/s → ${fmt((100 * tps * perToken) / bw)}% of that`);
    } catch (e) {
      log(`  (copy bandwidth not measured: ${e.message})`);
    }
  } finally {
    ex.dispose();
  }
}

// ------------------------------------------------------------------------------------------ main

async function main() {
  const opt = args();
  if (opt.prebuild) return prebuild(opt.prebuild, [...CHECKS.map((c) => [c, compile(c)]), [BENCH, benchGraph(opt)]], ARCHS);
  if (opt.emulate) image = await startEmulation();
  const kernelDirs = libraries(opt.kernels ?? join(root, "kernels"));
  log(`llmc GPU check${opt.dryRun ? " (dry run: no GPU used)" : opt.emulate ? " (on the CPU emulation of CUDA; benchmark on a small model)" : ""}; ${kernelDirs.length} prebuilt kernel libraries${findNvcc() ? "; nvcc found (kernels can also be compiled here)" : ""}`);
  if (!opt.dryRun) deviceReport();
  let failed = 0;
  log("\ncorrectness: CUDA logits vs the CPU reference (relative max difference)");
  for (const c of CHECKS) {
    try {
      const graph = compile(c);
      if (opt.dryRun) checkPrebuilt(kernelDirs, graph, c);
      const r = await correctness(c, graph, kernelDirs, opt.dryRun);
      log(`  ${r.ok ? "PASS" : "FAIL"} ${c.name}: ${r.text}`);
      if (!r.ok) failed++;
    } catch (e) {
      failed++;
      log(`  FAIL ${c.name}: ${e.stack ?? e.message}`);
    }
  }
  if (opt.dryRun) {
    checkPrebuilt(kernelDirs, benchGraph(opt), BENCH);
    log(`\n${BENCH.name}: ${kernelDirs.length ? "kernels prebuilt for every profile" : "no prebuilt kernels here (scripts/gpu-check/build.sh makes them)"}`);
  } else if (!opt.skipBench) {
    try {
      await benchmark(opt, kernelDirs);
    } catch (e) {
      failed++;
      log(`  FAIL benchmark: ${e.stack ?? e.message}`);
    }
  }
  log(failed ? `\n${failed} check(s) failed` : "\nall checks passed");
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`gpu-check: ${e.stack ?? e.message}\n`);
  process.exitCode = 2;
});

// The GPU benchmark: first correctness (the CUDA and the WebGPU logits of random tiny models against
// the CPU reference, gpu-check's cases), then the Llama-3-8B shape with f16, q8_0 and q4_0 weights
// on CUDA and on WebGPU (Dawn on Vulkan): prefill of a 512-token prompt against the tensor-core
// peak, decode at contexts 128 and 4096 against the bandwidth roofline (the bytes a token reads ÷
// the peak bandwidth from the memory clock and bus width; a device-to-device copy measures what is
// reachable). Every phase is budgeted so the run ends within --budget seconds; a phase that would
// not fit is skipped with a line saying so. Started by scripts/gpu-bench.sh.
//
//   node scripts/gpu-bench/run.mjs [--json PATH] [--budget S] [--tokens N] [--kernels DIR]
//                                  [--backends cuda,webgpu] [--formats f16,q8_0,q4_0] [--skip-checks]
//   node scripts/gpu-bench/run.mjs --dry-run [--software-webgpu]
//   node scripts/gpu-bench/run.mjs --prebuild DIR     (where nvcc is: PTX for sm_80 and sm_90)
//   node scripts/gpu-bench/run.mjs --emulate          (in the repository, with g++: the whole run on
//                                                      the CPU emulation of CUDA and WebGPU's software
//                                                      adapter, on a small model — tries the code, measures nothing)
//
// --dry-run does what needs no GPU: compiles every model, emits its CUDA for every profile the PTX
// covers and its WGSL for a hardware adapter, checks the prebuilt PTX holds every kernel, generates
// benchmark weights and checks they decode to finite values of the expected deviation, runs the CPU
// reference, and prints the plan with time estimates. --software-webgpu also runs the WebGPU checks
// on the software adapter (slow; to try the WebGPU path without a GPU).

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import {
  CHECKS, checkPrebuilt, checkWeights, compareLogits, compile, cudaFacts, findNvcc, fmt, gib, libraries, log, measuredBandwidth, prebuild,
  referenceLogits, root, startEmulation,
} from "../gpu-check/shared.mjs";

const dist = (p) => join(root, "dist", "src", p);
const { CudaExecutor } = await import(dist("runtime/cuda/executor.js"));
const { compileWgsl, wgslProfile } = await import(dist("compiler/target/wgsl.js"));
const { tiledRandomWeights } = await import(dist("runtime/weights/random-fast.js"));
const { decodeTensor, deviceLayout, unpackFromDevice } = await import(dist("compiler/target/storage.js"));

/** Architectures the prebuilt PTX covers: Ampere and Hopper (newer GPUs JIT the sm_90 PTX). */
const ARCHS = ["sm_80", "sm_90"];
const FORMATS = ["f16", "q8_0", "q4_0"];
/** What is measured: the 8B shape (prompt, decode contexts and tokens, the max_seq_len the PTX is
 *  built for, tokens per CUDA prefill chunk); under --emulate a small model on the CPU emulations. */
const SHAPE = { prompt: 512, contexts: [128, 4096], tokens: 64, maxSeqLen: 4096 + 2 * 64, chunk: 128, set: {} };
const EMULATED = {
  prompt: 24, contexts: [8, 40], tokens: 4, maxSeqLen: 64, chunk: 16,
  set: { vocab_size: "512", dim: "256", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "512" },
};
const benchCase = (format) => ({
  name: `Llama-3-8B shape, ${format}`, model: "models/examples/llama-3-8b.llm", format, chunk: SHAPE.chunk, set: { ...SHAPE.set, max_seq_len: String(SHAPE.maxSeqLen) },
});

/** Rates the plan assumes before anything is measured (deliberately low: the budget must hold). */
const ASSUMED = {
  hostBytesPerS: 2e9, // weights generated and uploaded
  compileS: { cuda: 5, webgpu: 20 },
  flops: { cuda: 150e12, webgpu: 10e12 },
  bandwidth: 2e12,
};
/** The limits the dry run plans with for an NVIDIA adapter on Vulkan: assumed, not read from one. */
const NVIDIA_VULKAN_LIMITS = { maxStorageBuffersPerShaderStage: 10, maxStorageBufferBindingSize: 2 ** 32 - 4, maxComputeWorkgroupSizeX: 1024, maxComputeInvocationsPerWorkgroup: 1024 };

function args() {
  const a = process.argv.slice(2);
  const opt = {
    dryRun: false, softwareWebgpu: false, emulate: false, prebuild: null, kernels: null, json: null, budget: 480, tokens: SHAPE.tokens,
    backends: ["cuda", "webgpu"], formats: FORMATS, skipChecks: false,
  };
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v === "--dry-run") opt.dryRun = true;
    else if (v === "--software-webgpu") opt.softwareWebgpu = true;
    else if (v === "--emulate") opt.emulate = true;
    else if (v === "--prebuild") opt.prebuild = a[++i];
    else if (v === "--kernels") opt.kernels = a[++i];
    else if (v === "--json") opt.json = a[++i];
    else if (v === "--budget") opt.budget = Number(a[++i]);
    else if (v === "--tokens") opt.tokens = Number(a[++i]);
    else if (v === "--backends") opt.backends = a[++i].split(",");
    else if (v === "--formats") opt.formats = a[++i].split(",");
    else if (v === "--skip-checks") opt.skipChecks = true;
    else throw new Error(`unknown argument ${v}`);
  }
  if (opt.emulate) {
    Object.assign(SHAPE, EMULATED);
    Object.assign(opt, { tokens: Math.min(opt.tokens, SHAPE.tokens), softwareWebgpu: true });
  }
  if (!(opt.budget > 0) || !(opt.tokens > 0 && opt.tokens <= SHAPE.tokens)) throw new Error(`need --budget > 0 and 0 < --tokens <= ${SHAPE.tokens}`);
  for (const b of opt.backends) if (b !== "cuda" && b !== "webgpu") throw new Error(`unknown backend ${b} (cuda, webgpu)`);
  for (const f of opt.formats) if (!FORMATS.includes(f)) throw new Error(`unknown format ${f} (${FORMATS.join(", ")})`);
  return opt;
}

// ------------------------------------------------------------------------------------------ the model

/** What the figures need to know of the model, from the program's device weights. */
function modelFacts(weights) {
  const by = new Map(weights.map((w) => [w.name, w]));
  const layers = weights.filter((w) => /^layers\.\d+\.wq$/.test(w.name)).length;
  const embed = by.get("embed");
  const lmHead = by.get("lm_head") ?? embed;
  const layerMatrices = weights.filter((w) => w.name.startsWith("layers.") && w.shape.length === 2).reduce((a, w) => a + w.shape[0] * w.shape[1], 0);
  const all = weights.reduce((a, w) => a + w.layout.bytes, 0);
  // A decode token reads every weight once, but of an untied embedding table one row.
  const untiedEmbed = by.has("lm_head") && embed ? embed.layout.bytes - embed.layout.bytes / embed.shape[0] : 0;
  const qDim = by.get("layers.0.wq").shape[0];
  const kvDim = by.get("layers.0.wk").shape[0];
  return {
    layers, weightBytes: all, decodeWeightBytes: all - untiedEmbed, layerMatrices, qDim,
    lmHead: lmHead.shape[0] * lmHead.shape[1],
    kvBytesPerPosition: layers * 2 * kvDim * 4, // K and V, f32, every layer
  };
}

const planned = new Map();
/** The model's facts with `format` weights before any GPU is opened: from the WGSL program for an
 *  NVIDIA adapter (both targets store weights alike). */
function plannedFacts(graph, format) {
  if (!planned.has(format)) planned.set(format, modelFacts(compileWgsl(graph, { profile: wgslProfile(false, NVIDIA_VULKAN_LIMITS), requested: format }).weights));
  return planned.get(format);
}

/** FLOPs of a prefill of T tokens after P cached ones: the layers' matmuls, causal attention (QKᵀ and
 *  PV) and the logits of the last token (what a prompt needs). */
const prefillFlops = (m, T, P = 0) => 2 * T * m.layerMatrices + 4 * m.layers * m.qDim * (T * P + (T * (T + 1)) / 2) + 2 * m.lmHead;
/** Bytes one decode step at context P reads: the weights and the KV cache. */
const decodeBytes = (m, P) => m.decodeWeightBytes + P * m.kvBytesPerPosition;

// ------------------------------------------------------------------------------------------ budget

class Budget {
  constructor(seconds) {
    this.start = performance.now();
    this.end = this.start + seconds * 1000;
    this.limit = this.end;
  }
  get elapsed() {
    return (performance.now() - this.start) / 1000;
  }
  get left() {
    return (this.limit - performance.now()) / 1000;
  }
  /** Whether a phase estimated at `s` seconds fits; else logs why it is skipped. */
  fits(what, s) {
    if (s <= this.left) return true;
    log(`    SKIP ${what}: needs about ${fmt(s)} s, ${fmt(Math.max(0, this.left))} s of the budget left`);
    return false;
  }
}

// ------------------------------------------------------------------------------------------ backends

/** --emulate: CUDA modules built for the CPU (tools/cuda-emulation), WebGPU on the software adapter. */
let emulatedImage = null;
let softwareAdapter = false;

let webgpu = null;
/** Dawn's hardware adapter (Vulkan; the software one under --software-webgpu), once; null with the
 *  reason when there is none. */
async function webgpuDevice() {
  if (webgpu) return webgpu;
  const software = softwareAdapter;
  try {
    const { requestGpu } = await import(dist("runtime/webgpu/device.js"));
    const { WebGpuExecutor } = await import(dist("runtime/webgpu/executor.js"));
    const gpu = await requestGpu(software ? "software" : "hardware");
    const a = gpu.adapter;
    const limits = gpu.limits;
    webgpu = {
      gpu, WebGpuExecutor, error: null,
      adapter: { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description, backend: a.backend },
      limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize, maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage },
    };
  } catch (e) {
    webgpu = { gpu: null, error: e.message };
  }
  return webgpu;
}

/** An executor of `backend` on `graph`, ready to step, with `weights`; its program's weights. */
async function openExecutor(backend, graph, weights, format, kernelDirs, chunk = SHAPE.chunk) {
  if (backend === "cuda") {
    const ex = new CudaExecutor(graph, weights, { weightDType: format, prefillChunk: chunk, kernelDirs, ...(emulatedImage ? { image: emulatedImage } : {}) });
    try {
      await ex.init();
    } catch (e) {
      ex.dispose();
      throw e;
    }
    return { ex, weights: ex.module.weights, detail: `profile ${ex.info.profile}; ${ex.info.library}` };
  }
  const w = await webgpuDevice();
  if (!w.gpu) throw new Error(`no WebGPU adapter: ${w.error}`);
  const ex = new w.WebGpuExecutor(graph, weights, w.gpu, { weightDType: format });
  try {
    await ex.ready();
  } catch (e) {
    ex.dispose();
    throw e;
  }
  return { ex, weights: ex.program.weights, detail: `${w.adapter.description || w.adapter.device} (${w.adapter.backend})` };
}

// ------------------------------------------------------------------------------------------ checks

async function checks(backends, kernelDirs, opt) {
  const results = [];
  for (const backend of backends) {
    log(`\ncorrectness: ${backend === "cuda" ? "CUDA" : "WebGPU"} logits vs the CPU reference (relative max difference)`);
    for (const c of CHECKS) {
      const t = performance.now();
      let r;
      try {
        const graph = compile(c);
        const want = referenceLogits(c, graph);
        const { ex } = await openExecutor(backend, graph, checkWeights, c.format, kernelDirs, c.chunk);
        try {
          r = await compareLogits(c, ex, want);
        } finally {
          ex.dispose();
        }
      } catch (e) {
        r = { ok: false, text: e.message.split("\n")[0] };
      }
      log(`  ${r.ok ? "PASS" : "FAIL"} ${c.name}: ${r.text} (${fmt((performance.now() - t) / 1000)} s)`);
      results.push({ backend, name: c.name, ok: r.ok, result: r.text });
    }
  }
  return results;
}

// ------------------------------------------------------------------------------------------ benchmark

const tokensOf = (n, vocab, salt) => Int32Array.from({ length: n }, (_, i) => (i * 7919 + salt) % vocab);

function finite(t) {
  for (const x of t.data) if (!Number.isFinite(x)) return false;
  return true;
}

/** One row: `backend` with `format` weights. Fills `row` as phases complete. */
async function benchRow(row, graph, gpu, budget, kernelDirs, opt) {
  const { backend, format } = row;
  const vocab = graph.nodes.find((n) => n.op === "weight" && n.attrs.name === "embed").ty.shape[0].get("");
  const estimateBytes = plannedFacts(graph, format).weightBytes;
  if (!budget.fits(`${backend} ${format}: loading`, ASSUMED.compileS[backend] + estimateBytes / ASSUMED.hostBytesPerS)) return (row.result = "skipped: no time to load");
  let t = performance.now();
  const opened = await openExecutor(backend, graph, tiledRandomWeights(7), format, kernelDirs);
  const { ex } = opened;
  try {
    const m = modelFacts(opened.weights);
    row.load_s = (performance.now() - t) / 1000;
    row.weight_bytes = m.weightBytes;
    row.detail = opened.detail;
    log(`  ${backend} ${format}: ${gib(m.weightBytes)} of weights loaded in ${fmt(row.load_s)} s (${fmt(m.weightBytes / 1e9 / row.load_s, 2)} GB/s with compiling); ${opened.detail}`);

    // Prefill: the first step of this shape builds it (WebGPU pipelines; CUDA warms up), so time the second.
    const flopRate = ASSUMED.flops[backend];
    const prompt = tokensOf(SHAPE.prompt, vocab, 1);
    if (budget.fits("prefill", (2 * prefillFlops(m, SHAPE.prompt)) / flopRate + 10)) {
      await ex.step({ tokens: prompt, read: "last" });
      ex.reset();
      t = performance.now();
      const logits = await ex.step({ tokens: prompt, read: "last" });
      const s = (performance.now() - t) / 1000;
      const flops = prefillFlops(m, SHAPE.prompt) / s;
      row.prefill = { tokens: SHAPE.prompt, seconds: s, tokens_per_s: SHAPE.prompt / s, tflops: flops / 1e12, tensor_peak_tflops: gpu.tensorPeak.flops / 1e12, fraction_of_peak: flops / gpu.tensorPeak.flops, finite: finite(logits) };
      log(`    prefill ${SHAPE.prompt}: ${fmt(SHAPE.prompt / s)} tokens/s = ${fmt(flops / 1e12)} TFLOP/s, ${fmt((100 * flops) / gpu.tensorPeak.flops)}% of the ${fmt(gpu.tensorPeak.flops / 1e12, 0)} TFLOP/s tensor peak${finite(logits) ? "" : " (NON-FINITE LOGITS)"}`);
    }
    const measuredRate = row.prefill ? row.prefill.tflops * 1e12 : flopRate;

    row.decode = [];
    for (const context of SHAPE.contexts) {
      const fill = context - (ex.past > 0 && ex.past <= context ? ex.past : 0);
      const decodeS = ((opt.tokens + 1) * decodeBytes(m, context)) / ASSUMED.bandwidth;
      if (!budget.fits(`decode at context ${context}`, prefillFlops(m, fill, context - fill) / measuredRate + decodeS + 2)) break;
      if (ex.past === 0 || ex.past > context) {
        ex.reset();
        await ex.step({ tokens: tokensOf(context, vocab, 2), read: "last" });
      } else if (fill > 0) {
        await ex.step({ tokens: tokensOf(fill, vocab, 3), read: "last" });
      }
      await ex.step({ tokens: Int32Array.of(1), read: "argmax" }); // CUDA captures the decode graph
      const from = ex.past;
      t = performance.now();
      let last = null;
      for (let i = 0; i < opt.tokens; i++) last = await ex.step({ tokens: Int32Array.of((i * 31 + 5) % vocab), read: "argmax" });
      const s = (performance.now() - t) / 1000;
      const tps = opt.tokens / s;
      const bytes = decodeBytes(m, from + opt.tokens / 2);
      const roofline = gpu.peakBandwidth / bytes;
      const d = {
        context: from, tokens: opt.tokens, seconds: s, tokens_per_s: tps, bytes_per_token: bytes, achieved_gb_s: (tps * bytes) / 1e9,
        roofline_tokens_per_s: roofline, fraction_of_roofline: tps / roofline, weights_only_roofline_tokens_per_s: gpu.peakBandwidth / m.decodeWeightBytes, fraction_of_copy_bandwidth: gpu.copyBandwidth ? (tps * bytes) / gpu.copyBandwidth : null,
        argmax_in_vocab: last.data[0] >= 0 && last.data[0] < vocab,
      };
      row.decode.push(d);
      log(`    decode at ${from}…${from + opt.tokens - 1}: ${fmt(tps)} tokens/s, ${fmt((100 * tps) / roofline)}% of the ${fmt(roofline)} tokens/s roofline (${gib(bytes)} a token at ${fmt(gpu.peakBandwidth / 1e9, 0)} GB/s)${gpu.copyBandwidth ? `, ${fmt(100 * d.fraction_of_copy_bandwidth)}% of the copy bandwidth` : ""}${d.argmax_in_vocab ? "" : " (BAD ARGMAX)"}`);
    }
    row.result = "ok";
  } finally {
    ex.dispose();
  }
}

// ------------------------------------------------------------------------------------------ dry run

/** Benchmark weights as each format stores them: generation speed, and the decoded values of a
 *  sample finite and of deviation 1/sqrt(fan_in). */
function checkFastWeights() {
  let ok = true;
  for (const format of FORMATS) {
    const src = tiledRandomWeights(7);
    const big = (i) => ({ name: `layers.${i}.w_gate`, shape: [14336, 4096], dtype: format, layout: deviceLayout(format, [14336, 4096]) });
    src.device(big(0)); // draws the pools
    const t = performance.now();
    const bytes = src.device(big(1));
    const rate = bytes.length / 1e9 / ((performance.now() - t) / 1000);
    const shape = [256, 4096];
    const sample = { name: "layers.1.wo", shape, dtype: format, layout: deviceLayout(format, shape) };
    const v = decodeTensor(format, unpackFromDevice(format, src.device(sample), shape));
    let sq = 0;
    let bad = 0;
    for (const x of v) {
      if (!Number.isFinite(x)) bad++;
      else sq += x * x;
    }
    const ratio = Math.sqrt(sq / v.length) * Math.sqrt(shape[1]);
    const good = bad === 0 && ratio > 0.8 && ratio < 1.25;
    ok &&= good;
    log(`  ${good ? "PASS" : "FAIL"} ${format}: ${fmt(rate, 2)} GB/s generated; a sample decodes to ${bad ? `${bad} non-finite values` : "finite values"}, deviation ${fmt(ratio, 3)} × 1/sqrt(fan_in)`);
  }
  return ok;
}

function plan(opt, graph) {
  log(`\nplan (within ${opt.budget} s; rates assumed until measured: ${ASSUMED.hostBytesPerS / 1e9} GB/s host weights, ${ASSUMED.flops.cuda / 1e12}/${ASSUMED.flops.webgpu / 1e12} TFLOP/s CUDA/WebGPU prefill, ${ASSUMED.bandwidth / 1e12} TB/s decode):`);
  let total = 0;
  const line = (what, s) => {
    total += s;
    log(`  ${what.padEnd(58)} ~${fmt(s).padStart(6)} s`);
  };
  if (!opt.skipChecks) line(`correctness: ${CHECKS.length} cases × ${opt.backends.join(" + ")}`, 3 * CHECKS.length * opt.backends.length);
  for (const backend of opt.backends) {
    for (const format of opt.formats) {
      const m = plannedFacts(graph, format);
      const rate = ASSUMED.flops[backend];
      line(`${backend} ${format}: load ${gib(m.weightBytes)}`, ASSUMED.compileS[backend] + m.weightBytes / ASSUMED.hostBytesPerS);
      line(`${backend} ${format}: prefill ${SHAPE.prompt} (twice; ${fmt(prefillFlops(m, SHAPE.prompt) / 1e12, 1)} TFLOP)`, (2 * prefillFlops(m, SHAPE.prompt)) / rate);
      let past = 0;
      for (const context of SHAPE.contexts) {
        const fill = context - past;
        line(`${backend} ${format}: fill to ${context}, decode ${opt.tokens} (${gib(decodeBytes(m, context))} a token)`, prefillFlops(m, fill, past) / rate + ((opt.tokens + 1) * decodeBytes(m, context)) / ASSUMED.bandwidth);
        past = context + opt.tokens + 1;
      }
    }
  }
  log(`  ${"total".padEnd(58)} ~${fmt(total).padStart(6)} s${total > opt.budget ? ` — over the budget: the last phases would be skipped` : ""}`);
}

// ------------------------------------------------------------------------------------------ main

async function main() {
  const opt = args();
  const benchGraph = compile(benchCase("f16"));
  if (opt.prebuild) return prebuild(opt.prebuild, [...CHECKS.map((c) => [c, compile(c)]), ...FORMATS.map((f) => [benchCase(f), benchGraph])], ARCHS);
  softwareAdapter = opt.softwareWebgpu;
  if (opt.emulate) emulatedImage = await startEmulation();
  const budget = new Budget(opt.budget);
  const kernelDirs = libraries(opt.kernels ?? join(root, "kernels"));
  const report = { tool: "llmc gpu-bench", date: new Date().toISOString(), dry_run: opt.dryRun, budget_s: opt.budget, model: "models/examples/llama-3-8b.llm", config: { ...SHAPE.set, max_seq_len: SHAPE.maxSeqLen }, prompt: SHAPE.prompt, contexts: SHAPE.contexts, decode_tokens: opt.tokens, gpu: null, webgpu: null, checks: [], rows: [] };
  const save = () => {
    report.elapsed_s = budget.elapsed;
    if (opt.json) writeFileSync(opt.json, JSON.stringify(report, null, 2) + "\n");
  };
  log(`llmc GPU benchmark${opt.dryRun ? " (dry run: no GPU used)" : ""}; ${kernelDirs.length} prebuilt kernel libraries${findNvcc() ? "; nvcc found" : ""}`);
  let failed = 0;

  if (opt.dryRun) {
    log("\ncorrectness cases: compiled, PTX checked, CPU reference run");
    for (const c of CHECKS) {
      try {
        const graph = compile(c);
        checkPrebuilt(kernelDirs, graph, c, ARCHS[0]);
        log(`  PASS ${c.name}: CPU reference only (${referenceLogits(c, graph).length} steps)`);
      } catch (e) {
        failed++;
        log(`  FAIL ${c.name}: ${e.message}`);
      }
    }
    if (opt.softwareWebgpu) report.checks = await checks(["webgpu"], kernelDirs, opt);
    failed += report.checks.filter((c) => !c.ok).length;
    log("\nbenchmark models: CUDA for every profile, WGSL for a hardware adapter");
    for (const format of FORMATS) {
      try {
        checkPrebuilt(kernelDirs, benchGraph, benchCase(format), ARCHS[0]);
        const program = compileWgsl(benchGraph, { profile: wgslProfile(false, NVIDIA_VULKAN_LIMITS), requested: format });
        const largest = program.weights.reduce((a, w) => (w.layout.bytes > a.layout.bytes ? w : a));
        log(`  PASS ${benchCase(format).name}: ${kernelDirs.length ? "PTX prebuilt for every profile" : "no PTX prebuilt here (scripts/gpu-bench/build.sh makes it)"}; WGSL compiled, largest weight ${largest.name} ${gib(largest.layout.bytes)} (${largest.dtype})`);
      } catch (e) {
        failed++;
        log(`  FAIL ${benchCase(format).name}: ${e.message}`);
      }
    }
    try {
      const { vulkanLoadable } = await import(dist("runtime/webgpu/device.js"));
      const bundled = existsSync(join(root, "vulkan"));
      const loadable = vulkanLoadable();
      log(`\nWebGPU: Dawn loads; the Vulkan loader ${loadable ? "is found" : "is not found here"}${bundled ? " (with the bundled packages)" : ""}`);
      if (bundled && !loadable) failed++;
    } catch (e) {
      failed++;
      log(`\nWebGPU: FAIL ${e.message}`);
    }
    log("\nbenchmark weights (tiled random, in the device layout)");
    if (!checkFastWeights()) failed++;
    plan(opt, benchGraph);
    save();
    log(failed ? `\n${failed} check(s) failed` : "\ndry run passed");
    process.exitCode = failed ? 1 : 0;
    return;
  }

  // The GPU, as CUDA describes it; WebGPU runs on the same one.
  let gpu = { peakBandwidth: NaN, tensorPeak: { flops: NaN, source: "unknown" }, copyBandwidth: null };
  try {
    gpu = { ...cudaFacts(), copyBandwidth: null };
    log(`GPU: ${gpu.name}, compute capability ${gpu.computeCapability}, ${gpu.multiprocessors} SMs, ${gib(gpu.totalMemory)}; ${gpu.driver}`);
    log(`peaks: ${fmt(gpu.peakBandwidth / 1e9, 0)} GB/s (memory clock ${gpu.memoryClockMHz} MHz × ${gpu.busWidthBits}-bit bus × 2); ${fmt(gpu.tensorPeak.flops / 1e12, 0)} TFLOP/s dense f16 tensor (${gpu.tensorPeak.source})`);
    gpu.copyBandwidth = measuredBandwidth(opt.emulate ? 1 << 24 : 1 << 30);
    log(`device-to-device copy: ${fmt(gpu.copyBandwidth / 1e9, 0)} GB/s (${fmt((100 * gpu.copyBandwidth) / gpu.peakBandwidth)}% of the peak)`);
  } catch (e) {
    log(`CUDA: ${e.message.split("\n")[0]}`);
  }
  report.gpu = gpu;
  if (opt.backends.includes("webgpu")) {
    const w = await webgpuDevice();
    report.webgpu = w.gpu ? { adapter: w.adapter, limits: w.limits } : { error: w.error };
    log(w.gpu ? `WebGPU: ${w.adapter.description || w.adapter.device} (${w.adapter.vendor ? `${w.adapter.vendor}, ` : ""}${w.adapter.backend}); maxStorageBufferBindingSize ${gib(w.limits.maxStorageBufferBindingSize)}, maxBufferSize ${gib(w.limits.maxBufferSize)}` : `WebGPU: ${w.error}`);
  }
  save();
  // A phase that runs far over its estimate: stop with what was measured (the JSON holds it).
  setTimeout(() => {
    log(`\nstopped: the run is a minute over its budget of ${opt.budget} s`);
    save();
    process.exit(3);
  }, (opt.budget + 60) * 1000).unref();

  if (!opt.skipChecks) {
    report.checks = await checks(opt.backends, kernelDirs, opt);
    failed += report.checks.filter((c) => !c.ok).length;
    save();
  }

  log(`\nbenchmarks: ${benchCase("f16").model} (max_seq_len ${SHAPE.maxSeqLen}), random weights; ${fmt(budget.left, 0)} s of the budget left`);
  const benchStart = performance.now();
  for (const [i, backend] of opt.backends.entries()) {
    // Each backend gets its share of what is left, so the last one is not starved.
    const share = (budget.end - performance.now()) / (opt.backends.length - i);
    budget.limit = Math.min(budget.end, performance.now() + share);
    for (const format of opt.formats) {
      const row = { backend, format, result: null };
      report.rows.push(row);
      try {
        await benchRow(row, benchGraph, gpu, budget, kernelDirs, opt);
      } catch (e) {
        row.result = `error: ${e.message.split("\n")[0]}`;
        log(`  ${backend} ${format}: ${row.result}`);
      }
      save();
    }
  }
  budget.limit = budget.end;
  log(`\nsummary (benchmarks took ${fmt((performance.now() - benchStart) / 1000)} s; the whole run ${fmt(budget.elapsed)} s of ${opt.budget})`);
  log(`  ${"backend".padEnd(7)} ${"format".padEnd(6)} ${`prefill ${SHAPE.prompt} tok/s (TFLOP/s, % peak)`.padEnd(36)} ${SHAPE.contexts.map((c) => `decode @${c} tok/s (% roofline)`.padEnd(32)).join(" ")}`);
  for (const r of report.rows) {
    const p = r.prefill ? `${fmt(r.prefill.tokens_per_s, 0)} (${fmt(r.prefill.tflops)}, ${fmt(100 * r.prefill.fraction_of_peak)}%)` : "-";
    const ds = SHAPE.contexts.map((_, k) => {
      const d = r.decode?.[k];
      return (d ? `${fmt(d.tokens_per_s)} (${fmt(100 * d.fraction_of_roofline)}%)` : "-").padEnd(32);
    });
    log(`  ${r.backend.padEnd(7)} ${r.format.padEnd(6)} ${p.padEnd(36)} ${ds.join(" ")}${r.result !== "ok" ? ` ${r.result}` : ""}`);
  }
  save();
  if (opt.json) log(`\nJSON: ${opt.json}`);
  log(opt.skipChecks ? "\ncorrectness checks skipped" : failed ? `\n${failed} correctness check(s) failed` : "\nall correctness checks passed");
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`gpu-bench: ${e.stack ?? e.message}\n`);
  process.exitCode = 2;
});

// The GPU check: llmc's CUDA backend on a real NVIDIA GPU, against the CPU reference, then a decode
// benchmark of a Llama-3-8B-shaped model with random f16 weights, measured against the memory-
// bandwidth roofline (weight bytes per token ÷ the GPU's bandwidth from its memory clock and bus
// width). Started by scripts/gpu-check.sh; plain JavaScript over the compiled dist/, so the bundle
// needs only a Node binary.
//
//   node scripts/gpu-check/run.mjs [--dry-run] [--kernels DIR] [--tokens N] [--context N] [--skip-bench]
//   node scripts/gpu-check/run.mjs --prebuild DIR     (where nvcc is: PTX for every case and profile)
//   node scripts/gpu-check/run.mjs --emulate          (in the repository, with g++: every step on the
//                                                      CPU emulation of CUDA; the benchmark on a small model)
//
// --dry-run does everything that needs no GPU: compiles the models, emits their CUDA for every
// tuning profile, checks the prebuilt PTX holds every kernel, and runs the CPU reference.

import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dist = (p) => join(root, "dist", "src", p);
const { compileFile } = await import(dist("compiler/compile.js"));
const { compileCuda, parseArch, archName, CUDA_PROFILES } = await import(dist("compiler/target/cuda.js"));
const { CpuInterpreter } = await import(dist("runtime/cpu/interpreter.js"));
const { CudaExecutor } = await import(dist("runtime/cuda/executor.js"));
const { CudaDriver, ATTR } = await import(dist("runtime/cuda/driver.js"));
const { compilePtx, findNvcc, libraryHas, readKernelLibrary, writeKernelLibrary, pickArch } = await import(dist("runtime/cuda/ptx.js"));
const { randomTensor } = await import(dist("runtime/weights/random.js"));
const { decodeTensor, encodeTensor, f32ToF16Bits } = await import(dist("compiler/target/storage.js"));

// ------------------------------------------------------------------------------------------ cases

const TINY = { vocab_size: "96", dim: "64", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "160", max_seq_len: "64" };

/** Correctness cases: each is compiled, emitted and run the same way by --prebuild and the check. */
const CHECKS = [
  { name: "llama f32", model: "models/llama.llm", set: TINY, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "qwen2 f32 (biases)", model: "models/qwen2.llm", set: TINY, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "gemma f32", model: "models/gemma.llm", set: { ...TINY, head_dim: "16" }, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "mistral f32 (sliding window)", model: "models/mistral.llm", set: { ...TINY, sliding_window: "7" }, format: "f32", chunk: 16, tol: 1e-3 },
  // Matvecs dequantise exactly; prompts go through tensor cores with f16 activations.
  { name: "llama f16 (tensor cores)", model: "models/llama.llm", set: TINY, format: "f16", chunk: 16, tol: 3e-2 },
  { name: "llama q8_0", model: "models/llama.llm", set: TINY, format: "q8_0", chunk: 16, tol: 3e-2 },
  { name: "llama q4_0", model: "models/llama.llm", set: TINY, format: "q4_0", chunk: 16, tol: 3e-2 },
];

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

function compile(c, extra = {}) {
  const res = compileFile(join(root, c.model), { overrides: new Map(Object.entries({ ...(c.set ?? {}), ...extra })) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || !res.compiled) throw new Error(`${c.model}: ${errors.map((e) => e.message).join("; ")}`);
  return res.compiled.graph;
}

/** --emulate: the fake libcuda and modules compiled for the CPU (tools/cuda-emulation). */
let emulation = null;
async function startEmulation() {
  const { buildEmulatedModule, buildFakeLibcuda, emulatedImage } = await import(join(root, "dist", "tools", "cuda-emulation", "build.js"));
  process.env.LLMC_LIBCUDA = buildFakeLibcuda();
  emulation = { image: (m) => emulatedImage(buildEmulatedModule(m.source, m.kernels)) };
}
const executorOpts = (o) => (emulation ? { ...o, image: emulation.image } : o);

const formatOf = (c) => (_name, shape) => (shape.length === 2 ? c.format : "f32");
// Every matrix in the case's dtype (`--weight-dtype`), the others f32: the target layer's policy.
const emitOpts = (c, archs) => ({ archs: archs.map(parseArch), requested: c.format, prefillChunk: c.chunk });
const emitCudaModule = (graph, opts) => compileCuda(graph, opts).module;
const benchGraph = (opt) =>
  compile(BENCH, { max_seq_len: String(opt.context), ...(opt.emulate ? { vocab_size: "512", dim: "256", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "512" } : {}) });

const log = (s = "") => process.stdout.write(s + "\n");
const fmt = (x, d = 1) => x.toFixed(d);
const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;

// ------------------------------------------------------------------------------------------ prebuild

async function prebuild(out, opt) {
  if (!findNvcc()) throw new Error("--prebuild needs nvcc on the PATH");
  const cases = [...CHECKS.map((c) => [c, compile(c)]), [BENCH, benchGraph(opt)]];
  let i = 0;
  for (const [c, graph] of cases) {
    const t = performance.now();
    const m = emitCudaModule(graph, emitOpts(c, ARCHS));
    const ptx = compilePtx(m.source, ARCHS.map(parseArch));
    writeKernelLibrary(join(out, `case${i++}`), m.source, ptx);
    log(`prebuilt ${c.name}: ${m.kernels.length} kernels, PTX for ${[...ptx.keys()].join(", ")} (${fmt((performance.now() - t) / 1000)} s)`);
  }
}

/** Every prebuilt library under `dir`. */
function libraries(dir) {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir).map((d) => join(dir, d)).filter((d) => existsSync(join(d, "kernels.cu")));
}

function checkPrebuilt(dirs, graph, c) {
  if (dirs.length === 0) return; // in the repository before build.sh: nothing prebuilt to check
  const libs = dirs.map(readKernelLibrary).filter(Boolean);
  for (const p of CUDA_PROFILES) {
    const cc = p.minArch;
    const m = emitCudaModule(graph, emitOpts(c, [archName(cc)]));
    const names = m.kernels.map((k) => k.name);
    const lib = libs.find((l) => libraryHas(l, names) && pickArch(l.ptx.keys(), cc));
    if (!lib) throw new Error(`${c.name}: no prebuilt PTX holds the ${p.profile} kernels (rebuild the bundle)`);
  }
}

// ------------------------------------------------------------------------------------------ checks

function maxDiff(a, b) {
  let m = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return m / scale;
}

const PROMPT = Int32Array.from([1, 17, 33, 5, 90, 2, 61, 44, 8, 3, 77, 12, 19, 65, 30, 4, 9, 11, 52, 7, 26, 81, 40]);
const DECODE = [6, 71, 14, 55, 38];

async function correctness(c, graph, kernelDirs, dryRun) {
  const weights = (name, shape) => randomTensor(name, shape, { seed: 11 });
  const reference = (name, shape) => {
    const f = formatOf(c)(name, shape);
    const v = weights(name, shape);
    return f === "f32" || (f.startsWith("q") && shape[1] % 32 !== 0) ? v : decodeTensor(f, encodeTensor(f, v));
  };
  const cpu = new CpuInterpreter(graph, reference);
  const want = [cpu.step({ tokens: PROMPT }), ...DECODE.map((t) => cpu.step({ tokens: Int32Array.of(t) }))];
  if (dryRun) return { ok: true, text: `CPU reference only (${want.length} steps)` };
  const ex = new CudaExecutor(graph, weights, executorOpts({ weightDType: c.format, prefillChunk: c.chunk, kernelDirs }));
  try {
    await ex.init();
    const got = [await ex.step({ tokens: PROMPT })];
    for (const t of DECODE) got.push(await ex.step({ tokens: Int32Array.of(t) }));
    const prompt = maxDiff(got[0].data, want[0].data);
    const decode = Math.max(...got.slice(1).map((g, i) => maxDiff(g.data, want[i + 1].data)));
    const ok = prompt <= c.tol && decode <= c.tol;
    return { ok, text: `prompt ${prompt.toExponential(2)}, decode ${decode.toExponential(2)} (tolerance ${c.tol}; ${ex.lastStep.launches} launches per decode step, CUDA graph ${ex.lastStep.graphs ? "on" : "off"})` };
  } finally {
    ex.dispose();
  }
}

// ------------------------------------------------------------------------------------------ benchmark

/** Random f16 weights, fast: a pool of normal samples scaled per tensor, copied at random offsets. */
function benchWeights() {
  const POOL = 1 << 22;
  const pool = new Float32Array(POOL);
  for (let i = 0; i < POOL; i += 2) {
    const u = Math.max(Math.random(), 1e-12);
    const v = Math.random();
    const r = Math.sqrt(-2 * Math.log(u));
    pool[i] = r * Math.cos(2 * Math.PI * v);
    pool[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  const pools = new Map();
  const scaled = (scale) => {
    let p = pools.get(scale);
    if (!p) {
      p = new Uint16Array(POOL);
      for (let i = 0; i < POOL; i++) p[i] = f32ToF16Bits(pool[i] * scale);
      pools.set(scale, p);
    }
    return p;
  };
  return (name, shape) => {
    if (shape.length !== 2) return randomTensor(name, shape, { seed: 3 });
    const n = shape[0] * shape[1];
    const src = scaled(1 / Math.sqrt(shape[1]));
    const out = new Uint16Array(n);
    for (let at = 0; at < n; ) {
      const off = Math.floor(Math.random() * (POOL / 2));
      const len = Math.min(n - at, POOL - off);
      out.set(src.subarray(off, off + len), at);
      at += len;
    }
    return { dtype: "f16", data: new Uint8Array(out.buffer) };
  };
}

function deviceReport() {
  const d = new CudaDriver();
  d.init();
  const dev = d.device(0);
  const cc = `${d.attribute(dev, ATTR.ccMajor)}.${d.attribute(dev, ATTR.ccMinor)}`;
  const clock = d.attribute(dev, ATTR.memoryClockKHz);
  const bus = d.attribute(dev, ATTR.memoryBusWidthBits);
  const v = d.driverVersion();
  log(`GPU: ${d.deviceName(dev)}, compute capability ${cc}, ${d.attribute(dev, ATTR.multiprocessors)} SMs, ${gib(d.totalMemory(dev))}`);
  log(`driver: CUDA ${Math.floor(v / 1000)}.${(v % 1000) / 10} (${d.path}); memory clock ${clock / 1000} MHz × ${bus}-bit bus → ${fmt((2 * clock * 1e3 * bus) / 8 / 1e9)} GB/s peak`);
}

/** Device-to-device copy bandwidth (reads + writes), for comparison with the attribute figure. */
function measuredBandwidth(bytes) {
  const d = new CudaDriver();
  d.init();
  const ctx = d.createContext(d.device(0));
  const a = d.alloc(bytes);
  const b = d.alloc(bytes);
  d.dtod(b, a, bytes);
  d.synchronize();
  const t = performance.now();
  const reps = 5;
  for (let i = 0; i < reps; i++) d.dtod(b, a, bytes);
  d.synchronize();
  const s = (performance.now() - t) / 1000;
  d.free(a);
  d.free(b);
  d.destroyContext(ctx);
  return (2 * bytes * reps) / s;
}

async function benchmark(opt, kernelDirs) {
  const graph = benchGraph(opt);
  log(`\n${BENCH.name}: compiling and uploading (max_seq_len ${opt.context}) …`);
  const t0 = performance.now();
  let last = 0;
  const ex = new CudaExecutor(graph, benchWeights(), executorOpts({
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
  if (opt.prebuild) return prebuild(opt.prebuild, opt);
  if (opt.emulate) await startEmulation();
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
    const graph = benchGraph(opt);
    checkPrebuilt(kernelDirs, graph, BENCH);
    const t = performance.now();
    const w = benchWeights()("layers.0.w_gate", [14336, 4096]);
    log(`\n${BENCH.name}: ${kernelDirs.length ? "kernels prebuilt for every profile" : "no prebuilt kernels here (scripts/gpu-check/build.sh makes them)"}; random f16 weights at ${fmt((w.data.length / 1e9) / ((performance.now() - t) / 1000), 2)} GB/s`);
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

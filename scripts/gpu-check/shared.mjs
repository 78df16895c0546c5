// What the GPU check (gpu-check.sh) and the GPU benchmark (gpu-bench.sh) share: the correctness
// cases (random tiny models against the CPU reference), compiling them, the prebuilt PTX (making it
// where nvcc is, checking it holds every kernel of every profile), the comparison of a GPU
// executor's logits with the CPU's, and the facts the CUDA driver gives about the GPU. Plain
// JavaScript over the compiled dist/, so a bundle needs only a Node binary.

import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const dist = (p) => join(root, "dist", "src", p);
const { compileFile } = await import(dist("compiler/compile.js"));
const { compileCuda, parseArch, archName, CUDA_PROFILES } = await import(dist("compiler/target/cuda.js"));
const { CpuInterpreter } = await import(dist("runtime/cpu/interpreter.js"));
const { CudaDriver, ATTR } = await import(dist("runtime/cuda/driver.js"));
const { compilePtx, findNvcc, libraryHas, readKernelLibrary, writeKernelLibrary, pickArch } = await import(dist("runtime/cuda/ptx.js"));
const { randomTensor } = await import(dist("runtime/weights/random.js"));
const { decodeTensor, encodeTensor } = await import(dist("compiler/target/storage.js"));
export { CudaDriver, findNvcc };

export const log = (s = "") => process.stdout.write(s + "\n");
export const fmt = (x, d = 1) => x.toFixed(d);
export const gib = (b) => `${(b / 2 ** 30).toFixed(2)} GiB`;

// ------------------------------------------------------------------------------------------ cases

const TINY = { vocab_size: "96", dim: "64", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "160", max_seq_len: "64" };

/** Correctness cases: each is compiled, emitted and run the same way by the prebuild and the checks. */
export const CHECKS = [
  { name: "llama f32", model: "models/llama.llm", set: TINY, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "qwen2 f32 (biases)", model: "models/qwen2.llm", set: TINY, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "gemma f32", model: "models/gemma.llm", set: { ...TINY, head_dim: "16" }, format: "f32", chunk: 16, tol: 1e-3 },
  { name: "mistral f32 (sliding window)", model: "models/mistral.llm", set: { ...TINY, sliding_window: "7" }, format: "f32", chunk: 16, tol: 1e-3 },
  // Matvecs dequantise exactly; prompts go through tensor cores with f16 activations.
  { name: "llama f16 (tensor cores)", model: "models/llama.llm", set: TINY, format: "f16", chunk: 16, tol: 3e-2 },
  { name: "llama q8_0", model: "models/llama.llm", set: TINY, format: "q8_0", chunk: 16, tol: 3e-2 },
  { name: "llama q4_0", model: "models/llama.llm", set: TINY, format: "q4_0", chunk: 16, tol: 3e-2 },
];

/** A model of a case, its `set` values and `extra` ones overriding the file's config. */
export function compile(c, extra = {}) {
  const res = compileFile(join(root, c.model), { overrides: new Map(Object.entries({ ...(c.set ?? {}), ...extra })) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || !res.compiled) throw new Error(`${c.model}: ${errors.map((e) => e.message).join("; ")}`);
  return res.compiled.graph;
}

// ------------------------------------------------------------------------------------------ PTX

// Every matrix in the case's dtype (`--weight-dtype`), the others f32: the target layer's policy.
const emitOpts = (c, archs) => ({ archs: archs.map(parseArch), requested: c.format, prefillChunk: c.chunk });
const emitCudaModule = (graph, c, archs) => compileCuda(graph, emitOpts(c, archs)).module;

/** PTX for `archs` of every [case, graph] in `cases`, one kernel library per case under `out`. */
export function prebuild(out, cases, archs, prefix = "case") {
  if (!findNvcc()) throw new Error("--prebuild needs nvcc on the PATH");
  cases.forEach(([c, graph], i) => {
    const t = performance.now();
    const m = emitCudaModule(graph, c, archs);
    const ptx = compilePtx(m.source, archs.map(parseArch));
    writeKernelLibrary(join(out, `${prefix}${i}`), m.source, ptx);
    log(`prebuilt ${c.name}: ${m.kernels.length} kernels, PTX for ${[...ptx.keys()].join(", ")} (${fmt((performance.now() - t) / 1000)} s)`);
  });
}

/** Every prebuilt library under `dir`. */
export function libraries(dir) {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir).map((d) => join(dir, d)).filter((d) => existsSync(join(d, "kernels.cu")));
}

/** Throws unless a prebuilt library holds the kernels of every CUDA profile at or above `minArch`
 *  (e.g. "sm_80") for case `c`; nothing to check when nothing is prebuilt (the repository). */
export function checkPrebuilt(dirs, graph, c, minArch = "sm_75") {
  if (dirs.length === 0) return;
  const libs = dirs.map(readKernelLibrary).filter(Boolean);
  const floor = parseArch(minArch);
  for (const p of CUDA_PROFILES) {
    const cc = p.minArch;
    if (cc.major * 10 + cc.minor < floor.major * 10 + floor.minor) continue;
    const names = emitCudaModule(graph, c, [archName(cc)]).kernels.map((k) => k.name);
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

/** The weights every check runs on. */
export const checkWeights = (name, shape) => randomTensor(name, shape, { seed: 11 });

/** The CPU reference's logits of case `c`: the prompt, then each decode token, on the weights as
 *  the GPU holds them (rounded to the case's dtype). */
export function referenceLogits(c, graph) {
  const reference = (name, shape) => {
    const f = shape.length === 2 ? c.format : "f32";
    const v = checkWeights(name, shape);
    return f === "f32" || (f.startsWith("q") && shape[1] % 32 !== 0) ? v : decodeTensor(f, encodeTensor(f, v));
  };
  const cpu = new CpuInterpreter(graph, reference);
  return [cpu.step({ tokens: PROMPT }), ...DECODE.map((t) => cpu.step({ tokens: Int32Array.of(t) }))];
}

/** Runs the same steps on a GPU executor (ready to step) and compares them with `want`. */
export async function compareLogits(c, ex, want) {
  const got = [await ex.step({ tokens: PROMPT })];
  for (const t of DECODE) got.push(await ex.step({ tokens: Int32Array.of(t) }));
  const prompt = maxDiff(got[0].data, want[0].data);
  const decode = Math.max(...got.slice(1).map((g, i) => maxDiff(g.data, want[i + 1].data)));
  return { ok: prompt <= c.tol && decode <= c.tol, text: `prompt ${prompt.toExponential(2)}, decode ${decode.toExponential(2)} (tolerance ${c.tol})` };
}

// ------------------------------------------------------------------------------------------ the GPU

/** Peak dense f16 tensor-core FLOP/s (f32 accumulate) by device name, from the vendors' data sheets;
 *  the first entry whose pattern the name contains wins. */
const TENSOR_PEAKS = [
  ["H100 PCIe", 756e12], ["H100 NVL", 835e12], ["H200", 989e12], ["H100", 989e12], ["H800", 989e12], ["H20", 148e12],
  ["A100", 312e12], ["A800", 312e12], ["L40S", 362e12], ["L40", 181e12], ["L4", 121e12], ["A10", 125e12],
  ["RTX 4090", 165e12], ["RTX 3090", 71e12], ["T4", 65e12], ["V100", 125e12],
];
/** Dense f16 tensor-core FLOP per clock per SM (f32 accumulate) by compute capability: the estimate
 *  for a GPU not in the table. */
const TENSOR_FLOP_PER_CLOCK = { "7.0": 1024, "7.5": 1024, "8.0": 2048, "8.6": 512, "8.7": 1024, "8.9": 512, "9.0": 4096 };
const CLOCK_RATE_KHZ = 13; // CU_DEVICE_ATTRIBUTE_CLOCK_RATE

/** The GPU as the CUDA driver describes it: name, compute capability, memory, and the peaks the
 *  benchmarks compare with (bandwidth from memory clock × bus width × 2; tensor FLOP/s). */
export function cudaFacts() {
  const d = new CudaDriver();
  d.init();
  const dev = d.device(0);
  const cc = `${d.attribute(dev, ATTR.ccMajor)}.${d.attribute(dev, ATTR.ccMinor)}`;
  const sms = d.attribute(dev, ATTR.multiprocessors);
  const memClockKHz = d.attribute(dev, ATTR.memoryClockKHz);
  const busBits = d.attribute(dev, ATTR.memoryBusWidthBits);
  const smClockKHz = d.attribute(dev, CLOCK_RATE_KHZ);
  const name = d.deviceName(dev);
  const v = d.driverVersion();
  const listed = TENSOR_PEAKS.find(([pattern]) => name.includes(pattern));
  const tensorPeak = listed
    ? { flops: listed[1], source: `data sheet (${listed[0]})` }
    : smClockKHz > 0
      ? { flops: sms * smClockKHz * 1e3 * (TENSOR_FLOP_PER_CLOCK[cc] ?? 1024), source: `estimate: ${sms} SMs × ${smClockKHz / 1000} MHz × ${TENSOR_FLOP_PER_CLOCK[cc] ?? 1024} FLOP/clock` }
      : { flops: NaN, source: "unknown: the driver gives no clock rate" };
  return {
    name, computeCapability: cc, multiprocessors: sms, totalMemory: d.totalMemory(dev),
    driver: `CUDA ${Math.floor(v / 1000)}.${(v % 1000) / 10}`, libcuda: d.path,
    memoryClockMHz: memClockKHz / 1000, busWidthBits: busBits, peakBandwidth: (2 * memClockKHz * 1e3 * busBits) / 8, tensorPeak,
  };
}

/** Device-to-device copy bandwidth (reads + writes), for comparison with the attribute figure. */
export function measuredBandwidth(bytes) {
  const d = new CudaDriver();
  d.init();
  const ctx = d.createContext(d.device(0));
  const a = d.alloc(bytes);
  const b = d.alloc(bytes);
  try {
    d.dtod(b, a, bytes);
    d.synchronize();
    const t = performance.now();
    const reps = 5;
    for (let i = 0; i < reps; i++) d.dtod(b, a, bytes);
    d.synchronize();
    return (2 * bytes * reps) / ((performance.now() - t) / 1000);
  } finally {
    d.free(a);
    d.free(b);
    d.destroyContext(ctx);
  }
}

/** --emulate: the fake libcuda and modules compiled for the CPU (tools/cuda-emulation); returns the
 *  executor option that loads them. */
export async function startEmulation() {
  const { buildEmulatedModule, buildFakeLibcuda, emulatedImage } = await import(join(root, "dist", "tools", "cuda-emulation", "build.js"));
  process.env.LLMC_LIBCUDA = buildFakeLibcuda();
  return (m) => emulatedImage(buildEmulatedModule(m.source, m.kernels));
}

// Speed of the WGSL `linear` kernel at decode (one row of x, weights [N, K] read once) on this
// machine's WebGPU adapter, per shape, weight dtype and tuning variant, in GB/s of weight bytes.
// A step is a chain of LAYERS linears (x ← W_i x, distinct square weights, or [N, K] then [K, N]
// alternating) and one read-back, so one submit carries LAYERS dispatches; variants alternate step
// by step so a shared, noisy machine disturbs them alike. The step time includes the host's encoding
// (StepStats.hostMs is printed beside it), which a GPU's fast kernels may not hide. Median and best.
//
//   npx tsc -p tsconfig.json --outDir tmp/lin-dist && LLMC_DIST=tmp/lin-dist node test/webgpu/bench-linear.mjs [rounds]
//   SHAPES="4096x4096,14336x4096"  (N x K)   DTYPES="f16,q8_0,q4_0,f32"   LAYERS=8
//   VARIANTS="name:lanes:rows:workgroup,…"  (default: the adapter's profile; on a GPU also 1, 2 and 4
//   rows per 64-lane workgroup and, where subgroups are granted, 32 lanes)
//   BACKEND=hardware|software|null (default auto); EGL_PLATFORM=surfaceless on llvmpipe
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dist = pathToFileURL(resolve(process.env.LLMC_DIST ?? new URL("../../dist", import.meta.url).pathname)).href;
const { CPU_TUNING, GPU_TUNING } = await import(`${dist}/src/compiler/emit/wgsl/index.js`);
const { IDENTITY_PROGRAM } = await import(`${dist}/src/compiler/ops/expr.js`);
const { constDim } = await import(`${dist}/src/compiler/base/symbolic.js`);
const { encodeTensor, deviceLayout } = await import(`${dist}/src/compiler/target/storage.js`);
const { requestGpu } = await import(`${dist}/src/runtime/webgpu/device.js`);
const { createWebGpuExecutor } = await import(`${dist}/src/runtime/webgpu/executor.js`);
const { deviceFeatures, isSoftwareAdapter } = await import(`${dist}/src/runtime/webgpu/tuning.js`);

const rounds = Number(process.argv[2] ?? 10);
const layers = Number(process.env.LAYERS ?? 8);
const gpu = await requestGpu(process.env.BACKEND ?? "auto");
const software = isSoftwareAdapter(gpu.adapter);
const base = software ? CPU_TUNING : GPU_TUNING;
const features = deviceFeatures(gpu);
const shapes = (process.env.SHAPES ?? (software ? "1024x1024,2752x1024" : "4096x4096,14336x4096")).split(",").map((s) => s.split("x").map(Number));
const dtypes = (process.env.DTYPES ?? "f32,f16,q8_0,q4_0").split(",");
const defaults = software
  ? [`cpu:1:${base.linear.rowsPerInvocation}:${base.linear.workgroupSize}`]
  : ["tree-1row:64:1:64", "tree-2rows:64:2:64", "tree-4rows:64:4:64", ...(features.subgroups && features.subgroupMinSize >= 32 ? ["subgroup-2rows:32:2:32", "subgroup-4rows:32:4:32"] : [])];
const variants = (process.env.VARIANTS?.split(",") ?? defaults).map((v) => {
  const [name, lanes, rows, wg] = v.split(":");
  return { name, tuning: { ...base, linear: { ...base.linear, lanes: Number(lanes), rowsPerInvocation: Number(rows), workgroupSize: Number(wg) } } };
});

/** x [1, K] through `layers` linears, alternating [N, K] and [K, N]. */
function graph(N, K) {
  const nodes = [];
  const add = (op, inputs, attrs, ty) => (nodes.push({ id: nodes.length, op, inputs, attrs, ty }), nodes.length - 1);
  const weight = (name, shape) => add("weight", [], { name }, { shape: shape.map(constDim), dtype: "f32" });
  let x = weight("x", [1, K]);
  for (let i = 0; i < layers; i++) {
    const [rows, cols] = i % 2 ? [K, N] : [N, K];
    const w = weight(`w${i}`, [rows, cols]);
    x = add("linear", [x, w], { weights: 1, epilogue: IDENTITY_PROGRAM }, { shape: [constDim(1), constDim(rows)], dtype: "f32" });
  }
  return { name: "bench", nodes, outputs: [x], literals: new Map(), states: new Map() };
}
/** Values of deviation ~1/sqrt(K), so the chain stays finite; w* stored as `dtype` (the file's bytes). */
function source(dtype) {
  const values = (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const s = 1.7 / Math.sqrt(shape[shape.length - 1]);
    return Float32Array.from({ length: n }, (_, i) => (((i * 7919) % 1000) / 500 - 1) * s);
  };
  return Object.assign((_name, shape) => values(shape), {
    raw: (name) => (dtype === "f32" || !name.startsWith("w") ? null : { dtype, bytes: encodeTensor(dtype, values(shapeOf.get(name))) }),
  });
}
const shapeOf = new Map();
const q = (xs, f) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * f)];

console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}), profile ${base.profile}, features ${JSON.stringify(features)}, ${layers} linears per step`);
for (const [N, K] of shapes) {
  for (let i = 0; i < layers; i++) shapeOf.set(`w${i}`, i % 2 ? [K, N] : [N, K]);
  for (const dtype of dtypes) {
    const bytes = [...shapeOf.values()].reduce((a, s) => a + deviceLayout(dtype, s).bytes, 0);
    const runs = [];
    for (const v of variants) {
      const ex = await createWebGpuExecutor(graph(N, K), source(dtype), gpu, { tuning: v.tuning });
      await ex.step({ tokens: Int32Array.of(0) });
      runs.push({ v, ex, times: [], host: [] });
    }
    for (let r = 0; r < rounds; r++) {
      for (const run of runs) {
        const t0 = performance.now();
        await run.ex.step({ tokens: Int32Array.of(0) });
        run.times.push(performance.now() - t0);
        run.host.push(run.ex.lastStep.hostMs);
      }
    }
    for (const run of runs) {
      const [p50, best] = [q(run.times, 0.5), Math.min(...run.times)];
      console.log(
        `${`${N}x${K}`.padEnd(12)} ${dtype.padEnd(5)} ${run.v.name.padEnd(16)} p50 ${p50.toFixed(2).padStart(8)} ms ${(bytes / p50 / 1e6).toFixed(1).padStart(8)} GB/s   best ${best.toFixed(2).padStart(8)} ms ${(bytes / best / 1e6).toFixed(1).padStart(8)} GB/s   host ${q(run.host, 0.5).toFixed(2)} ms`,
      );
      run.ex.dispose();
    }
  }
}
gpu.destroy();

// Speed of the WGSL `matmul` kernel (activations @ activations, the products of training graphs) on
// this machine's WebGPU adapter, per shape and tuning variant, in GFLOP/s (2·M·K·N per product).
// Each step is one matmul dispatch plus the read-back of its output; variants alternate step by step
// so a shared, noisy machine disturbs them alike. Reports the median and best step.
//
//   npx tsc -p tsconfig.json --outDir tmp/mm-dist && EGL_PLATFORM=surfaceless LLMC_DIST=tmp/mm-dist node test/webgpu/bench-matmul.mjs [rounds]
//   SHAPES="256x256x256,2048x128x256"  (M x K x N, optionally a batch prefix: 8:64x64x64)
//   VARIANTS="name:tileM:tileN:workgroup:minTiled[:a],…"  (default: the profile's tuning, and per-element;
//   a trailing ":a" stores a transposed, [K, M], so the kernel reads it transposed)
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dist = pathToFileURL(resolve(process.env.LLMC_DIST ?? new URL("../../dist", import.meta.url).pathname)).href;
const { CPU_TUNING, GPU_TUNING } = await import(`${dist}/src/compiler/emit/wgsl/index.js`);
const { getOp } = await import(`${dist}/src/compiler/ops/table.js`);
const { constDim } = await import(`${dist}/src/compiler/base/symbolic.js`);
const { requestGpu } = await import(`${dist}/src/runtime/webgpu/device.js`);
const { createWebGpuExecutor } = await import(`${dist}/src/runtime/webgpu/executor.js`);
const { isSoftwareAdapter } = await import(`${dist}/src/runtime/webgpu/tuning.js`);

const rounds = Number(process.argv[2] ?? 10);
const shapes = (process.env.SHAPES ?? "256x256x256,256x128x256,128x256x688,2048x128x256").split(",").map((s) => {
  const [batch, mkn] = s.includes(":") ? s.split(":") : ["", s];
  const [M, K, N] = mkn.split("x").map(Number);
  return { name: s, batch: batch ? batch.split("x").map(Number) : [], M, K, N };
});
const gpu = await requestGpu(process.env.BACKEND ?? "auto");
const base = isSoftwareAdapter(gpu.adapter) ? CPU_TUNING : GPU_TUNING;
const variantSpec = process.env.VARIANTS ?? `tiled:${base.matmul.tileM}:${base.matmul.tileN}:${base.matmul.workgroupSize}:0,per-element:1:1:${base.matmul.workgroupSize}:${Number.MAX_SAFE_INTEGER}`;
const variants = variantSpec.split(",").map((v) => {
  const [name, tileM, tileN, wg, minTiled, trans] = v.split(":");
  const readTransposed = trans === "a" || base.matmul.readTransposed;
  return { name, transA: trans === "a", tuning: { ...base, matmul: { ...base.matmul, tileM: Number(tileM), tileN: Number(tileN), workgroupSize: Number(wg), minTiledOutputs: Number(minTiled), readTransposed } } };
});

function graph({ batch, M, K, N }, transA = false) {
  const nodes = [];
  const add = (op, inputs, attrs, ty) => (nodes.push({ id: nodes.length, op, inputs, attrs, ty }), nodes.length - 1);
  const weight = (name, shape) => add("weight", [], { name }, { shape: shape.map(constDim), dtype: "f32" });
  const stored = transA ? weight("a", [...batch, K, M]) : -1;
  const perm = [...batch.map((_, i) => i), batch.length + 1, batch.length];
  const a = transA ? add("transpose", [stored], { perm }, getOp("transpose").infer([nodes[stored].ty], { perm })) : weight("a", [...batch, M, K]);
  const b = weight("b", [...batch, K, N]);
  const out = add("matmul", [a, b], {}, getOp("matmul").infer([nodes[a].ty, nodes[b].ty], {}));
  return { name: "bench", nodes, outputs: [out], literals: new Map(), states: new Map() };
}
const weights = (_name, shape) => Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => ((i * 7919) % 1000) / 500 - 1);
const q = (xs, f) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length * f)];

console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}), profile ${base.profile}`);
for (const s of shapes) {
  const runs = [];
  for (const v of variants) {
    const ex = await createWebGpuExecutor(graph(s, v.transA), weights, gpu, { tuning: v.tuning });
    await ex.step({ tokens: Int32Array.of(0) });
    runs.push({ v, ex, times: [] });
  }
  for (let r = 0; r < rounds; r++) {
    for (const run of runs) {
      const t0 = performance.now();
      await run.ex.step({ tokens: Int32Array.of(0) });
      run.times.push(performance.now() - t0);
    }
  }
  const flop = 2 * s.batch.reduce((x, y) => x * y, 1) * s.M * s.K * s.N;
  for (const run of runs) {
    const [p50, best] = [q(run.times, 0.5), Math.min(...run.times)];
    console.log(`${s.name.padEnd(16)} ${run.v.name.padEnd(12)} p50 ${p50.toFixed(2).padStart(8)} ms ${(flop / p50 / 1e6).toFixed(2).padStart(7)} GFLOP/s   best ${best.toFixed(2).padStart(8)} ms ${(flop / best / 1e6).toFixed(2).padStart(7)} GFLOP/s`);
    run.ex.dispose();
  }
}
gpu.destroy();

// How fast a WGSL matvec reads its weights through each kind of binding on this machine's adapter,
// outside llmc's emitter: a storage buffer of vec4<f32> (what llmc's kernels use) against an
// rgba32float texture read with textureLoad. On llvmpipe every storage-buffer load of a value that
// is not a constant becomes a loop over the SIMD lanes with a bounds check per component, so the
// matvec is bound by instructions, not memory; this measures whether another path avoids that.
// A step is LAYERS dispatches of y = W x (distinct W, N × K f32) and one read-back; median and best.
//
//   EGL_PLATFORM=surfaceless node test/webgpu/bench-load-paths.mjs
//   N=4096 K=4096  R=8 (rows per invocation)  WG=32 (workgroup size)  PATHS=buffer,texture  ROUNDS=8
//   DAWN_FEATURES=disable_robustness (Dawn toggles, comma-separated)  BACKEND=opengles|vulkan|null
import { create, globals } from "webgpu";

Object.assign(globalThis, globals);
process.env.EGL_PLATFORM ??= "surfaceless";
process.env.LP_NUM_THREADS ??= "4"; // as llmc sets it on 2 cores (src/runtime/webgpu/device.ts)
const backend = process.env.BACKEND ?? "opengles";
const gpu = create([`backend=${backend}`, ...(process.env.DAWN_FEATURES ? [`enable-dawn-features=${process.env.DAWN_FEATURES}`] : [])]);
const adapter = await gpu.requestAdapter(backend === "opengles" ? { featureLevel: "compatibility" } : {});
if (!adapter) throw new Error(`no ${backend} adapter`);
const device = await adapter.requestDevice({ requiredLimits: { maxTextureDimension2D: adapter.limits.maxTextureDimension2D } });
const N = Number(process.env.N ?? 4096), K = Number(process.env.K ?? 4096), R = Number(process.env.R ?? 8), WG = Number(process.env.WG ?? 32);
const LAYERS = 8, K4 = K / 4;
if (K % 4 || N % R) throw new Error("K must be a multiple of 4 and N of R");

const w = new Float32Array(N * K).map((_, i) => ((i * 7919) % 1000) / 500 - 1);
const x = new Float32Array(K).map((_, i) => ((i * 31) % 100) / 50 - 1);
const want = new Float64Array(N);
for (let r = 0; r < N; r++) for (let k = 0; k < K; k++) want[r] += w[r * K + k] * x[k];

const buffer = (data, usage) => {
  const b = device.createBuffer({ size: data.byteLength, usage: usage | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, data);
  return b;
};
const y = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const readback = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const xs = buffer(x, GPUBufferUsage.STORAGE);

/** The kernel: R rows per invocation, x and each row read as vec4. */
const kernel = (weightDecl, load) => `${weightDecl}
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.x * ${R}u;
  if (r0 >= ${N}u) { return; }
  var acc: array<vec4<f32>, ${R}>;
  for (var k = 0u; k < ${K4}u; k++) {
    let xv = x[k];
    ${Array.from({ length: R }, (_, i) => `acc[${i}] = acc[${i}] + ${load(`r0 + ${i}u`)} * xv;`).join("\n    ")}
  }
  ${Array.from({ length: R }, (_, i) => `y[r0 + ${i}u] = dot(acc[${i}], vec4<f32>(1.0));`).join("\n  ")}
}`;
const PATHS = {
  buffer: {
    code: kernel("@group(0) @binding(0) var<storage, read> w: array<vec4<f32>>;", (r) => `w[(${r}) * ${K4}u + k]`),
    resource: () => ({ buffer: buffer(w, GPUBufferUsage.STORAGE) }),
  },
  texture: {
    code: kernel("@group(0) @binding(0) var w: texture_2d<f32>;", (r) => `textureLoad(w, vec2<u32>(k, ${r}), 0)`),
    resource: () => {
      const t = device.createTexture({ size: [K4, N], format: "rgba32float", usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST });
      device.queue.writeTexture({ texture: t }, w, { bytesPerRow: K * 4, rowsPerImage: N }, [K4, N]);
      return t.createView();
    },
  },
};

const runs = [];
for (const name of (process.env.PATHS ?? "buffer,texture").split(",")) {
  const path = PATHS[name];
  if (!path) throw new Error(`unknown path ${name}: ${Object.keys(PATHS).join(", ")}`);
  const module = device.createShaderModule({ code: path.code });
  for (const m of (await module.getCompilationInfo()).messages) if (m.type === "error") throw new Error(`${name}: ${m.message}`);
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const groups = Array.from({ length: LAYERS }, () =>
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: path.resource() }, { binding: 1, resource: { buffer: xs } }, { binding: 2, resource: { buffer: y } }],
    }),
  );
  runs.push({ name, pipeline, groups, times: [] });
}

async function step(run) {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(run.pipeline);
  for (const g of run.groups) {
    pass.setBindGroup(0, g);
    pass.dispatchWorkgroups(Math.ceil(N / R / WG));
  }
  pass.end();
  encoder.copyBufferToBuffer(y, 0, readback, 0, N * 4);
  device.queue.submit([encoder.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  return out;
}

console.log(`adapter: ${adapter.info?.description ?? ""} (${backend}); W ${N}×${K} f32, ${R} rows per invocation, workgroups of ${WG}, ${LAYERS} per step`);
for (const run of runs) {
  const got = await step(run);
  let err = 0;
  for (let r = 0; r < N; r++) err = Math.max(err, Math.abs(got[r] - want[r]) / (1 + Math.abs(want[r])));
  if (!(err < 1e-3)) throw new Error(`${run.name}: y differs from the f64 reference by ${err}`);
}
for (let i = 0; i < Number(process.env.ROUNDS ?? 8); i++) {
  for (const run of runs) {
    const t0 = performance.now();
    await step(run);
    run.times.push(performance.now() - t0);
  }
}
const gbps = (ms) => ((LAYERS * N * K * 4) / 1e6 / ms).toFixed(1);
for (const run of runs) {
  const t = run.times.sort((a, b) => a - b);
  console.log(`${run.name.padEnd(8)} p50 ${t[t.length >> 1].toFixed(1)} ms = ${gbps(t[t.length >> 1])} GB/s, best ${gbps(t[0])} GB/s`);
}
process.exit(0);

// What one dispatch costs on this machine's WebGPU adapter, apart from its work: a chain of
// DISPATCHES kernels that each add one vector to another (N elements, 64 a workgroup) in one submit,
// timed per dispatch. With a few elements that is the fixed cost; with many it adds the work.
//
// On llvmpipe every dispatch hands its workgroups to Mesa's compute thread pool and blocks until the
// last one finishes, so the fixed cost is two thread wake-ups (the pool's, then the caller's); run
// once with LP_NUM_THREADS=0 (Mesa then runs the workgroups on the calling thread) to see the cost
// without them. docs/benchmarks.md ("What a dispatch costs on llvmpipe") has this machine's figures.
//
//   npm run build && EGL_PLATFORM=surfaceless [LP_NUM_THREADS=n] node test/webgpu/bench-dispatch.mjs [N…]
//   DISPATCHES=1000 (default); BACKEND=hardware|software|null (default auto)
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dist = pathToFileURL(resolve(process.env.LLMC_DIST ?? new URL("../../dist", import.meta.url).pathname)).href;
const { requestGpu } = await import(`${dist}/src/runtime/webgpu/device.js`);

const sizes = process.argv.slice(2).map(Number);
const dispatches = Number(process.env.DISPATCHES ?? 1000);
const gpu = await requestGpu(process.env.BACKEND ?? "auto");
const dev = gpu.device;
console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device} (${gpu.adapter.backend}); LP_NUM_THREADS=${process.env.LP_NUM_THREADS ?? "(llmc's default)"}`);
for (const n of sizes.length ? sizes : [64, 65536]) {
  const module = dev.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < ${n}u) { a[g.x] = a[g.x] + b[g.x]; } }`,
  });
  const pipeline = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const buffer = () => dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE });
  const [a, b] = [buffer(), buffer()];
  const group = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [a, b].map((buf, binding) => ({ binding, resource: { buffer: buf } })) });
  const run = async (count) => {
    const encoder = dev.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    for (let i = 0; i < count; i++) pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    dev.queue.submit([encoder.finish()]);
    await dev.queue.onSubmittedWorkDone();
  };
  await run(10);
  const t0 = performance.now();
  await run(dispatches);
  const us = ((performance.now() - t0) * 1000) / dispatches;
  console.log(`${String(n).padStart(9)} elements: ${us.toFixed(1)} µs per dispatch (${((n * 12) / us / 1000).toFixed(2)} GB/s moved)`);
  a.destroy();
  b.destroy();
}
gpu.destroy();
process.exit(0);

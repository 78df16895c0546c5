// Where a training step's kernel time goes on this machine's WebGPU adapter: the packed step of a
// model (default the shipped brown-llama, 8 sequences of 128 tokens, as `npm run train-example`
// runs it), each of its dispatches run ROUNDS times on its own and timed, then summed by kernel
// family (the label up to its dispatch number). A dispatch's time includes the adapter's fixed cost
// per dispatch (on llvmpipe ~56 µs: test/webgpu/bench-dispatch.mjs), printed once beside it.
//
//   npm run build && EGL_PLATFORM=surfaceless node test/webgpu/profile-train-step.mjs [MODEL.llm] [--batch B] [--context T] [--rounds R] [--top N] [--each]
//   TUNING='{"linear":{"tileM":16}}' merges into the adapter's tuning (its families' fields)
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    batch: { type: "string", default: "8" },
    context: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    top: { type: "string", default: "12" },
    each: { type: "boolean", default: false }, // also the slowest dispatches, with their shapes
  },
});
const dist = pathToFileURL(resolve(process.env.LLMC_DIST ?? new URL("../../dist", import.meta.url).pathname)).href;
const { compileTrainingFile } = await import(`${dist}/src/compiler/autodiff/index.js`);
const { initialWeights, packedInputs } = await import(`${dist}/src/runtime/cpu/train-step.js`);
const { requestGpu } = await import(`${dist}/src/runtime/webgpu/device.js`);
const { WebGpuTrainingStep } = await import(`${dist}/src/runtime/webgpu/train-step.js`);
const { formatShape } = await import(`${dist}/src/compiler/base/symbolic.js`);

const file = positionals[0] ?? new URL("../../models/examples/brown-llama.llm", import.meta.url).pathname;
const [B, L, R] = [Number(values.batch), Number(values.context), Number(values.rounds)];
const compiled = compileTrainingFile(file);
if (!compiled.training) throw new Error(compiled.diagnostics.map((d) => d.message).join("\n"));
const gpu = await requestGpu("auto");
const { CPU_TUNING, GPU_TUNING } = await import(`${dist}/src/compiler/emit/wgsl/index.js`);
const { isSoftwareAdapter } = await import(`${dist}/src/runtime/webgpu/tuning.js`);
const over = JSON.parse(process.env.TUNING ?? "{}");
const base = isSoftwareAdapter(gpu.adapter) ? CPU_TUNING : GPU_TUNING;
const tuning = Object.fromEntries(Object.entries(base).map(([k, v]) => [k, typeof v === "object" ? { ...v, ...over[k] } : (over[k] ?? v)]));
const step = new WebGpuTrainingStep(compiled.training, gpu, { tuning });
step.setWeights(initialWeights(compiled.model, 0));
const pack = { segment: L, sequences: B };
const prog = await step.prepared(L * B, pack);
const vocab = Number(compiled.model.config.get?.("vocab_size") ?? 256);
const sequences = Array.from({ length: B }, (_, s) => ({
  tokens: Int32Array.from({ length: L }, (_, i) => (i * 131 + s * 17) % vocab),
  targets: Int32Array.from({ length: L }, (_, i) => (i * 71 + s * 29 + 1) % vocab),
}));
const dev = gpu.device;
const inputs = packedInputs(step.trainingOf(pack), sequences);
for (const [name, buf] of prog.inputs) {
  const data = inputs.get(name);
  dev.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
}
dev.queue.writeBuffer(step.params, 0, Uint32Array.of(0, 0, 0, 0));

const run = async (indices, times) => {
  const encoder = dev.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (let r = 0; r < times; r++) {
    for (const i of indices) {
      pass.setPipeline(prog.pipelines[i]);
      pass.setBindGroup(0, prog.bindGroups[i]);
      pass.dispatchWorkgroups(...prog.step.kernels[i].workgroups);
    }
  }
  pass.end();
  const t0 = performance.now();
  dev.queue.submit([encoder.finish()]);
  await dev.queue.onSubmittedWorkDone();
  return performance.now() - t0;
};

const kernels = prog.step.kernels;
const all = kernels.map((_, i) => i);
await run(all, 1); // warm-up: first use of every pipeline
const whole = (await run(all, R)) / R;
const byFamily = new Map();
const each = [];
const nodes = new Map(prog.step.plan.graph.nodes.map((n) => [n.id, n]));
const shapeOf = (id) => formatShape(nodes.get(id).ty.shape);
for (let i = 0; i < kernels.length; i++) {
  const ms = (await run([i], R)) / R;
  const d = prog.step.plan.dispatches[i];
  each.push({ ms, what: `${kernels[i].label}: ${d.inputs.map(shapeOf).join(" ")} -> ${shapeOf(d.node)}` });
  const family = kernels[i].label.replace(/\s*#\d+.*$/, "");
  const f = byFamily.get(family) ?? { ms: 0, count: 0 };
  f.ms += ms;
  f.count++;
  byFamily.set(family, f);
}
const summed = [...byFamily.values()].reduce((a, f) => a + f.ms, 0);
console.log(`adapter: ${gpu.adapter.description || gpu.adapter.device}; ${file}, ${B} × ${L} tokens packed: ${kernels.length} dispatches, ${whole.toFixed(1)} ms a step (${((B * L) / whole * 1000).toFixed(0)} tokens/s of kernels), ${summed.toFixed(1)} ms timed one by one`);
for (const [family, f] of [...byFamily].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(values.top))) {
  console.log(`${family.padEnd(28)} ${String(f.count).padStart(4)} dispatches ${f.ms.toFixed(1).padStart(8)} ms ${((100 * f.ms) / summed).toFixed(1).padStart(5)}%`);
}
if (values.each) {
  console.log("slowest dispatches:");
  for (const e of each.sort((a, b) => b.ms - a.ms).slice(0, Number(values.top))) console.log(`${e.ms.toFixed(1).padStart(8)} ms  ${e.what}`);
}
step.dispose();
gpu.destroy();
process.exit(0);

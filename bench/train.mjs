// Training against PyTorch (Debian's python3-torch, torch 1.13, 2 threads): the same LLaMA, the same
// initial weights, the same token windows and the same AdamW settings on both sides.
//
//   1. gradients: the loss and every weight's gradient of one batch, llmc (CPU reference and WebGPU)
//      against torch.autograd — max |Δ| relative to the tensor's largest gradient;
//   2. loss curves: `--steps` AdamW steps on each side (llmc on --backend; on WebGPU with the
//      optimiser on the device as `llmc train` runs it, or on the host with --host-optimizer), the
//      largest relative difference of the per-step losses, and training tokens/s of each, as a ratio.
//
// Usage: npm run build && node bench/train.mjs [--model FILE.llm] [--steps 200] [--batch 4]
//        [--context 64] [--lr 3e-3] [--backend webgpu|cpu] [--host-optimizer] [--llmc-only] [--json]
// Needs /usr/bin/python3 with torch (apt-get install python3-torch); not part of CI. --llmc-only
// times llmc's steps alone (no torch): to compare two commits of llmc, run it in a worktree of each.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => import(join(root, "dist", "src", p));
const { openTrainingModel } = await dist("train/model.js");
const { createOptimizer, clipGradNorm, clipScale, deviceOptimizerConfig } = await dist("train/optimizer.js");
const { CORPUS } = await dist("runtime/weights/corpus.js");

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: join(root, "models", "examples", "tiny-llama.llm") },
    steps: { type: "string", default: "200" },
    batch: { type: "string", default: "4" },
    context: { type: "string", default: "64" },
    lr: { type: "string", default: "3e-3" },
    backend: { type: "string", default: "webgpu" },
    "host-optimizer": { type: "boolean", default: false },
    "llmc-only": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const steps = Number(args.steps);
const B = Number(args.batch);
const T = Number(args.context);
const optimizer = { lr: Number(args.lr), beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, clip: 1.0 };
const log = (s) => process.stderr.write(`${s}\n`);

const model = await openTrainingModel(args.model, { seed: 1 });
const cfg = (k) => model.model.config.get(k)?.value?.value;
const config = {
  dim: cfg("dim"), n_layers: cfg("n_layers"), n_heads: cfg("n_heads"), n_kv_heads: cfg("n_kv_heads"),
  norm_eps: cfg("norm_eps"), rope_theta: cfg("rope_theta"), tie_embeddings: cfg("tie_embeddings"),
};

// Token windows of the bundled English text, cut into batches both sides take in the same order.
const ids = Int32Array.from(model.tokenizer.encode(CORPUS.repeat(4)));
const batches = [];
for (let at = 0; at + B * (T + 1) <= ids.length && batches.length < 32; at += B * (T + 1)) {
  const seqs = [];
  for (let s = 0; s < B; s++) {
    const w = ids.subarray(at + s * (T + 1), at + (s + 1) * (T + 1));
    seqs.push({ tokens: [...w.subarray(0, T)], targets: [...w.subarray(1)] });
  }
  batches.push(seqs);
}

const names = [...model.params.keys()];
const work = mkdtempSync(join(tmpdir(), "llmc-bench-train-"));
let offset = 0;
const tensors = names.map((name) => {
  const t = { name, shape: [...model.shapes.get(name)], offset };
  offset += model.params.get(name).length;
  return t;
});
const flat = new Float32Array(offset);
for (const t of tensors) flat.set(model.params.get(t.name), t.offset);
writeFileSync(join(work, "weights.bin"), flat);
writeFileSync(join(work, "meta.json"), JSON.stringify({ config, tensors, batches, steps, optimizer }));
const torch = (mode) => {
  execFileSync("/usr/bin/python3", [join(root, "bench", "train", "torch_llama.py"), work, mode], { stdio: ["ignore", "inherit", "inherit"] });
  return JSON.parse(readFileSync(join(work, "result.json"), "utf8"));
};

// The step of each backend (src/train/loss.ts, as llmc train runs it): the batch's mean loss and
// mean gradients, reading the model's parameters as the optimiser leaves them.
const { modelLossAndGrad, webGpuLossAndGrad, webGpuTraining } = await dist("train/loss.js");
const backends = new Map();
async function lossAndGrad(backend, seqs) {
  if (!backends.has(backend)) {
    const { sharedGpu } = await dist("runtime/webgpu/device.js");
    backends.set(backend, backend === "webgpu" ? webGpuLossAndGrad(model, await sharedGpu()) : modelLossAndGrad(model));
  }
  return backends.get(backend)(batchOf(seqs));
}
const batchOf = (seqs) => ({ batch: seqs.length, context: T, tokens: Int32Array.from(seqs.flatMap((s) => s.tokens)), targets: Int32Array.from(seqs.flatMap((s) => s.targets)) });

// 1. Gradients of batch 0.
log(`model ${args.model}: ${flat.length.toLocaleString()} parameters; batch ${B} × ${T} tokens`);
const llmcOnly = args["llmc-only"];
const ref = llmcOnly ? null : torch("grads");
const torchGrads = llmcOnly ? null : new Float32Array(readFileSync(join(work, "grads.bin")).buffer.slice(0));
const agreement = {};
for (const backend of llmcOnly ? [] : ["cpu", "webgpu"]) {
  const { loss, grads } = await lossAndGrad(backend, batches[0]);
  let worst = 0;
  let worstName = "";
  for (const t of tensors) {
    const mine = grads.get(t.name);
    const theirs = torchGrads.subarray(t.offset, t.offset + mine.length);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < mine.length; i++) {
      scale = Math.max(scale, Math.abs(theirs[i]));
      diff = Math.max(diff, Math.abs(mine[i] - theirs[i]));
    }
    const rel = diff / Math.max(scale, 1e-12);
    if (rel > worst) [worst, worstName] = [rel, t.name];
  }
  agreement[backend] = { loss, torch_loss: ref.loss, loss_rel_diff: Math.abs(loss - ref.loss) / Math.abs(ref.loss), grad_max_rel_diff: worst, worst_tensor: worstName };
  log(`gradients (${backend}): loss ${loss.toFixed(6)} vs torch ${ref.loss.toFixed(6)}; max |Δgrad| / max |grad| = ${worst.toExponential(2)} (${worstName})`);
}

// 2. Loss curves.
const optConfig = { kind: "adamw", weightDecay: optimizer.weight_decay, betas: [optimizer.beta1, optimizer.beta2], eps: optimizer.eps };
const onDevice = args.backend === "webgpu" && !args["host-optimizer"];
const losses = [];
let started;
if (onDevice) {
  // As llmc train runs it: parameters, gradient sums and moments stay on the device.
  const { sharedGpu } = await dist("runtime/webgpu/device.js");
  const training = webGpuTraining(model, await sharedGpu());
  const device = training.device(deviceOptimizerConfig(optConfig, model.shapes));
  // Untimed, as the host path's first use above: the step's buffers and the optimiser's pipelines.
  await device.loss(batchOf(batches[0]));
  started = performance.now();
  for (let step = 0; step < steps; step++) {
    const { lossSum, gradSumNorm } = await device.accumulate([batchOf(batches[step % batches.length])]);
    device.update(optimizer.lr, clipScale(gradSumNorm / B, optimizer.clip) / B);
    losses.push(lossSum / B);
    if ((step + 1) % 25 === 0) log(`llmc step ${step + 1}: loss ${losses.at(-1).toFixed(4)}`);
  }
  await device.readParams(model.params);
  training.dispose();
} else {
  const opt = createOptimizer(optConfig, model.shapes);
  started = performance.now();
  for (let step = 0; step < steps; step++) {
    const { loss, grads } = await lossAndGrad(args.backend, batches[step % batches.length]);
    clipGradNorm(grads, optimizer.clip);
    opt.step(model.params, grads, optimizer.lr);
    losses.push(loss);
    if ((step + 1) % 25 === 0) log(`llmc step ${step + 1}: loss ${loss.toFixed(4)}`);
  }
}
const llmcTokensPerS = (steps * B * T) / ((performance.now() - started) / 1000);
for (const b of backends.values()) b.dispose();
if (llmcOnly) {
  rmSync(work, { recursive: true, force: true });
  const r = { model: args.model, batch: B, context: T, steps, backend: args.backend, loss_last: losses.at(-1), tokens_per_s: llmcTokensPerS };
  console.log(args.json ? JSON.stringify(r) : `llmc (${args.backend}): ${llmcTokensPerS.toFixed(0)} training tokens/s, loss after ${steps} steps ${losses.at(-1).toFixed(4)}`);
  process.exit(0);
}
const theirs = torch("train");
let curve = 0;
losses.forEach((l, i) => (curve = Math.max(curve, Math.abs(l - theirs.losses[i]) / Math.abs(theirs.losses[i]))));
const result = {
  model: args.model, parameters: flat.length, batch: B, context: T, steps, backend: args.backend, optimizer_on: onDevice ? "device" : "host",
  gradients: agreement,
  loss_first: [losses[0], theirs.losses[0]], loss_last: [losses.at(-1), theirs.losses.at(-1)],
  loss_curve_max_rel_diff: curve,
  tokens_per_s: { llmc: llmcTokensPerS, torch: theirs.tokens_per_s, ratio: llmcTokensPerS / theirs.tokens_per_s },
};
rmSync(work, { recursive: true, force: true });
if (args.json) console.log(JSON.stringify(result, null, 1));
else {
  console.log(`loss after ${steps} steps: llmc ${losses.at(-1).toFixed(4)}, torch ${theirs.losses.at(-1).toFixed(4)}; largest per-step difference ${(100 * curve).toFixed(3)}%`);
  console.log(`training tokens/s: llmc (${args.backend}, optimiser on the ${onDevice ? "device" : "host"}) ${llmcTokensPerS.toFixed(0)}, torch (CPU, 2 threads) ${theirs.tokens_per_s.toFixed(0)}, ratio ${(llmcTokensPerS / theirs.tokens_per_s).toFixed(3)}×`);
}
process.exit(0);

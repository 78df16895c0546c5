// llmc's benchmark suite: everything measured in the same run, quoted as ratios.
//   1. decode tokens/s of llmc (default backend) and llama.cpp (CPU, 2 threads) on random GGUFs of
//      ~3M and ~27M parameters, f32 and q8_0 — alternating rounds, medians, ratio;
//   2. effective GB/s of llmc's matvec (one 4096×4096 f32 linear per step) against the machine's
//      memory read bandwidth (bandwidth.c);
//   3. host time per decode step of a 32-layer model on Dawn's null backend (executes nothing).
//
//   cd bench && npm ci && npm run bench [-- --rounds 3] [--json]

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama } from "node-llama-cpp";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const llmc = join(root, "bin", "llmc");
const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" }, json: { type: "boolean", default: false }, "gen-tokens": { type: "string", default: "64" } } });
const rounds = Number(values.rounds);
const gen = Number(values["gen-tokens"]);
const work = mkdtempSync(join(tmpdir(), "llmc-bench-"));
const log = (s) => !values.json && console.log(s);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const env = { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? "surfaceless" };

function llmcJson(args) {
  return JSON.parse(execFileSync(process.execPath, [llmc, ...args], { env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
}

// ------------------------------------------------------------------ memory bandwidth
const bw = join(work, "bandwidth");
execFileSync("cc", ["-O3", "-march=native", "-pthread", join(here, "bandwidth.c"), "-o", bw]);
const bandwidth = JSON.parse(execFileSync(bw, ["2"], { encoding: "utf8" }));
log(`memory read bandwidth: ${bandwidth.threads_1_gbps} GB/s (1 thread), ${bandwidth.threads_n_gbps} GB/s (2 threads)`);

// ------------------------------------------------------------------ llmc vs llama.cpp
const MODELS = [
  { name: "3M", set: "vocab_size=2048,dim=256,n_layers=4,n_heads=4,n_kv_heads=2,ffn_dim=512,max_seq_len=512" },
  { name: "27M", set: "vocab_size=4096,dim=512,n_layers=8,n_heads=8,n_kv_heads=4,ffn_dim=1376,max_seq_len=512" },
];
const llama = await getLlama({ gpu: false, logLevel: "error" });
const decode = [];
for (const m of MODELS) {
  for (const dtype of ["f32", "q8_0"]) {
    const file = join(work, `${m.name}-${dtype}.gguf`);
    execFileSync(process.execPath, [llmc, "init-weights", join(root, "models", "llama.llm"), "--set", m.set, "--dtype", dtype, "--seed", "1", "-o", file], { env, stdio: "ignore" });
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 512, threads: 2 });
    const prompt = Array.from({ length: 32 }, (_, i) => 3 + ((i * 97) % 200));
    const ours = [];
    const theirs = [];
    let info = null;
    for (let r = 0; r < rounds; r++) {
      // llmc (a fresh process per round, as a user would run it)
      const res = llmcJson(["bench", file, "--json", "--prompt-tokens", "32", "--gen-tokens", String(gen), "--repeat", "1"]);
      ours.push(res.decode_tokens_per_s);
      info = res;
      // llama.cpp: prompt, then `gen` greedy tokens, timed after the prompt
      const seq = context.getSequence();
      const it = seq.evaluate(prompt, { temperature: 0 });
      let n = 0;
      let t0 = 0;
      for await (const _ of it) {
        if (n === 0) t0 = performance.now();
        if (++n > gen) break;
      }
      theirs.push(gen / ((performance.now() - t0) / 1000));
      seq.dispose();
    }
    await context.dispose();
    await model.dispose();
    const row = {
      model: m.name, dtype, params: info.params, backend: info.backend,
      llmc_decode_tokens_per_s: median(ours), llamacpp_decode_tokens_per_s: Math.round(median(theirs) * 100) / 100,
      ratio: Math.round((median(ours) / median(theirs)) * 1000) / 1000,
      dispatches_per_decode_step: info.dispatches_per_decode_step,
    };
    decode.push(row);
    log(`${m.name.padEnd(4)} ${dtype.padEnd(5)} llmc ${String(row.llmc_decode_tokens_per_s).padStart(8)} tok/s   llama.cpp ${String(row.llamacpp_decode_tokens_per_s).padStart(8)} tok/s   ratio ${row.ratio}   (${row.dispatches_per_decode_step} dispatches/step)`);
  }
}

// ------------------------------------------------------------------ matvec GB/s
const matvecLlm = join(work, "matvec.llm");
writeFileSync(matvecLlm, `// One 4096×4096 f32 matvec per step (plus a 16-row embedding lookup).
model matvec {
  config {
    vocab_size: int = 16
    dim: int = 4096
  }
  weights {
    embed: [vocab_size, dim]  gguf "token_embd.weight"
    w: [dim, dim]  gguf "w.weight"
  }
  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, dim] {
    return embed[tokens] @ w.T
  }
}
`);
const mv = llmcJson(["bench", matvecLlm, "--json", "--prompt-tokens", "1", "--gen-tokens", "64", "--repeat", String(rounds)]);
const matvecGBps = Math.round(((4096 * 4096 * 4) / (1 / mv.decode_tokens_per_s)) / 1e7) / 100;
log(`matvec 4096×4096 f32: ${matvecGBps} GB/s effective (whole step incl. readback) = ${Math.round((100 * matvecGBps) / bandwidth.threads_n_gbps)}% of the measured 2-thread read bandwidth, on ${mv.backend}`);

// ------------------------------------------------------------------ host overhead, 32 layers, null backend
const host = llmcJson(["bench", join(root, "models", "llama.llm"), "--set", "vocab_size=2048,dim=256,n_layers=32,n_heads=32,n_kv_heads=8,ffn_dim=704,max_seq_len=256", "--backend", "null", "--json", "--prompt-tokens", "8", "--gen-tokens", "64", "--repeat", String(rounds)]);
const hostMs = host.host_ms_per_decode_step ?? Math.round((1000 / host.decode_tokens_per_s) * 1000) / 1000;
log(`host time per decode step, 32 layers on Dawn's null backend: ${hostMs} ms (${host.dispatches_per_decode_step} dispatches, ${(host.dispatches_per_decode_step / 32).toFixed(2)} per layer incl. per-step kernels)`);

rmSync(work, { recursive: true, force: true });
const result = { date: new Date().toISOString(), bandwidth, decode, matvec: { gbps: matvecGBps, fraction_of_read_bandwidth: matvecGBps / bandwidth.threads_n_gbps, backend: mv.backend }, host_overhead: { ms_per_decode_step: hostMs, layers: 32, dispatches_per_decode_step: host.dispatches_per_decode_step } };
if (values.json) console.log(JSON.stringify(result, null, 2));

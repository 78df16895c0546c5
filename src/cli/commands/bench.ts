// `llmc bench MODEL`: prefill and decode speed, dispatches and host time per decode step, device
// memory. MODEL is a .gguf file / HF folder (its weights), or a .llm file (random weights, so any
// shape can be measured without a file — with `--backend null`, Dawn executes nothing and what is
// left is llmc's host overhead).

import { parseArgs } from "node:util";
import { compileFile, type Compiled } from "../../compiler/compile.js";
import { buildStepPlan } from "../../compiler/plan/build.js";
import { summarizePlan } from "../../compiler/plan/json.js";
import { BACKEND_CHOICES, chooseBackend, type Backend, type BackendChoice, type Executor } from "../../runtime/backend.js";
import type { WeightSource } from "../../runtime/executor.js";
import { readModelSource } from "../../runtime/generate/source.js";
import { compileArchitecture } from "../../runtime/generate/architecture.js";
import { loadModelWeights, weightSource, type ModelWeights } from "../../runtime/weights/loader.js";
import { randomTensor } from "../../runtime/weights/random.js";
import type { CliIO } from "../io.js";
import { parseSetFlags, printBackendChoice, printDiagnostics, UsageError } from "./common.js";
import { reportRuntimeError } from "./run.js";

export const benchUsage = `usage: llmc bench MODEL [--prompt-tokens N] [--gen-tokens N] [--backend auto|cpu|webgpu|cuda|null]
                  [--set name=value]… [--repeat R] [--json] [-v]

MODEL is a .gguf file or Hugging Face folder, or a .llm file (random weights, seed 0).
  --prompt-tokens N   prefill length (default 128)
  --gen-tokens N      decode steps timed (default 64)
  --backend           where to run (as llmc run --backend); null = Dawn's null backend (executes nothing:
                      host overhead only)
  --repeat R          timed repetitions; the median is reported (default 3)
  --json              one object: decode_tokens_per_s, prefill_tokens_per_s, dispatches_per_decode_step,
                      host_ms_per_decode_step, peak_device_bytes, …
  -v, --verbose       say on standard error which backend runs, and why "auto" passed over the others`;

export interface BenchResult {
  model: string;
  backend: string;
  params: number;
  compile_ms: number;
  prompt_tokens: number;
  gen_tokens: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  dispatches_per_decode_step: number | null;
  host_ms_per_decode_step: number | null;
  peak_device_bytes: number | null;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function positive(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${name} takes a positive integer, got '${v}'`);
  return Number(v);
}

/** Step statistics the WebGPU executor (dispatches) and the CUDA executor (launches) keep. */
interface StepStats {
  dispatches?: number;
  launches?: number;
  hostMs?: number;
}

export async function runBench(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "prompt-tokens": { type: "string" },
      "gen-tokens": { type: "string" },
      backend: { type: "string", default: "auto" },
      set: { type: "string", multiple: true },
      repeat: { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("llmc bench takes one model", benchUsage);
  const promptTokens = positive("--prompt-tokens", values["prompt-tokens"], 128);
  const genTokens = positive("--gen-tokens", values["gen-tokens"], 64);
  const repeat = positive("--repeat", values.repeat, 3);
  const choice = values.backend!;
  if (choice !== "null" && !(BACKEND_CHOICES as readonly string[]).includes(choice)) throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")} or null, got '${choice}'`);
  const path = positionals[0]!;
  const overrides = parseSetFlags(values.set);

  // Compile, and find the weights.
  const t0 = performance.now();
  let compiled: Compiled;
  let weights: ModelWeights | null = null;
  let source: WeightSource;
  if (path.endsWith(".llm")) {
    const res = compileFile(path, { overrides });
    if (printDiagnostics(res.diagnostics, res.sources, io) > 0 || !res.compiled) return 1;
    compiled = res.compiled;
    source = (name, shape) => randomTensor(name, shape, { seed: 0 });
  } else {
    const src = await readModelSource(path);
    compiled = compileArchitecture(src.imported, src.name, path, { overrides });
    weights = await loadModelWeights(compiled.model, src.weightsPath);
    source = weightSource(weights);
  }
  const compileMs = performance.now() - t0;

  let backend: Backend;
  try {
    backend =
      choice === "null"
        ? await nullBackend()
        : await chooseBackend(choice as BackendChoice, { onNote: (m) => io.err(`llmc bench: ${m}\n`), onChoice: values.verbose ? printBackendChoice(io, "llmc bench") : undefined });
  } catch (e) {
    await weights?.close();
    return reportRuntimeError(e, "bench", io);
  }
  let executor: Executor | null = null;
  try {
    executor = await backend.createExecutor(compiled.graph, source);
    const vocab = Number(compiled.model.config.get("vocab_size")?.value?.value ?? 2);
    const maxSeq = executor.maxSeqLen;
    if (promptTokens + genTokens > maxSeq) throw new UsageError(`--prompt-tokens + --gen-tokens (${promptTokens + genTokens}) exceed max_seq_len ${maxSeq}; pass --set max_seq_len=N`);
    const prompt = Int32Array.from({ length: promptTokens }, (_, i) => (i * 7919 + 13) % vocab);
    const ex = executor;
    const stats = () => (ex as unknown as { lastStep?: StepStats | null }).lastStep ?? null;

    // One untimed round compiles pipelines and warms caches.
    const round = async () => {
      ex.reset();
      const a = performance.now();
      const logits = await ex.step({ tokens: prompt });
      const prefill = performance.now() - a;
      const hostMs: number[] = [];
      let dispatches: number | null = null;
      const b = performance.now();
      // Greedy decoding as `llmc run --temperature 0` does it: the executor picks the token
      // (on the device where it can) and reads back 4 bytes instead of the logits.
      let next = hostArgmax(logits.data as Float32Array, vocab);
      for (let i = 0; i < genTokens; i++) {
        const out = await ex.step({ tokens: Int32Array.of(next), read: "argmax" });
        // A graph whose output is not [T, vocab] (a micro-benchmark) yields any index: keep it a token.
        // (On Dawn's null backend nothing runs, so the bytes read back are arbitrary.)
        const picked = out.dtype === "i32" ? (out.data as Int32Array)[0]! : hostArgmax(out.data as Float32Array, vocab);
        next = ((picked % vocab) + vocab) % vocab;
        const s = stats();
        if (s) {
          dispatches = s.dispatches ?? s.launches ?? null;
          if (s.hostMs !== undefined) hostMs.push(s.hostMs);
        }
      }
      const decode = performance.now() - b;
      return { prefill, decode, dispatches, hostMs: hostMs.length ? median(hostMs) : null };
    };
    await round();
    const rounds = [];
    for (let r = 0; r < repeat; r++) rounds.push(await round());

    let peak: number | null = null;
    if (backend.name === "webgpu") {
      const sizes = [1, promptTokens].map((T) => {
        const s = summarizePlan(buildStepPlan(compiled.graph, { T }));
        return s.bytes.weights + s.bytes.kv + s.bytes.literals + s.bytes.inputs + s.bytes.activations;
      });
      peak = Math.max(...sizes);
    }
    const result: BenchResult = {
      model: path,
      backend: backend.description,
      params: compiled.params,
      compile_ms: Math.round(compileMs * 10) / 10,
      prompt_tokens: promptTokens,
      gen_tokens: genTokens,
      prefill_tokens_per_s: round2(promptTokens / (median(rounds.map((r) => r.prefill)) / 1000)),
      decode_tokens_per_s: round2(genTokens / (median(rounds.map((r) => r.decode)) / 1000)),
      dispatches_per_decode_step: rounds[0]!.dispatches,
      host_ms_per_decode_step: rounds[0]!.hostMs === null ? null : Math.round(median(rounds.map((r) => r.hostMs!)) * 1000) / 1000,
      peak_device_bytes: peak,
    };
    if (values.json) io.out(JSON.stringify(result, null, 2) + "\n");
    else {
      io.out(
        [
          `model ${result.model} (${result.params.toLocaleString("en-US")} parameters) on ${result.backend}`,
          `  compile          ${result.compile_ms} ms`,
          `  prefill          ${result.prefill_tokens_per_s} tokens/s (${promptTokens} tokens)`,
          `  decode           ${result.decode_tokens_per_s} tokens/s (${genTokens} tokens, median of ${repeat})`,
          `  dispatches       ${result.dispatches_per_decode_step ?? "-"} per decode step`,
          `  host time        ${result.host_ms_per_decode_step ?? "-"} ms per decode step`,
          `  device memory    ${peak === null ? "-" : `${(peak / 1048576).toFixed(1)} MiB`}`,
        ].join("\n") + "\n",
      );
    }
    return 0;
  } finally {
    executor?.dispose?.();
    await weights?.close();
    backend.release();
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The highest logit of the last row. */
function hostArgmax(data: Float32Array, vocab: number): number {
  const row = data.subarray(data.length - vocab);
  let best = 0;
  for (let j = 1; j < vocab; j++) if (row[j]! > row[best]!) best = j;
  return best;
}

/** Dawn's null backend: validates and records everything, executes nothing. */
async function nullBackend(): Promise<Backend> {
  const { requestGpu } = await import("../../runtime/webgpu/device.js");
  const { WebGpuExecutor } = await import("../../runtime/webgpu/executor.js");
  const gpu = await requestGpu("null");
  return {
    name: "webgpu",
    description: "webgpu (Dawn null backend: host overhead only)",
    createExecutor: async (graph, weights) => {
      const ex = new WebGpuExecutor(graph, weights, gpu);
      await ex.ready();
      return ex;
    },
    release: () => gpu.destroy(),
  };
}

// `llmc train FILE.llm|MODEL.gguf --data PATH… -o OUT.gguf [options]`: trains a model on text on
// WebGPU, CUDA or the CPU, from scratch (a .llm: llmc init-weights' random weights) or from a GGUF's weights
// (fine-tuning). Writes OUT.gguf (an ordinary model file), OUT.optim (the optimiser and data state
// that --resume continues from) and OUT.loss.svg (the loss curves). Ctrl-C stops after the running
// step and writes a checkpoint.

import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { InputError } from "../../runtime/generate/errors.js";
import { ResourceError } from "../../runtime/errors.js";
import { tokenizerFromJSON, type Tokenizer } from "../../runtime/tokenizer/index.js";
import { WeightFileError } from "../../runtime/weights/errors.js";
import { CheckpointError, plotPath, readCheckpointState, statePath, writeCheckpoint } from "../../train/checkpoint.js";
import { dataFiles, DataError, splitValidation, tokenizeData, windowCount } from "../../train/data.js";
import { cudaTraining, modelLossAndGrad, webGpuTraining } from "../../train/loss.js";
import { CudaError, CudaUnavailableError } from "../../runtime/cuda/errors.js";
import { testedCudaBackend } from "../../runtime/cuda/probe.js";
import { findNvcc } from "../../runtime/cuda/ptx.js";
import { sharedGpu } from "../../runtime/webgpu/device.js";
import { readTokenizerVocab } from "../../runtime/weights/tokenizer-vocab.js";
import type { LossAndGrad, Trainable } from "../../train/train.js";
import { openTrainingModel, type TrainingModel } from "../../train/model.js";
import type { OptimizerConfig, OptimizerKind } from "../../train/optimizer.js";
import { lossCurveSvg } from "../../train/plot.js";
import { scheduleProblems, type ScheduleConfig, type ScheduleKind } from "../../train/schedule.js";
import { train, type TrainState, type TrainStep } from "../../train/train.js";
import type { CliIO } from "../io.js";
import { parseSetFlags, printDiagnostics, UsageError } from "./common.js";

export const trainUsage = `usage: llmc train FILE.llm|MODEL.gguf --data PATH… -o OUT.gguf [options]

Trains a model on text (WebGPU, CUDA or the CPU): from scratch for a .llm file (random weights as
llmc init-weights writes them), or from a GGUF file's weights (fine-tuning). Writes OUT.gguf, a model
file llmc and llama.cpp load; OUT.optim, the training state --resume continues from; and
OUT.loss.svg, the loss curves. Ctrl-C stops after the running step and writes a checkpoint.

data:
  --data PATH…           text files, folders of them, or .jsonl files (one JSON object a line);
                         repeat --data or list several paths after it
  --text-field NAME      the field of a .jsonl record that holds the text (default "text")
  --tokenizer FILE       tokenize the data with this tokenizer.json instead of the model's vocabulary
  --val-fraction F       the share of tokens, from the end, held out for validation (default 0.05)

training:
  --steps N              optimiser steps in all (default 100; a resumed run continues up to N)
  --batch B              sequences per micro-batch (default 4)
  --context T            tokens per sequence (default 64, at most the model's max_seq_len)
  --grad-accum K         micro-batches per step (default 1): a step sees B·K sequences
  --optimizer NAME       adamw (default) or sgd
  --lr X                 peak learning rate (default 1e-3)
  --schedule NAME        constant, cosine (default: warm-up, then cosine decay to --min-lr) or step
  --warmup W             linear warm-up steps (default 0)
  --min-lr X             the floor of cosine and step decay (default 0)
  --decay-every K        step schedule: multiply the rate by --decay-factor every K steps (default steps/3)
  --decay-factor F       step schedule: default 0.1
  --weight-decay X       AdamW's decoupled decay, SGD's L2 term (default 0); 1-D tensors are not decayed
  --momentum M           SGD momentum (default 0.9)
  --nesterov             SGD with Nesterov momentum
  --clip X               clip the global gradient norm to X (default 1; 0 does not clip)
  --seed N               seeds the random initial weights, the data order and dropout (default 0)
  --dropout P            residual dropout probability in training (the model's resid_dropout
                         config value; default the model's, 0 for the bundled ones)
  --attn-dropout P       dropout on the attention probabilities in training (attn_dropout)

output:
  -o, --output OUT.gguf  the trained model (required)
  --eval-every K         validation loss every K steps and at the end (default 10; 0 never)
  --eval-batches N       at most N batches of validation data per evaluation (default 8)
  --checkpoint-every K   write OUT.gguf and OUT.optim every K steps (default 0: at the end and on Ctrl-C)
  --resume CKPT.gguf     continue the run that wrote CKPT.gguf (and CKPT.optim beside it)
  --json                 one JSON object per step on stdout: {"step", "loss", "val_loss"?, "lr", "tokens_per_s", "grad_norm"}

model:
  --backend B            auto (default: cuda when a device passes the self-test and nvcc is here,
                         else webgpu when there is an adapter, else cpu), webgpu, cpu,
                         or cuda (an NVIDIA driver, and nvcc for the kernels)
  --host-optimizer       on webgpu or cuda, run the optimiser on the host (gradients read back
                         every sequence) instead of on the device
  --arch FILE.llm        the architecture of a GGUF file, instead of the one it names
  --set name=value       set a config value (repeatable)`;

const OPTIMIZERS: readonly OptimizerKind[] = ["adamw", "sgd"];
const SCHEDULES: readonly ScheduleKind[] = ["constant", "cosine", "step"];
const DECIMAL_INTEGER = /^\d+$/;
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

const options = {
  data: { type: "string", multiple: true },
  "text-field": { type: "string", default: "text" },
  tokenizer: { type: "string" },
  "val-fraction": { type: "string", default: "0.05" },
  steps: { type: "string", default: "100" },
  batch: { type: "string", default: "4" },
  context: { type: "string", default: "64" },
  "grad-accum": { type: "string", default: "1" },
  optimizer: { type: "string", default: "adamw" },
  lr: { type: "string", default: "1e-3" },
  schedule: { type: "string", default: "cosine" },
  warmup: { type: "string", default: "0" },
  "min-lr": { type: "string", default: "0" },
  "decay-every": { type: "string" },
  "decay-factor": { type: "string" },
  "weight-decay": { type: "string", default: "0" },
  momentum: { type: "string", default: "0.9" },
  nesterov: { type: "boolean", default: false },
  clip: { type: "string", default: "1" },
  seed: { type: "string", default: "0" },
  dropout: { type: "string" },
  "attn-dropout": { type: "string" },
  output: { type: "string", short: "o" },
  "eval-every": { type: "string", default: "10" },
  "eval-batches": { type: "string", default: "8" },
  "checkpoint-every": { type: "string", default: "0" },
  resume: { type: "string" },
  json: { type: "boolean", default: false },
  backend: { type: "string", default: "auto" },
  "host-optimizer": { type: "boolean", default: false },
  arch: { type: "string" },
  set: { type: "string", multiple: true },
} as const;

type Flags = ReturnType<typeof parseFlags>;

function parseFlags(args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options });
  if (positionals.length === 0) throw new UsageError("missing FILE.llm or MODEL.gguf", trainUsage);
  // `--data a.txt b.txt`: paths after the model are more data.
  const data = [...(values.data ?? []), ...positionals.slice(1)];
  if (values.data === undefined) {
    throw new UsageError(positionals.length > 1 ? `expected one model, got ${positionals.length} paths; give the training text with --data` : "missing --data PATH", trainUsage);
  }
  if (values.output === undefined) throw new UsageError("missing -o OUT.gguf", trainUsage);
  if (!values.output.toLowerCase().endsWith(".gguf")) throw new UsageError(`-o must name a .gguf file, got '${values.output}'`, trainUsage);

  const int = (name: keyof typeof values, min: number): number => {
    const text = values[name] as string | undefined;
    const v = Number(text);
    if (text === undefined || !DECIMAL_INTEGER.test(text) || !Number.isSafeInteger(v) || v < min) {
      throw new UsageError(`--${name} takes an integer ≥ ${min}, got '${String(text)}'`, trainUsage);
    }
    return v;
  };
  const num = (name: keyof typeof values, ok: (v: number) => boolean, range: string): number => {
    const text = values[name] as string | undefined;
    const v = Number(text);
    if (text === undefined || !DECIMAL_NUMBER.test(text) || !Number.isFinite(v) || !ok(v)) {
      throw new UsageError(`--${name} takes a number ${range}, got '${String(text)}'`, trainUsage);
    }
    return v;
  };
  const choice = <T extends string>(name: keyof typeof values, choices: readonly T[]): T => {
    const v = values[name] as string;
    if (!(choices as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${v}'`, trainUsage);
    return v as T;
  };

  const backend = values.backend!;
  if (!["auto", "cpu", "webgpu", "cuda"].includes(backend)) throw new UsageError(`--backend must be auto, webgpu, cpu or cuda, got '${backend}'`, trainUsage);
  const seed = int("seed", 0);
  if (seed > 0xffffffff) throw new UsageError(`--seed takes an integer from 0 to 4294967295, got '${seed}'`, trainUsage);
  const optimizer = choice("optimizer", OPTIMIZERS);
  const steps = int("steps", 1);
  const schedule: ScheduleConfig = {
    kind: choice("schedule", SCHEDULES),
    lr: num("lr", (v) => v > 0, "> 0"),
    steps,
    warmup: int("warmup", 0),
    minLr: num("min-lr", (v) => v >= 0, "≥ 0"),
    ...(values["decay-every"] !== undefined ? { every: int("decay-every", 1) } : {}),
    ...(values["decay-factor"] !== undefined ? { factor: num("decay-factor", (v) => v > 0 && v <= 1, "in (0, 1]") } : {}),
  };
  const problems = scheduleProblems(schedule);
  if (problems.length > 0) throw new UsageError(problems.join("; "), trainUsage);
  const optimizerConfig: OptimizerConfig = {
    kind: optimizer,
    weightDecay: num("weight-decay", (v) => v >= 0, "≥ 0"),
    momentum: num("momentum", (v) => v >= 0 && v < 1, "in [0, 1)"),
    nesterov: values.nesterov!,
  };
  if (optimizerConfig.nesterov && optimizer !== "sgd") throw new UsageError("--nesterov is an SGD option; add --optimizer sgd", trainUsage);
  if (optimizerConfig.nesterov && optimizerConfig.momentum === 0) throw new UsageError("--nesterov needs --momentum > 0", trainUsage);
  return {
    model: positionals[0]!,
    data,
    output: values.output,
    backend,
    hostOptimizer: values["host-optimizer"]!,
    textField: values["text-field"]!,
    tokenizer: values.tokenizer,
    valFraction: num("val-fraction", (v) => v >= 0 && v < 1, "in [0, 1)"),
    steps,
    batch: int("batch", 1),
    context: int("context", 1),
    gradAccum: int("grad-accum", 1),
    optimizer: optimizerConfig,
    schedule,
    clip: num("clip", (v) => v >= 0, "≥ 0"),
    seed,
    evalEvery: int("eval-every", 0),
    evalBatches: int("eval-batches", 1),
    checkpointEvery: int("checkpoint-every", 0),
    resume: values.resume,
    json: values.json!,
    arch: values.arch,
    overrides: dropoutOverrides(parseSetFlags(values.set), { dropout: values.dropout, "attn-dropout": values["attn-dropout"] }, num),
  };
}

/** `--dropout P` is `--set resid_dropout=P`, `--attn-dropout P` is `--set attn_dropout=P` (the config
 *  values the bundled architectures declare). */
function dropoutOverrides(
  overrides: Map<string, string>,
  flags: Record<keyof typeof DROPOUT_CONFIG, string | undefined>,
  num: (flag: keyof typeof DROPOUT_CONFIG, ok: (v: number) => boolean, what: string) => number,
): Map<string, string> {
  const out = new Map(overrides);
  for (const flag of Object.keys(DROPOUT_CONFIG) as (keyof typeof DROPOUT_CONFIG)[]) {
    if (flags[flag] === undefined) continue;
    const config = DROPOUT_CONFIG[flag];
    if (overrides.has(config)) throw new UsageError(`give the dropout once: --${flag} or --set ${config}=…`, trainUsage);
    out.set(config, String(num(flag, (v) => v >= 0 && v < 1, "in [0, 1)")));
  }
  return out;
}

const DROPOUT_CONFIG = { dropout: "resid_dropout", "attn-dropout": "attn_dropout" } as const;

/** `signal` stands in for Ctrl-C (tests); without it, SIGINT stops the run after the running step. */
export async function runTrain(args: string[], io: CliIO, signal?: AbortSignal): Promise<number> {
  const flags = parseFlags(args);
  const interrupt = new AbortController();
  const onSigint = () => {
    io.err("\nllmc train: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)\n");
    interrupt.abort();
    process.once("SIGINT", () => process.exit(130));
  };
  if (signal) signal.addEventListener("abort", () => interrupt.abort(), { once: true });
  else process.once("SIGINT", onSigint);
  try {
    return await trainFromFlags(flags, io, interrupt.signal);
  } catch (e) {
    if (e instanceof InputError && e.diagnostics) {
      printDiagnostics(e.diagnostics.list, e.diagnostics.sources, io);
      io.err(`llmc train: ${e.message.split("\n")[0]}\n`);
      return 1;
    }
    if (e instanceof InputError || e instanceof WeightFileError || e instanceof DataError || e instanceof CheckpointError || e instanceof CudaError || e instanceof CudaUnavailableError || e instanceof ResourceError) {
      io.err(`llmc train: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}

async function trainFromFlags(flags: Flags, io: CliIO, signal: AbortSignal): Promise<number> {
  await dataFiles(flags.data); // a missing --data path fails before the model is compiled
  // From scratch, a --tokenizer becomes the new model's vocabulary (written into OUT.gguf); for an
  // existing model it only tokenizes the data.
  const embedVocab = flags.tokenizer !== undefined && flags.model.endsWith(".llm");
  const vocab = embedVocab ? await readTokenizerVocab(flags.tokenizer!) : undefined;
  if (typeof vocab === "string") throw new InputError(vocab);
  const tokenizer = flags.tokenizer === undefined || embedVocab ? undefined : await readTokenizer(flags.tokenizer);
  const saved = flags.resume === undefined ? undefined : await readCheckpointState(flags.resume);
  if (saved && saved.state.optimizer.kind !== flags.optimizer.kind) {
    throw new UsageError(`--resume ${flags.resume} was trained with --optimizer ${saved.state.optimizer.kind}; resume with the same optimiser`, trainUsage);
  }
  const model = await openTrainingModel(flags.model, {
    seed: flags.seed,
    overrides: flags.overrides,
    ...(flags.arch !== undefined ? { arch: flags.arch } : {}),
    ...(flags.resume !== undefined ? { weights: flags.resume } : {}),
    ...(tokenizer ? { tokenizer } : {}),
    ...(vocab ? { vocab } : {}),
  });
  if (saved) for (const [name, values] of saved.exact) model.params.get(name)?.set(values);
  const maxSeqLen = model.model.config.get("max_seq_len")?.value?.value;
  if (typeof maxSeqLen === "number" && flags.context > maxSeqLen) {
    throw new UsageError(`--context ${flags.context} is longer than the model's max_seq_len ${maxSeqLen}; lower --context or --set max_seq_len=${flags.context}`, trainUsage);
  }
  if (tokenizer) io.err("llmc train: note: the data is tokenized with --tokenizer, but OUT.gguf keeps the model file's vocabulary\n");

  const { train: trainTokens, val } = await tokenize(flags, model.tokenizer, io, signal);
  if (windowCount(trainTokens.length, flags.context) === 0) {
    throw new DataError(`the training split has ${trainTokens.length} tokens, fewer than --context + 1 = ${flags.context + 1}; give more text or a smaller --context`);
  }
  if (flags.evalEvery > 0 && windowCount(val.length, flags.context) === 0) {
    io.err(
      `llmc train: note: the validation split has ${val.length} tokens, fewer than --context + 1, so no validation loss is computed; raise --val-fraction or lower --context\n`,
    );
  }

  const backend = await trainingBackend(flags.backend, model, io);
  const settings = { ...flags, overrides: Object.fromEntries(flags.overrides) };
  const progress = stepProgress(io, flags.steps, saved?.state.step ?? 0);
  let last: TrainState | undefined;
  let first: TrainStep | undefined;
  let latest: TrainStep | undefined;
  let lastVal: number | undefined;
  let stopped = false;
  try {
    const steps = train({
      model: {
        params: model.params,
        shapes: model.shapes,
        lossAndGrad: backend.lossAndGrad,
        ...(backend.device && !flags.hostOptimizer ? { device: backend.device } : {}),
      },
      train: trainTokens,
      val,
      steps: flags.steps,
      batch: flags.batch,
      context: flags.context,
      gradAccum: flags.gradAccum,
      optimizer: flags.optimizer,
      schedule: flags.schedule,
      clip: flags.clip,
      seed: flags.seed,
      evalEvery: flags.evalEvery,
      evalBatches: flags.evalBatches,
      checkpointEvery: flags.checkpointEvery,
      checkpoint: async (params, state, reason) => {
        last = state;
        stopped = reason === "abort";
        await writeCheckpoint(flags.output, model, params, state, settings);
        await writePlot(flags.output, model, state);
      },
      ...(saved ? { resume: saved.state } : {}),
      signal,
    });
    for await (const rec of steps) {
      first ??= rec;
      latest = rec;
      if (rec.val_loss !== undefined) lastVal = rec.val_loss;
      if (flags.json) io.out(`${JSON.stringify(rec)}\n`);
      progress.update(rec, lastVal);
    }
  } finally {
    progress.stop();
    backend.dispose();
  }
  if (!last) {
    io.err(`llmc train: ${flags.resume} is already at step ${saved?.state.step ?? 0} of --steps ${flags.steps}; nothing to do (raise --steps to train on)\n`);
    return 0;
  }
  const span = first && latest ? `steps ${first.step}–${latest.step}, loss ${first.loss.toFixed(4)} → ${latest.loss.toFixed(4)}` : "no steps";
  const valText = lastVal === undefined ? "" : `, validation loss ${lastVal.toFixed(4)}`;
  io.err(
    `llmc train: ${stopped ? "stopped; checkpoint" : "wrote"} ${flags.output} (+ ${statePath(flags.output)}, ${plotPath(flags.output)}) at step ${last.step}: ${span}${valText}\n`,
  );
  if (stopped) io.err(`llmc train: continue with --resume ${flags.output}\n`);
  return 0;
}

/** Where the training graph runs: CUDA (asked for, or by auto when a device passes the self-test),
 *  WebGPU (asked for, or by auto when an adapter opens), else the CPU reference. On WebGPU and CUDA
 *  the optimiser can run on the device too (`device`). */
interface TrainingBackend {
  lossAndGrad: LossAndGrad;
  device?: Trainable["device"];
  dispose(): void;
}

async function trainingBackend(choice: string, model: TrainingModel, io: CliIO): Promise<TrainingBackend> {
  const onCpu = (): TrainingBackend => {
    const lossAndGrad = modelLossAndGrad(model);
    return { lossAndGrad, dispose: () => lossAndGrad.dispose() };
  };
  if (choice === "cpu") return onCpu();
  if (choice === "auto") {
    const device = await cudaForTraining();
    if (device) {
      io.err(`llmc train: training on cuda (${device})\n`);
      return cudaTraining(model);
    }
  }
  if (choice === "cuda") {
    try {
      const step = cudaTraining(model);
      io.err("llmc train: training on cuda\n");
      return step;
    } catch (e) {
      if (e instanceof CudaUnavailableError || e instanceof CudaError) throw new InputError(`--backend cuda: ${e.message}; train with --backend webgpu or cpu`);
      throw e;
    }
  }
  let gpu;
  try {
    gpu = await sharedGpu();
  } catch (e) {
    if (choice === "webgpu") throw new InputError(`--backend webgpu: no WebGPU adapter (${(e as Error).message}); train with --backend cpu`);
    io.err(`llmc train: no WebGPU adapter (${(e as Error).message.split("\n")[0]}); training on the CPU\n`);
    return onCpu();
  }
  io.err(`llmc train: training on webgpu (${gpu.adapter.description || gpu.adapter.device})\n`);
  return webGpuTraining(model, gpu);
}

/** For auto: the CUDA device, when one passes the self-test inference uses and nvcc is here to build
 *  the training kernels (they are compiled per model, never prebuilt); else null. */
async function cudaForTraining(): Promise<string | null> {
  if (!findNvcc()) return null;
  try {
    const backend = await testedCudaBackend();
    backend.release();
    return backend.description;
  } catch {
    return null;
  }
}

async function readTokenizer(path: string): Promise<Tokenizer> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new InputError(`--tokenizer ${path}: cannot read it (${(e as Error).message})`);
  }
  try {
    return tokenizerFromJSON(JSON.parse(text));
  } catch (e) {
    throw new InputError(`--tokenizer ${path}: not a tokenizer.json llmc can use (${(e as Error).message})`);
  }
}

async function tokenize(flags: Flags, tokenizer: Tokenizer, io: CliIO, signal: AbortSignal): Promise<{ train: Int32Array; val: Int32Array }> {
  const bar = io.progress
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: "llmc: tokenizing [{bar}] {percentage}% | {tokens} tokens", hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  try {
    const { tokens } = await tokenizeData(flags.data, tokenizer, {
      textField: flags.textField,
      signal,
      onProgress: (p) => {
        if (!bar) return;
        if (!started) bar.start(p.bytesTotal, 0, { tokens: 0 });
        started = true;
        bar.update(p.bytesDone, { tokens: p.tokens.toLocaleString("en-US") });
      },
    });
    return splitValidation(tokens, flags.valFraction);
  } finally {
    if (started) bar?.stop();
  }
}

async function writePlot(output: string, model: TrainingModel, state: TrainState): Promise<void> {
  const svg = lossCurveSvg({ train: state.history.train, val: state.history.val, title: `${model.model.name}: loss` });
  await writeFile(plotPath(output), svg);
}

/** The step bar on a terminal; elsewhere a line now and then (and at every evaluation). */
function stepProgress(io: CliIO, steps: number, from: number): { update: (r: TrainStep, val: number | undefined) => void; stop: () => void } {
  const started = performance.now();
  const eta = (r: TrainStep) => {
    const perStep = (performance.now() - started) / 1000 / Math.max(1, r.step - from);
    return formatSeconds(perStep * (steps - r.step));
  };
  const fields = (r: TrainStep, val: number | undefined) => ({
    loss: r.loss.toFixed(4),
    val: val === undefined ? "–" : val.toFixed(4),
    tps: Math.round(r.tokens_per_s).toLocaleString("en-US"),
    eta: eta(r),
  });
  if (io.progress) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: "llmc: step {value}/{total} [{bar}] loss {loss} | val {val} | {tps} tok/s | ETA {eta}",
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(steps, from, { loss: "–", val: "–", tps: "–", eta: "–" });
    return { update: (r, val) => bar.update(r.step, fields(r, val)), stop: () => bar.stop() };
  }
  const every = Math.max(1, Math.floor(steps / 20));
  return {
    update: (r, val) => {
      if (r.step % every !== 0 && r.step !== steps && r.val_loss === undefined) return;
      const f = fields(r, val);
      io.err(`llmc train: step ${r.step}/${steps} loss ${f.loss} val ${f.val} lr ${r.lr.toExponential(2)} ${f.tps} tok/s ETA ${f.eta}\n`);
    },
    stop: () => undefined,
  };
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "–";
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

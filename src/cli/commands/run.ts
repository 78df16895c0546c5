// `llmc run MODEL --prompt TEXT [options]`: generate text, streamed to standard output; prompt size,
// prefill and decode speed and the backend go to standard error. The model-loading and sampling
// options, and how runtime errors are reported, are shared with `llmc chat` and `llmc logprobs`.

import { parseArgs } from "node:util";
import { ImportError } from "../../compiler/import/write-llm.js";
import { BACKEND_CHOICES, BackendError, type BackendChoice } from "../../runtime/backend.js";
import { ResourceError } from "../../runtime/errors.js";
import { ContextOverflowError } from "../../runtime/executor.js";
import { InputError } from "../../runtime/generate/errors.js";
import type { BeamOptions } from "../../runtime/generate/beam.js";
import { DEFAULT_MAX_TOKENS, type GenerateOptions } from "../../runtime/generate/generate.js";
import { randomSeed, resolveSamplerOptions, SAMPLER_DEFAULTS } from "../../runtime/generate/sampler.js";
import { loadModel, type Model } from "../../runtime/model.js";
import { WeightFileError } from "../../runtime/weights/errors.js";
import { ChatTemplateError } from "../../runtime/tokenizer/index.js";
import type { CliIO } from "../io.js";
import { isStorageDType, SUPPORTED_DTYPES } from "../../compiler/target/storage.js";
import { loadingProgress } from "../progress.js";
import { parseSetFlags, printBackendChoice, printDiagnostics, UsageError } from "./common.js";

export const modelOptionsUsage = `model options:
  --backend B            auto (default: CUDA if its self-test passes, else WebGPU, else CPU), cpu, webgpu, cuda
  --arch FILE.llm        the architecture to use instead of the one the model file names
  --set name=value       set a config value (repeatable), e.g. --set max_seq_len=8192
  --weight-dtype T       weights on the device as f32, f16, bf16, q8_0 or q4_0 (default: as the
                         file stores them; f32 where a dtype cannot hold a weight)
  -v, --verbose          say more on standard error (the backend and why, the seed, load time, config)`;

export const samplingUsage = `sampling options:
  -n, --max-tokens N     the most tokens to generate (default ${DEFAULT_MAX_TOKENS})
  --temperature T        0 is greedy (default ${SAMPLER_DEFAULTS.temperature})
  --top-k K              keep the K most likely tokens; 0 keeps all (default ${SAMPLER_DEFAULTS.topK})
  --top-p P              keep the most likely tokens up to probability P (default ${SAMPLER_DEFAULTS.topP})
  --min-p P              drop tokens less likely than P × the most likely (default ${SAMPLER_DEFAULTS.minP})
  --repeat-penalty R     penalise the last --repeat-last-n tokens; 1 is off (default ${SAMPLER_DEFAULTS.repeatPenalty})
  --repeat-last-n N      (default ${SAMPLER_DEFAULTS.repeatLastN}; -1: the whole context)
  --seed N               the same seed gives the same text (default: random, printed with --verbose);
                         any integer of up to 64 bits, of which the sampler uses the low 32
  --stop S               stop when the text contains S, which is not printed (repeatable)
  --ignore-eos           go on past end-of-turn tokens (benchmarks, tests): only -n or --stop ends`;

export const beamUsage = `beam search:
  --beams N              the most likely sequence by beam search with N beams (deterministic: no
                         sampling options); 1 is greedy decoding
  --length-penalty A     rank finished beams by Σ logprob / length^A; 0 ranks by total
                         log-probability, larger A favours longer outputs (default 1)`;

export const beamOptionSpec = {
  beams: { type: "string" },
  "length-penalty": { type: "string" },
} as const;

/** --beams and --length-penalty as generate options (none without --beams); bad values are usage errors. */
export function beamOptions(flags: { beams?: string; "length-penalty"?: string } & SamplingFlags, usage: string): BeamOptions {
  if (flags.beams === undefined) {
    if (flags["length-penalty"] !== undefined) throw new UsageError("--length-penalty needs --beams", usage);
    return {};
  }
  const beams = Number(flags.beams);
  if (!DECIMAL_INTEGER.test(flags.beams) || !Number.isSafeInteger(beams) || beams < 1) throw new UsageError(`--beams takes an integer ≥ 1, got '${flags.beams}'`, usage);
  const alpha = flags["length-penalty"];
  if (alpha !== undefined && (!DECIMAL_NUMBER.test(alpha) || !Number.isFinite(Number(alpha)))) throw new UsageError(`--length-penalty takes a number, got '${alpha}'`, usage);
  const sampling = (["temperature", "top-k", "top-p", "min-p", "repeat-penalty", "repeat-last-n"] as const).find((f) => flags[f] !== undefined);
  if (sampling) throw new UsageError(`--beams searches deterministically: it takes no --${sampling}`, usage);
  return { beams, ...(alpha !== undefined ? { lengthPenalty: Number(alpha) } : {}) };
}

export const runUsage = `usage: llmc run MODEL --prompt TEXT [options]

MODEL is a .gguf file or a Hugging Face model folder (config.json, tokenizer.json, safetensors).
Prints the generated text; statistics go to standard error.

options:
  -p, --prompt TEXT      the text to continue
  --chat                 wrap the prompt as a user message in the model's chat template
  --parse-special        read special tokens written in the prompt (</s>, <|eot_id|>) as those
                         tokens (default: as plain text)

${samplingUsage}

${beamUsage}

${modelOptionsUsage}`;

export const modelOptionSpec = {
  backend: { type: "string" },
  arch: { type: "string" },
  set: { type: "string", multiple: true },
  "weight-dtype": { type: "string" },
  verbose: { type: "boolean", short: "v", default: false },
} as const;

export const samplingOptionSpec = {
  "max-tokens": { type: "string", short: "n" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "repeat-last-n": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  "ignore-eos": { type: "boolean" },
} as const;

interface ModelFlags {
  backend?: string;
  arch?: string;
  set?: string[];
  "weight-dtype"?: string;
  verbose?: boolean;
}

/** Loads MODEL as the flags say, printing the backend's notes (and, verbose, what was loaded) to stderr. */
export async function loadModelForCli(path: string, flags: ModelFlags, io: CliIO, usage: string): Promise<Model> {
  const backend = flags.backend ?? "auto";
  if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")}, got '${backend}'`, usage);
  }
  const dtype = flags["weight-dtype"];
  if (dtype !== undefined && !isStorageDType(dtype)) throw new UsageError(`--weight-dtype must be one of ${SUPPORTED_DTYPES.join(", ")}, got '${dtype}'`, usage);
  const started = performance.now();
  const progress = loadingProgress(io);
  let model: Model;
  try {
    model = await loadModel(path, {
      backend: backend as BackendChoice,
      arch: flags.arch,
      overrides: parseSetFlags(flags.set),
      onNote: (m) => io.err(`llmc: ${m}\n`),
      onChoice: flags.verbose ? printBackendChoice(io, "llmc") : undefined,
      ...(dtype !== undefined ? { weightDType: dtype } : {}),
      onProgress: (p) => progress.update("reading", p.bytes, p.bytesTotal),
      onUpload: (done, total) => progress.update("uploading", done, total),
    });
  } finally {
    progress.stop();
  }
  if (flags.verbose) {
    const c = model.config;
    io.err(
      `llmc: loaded ${path} in ${((performance.now() - started) / 1000).toFixed(2)} s on ${model.backend}: ` +
        `vocab ${c["vocab_size"]}, dim ${c["dim"]}, ${c["n_layers"]} layers, context ${model.maxSeqLen}\n`,
    );
  }
  return model;
}

type SamplingFlags = {
  [K in keyof typeof samplingOptionSpec]?: (typeof samplingOptionSpec)[K] extends { multiple: true } ? string[] : (typeof samplingOptionSpec)[K] extends { type: "boolean" } ? boolean : string;
};

// Numbers on the command line are decimal: Number() would also take "0x10", "0b1" or "".
const DECIMAL_INTEGER = /^[+-]?\d+$/;
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The sampling flags as GenerateOptions (a random seed when none is given); bad values are usage errors. */
export function samplingOptions(flags: SamplingFlags, usage: string): GenerateOptions & { seed: number } {
  const num = (name: keyof SamplingFlags, integer: boolean): number | undefined => {
    const text = flags[name];
    if (text === undefined) return undefined;
    const v = Number(text);
    if (typeof text !== "string" || !(integer ? DECIMAL_INTEGER : DECIMAL_NUMBER).test(text) || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
      throw new UsageError(`--${name} takes ${integer ? "an integer" : "a number"}, got '${String(text)}'`, usage);
    }
    return v;
  };
  const opts = {
    maxTokens: num("max-tokens", true),
    temperature: num("temperature", false),
    topK: num("top-k", true),
    topP: num("top-p", false),
    minP: num("min-p", false),
    repeatPenalty: num("repeat-penalty", false),
    repeatLastN: num("repeat-last-n", true),
    seed: seedFlag(flags.seed, usage) ?? randomSeed(),
    stop: flags.stop ?? [],
    ...(flags["ignore-eos"] ? { ignoreEos: true } : {}),
  };
  if (opts.maxTokens !== undefined && opts.maxTokens < 0) throw new UsageError(`--max-tokens must be ≥ 0, got ${opts.maxTokens}`, usage);
  try {
    resolveSamplerOptions(opts);
  } catch (e) {
    const flag = (e as Error).message.replace(/^(\w+)/, (name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw new UsageError(flag, usage);
  }
  return opts;
}

/**
 * --seed: an integer of up to 64 bits (−2^63 … 2^64 − 1), reduced to the low 32 bits that the
 * sampler's generator takes, as the API reduces `seed`, so that the two give the same text.
 */
function seedFlag(text: string | undefined, usage: string): number | undefined {
  if (text === undefined) return undefined;
  const seed = DECIMAL_INTEGER.test(text) ? BigInt(text) : undefined;
  if (seed === undefined || seed < -(2n ** 63n) || seed >= 2n ** 64n) throw new UsageError(`--seed takes an integer from -2^63 to 2^64-1, got '${text}'`, usage);
  return Number(BigInt.asUintN(32, seed));
}

/**
 * Reports an error from loading or running a model: bad input (the file, the architecture, a token
 * id, a full context) is printed as a message and gives exit code 1; anything else is a bug and is
 * thrown on, to main's internal-error report.
 */
export function reportRuntimeError(e: unknown, command: string, io: CliIO): 1 {
  if (e instanceof InputError && e.diagnostics) {
    printDiagnostics(e.diagnostics.list, e.diagnostics.sources, io);
    io.err(`llmc ${command}: ${e.message.split("\n")[0]}\n`);
    return 1;
  }
  if (e instanceof InputError || e instanceof ImportError || e instanceof WeightFileError || e instanceof BackendError || e instanceof ContextOverflowError || e instanceof ResourceError || e instanceof ChatTemplateError) {
    io.err(`llmc ${command}: ${e.message}\n`);
    return 1;
  }
  throw e;
}

export async function runRun(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prompt: { type: "string", short: "p" },
      chat: { type: "boolean", default: false },
      "parse-special": { type: "boolean", default: false },
      ...samplingOptionSpec,
      ...beamOptionSpec,
      ...modelOptionSpec,
    },
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "missing MODEL" : `expected one MODEL, got ${positionals.length}`, runUsage);
  if (values.prompt === undefined) throw new UsageError("missing --prompt", runUsage);
  const sampling = { ...samplingOptions(values, runUsage), ...beamOptions(values, runUsage) };

  let model: Model | undefined;
  try {
    model = await loadModelForCli(positionals[0]!, values, io, runUsage);
    if (values.verbose) io.err(`llmc: seed ${sampling.seed}\n`);
    const prompt = model.promptTokens(values.prompt, { chat: values.chat, parseSpecial: values["parse-special"] });
    // Kernels and pipelines are built before the clock starts, and reported on their own.
    const building = performance.now();
    await model.prepare(prompt.length);
    const builtMs = performance.now() - building;
    const started = performance.now();
    let firstAt = 0;
    let items = 0;
    let text = "";
    try {
      for await (const t of model.generate(prompt, sampling)) {
        if (items++ === 0) firstAt = performance.now();
        text += t.text;
        io.out(t.text);
      }
    } finally {
      if (text !== "" && !text.endsWith("\n")) io.out("\n");
    }
    const ended = performance.now();
    const rate = (n: number, ms: number) => (n > 0 && ms > 0 ? `${((n * 1000) / ms).toFixed(1)} tokens/s` : "n/a");
    // A beam search's tokens all come when it ends: its time is the whole run's.
    const speed = (sampling.beams ?? 1) > 1
      ? `${items} tokens by beam search (${sampling.beams} beams) in ${((ended - started) / 1000).toFixed(2)} s`
      : `prefill ${rate(prompt.length, firstAt - started)}; ${items} tokens generated, decode ${rate(items - 1, ended - firstAt)}`;
    const built = builtMs >= 50 ? `kernels built in ${(builtMs / 1000).toFixed(2)} s; ` : "";
    io.err(`llmc run: prompt ${prompt.length} tokens, ${built}${speed}; backend ${model.backend}\n`);
    return 0;
  } catch (e) {
    return reportRuntimeError(e, "run", io);
  } finally {
    model?.dispose();
  }
}

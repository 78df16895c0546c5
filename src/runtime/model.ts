// The embedding API: load a model file, generate text from it, score token sequences.
//
//   const model = await loadModel("model.gguf");
//   for await (const { text } of model.generate("Once upon a time", { maxTokens: 64 })) process.stdout.write(text);
//   const { perplexity } = await model.logprobs(model.tokenizer.encode("Once upon a time"));
//   model.dispose();
//
// Loading reads the file's metadata, compiles the architecture it names (a bundled .llm file, or the
// one given as `arch`), reads the weights and puts the graph on a backend.

import type { Compiled } from "../compiler/compile.js";
import type { StorageDType } from "../compiler/target/storage.js";
import { chooseBackend, type Backend, type BackendChoice, type ChooseBackendOptions, type Executor } from "./backend.js";
import { compileArchitecture } from "./generate/architecture.js";
import { Context } from "./generate/context.js";
import { InputError } from "./generate/errors.js";
import { generateTokens, type GenerateOptions, type GeneratedToken } from "./generate/generate.js";
import { topK } from "./generate/sampler.js";
import { readModelSource } from "./generate/source.js";
import { applyChatTemplate, type ChatTemplateKind, type Tokenizer } from "./tokenizer/index.js";
import { loadModelWeights, weightSource, type ModelWeights } from "./weights/loader.js";

type WeightProgress = NonNullable<NonNullable<Parameters<typeof loadModelWeights>[2]>["onProgress"]>;

export interface LoadModelOptions {
  /** Where to run: "auto" (default) is CUDA when its self-test passes, else WebGPU when an adapter can be had, else the CPU. */
  backend?: BackendChoice;
  /** A .llm architecture file to use instead of the bundled one the model file names. */
  arch?: string;
  /** Config values to set, as `llmc run --set name=value`. */
  overrides?: ReadonlyMap<string, string> | Record<string, string | number | boolean>;
  /** Positions the KV cache holds; default the model's max_seq_len, at most 4096. */
  maxSeqLen?: number;
  /** The chat template for `generate(…, { chat: true })`; default the one the file names. */
  chatTemplate?: ChatTemplateKind;
  /** Reports weight loading (reading the file). */
  onProgress?: WeightProgress;
  /** Reports the upload to the device: bytes done of total. */
  onUpload?: (done: number, total: number) => void;
  /** Every matrix in this dtype on the device; default: the dtype the file stores (a q4_0 GGUF
   *  stays q4_0), f32 where a dtype cannot hold a weight. */
  weightDType?: StorageDType;
  /** Notes for the user (e.g. that "auto" fell back to the CPU). Default: standard error. */
  onNote?: (message: string) => void;
  /** Told the backend chosen and why "auto" passed over the ones before it. */
  onChoice?: ChooseBackendOptions["onChoice"];
}

export interface ModelGenerateOptions extends GenerateOptions {
  /** Wrap a string prompt as one user message in the model's chat template. */
  chat?: boolean;
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface Logprobs {
  tokens: number[];
  /** positions[i]: the distribution over the token after tokens[0..i], its `top` most likely first. */
  positions: { token: number; top: TokenLogprob[] }[];
  /** exp of the mean negative log-likelihood of tokens[1..] given what precedes each; null for fewer than two tokens. */
  perplexity: number | null;
}

export interface Model {
  readonly tokenizer: Tokenizer;
  /** The resolved config values of the architecture (dim, n_layers, max_seq_len, …). */
  readonly config: Readonly<Record<string, number | boolean | string>>;
  /** What runs the model, e.g. "cpu (reference interpreter)". */
  readonly backend: string;
  /** The chat template `chat: true` uses, if the file names one llmc knows (or one was given). */
  readonly chatTemplate: ChatTemplateKind | undefined;
  /** Positions the KV cache holds. */
  readonly maxSeqLen: number;

  /**
   * Streams generated tokens and their text. A string prompt is tokenized as the model's tokenizer
   * does by default (with BOS when the model adds one); token ids are used as they are. One
   * generation runs at a time.
   */
  generate(prompt: string | readonly number[], opts?: ModelGenerateOptions): AsyncIterable<GeneratedToken>;
  /** The token ids `generate` runs for `prompt`: tokenized with the model's defaults, or in its chat template. */
  promptTokens(prompt: string | readonly number[], opts?: { chat?: boolean }): number[];
  /** The log-probabilities after each prefix of `tokens` (its `top` most likely next tokens, default 5). */
  logprobs(tokens: readonly number[], opts?: { top?: number }): Promise<Logprobs>;
  /** Empties the KV cache. */
  reset(): void;
  /** Releases the weights and the backend's device. */
  dispose(): void;
}

/**
 * Loads a model: a .gguf file, or a Hugging Face folder (config.json, tokenizer.json, safetensors).
 * Throws InputError (or the weight loader's WeightFileError) with a message for the user when the
 * file cannot be used.
 */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<Model> {
  const source = await readModelSource(path);
  const compiled = compileArchitecture(source.imported, source.name, path, {
    arch: opts.arch,
    overrides: overrideMap(opts.overrides),
    maxSeqLen: opts.maxSeqLen,
  });
  const vocabSize = configNumber(compiled, "vocab_size");
  if (source.tokenizer.vocabSize > vocabSize) {
    throw new InputError(`${path}: the tokenizer has ${source.tokenizer.vocabSize} tokens but the model's vocab_size is ${vocabSize}`);
  }
  const backend = await chooseBackend(opts.backend ?? "auto", { onNote: opts.onNote, onChoice: opts.onChoice });
  let weights: ModelWeights | undefined;
  try {
    weights = await loadModelWeights(compiled.model, source.weightsPath, { onProgress: opts.onProgress });
    const executor = await backend.createExecutor(compiled.graph, weightSource(weights), {
      ...(opts.weightDType ? { weightDType: opts.weightDType } : {}),
      ...(opts.onUpload ? { onUpload: opts.onUpload } : {}),
    });
    return new LoadedModel(compiled, source.tokenizer, opts.chatTemplate ?? source.chatTemplate, backend, executor, weights);
  } catch (e) {
    await weights?.close();
    backend.release();
    throw e;
  }
}

function overrideMap(o: LoadModelOptions["overrides"]): Map<string, string> {
  if (o === undefined) return new Map();
  if (o instanceof Map) return new Map(o);
  return new Map(Object.entries(o).map(([k, v]) => [k, String(v)]));
}

function configNumber(compiled: Compiled, name: string): number {
  const v = compiled.model.config.get(name)?.value?.value;
  return typeof v === "number" ? v : 0;
}

class LoadedModel implements Model {
  readonly config: Readonly<Record<string, number | boolean | string>>;
  readonly maxSeqLen: number;
  private readonly context: Context;
  private readonly vocabSize: number;
  private busy = false;
  private disposed = false;

  constructor(
    compiled: Compiled,
    readonly tokenizer: Tokenizer,
    readonly chatTemplate: ChatTemplateKind | undefined,
    private readonly backendImpl: Backend,
    private readonly executor: Executor,
    private readonly weights: ModelWeights,
  ) {
    const config: Record<string, number | boolean | string> = {};
    for (const [name, entry] of compiled.model.config) if (entry.value) config[name] = entry.value.value;
    this.config = Object.freeze(config);
    this.vocabSize = configNumber(compiled, "vocab_size");
    this.context = new Context(executor, { vocabSize: this.vocabSize, slidingWindow: configNumber(compiled, "sliding_window") });
    this.maxSeqLen = executor.maxSeqLen;
  }

  get backend(): string {
    return this.backendImpl.description;
  }

  generate(prompt: string | readonly number[], opts: ModelGenerateOptions = {}): AsyncIterable<GeneratedToken> {
    return this.exclusive(() => generateTokens(this.context, this.tokenizer, this.promptTokens(prompt, opts), opts));
  }

  async logprobs(tokens: readonly number[], opts: { top?: number } = {}): Promise<Logprobs> {
    const top = opts.top ?? 5;
    if (!Number.isInteger(top) || top < 0) throw new InputError(`top must be an integer ≥ 0, got ${top}`);
    if (tokens.length === 0) throw new InputError("logprobs needs at least one token");
    this.acquire();
    let rows: Float32Array;
    try {
      rows = await this.context.score(tokens);
    } finally {
      this.busy = false;
    }
    const V = this.vocabSize;
    const positions: Logprobs["positions"] = [];
    let nll = 0;
    tokens.forEach((token, i) => {
      const row = rows.subarray(i * V, (i + 1) * V);
      const lse = logSumExp(row);
      const best = topK(row, Math.min(top, V));
      positions.push({ token, top: Array.from(best.ids.subarray(0, top), (id, k) => ({ id, logprob: best.logits[k]! - lse })) });
      if (i + 1 < tokens.length) nll -= row[tokens[i + 1]!]! - lse;
    });
    return { tokens: [...tokens], positions, perplexity: tokens.length > 1 ? Math.exp(nll / (tokens.length - 1)) : null };
  }

  reset(): void {
    this.context.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.executor.dispose?.();
    void this.weights.close();
    this.backendImpl.release();
  }

  promptTokens(prompt: string | readonly number[], opts: { chat?: boolean } = {}): number[] {
    const chat = opts.chat ?? false;
    if (typeof prompt !== "string") {
      if (chat) throw new InputError("chat: true needs a string prompt (token ids are used as they are)");
      return [...prompt];
    }
    if (!chat) return this.tokenizer.encode(prompt);
    if (!this.chatTemplate) {
      throw new InputError("the model file names no chat template llmc knows (LLaMA 2, LLaMA 3, Mistral); pass chatTemplate to loadModel");
    }
    const text = applyChatTemplate(this.chatTemplate, [{ role: "user", content: prompt }], { addGenerationPrompt: true });
    return this.tokenizer.encode(text, { addBos: false, parseSpecial: true });
  }

  /** Runs a generator with the KV cache to itself: one generation or scoring at a time. */
  private async *exclusive<T>(run: () => AsyncGenerator<T>): AsyncGenerator<T> {
    this.acquire();
    try {
      yield* run();
    } finally {
      this.busy = false;
    }
  }

  private acquire(): void {
    if (this.disposed) throw new InputError("the model was disposed");
    if (this.busy) throw new InputError("the model is already generating; finish (or break out of) one generation before starting another");
    this.busy = true;
  }
}

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

// The embedding API: load a model file, generate text from it, score token sequences.
//
//   const model = await loadModel("model.gguf");
//   for await (const { text } of model.generate("Once upon a time", { maxTokens: 64 })) process.stdout.write(text);
//   const { perplexity } = await model.logprobs(model.tokenizer.encode("Once upon a time"));
//   model.dispose();
//
// Loading reads the file's metadata, compiles the architecture it names (a bundled .llm file, or the
// one given as `arch`), reads the weights and puts the graph on a backend.
//
// One KV cache means one generation at a time. A generation holds the model from its first `next()`
// until it ends; while one of its steps runs, another generate, logprobs or reset is refused
// (ModelBusyError). While it waits for its consumer (between tokens, or abandoned without return()),
// any of those ends it instead: its next `next()` throws GenerationSupersededError. dispose() ends
// whatever runs (its iterator throws ModelDisposedError) and frees the device once no step is
// running. An AbortSignal (`signal`) ends a load, a generation or a logprobs call between two steps.

import type { Compiled } from "../compiler/compile.js";
import type { Graph } from "../compiler/ir/graph.js";
import type { StorageDType } from "../compiler/target/storage.js";
import { chooseBackend, type Backend, type BackendChoice, type ChooseBackendOptions, type Executor } from "./backend.js";
import { compileArchitecture } from "./generate/architecture.js";
import { Context } from "./generate/context.js";
import { GenerationSupersededError, InputError, ModelBusyError, ModelDisposedError, type ModelCall } from "./generate/errors.js";
import { beamGenerate, type BeamOptions } from "./generate/beam.js";
import { generateTokens, type GenerateOptions, type GeneratedToken } from "./generate/generate.js";
import { topK } from "./generate/sampler.js";
import { readModelSource, type ModelSource } from "./generate/source.js";
import { encodeChat, type ChatTemplate, type Tokenizer } from "./tokenizer/index.js";
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
  chatTemplate?: ChatTemplate;
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
  /** Aborting it stops the load between two tensors; loadModel rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface PromptOptions {
  /** Wrap a string prompt as one user message in the model's chat template. */
  chat?: boolean;
  /**
   * Recognise special tokens (`</s>`, `<|eot_id|>`) written in a string prompt, as Hugging Face's
   * apply_chat_template does with a message. Default false: the text is plain characters, so it
   * cannot end a turn or forge a role; with `chat`, only the template's own markup has them.
   */
  parseSpecial?: boolean;
}

export interface ModelGenerateOptions extends GenerateOptions, PromptOptions, BeamOptions {}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface Logprobs {
  tokens: number[];
  /**
   * positions[i]: the distribution over the token after tokens[0..i], its `top` most likely first;
   * with `tokenLogprobs`, also `logprob`, that of tokens[i] given tokens[0..i-1] (from position 1).
   */
  positions: { token: number; top: TokenLogprob[]; logprob?: number }[];
  /** exp of the mean negative log-likelihood of tokens[1..] given what precedes each; null for fewer than two tokens. */
  perplexity: number | null;
}

export interface LogprobsOptions {
  /** How many of the most likely next tokens to list at each position (default 5; 0 skips the ranking). */
  top?: number;
  /** Give each position after the first the log-probability of its own token (`logprob`), as scoring a text needs. */
  tokenLogprobs?: boolean;
  signal?: AbortSignal;
}

export interface Model {
  readonly tokenizer: Tokenizer;
  /** The resolved config values of the architecture (dim, n_layers, max_seq_len, …). */
  readonly config: Readonly<Record<string, number | boolean | string>>;
  /** What runs the model, e.g. "cpu (reference interpreter)". */
  readonly backend: string;
  /** The chat template `chat: true` uses, if the file names one llmc knows (or one was given). */
  readonly chatTemplate: ChatTemplate | undefined;
  /** Positions the KV cache holds. */
  readonly maxSeqLen: number;

  /**
   * Streams generated tokens and their text. A string prompt is tokenized as the model's tokenizer
   * does by default (with BOS when the model adds one); token ids are used as they are. One
   * generation runs at a time: it starts at the first `next()`, which throws ModelBusyError while a
   * step of another one runs, and ends one that waits for its consumer (GenerationSupersededError).
   */
  generate(prompt: string | readonly number[], opts?: ModelGenerateOptions): AsyncIterable<GeneratedToken>;
  /** The token ids `generate` runs for `prompt`: tokenized with the model's defaults, or in its chat template. */
  promptTokens(prompt: string | readonly number[], opts?: PromptOptions): number[];
  /**
   * The log-probabilities after each prefix of `tokens` (its `top` most likely next tokens, default
   * 5). Holds the model as a generation does, for its one step.
   */
  logprobs(tokens: readonly number[], opts?: LogprobsOptions): Promise<Logprobs>;
  /**
   * Builds ahead what a prompt of `tokens` tokens and the decoding after it need on the device
   * (kernels, pipelines, buffers; nothing on the CPU), so that generation's first step measures the
   * step alone. Generation does it on its own when this was not called.
   */
  prepare(tokens: number): Promise<void>;
  /**
   * Empties the KV cache. Ends a generation that waits for its consumer (GenerationSupersededError);
   * throws ModelBusyError while a step runs.
   */
  reset(): void;
  /**
   * Releases the weights and the backend's device: now, or when the step that is running ends. A
   * generation still going throws ModelDisposedError at its next step; so does every later call.
   */
  dispose(): void;
}

/**
 * Loads a model: a .gguf file, or a Hugging Face folder (config.json, tokenizer.json, safetensors).
 * Throws InputError (or the weight loader's WeightFileError) with a message for the user when the
 * file cannot be used.
 */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<Model> {
  const { signal } = opts;
  signal?.throwIfAborted();
  const source = await readModelSource(path, { ...(opts.arch !== undefined ? { arch: opts.arch } : {}) });
  return openModel(source, (model, onProgress) => loadModelWeights(model, source.weightsPath, { onProgress }), opts);
}

/**
 * The model a source describes, its weights read by `readWeights`: loadModel's work after the file
 * is found, shared with the browser entry (src/web), which reads from bytes instead of a path.
 */
export async function openModel(
  source: ModelSource,
  readWeights: (model: Compiled["model"], onProgress: WeightProgress) => Promise<ModelWeights>,
  opts: Omit<LoadModelOptions, "arch"> = {},
): Promise<Model> {
  const { signal } = opts;
  const path = source.weightsPath;
  const note = opts.onNote ?? ((m: string) => void process.stderr.write(`llmc: ${m}\n`));
  for (const w of source.imported.warnings) note(w);
  signal?.throwIfAborted();
  const compiled = compileArchitecture(source.imported, source.name, path, {
    overrides: overrideMap(opts.overrides),
    maxSeqLen: opts.maxSeqLen,
    ...(source.files ? { files: source.files } : {}),
  });
  const vocabSize = configNumber(compiled, "vocab_size");
  if (source.tokenizer.vocabSize > vocabSize) {
    throw new InputError(`${path}: the tokenizer has ${source.tokenizer.vocabSize} tokens but the model's vocab_size is ${vocabSize}`);
  }
  const backend = await chooseBackend(opts.backend ?? "auto", { onNote: opts.onNote, onChoice: opts.onChoice });
  let weights: ModelWeights | undefined;
  let executor: Executor | undefined;
  try {
    signal?.throwIfAborted();
    // Thrown from the progress callbacks, the signal's reason stops reading (or uploading) between two tensors.
    weights = await readWeights(compiled.model, (p) => {
      opts.onProgress?.(p);
      signal?.throwIfAborted();
    });
    signal?.throwIfAborted();
    executor = await backend.createExecutor(compiled.graph, weightSource(weights), {
      ...(opts.weightDType ? { weightDType: opts.weightDType } : {}),
      onUpload: (done, total) => {
        opts.onUpload?.(done, total);
        signal?.throwIfAborted();
      },
    });
    signal?.throwIfAborted();
    return new LoadedModel(compiled, source.tokenizer, opts.chatTemplate ?? source.chatTemplate, backend, executor, weights);
  } catch (e) {
    executor?.dispose?.();
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

/**
 * The window of the model's attention: the widest `window` of its attention ops, or 0 when one of
 * them sees every position or reads positions in a score or mask program (then shifting the context
 * would change what it computes).
 */
function attentionWindow(graph: Graph): number {
  const windows = graph.nodes.filter((n) => n.op === "attention").map((n) => (n.attrs["score"] || n.attrs["mask"] ? 0 : Number(n.attrs["window"] ?? 0)));
  return windows.length > 0 && windows.every((w) => w > 0) ? Math.max(...windows) : 0;
}

function configNumber(compiled: Compiled, name: string): number {
  const v = compiled.model.config.get(name)?.value?.value;
  return typeof v === "number" ? v : 0;
}

/**
 * A generation or logprobs call that has the KV cache. Its signal is aborted by the caller's signal,
 * by a later call that ends it, or by dispose().
 */
class Job {
  private readonly controller = new AbortController();
  /** A step is running, or about to: the job is not waiting for its consumer. */
  stepping = false;
  private readonly forward = () => this.controller.abort(this.caller?.reason);

  constructor(private readonly caller: AbortSignal | undefined) {
    if (caller?.aborted) this.forward();
    else caller?.addEventListener("abort", this.forward, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Aborts the job, unless it is already aborted. */
  end(reason: Error): void {
    this.controller.abort(reason);
  }

  detach(): void {
    this.caller?.removeEventListener("abort", this.forward);
  }
}

class LoadedModel implements Model {
  readonly config: Readonly<Record<string, number | boolean | string>>;
  readonly maxSeqLen: number;
  private readonly context: Context;
  private readonly vocabSize: number;
  /** The generation or logprobs call that has the KV cache. */
  private job: Job | undefined;
  private disposed = false;
  private released = false;

  constructor(
    compiled: Compiled,
    readonly tokenizer: Tokenizer,
    readonly chatTemplate: ChatTemplate | undefined,
    private readonly backendImpl: Backend,
    private readonly executor: Executor,
    private readonly weights: ModelWeights,
  ) {
    const config: Record<string, number | boolean | string> = {};
    for (const [name, entry] of compiled.model.config) if (entry.value) config[name] = entry.value.value;
    this.config = Object.freeze(config);
    this.vocabSize = configNumber(compiled, "vocab_size");
    this.context = new Context(executor, { vocabSize: this.vocabSize, slidingWindow: attentionWindow(compiled.graph) });
    this.maxSeqLen = executor.maxSeqLen;
  }

  get backend(): string {
    return this.backendImpl.description;
  }

  async *generate(prompt: string | readonly number[], opts: ModelGenerateOptions = {}): AsyncGenerator<GeneratedToken> {
    const job = this.begin("generate", opts.signal);
    try {
      // With `beams`, the best sequence by beam search (greedy for one beam); else sampled.
      const generator = opts.beams === undefined ? generateTokens : beamGenerate;
      const tokens = generator(this.context, this.tokenizer, this.promptTokens(prompt, opts), { ...opts, signal: job.signal });
      for (;;) {
        job.stepping = true;
        const next = await tokens.next().finally(() => (job.stepping = false));
        if (next.done) return;
        yield next.value;
      }
    } finally {
      this.finish(job);
    }
  }

  async logprobs(tokens: readonly number[], opts: LogprobsOptions = {}): Promise<Logprobs> {
    const top = opts.top ?? 5;
    if (!Number.isInteger(top) || top < 0) throw new InputError(`top must be an integer ≥ 0, got ${top}`);
    if (tokens.length === 0) throw new InputError("logprobs needs at least one token");
    const job = this.begin("logprobs", opts.signal);
    job.stepping = true;
    let rows: Float32Array;
    try {
      rows = await this.context.score(tokens, job.signal);
      job.signal.throwIfAborted();
    } finally {
      job.stepping = false;
      this.finish(job);
    }
    const V = this.vocabSize;
    const positions: Logprobs["positions"] = [];
    let nll = 0;
    let own = 0; // the log-probability of tokens[i], from row i - 1
    tokens.forEach((token, i) => {
      const row = rows.subarray(i * V, (i + 1) * V);
      const lse = logSumExp(row);
      // topK(row, 0) would rank the whole vocabulary.
      const best = top > 0 ? topK(row, Math.min(top, V)) : null;
      const ranked = best ? Array.from(best.ids.subarray(0, top), (id, k) => ({ id, logprob: best.logits[k]! - lse })) : [];
      positions.push(opts.tokenLogprobs && i > 0 ? { token, top: ranked, logprob: own } : { token, top: ranked });
      if (i + 1 < tokens.length) {
        own = row[tokens[i + 1]!]! - lse;
        nll -= own;
      }
    });
    return { tokens: [...tokens], positions, perplexity: tokens.length > 1 ? Math.exp(nll / (tokens.length - 1)) : null };
  }

  async prepare(tokens: number): Promise<void> {
    if (this.disposed) throw new ModelDisposedError();
    await this.executor.prepareSteps?.(Math.max(1, Math.min(tokens, this.maxSeqLen)));
  }

  reset(): void {
    this.supersede("reset");
    this.job = undefined;
    this.context.reset();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const job = this.job;
    job?.end(new ModelDisposedError());
    // A running step still uses the device: the job frees it when the step ends (finish).
    if (!job?.stepping) this.release();
  }

  promptTokens(prompt: string | readonly number[], opts: PromptOptions = {}): number[] {
    const chat = opts.chat ?? false;
    if (typeof prompt !== "string") {
      if (chat) throw new InputError("chat: true needs a string prompt (token ids are used as they are)");
      return [...prompt];
    }
    const parseSpecial = opts.parseSpecial ?? false;
    if (!chat) return this.tokenizer.encode(prompt, { parseSpecial });
    if (!this.chatTemplate) {
      throw new InputError("the model file has no chat template; pass chatTemplate to loadModel (\"llama2\", \"llama3\", \"mistral\" or { jinja })");
    }
    return encodeChat(this.tokenizer, this.chatTemplate, [{ role: "user", content: prompt }], { addGenerationPrompt: true, parseSpecialInContent: parseSpecial });
  }

  /** Gives the KV cache to a new job. */
  private begin(call: ModelCall, signal: AbortSignal | undefined): Job {
    this.supersede(call);
    const job = new Job(signal);
    this.job = job;
    return job;
  }

  /** Refuses `call` when disposed or while a step runs; else ends the job waiting for its consumer. */
  private supersede(call: ModelCall): void {
    if (this.disposed) throw new ModelDisposedError();
    if (this.job?.stepping) throw new ModelBusyError(call);
    this.job?.end(new GenerationSupersededError(call));
  }

  private finish(job: Job): void {
    job.detach();
    if (this.job !== job) return;
    this.job = undefined;
    if (this.disposed) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.executor.dispose?.();
    void this.weights.close();
    this.backendImpl.release();
  }
}

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

// The tokens in an executor's KV cache, and feeding it more. A prompt that starts with what the cache
// already holds (the next turn of a chat) only runs its new tokens. When the cache is full, a model
// with a sliding window keeps going by shifting the context — the cache is emptied and refilled with
// its most recent tokens, so positions start again from 0 — and any other model stops with an error
// that names max_seq_len.

import { ContextOverflowError } from "../executor.js";
import type { Executor } from "../backend.js";
import { InputError } from "./errors.js";
import { argmax } from "./sampler.js";

export interface ContextOptions {
  vocabSize: number;
  /** The model's attention window (its attention ops' `window`); 0 when it attends to everything. */
  slidingWindow: number;
}

export class Context {
  /** The tokens whose keys and values are in the executor's cache, oldest first. */
  private cached: number[] = [];

  constructor(
    readonly executor: Executor,
    private readonly opts: ContextOptions,
  ) {}

  get maxSeqLen(): number {
    return this.executor.maxSeqLen;
  }

  /** Empties the cache. */
  reset(): void {
    this.executor.reset();
    this.cached = [];
  }

  /**
   * Makes the cache hold `tokens` (running only what follows a cached prefix) and returns the logits
   * after the last one, [vocab].
   */
  async prefill(tokens: readonly number[], signal?: AbortSignal): Promise<Float32Array> {
    if (tokens.length === 0) throw new InputError("the prompt is empty: there is no token to continue from");
    const reusable = this.cached.length < tokens.length && this.cached.every((t, i) => t === tokens[i]);
    if (!reusable) this.reset();
    const rows = await this.feed(tokens.slice(this.cached.length), false, signal);
    return rows.subarray(rows.length - this.opts.vocabSize);
  }

  /** Runs one more token; returns the logits after it, [vocab]. */
  async decode(token: number): Promise<Float32Array> {
    return this.feed([token], false);
  }

  /**
   * Runs one more token and returns the greedy next token: the index of the largest logit after it
   * (the lowest on ties). The executor computes it on its device where it can (`read: "argmax"`),
   * so only the token comes back; else it comes from the logits here.
   */
  async decodeGreedy(token: number): Promise<number> {
    const V = this.opts.vocabSize;
    if (!Number.isInteger(token) || token < 0 || token >= V) {
      throw new InputError(`token id ${token} is out of range: the vocabulary has ${V} tokens (ids 0…${V - 1})`);
    }
    if (this.opts.slidingWindow <= 0 && this.executor.past + 1 > this.maxSeqLen) throw this.overflow(1);
    if (this.executor.past >= this.maxSeqLen) await this.shift();
    const out = await this.executor.step({ tokens: Int32Array.of(token), read: "argmax" });
    this.cached.push(token);
    if (out.dtype === "i32") return out.data[0]!;
    const logits = out.data as Float32Array;
    return argmax(logits.subarray(logits.length - V));
  }

  /** Runs `tokens` on an empty cache and returns the logits after each of them, [T, vocab]. */
  async score(tokens: readonly number[], signal?: AbortSignal): Promise<Float32Array> {
    signal?.throwIfAborted();
    this.reset();
    return this.feed(tokens, true, signal);
  }

  /**
   * Runs tokens in as few steps as the cache allows; returns the last row, or every row when
   * `allRows`. An aborted signal stops it between two steps, with the signal's reason.
   */
  private async feed(tokens: readonly number[], allRows: boolean, signal?: AbortSignal): Promise<Float32Array> {
    const V = this.opts.vocabSize;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new InputError(`token id ${t} is out of range: the vocabulary has ${V} tokens (ids 0…${V - 1})`);
      }
    }
    if (this.opts.slidingWindow <= 0 && this.executor.past + tokens.length > this.maxSeqLen) throw this.overflow(tokens.length);
    const out = new Float32Array(allRows ? tokens.length * V : V);
    let done = 0;
    while (done < tokens.length) {
      signal?.throwIfAborted();
      if (this.executor.past >= this.maxSeqLen) await this.shift();
      const chunk = tokens.slice(done, done + this.maxSeqLen - this.executor.past);
      // Only the last row is needed unless every position is scored: the executors then read back
      // (and chunk long prompts around) one row.
      const logits = (await this.executor.step({ tokens: Int32Array.from(chunk), read: allRows ? "logits" : "last" })).data as Float32Array;
      this.cached.push(...chunk);
      if (allRows) out.set(logits.subarray(0, chunk.length * V), done * V);
      else out.set(logits.subarray(logits.length - V));
      done += chunk.length;
    }
    return out;
  }

  private overflow(more: number): ContextOverflowError {
    const held = this.executor.past;
    const what = held === 0 ? `${more} tokens do not fit in the context` : `the context is full: ${held} tokens are in the cache and ${more} more do not fit`;
    return new ContextOverflowError(
      `${what}: max_seq_len is ${this.maxSeqLen}; load the model with a larger maxSeqLen (--set max_seq_len=N), up to the length it was trained for`,
    );
  }

  /**
   * The cache is full and the model has a sliding window: keep the most recent tokens (at most
   * window − 1, and at most half the cache so that shifts are rare) and go on. This is approximate,
   * as llama.cpp's context shift is, since the kept tokens' deeper layers once saw tokens now dropped.
   */
  private async shift(): Promise<void> {
    const window = this.opts.slidingWindow;
    const keep = this.cached.slice(this.cached.length - Math.min(window - 1, Math.floor(this.maxSeqLen / 2)));
    this.reset();
    if (keep.length > 0) await this.feed(keep, false);
  }
}

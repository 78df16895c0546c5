// The generation loop: prefill the prompt in one step, then sample and decode one token at a time
// with the KV cache, streaming text through the tokenizer's decoder. It stops at an end-of-turn
// token, at a stop string (whose text is not emitted, nor any part of it), or after maxTokens; an
// aborted signal ends it between two steps.

import type { Tokenizer } from "../tokenizer/index.js";
import type { Context } from "./context.js";
import { InputError } from "./errors.js";
import { randomSeed, resolveSamplerOptions, sampleToken, seededRandom, type Random, type SamplerOptions } from "./sampler.js";

export interface GenerateOptions extends SamplerOptions {
  /** The most tokens to generate (the end-of-turn token not counted). Default 256. */
  maxTokens?: number;
  /** Seeds the sampler: the same seed, prompt and options give the same text. Default: a random seed. */
  seed?: number;
  /** Generation ends when the text contains one of these; the stop string itself is not emitted. */
  stop?: readonly string[];
  /** Go on past end-of-turn tokens (as llama.cpp's --ignore-eos, for benchmarks and tests): they are
   *  generated and fed back like any token (a control token has no text), and only maxTokens or a
   *  stop string ends the output. */
  ignoreEos?: boolean;
  /**
   * Aborting it ends the generation: the iterator throws the signal's reason (by default a
   * DOMException named "AbortError"). A step already running finishes first; no token comes after it.
   */
  signal?: AbortSignal;
}

/** One generated token and the text it completes. */
export interface GeneratedToken {
  token: number;
  /**
   * Text that can be shown now. Part of a UTF-8 character, or text that may be the start of a stop
   * string, is held back and comes with a later token, so joining every `text` gives the output.
   */
  text: string;
}

export const DEFAULT_MAX_TOKENS = 256;

/**
 * Generates from `prompt` (token ids). When the model ends its turn, the last item is that
 * end-of-turn token, with whatever text was still held back.
 */
export async function* generateTokens(
  context: Context,
  tokenizer: Tokenizer,
  prompt: readonly number[],
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, void, undefined> {
  const maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
  let sampler: Required<SamplerOptions>;
  let random: Random;
  try {
    sampler = resolveSamplerOptions(opts);
    random = seededRandom(opts.seed ?? randomSeed());
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new RangeError(`maxTokens must be an integer ≥ 0, got ${maxTokens}`);
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  const stops = new StopMatcher(opts.stop ?? []);
  const decoder = tokenizer.createDecoder({ continuation: true, skipSpecial: true });
  const history = [...prompt];
  const checkpoint = new Checkpoint(opts.signal);

  await checkpoint.pass();
  let logits: Float32Array | null = await context.prefill(prompt, opts.signal);
  await checkpoint.pass();
  // Greedy decoding needs only the index of the largest logit: the executor finds it on its device
  // and reads back 4 bytes, not the logits. Not when anything else looks at the distribution (a
  // repetition penalty), nor when rows past the tokenizer's vocabulary must be masked.
  const greedy = greedyOnDevice(sampler) && tokenizer.vocabSize >= logits.length;
  let next = -1;
  for (let n = 0; n < maxTokens; n++) {
    let token: number;
    if (logits) {
      // Rows past the tokenizer's vocabulary (padding in some checkpoints) have no text: never pick them.
      if (tokenizer.vocabSize < logits.length) logits.fill(-Infinity, tokenizer.vocabSize);
      token = sampleToken(logits, sampler, random, history);
    } else token = next;
    if (tokenizer.eotIds.has(token) && !opts.ignoreEos) {
      yield { token, text: stops.end(decoder.flush()).text };
      return;
    }
    history.push(token);
    const last = n + 1 === maxTokens;
    const piece = decoder.push(token) + (last ? decoder.flush() : "");
    const { text, stopped } = last ? stops.end(piece) : stops.push(piece);
    yield { token, text };
    if (stopped || last) return;
    // The consumer may have aborted (or disposed the model) while it held the token.
    opts.signal?.throwIfAborted();
    if (greedy) {
      logits = null;
      next = await context.decodeGreedy(token);
    } else logits = await context.decode(token);
    await checkpoint.pass();
  }
}

/**
 * Where a generation may be aborted. A CPU step never waits for anything, so a generation would run
 * to its end before a timer, Ctrl-C or a closed pipe could be noticed: every few milliseconds the
 * event loop is let in first.
 */
/** Runs `f` after the event loop's pending events: setImmediate in Node; a page has none, and its
 *  setTimeout(0) waits ≥ 4 ms once nested, so a MessageChannel message there. */
const nextTurn: (f: () => void) => void =
  typeof setImmediate === "function"
    ? (f) => void setImmediate(f)
    : (f) => {
        // Typed as a page has it (Node's MessagePort has no onmessage).
        const channel = new MessageChannel() as unknown as { port1: { onmessage: (() => void) | null; close(): void }; port2: { postMessage(m: null): void } };
        channel.port1.onmessage = () => {
          channel.port1.close();
          f();
        };
        channel.port2.postMessage(null);
      };

class Checkpoint {
  private static readonly EVERY_MS = 10;
  private last = performance.now();

  constructor(private readonly signal: AbortSignal | undefined) {}

  /** Throws the signal's reason if it is aborted. */
  async pass(): Promise<void> {
    if (performance.now() - this.last >= Checkpoint.EVERY_MS) {
      await new Promise<void>((resolve) => nextTurn(resolve));
      this.last = performance.now();
    }
    this.signal?.throwIfAborted();
  }
}

/** Whether sampling with these options is the argmax of the raw logits (temperature 0, or top-k 1, and no repetition penalty). */
export function greedyOnDevice(o: Required<SamplerOptions>): boolean {
  return (o.temperature <= 0 || o.topK === 1) && (o.repeatPenalty === 1 || o.repeatLastN === 0);
}

/**
 * Finds stop strings in streamed text. Text is released only when no stop string can begin in it,
 * so a stop string split across tokens is never partly emitted.
 */
export class StopMatcher {
  private held = "";
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s !== "");
  }

  /** Adds text; returns what can be shown, and whether a stop string was found (the text before it is returned). */
  push(piece: string, final = false): { text: string; stopped: boolean } {
    const text = this.held + piece;
    const at = this.firstStop(text);
    if (at >= 0) {
      // A longer stop string that starts earlier may still complete: the text is cut at the stop
      // string that starts first, however it arrives, so wait until that is decided.
      const pending = final ? -1 : this.earliestPendingStart(text, at);
      if (pending < 0) {
        this.held = "";
        return { text: text.slice(0, at), stopped: true };
      }
      this.held = text.slice(pending);
      return { text: text.slice(0, pending), stopped: false };
    }
    const keep = this.longestStopPrefixAtEnd(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** Adds the last text and releases everything held. */
  end(piece: string): { text: string; stopped: boolean } {
    const r = this.push(piece, true);
    const text = r.stopped ? r.text : r.text + this.held;
    this.held = "";
    return { text, stopped: r.stopped };
  }

  private firstStop(text: string): number {
    let first = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) first = i;
    }
    return first;
  }

  /** The first position before `before` from which the rest of `text` is a proper prefix of a stop string; -1 if none. */
  private earliestPendingStart(text: string, before: number): number {
    for (let q = 0; q < before; q++) {
      const rest = text.slice(q);
      if (this.stops.some((s) => s.length > rest.length && s.startsWith(rest))) return q;
    }
    return -1;
  }

  /** The length of the longest end of `text` that is a proper prefix of some stop string. */
  private longestStopPrefixAtEnd(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, text.length); k > best; k--) {
        if (text.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

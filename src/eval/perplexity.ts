// Perplexity of a model on a text longer than its context, with strided sliding windows as in
// Hugging Face's guide "Perplexity of fixed-length models": windows of `context` tokens start every
// `stride` tokens; each window is run whole, but only the tokens after the previous window's end are
// scored, so every token after the first is scored exactly once, with at least context − stride
// tokens before it (fewer only in the first window). perplexity = exp(total NLL / scored tokens).
// With stride = context (disjoint windows) the first token of each window has nothing before it in
// its window and is not scored, as in the guide.
//
// The guide weights each window's mean loss by its scored tokens − 1 (the label shift); here the
// log-probabilities of the scored tokens are summed, which is the quantity the guide means.

import { InputError } from "../runtime/generate/errors.js";
import type { Model } from "../runtime/model.js";

export interface PerplexityOptions {
  /** Tokens per window; default (and at most) the model's context, maxSeqLen. */
  context?: number;
  /** Tokens between window starts; default context / 2 (rounded down, at least 1). At most `context`. */
  stride?: number;
  /** Told after each window: windows done, of how many. */
  onWindow?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface Perplexity {
  perplexity: number;
  /** Tokens in the text (with BOS when the model adds one). */
  tokens: number;
  /** Tokens scored: all but the first, unless stride = context (then not the first of any window). */
  scored: number;
  /** Total negative log-likelihood of the scored tokens, in nats. */
  nll: number;
  windows: number;
  context: number;
  stride: number;
}

/** One window: tokens [begin, end) run together, of which [scoredFrom, end) are scored. */
export interface Window {
  begin: number;
  end: number;
  scoredFrom: number;
}

/** The windows the guide's loop visits over `length` tokens. */
export function slidingWindows(length: number, context: number, stride: number): Window[] {
  const windows: Window[] = [];
  let previousEnd = 0;
  for (let begin = 0; begin < length; begin += stride) {
    const end = Math.min(begin + context, length);
    // A window's first token has nothing before it in the window.
    windows.push({ begin, end, scoredFrom: Math.max(previousEnd, begin + 1) });
    previousEnd = end;
    if (end === length) break;
  }
  return windows;
}

/** The perplexity of `model` on `text` (a string, tokenized as the model does, or token ids). */
export async function perplexity(
  model: Pick<Model, "logprobs" | "tokenizer" | "maxSeqLen">,
  text: string | readonly number[],
  opts: PerplexityOptions = {},
): Promise<Perplexity> {
  const context = opts.context ?? model.maxSeqLen;
  if (!Number.isInteger(context) || context < 2 || context > model.maxSeqLen) {
    throw new InputError(`the context must be an integer from 2 to the model's ${model.maxSeqLen} tokens, got ${context}`);
  }
  const stride = opts.stride ?? Math.max(1, Math.floor(context / 2));
  if (!Number.isInteger(stride) || stride < 1 || stride > context) {
    throw new InputError(`the stride must be an integer from 1 to the context (${context}), got ${stride}`);
  }
  const tokens = typeof text === "string" ? model.tokenizer.encode(text) : [...text];
  if (tokens.length < 2) throw new InputError(`perplexity needs a text of at least two tokens, got ${tokens.length}`);

  const windows = slidingWindows(tokens.length, context, stride);
  let nll = 0;
  let scored = 0;
  for (const [k, w] of windows.entries()) {
    const r = await model.logprobs(tokens.slice(w.begin, w.end), { top: 0, tokenLogprobs: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    for (let i = w.scoredFrom; i < w.end; i++) nll -= r.positions[i - w.begin]!.logprob!;
    scored += w.end - w.scoredFrom;
    opts.onWindow?.(k + 1, windows.length);
  }
  return { perplexity: Math.exp(nll / scored), tokens: tokens.length, scored, nll, windows: windows.length, context, stride };
}

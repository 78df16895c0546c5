// Beam search: keep the `beams` most likely continuations at each step instead of one token, and
// return the finished sequence with the best length-normalised score, score = Σ logprob / length^α
// (Hugging Face's length_penalty α; α = 0 ranks by total log-probability, α > 0 favours longer
// sequences). As in Hugging Face's BeamSearchScorer: each beam proposes its 2·beams most likely
// tokens; an end-of-turn token among the `beams` best candidates finishes a hypothesis (its length
// counts the end-of-turn token), the other candidates fill the next beams; the search stops when
// `beams` hypotheses have finished and no live beam can still beat the worst of them (the bound
// takes its length anywhere up to the most tokens), or at the most tokens, where the live beams
// count as finished. `beams: 1` is greedy decoding, as in Hugging Face.
//
// One KV cache serves every beam: the cache holds the prompt and the last beam run; the next beam
// rewinds it to the tokens the two share and runs only the rest (beams are visited in token order,
// so siblings follow each other and a beam that only grew runs one token). The executors keep the
// cache's rows below `past` untouched and overwrite from `past` on, so lowering `past` is a rewind.
// The Context does not know of it, so it is emptied when the search ends.

import type { Executor } from "../backend.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { Context } from "./context.js";
import { InputError } from "./errors.js";
import { DEFAULT_MAX_TOKENS, generateTokens, StopMatcher, type GenerateOptions, type GeneratedToken } from "./generate.js";
import { topK } from "./sampler.js";

export interface BeamOptions {
  /** Search with this many beams (deterministic: the sampling options do not apply). 1 is greedy decoding. */
  beams?: number;
  /** α in score = Σ logprob / length^α. Default 1. */
  lengthPenalty?: number;
}

export const DEFAULT_LENGTH_PENALTY = 1;

export interface BeamSearchOptions {
  beams: number;
  lengthPenalty: number;
  maxTokens: number;
  /** Tokens that finish a hypothesis. */
  eotIds: ReadonlySet<number>;
  /** Ids from this one on are never chosen (rows past the tokenizer's vocabulary). Default: none. */
  vocabSize?: number;
  signal?: AbortSignal;
}

export interface BeamResult {
  /** The generated tokens, the end-of-turn token last when the sequence finished with one. */
  tokens: number[];
  /** Σ of the tokens' log-probabilities. */
  logprob: number;
  /** logprob / tokens.length^α. */
  score: number;
}

interface Beam {
  tokens: number[];
  logprob: number;
}

/** The best sequence after `prompt` by beam search. Leaves the context's cache in an unknown state: reset it after. */
export async function beamSearch(context: Context, prompt: readonly number[], opts: BeamSearchOptions): Promise<BeamResult> {
  const { beams, lengthPenalty: alpha, eotIds, signal } = opts;
  const score = (logprob: number, length: number) => logprob / Math.pow(length, alpha);
  const afterPrompt = await context.prefill(prompt, signal);
  const cache = new BeamCache(context.executor, prompt.length, distribution(afterPrompt, opts.vocabSize), opts.vocabSize);
  const maxLength = Math.min(opts.maxTokens, context.executor.maxSeqLen - prompt.length);

  let live: Beam[] = [{ tokens: [], logprob: 0 }];
  let finished: BeamResult[] = [];
  const finish = (h: BeamResult) => {
    finished.push(h);
    finished = finished.sort((a, b) => b.score - a.score).slice(0, beams);
  };
  for (let length = 1; length <= maxLength && live.length > 0; length++) {
    live.sort((a, b) => compareTokens(a.tokens, b.tokens));
    const candidates: { beam: number; token: number; logprob: number }[] = [];
    for (const [b, beam] of live.entries()) {
      signal?.throwIfAborted();
      const { logits, lse } = await cache.after(beam.tokens);
      // Logits rank tokens as their log-probabilities do.
      const best = topK(logits, Math.min(2 * beams, logits.length));
      for (const token of best.ids) {
        if (logits[token] === -Infinity) continue;
        candidates.push({ beam: b, token, logprob: beam.logprob + (logits[token]! - lse) });
      }
    }
    candidates.sort((x, y) => y.logprob - x.logprob || x.beam - y.beam || x.token - y.token);
    const next: Beam[] = [];
    for (const [rank, c] of candidates.entries()) {
      const tokens = [...live[c.beam]!.tokens, c.token];
      if (!eotIds.has(c.token)) next.push({ tokens, logprob: c.logprob });
      else if (rank < beams) finish({ tokens, logprob: c.logprob, score: score(c.logprob, length) });
      if (next.length === beams) break;
    }
    live = next;
    if (length === maxLength) for (const b of live) finish({ ...b, score: score(b.logprob, length) });
    else if (finished.length === beams && live.length > 0) {
      // A live beam's log-probability only falls; its score is best at one end of the lengths it can still reach.
      const bound = Math.max(...live.map((b) => Math.max(score(b.logprob, length), score(b.logprob, maxLength))));
      if (bound <= finished[beams - 1]!.score) break;
    }
  }
  return finished[0] ?? { tokens: [], logprob: 0, score: 0 };
}

/** Lexicographic order of token sequences: beams that share a prefix come together. */
function compareTokens(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The KV cache as beams use it: the prompt, then the generated tokens of the last beam run. */
class BeamCache {
  private held: number[] = [];

  constructor(
    private readonly executor: Executor,
    private readonly promptLength: number,
    private readonly afterPrompt: Distribution,
    private readonly vocabSize?: number,
  ) {
    if (executor.past !== promptLength) throw new InputError(`beam search needs the prompt (${promptLength} tokens) to fit in the context of ${executor.maxSeqLen}`);
  }

  /** The distribution of the token after the prompt and `tokens`. */
  async after(tokens: readonly number[]): Promise<Distribution> {
    if (tokens.length === 0) return this.afterPrompt;
    let shared = 0;
    while (shared < this.held.length && shared < tokens.length && this.held[shared] === tokens[shared]) shared++;
    // The logits after the last token are not kept: run at least that token again.
    shared = Math.min(shared, tokens.length - 1);
    this.executor.rewind(this.promptLength + shared);
    const out = await this.executor.step({ tokens: Int32Array.from(tokens.slice(shared)), read: "last" });
    this.held = [...tokens];
    const V = this.afterPrompt.logits.length;
    const data = out.data as Float32Array;
    return distribution(data.subarray(data.length - V), this.vocabSize);
  }
}

/** Logits (those past `vocabSize` set to −∞) and their log-sum-exp: log p(token) = logits[token] − lse. */
interface Distribution {
  logits: Float32Array;
  lse: number;
}

function distribution(row: Float32Array, vocabSize = row.length): Distribution {
  const logits = Float32Array.from(row);
  if (vocabSize < logits.length) logits.fill(-Infinity, vocabSize);
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  return { logits, lse: max + Math.log(sum) };
}

/**
 * model.generate with `beams`: the best sequence, streamed as generate streams (its text through the
 * tokenizer's decoder, cut at a stop string; the end-of-turn token last, with the text held back).
 */
export async function* beamGenerate(
  context: Context,
  tokenizer: Tokenizer,
  prompt: readonly number[],
  opts: GenerateOptions & BeamOptions,
): AsyncGenerator<GeneratedToken, void, undefined> {
  const beams = opts.beams ?? 1;
  const lengthPenalty = opts.lengthPenalty ?? DEFAULT_LENGTH_PENALTY;
  const maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(beams) || beams < 1) throw new InputError(`beams must be an integer ≥ 1, got ${beams}`);
  if (!Number.isFinite(lengthPenalty)) throw new InputError(`lengthPenalty must be a finite number, got ${lengthPenalty}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new InputError(`maxTokens must be an integer ≥ 0, got ${maxTokens}`);
  if (beams === 1) {
    yield* generateTokens(context, tokenizer, prompt, { maxTokens, temperature: 0, ...(opts.stop ? { stop: opts.stop } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return;
  }
  let best: BeamResult;
  try {
    best = await beamSearch(context, prompt, { beams, lengthPenalty, maxTokens, eotIds: tokenizer.eotIds, vocabSize: tokenizer.vocabSize, ...(opts.signal ? { signal: opts.signal } : {}) });
  } finally {
    context.reset();
  }
  const decoder = tokenizer.createDecoder({ continuation: true, skipSpecial: true });
  const stops = new StopMatcher(opts.stop ?? []);
  for (const [i, token] of best.tokens.entries()) {
    if (tokenizer.eotIds.has(token)) {
      yield { token, text: stops.end(decoder.flush()).text };
      return;
    }
    const last = i + 1 === best.tokens.length;
    const piece = decoder.push(token) + (last ? decoder.flush() : "");
    const { text, stopped } = last ? stops.end(piece) : stops.push(piece);
    yield { token, text };
    if (stopped) return;
  }
}

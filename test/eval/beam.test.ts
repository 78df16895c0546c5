// Beam search on the tiny random model of test/generate/fixture.ts: one beam is greedy decoding;
// wider beams find sequences at least as likely as greedy's on these prompts (a property of these
// cases, not a theorem); with as many beams as the vocabulary, a search of two tokens is exhaustive
// and must return the best sequence, found here by enumerating every one with `logprobs`.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { beamSearch } from "../../src/runtime/generate/beam.js";
import { Context } from "../../src/runtime/generate/context.js";
import { InputError } from "../../src/runtime/generate/errors.js";
import { loadModel, type Model } from "../../src/runtime/model.js";
import { lastRow, oracle, VOCAB, writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-beam-"));
const PROMPTS = [[1, 40, 77], [1, 200], [1, 5, 9, 120, 33]];

async function load(name: string, spec: Parameters<typeof writeTinyModel>[1] = {}): Promise<Model> {
  const path = join(tmp, `${name}.gguf`);
  await writeTinyModel(path, spec);
  return loadModel(path, { backend: "cpu", onNote: () => {} });
}

async function tokensOf(model: Model, prompt: number[], opts: Parameters<Model["generate"]>[1]): Promise<number[]> {
  const out: number[] = [];
  for await (const t of model.generate(prompt, opts)) out.push(t.token);
  return out;
}

/** Σ log p of `generated` after `prompt`, recomputed with logprobs. */
async function totalLogprob(model: Model, prompt: number[], generated: number[]): Promise<number> {
  const r = await model.logprobs([...prompt, ...generated], { top: 0, tokenLogprobs: true });
  return r.positions.slice(prompt.length).reduce((s, p) => s + p.logprob!, 0);
}

describe("beam search", () => {
  let model: Model;
  beforeAll(async () => {
    model = await load("tiny");
  });
  afterAll(() => model?.dispose());

  it("one beam in the search itself is greedy decoding (the interpreter's argmax, step by step)", async () => {
    for (const prompt of PROMPTS) {
      const greedy: number[] = [];
      const ref = oracle();
      let logits = lastRow(ref.step({ tokens: Int32Array.from(prompt) }));
      for (let i = 0; i < 8; i++) {
        const next = logits.indexOf(Math.max(...logits));
        greedy.push(next);
        if (next === 2) break;
        logits = lastRow(ref.step({ tokens: Int32Array.of(next) }));
      }
      const context = new Context(oracle(), { vocabSize: VOCAB, slidingWindow: 0 });
      const r = await beamSearch(context, prompt, { beams: 1, lengthPenalty: 0, maxTokens: 8, eotIds: new Set([2]) });
      expect(r.tokens).toEqual(greedy);
    }
  });

  it("beams: 1 through generate is greedy decoding", async () => {
    for (const prompt of PROMPTS) {
      expect(await tokensOf(model, prompt, { beams: 1, maxTokens: 10 })).toEqual(await tokensOf(model, prompt, { temperature: 0, maxTokens: 10 }));
    }
  });

  it("more beams: a total log-probability at least greedy's, and the one the search reports", async () => {
    for (const prompt of PROMPTS) {
      const greedy = await tokensOf(model, prompt, { temperature: 0, maxTokens: 6 });
      const greedyLogprob = await totalLogprob(model, prompt, greedy);
      for (const beams of [2, 4]) {
        const found = await tokensOf(model, prompt, { beams, lengthPenalty: 0, maxTokens: 6 });
        expect(found).toHaveLength(6);
        expect(await totalLogprob(model, prompt, found)).toBeGreaterThanOrEqual(greedyLogprob - 1e-9);
        const context = new Context(oracle(), { vocabSize: VOCAB, slidingWindow: 0 });
        const r = await beamSearch(context, prompt, { beams, lengthPenalty: 0, maxTokens: 6, eotIds: new Set([2]) });
        expect(r.tokens).toEqual(found);
        expect(r.logprob).toBeCloseTo(await totalLogprob(model, prompt, found), 4);
      }
    }
  });

  it("the cache rewinds: a search leaves generate and logprobs as they were", async () => {
    const prompt = PROMPTS[0]!;
    const before = await model.logprobs([...prompt, 9, 10], { top: 3 });
    await tokensOf(model, prompt, { beams: 3, maxTokens: 5 });
    expect(await model.logprobs([...prompt, 9, 10], { top: 3 })).toEqual(before);
  });

  it("refuses a bad beam count or length penalty", async () => {
    await expect(tokensOf(model, [1], { beams: 0 })).rejects.toThrow(InputError);
    await expect(tokensOf(model, [1], { beams: 2.5 })).rejects.toThrow(/beams must be an integer/);
    await expect(tokensOf(model, [1], { beams: 2, lengthPenalty: Number.NaN })).rejects.toThrow(/lengthPenalty/);
  });
});

describe("exhaustive: beams = vocabulary, two tokens", () => {
  /** The best sequence of at most two tokens by Σ logprob / length^α, enumerating them all. */
  async function argmaxSequence(model: Model, prompt: number[], alpha: number): Promise<number[]> {
    const eot = model.tokenizer.eotIds;
    let best: { tokens: number[]; score: number } = { tokens: [], score: -Infinity };
    const consider = (tokens: number[], logprob: number) => {
      const score = logprob / Math.pow(tokens.length, alpha);
      if (score > best.score) best = { tokens, score };
    };
    const first = (await model.logprobs(prompt, { top: VOCAB })).positions.at(-1)!.top;
    for (const a of first) {
      if (eot.has(a.id)) {
        consider([a.id], a.logprob);
        continue;
      }
      const second = (await model.logprobs([...prompt, a.id], { top: VOCAB })).positions.at(-1)!.top;
      for (const b of second) consider([a.id, b.id], a.logprob + b.logprob);
    }
    return best.tokens;
  }

  it("finds the true best sequence, also when the end-of-turn token is likely", async () => {
    const plain = await load("tiny-exhaustive");
    const prompt = PROMPTS[1]!;
    // A second model whose end-of-turn token is the one greedy decoding picks first.
    const likelyEnd = (await tokensOf(plain, prompt, { temperature: 0, maxTokens: 1 }))[0]!;
    plain.dispose();
    const ending = await load("tiny-ending", { eosId: likelyEnd });
    try {
      expect(ending.tokenizer.eotIds.has(likelyEnd)).toBe(true);
      for (const alpha of [0, 1, 3]) {
        const expected = await argmaxSequence(ending, prompt, alpha);
        expect(await tokensOf(ending, prompt, { beams: VOCAB, lengthPenalty: alpha, maxTokens: 2 }), `α = ${alpha}`).toEqual(expected);
      }
    } finally {
      ending.dispose();
    }
  });
});

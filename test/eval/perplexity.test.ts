// Perplexity with strided sliding windows: the window bookkeeping, and the value against
// log-probabilities read independently from whole-distribution `logprobs` calls on the tiny random
// model of test/generate/fixture.ts.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { perplexity, slidingWindows } from "../../src/eval/perplexity.js";
import { InputError } from "../../src/runtime/generate/errors.js";
import { loadModel, type Model } from "../../src/runtime/model.js";
import { VOCAB, writeTinyModel } from "../generate/fixture.js";

describe("sliding windows", () => {
  it("the guide's loop over 10 tokens, context 4, stride 2; disjoint windows skip their first tokens", () => {
    expect(slidingWindows(10, 4, 2)).toEqual([
      { begin: 0, end: 4, scoredFrom: 1 },
      { begin: 2, end: 6, scoredFrom: 4 },
      { begin: 4, end: 8, scoredFrom: 6 },
      { begin: 6, end: 10, scoredFrom: 8 },
    ]);
    expect(slidingWindows(5, 8, 4)).toEqual([{ begin: 0, end: 5, scoredFrom: 1 }]);
    expect(slidingWindows(9, 4, 4)).toEqual([
      { begin: 0, end: 4, scoredFrom: 1 },
      { begin: 4, end: 8, scoredFrom: 5 },
      { begin: 8, end: 9, scoredFrom: 9 },
    ]);
  });

  it("scores every token after the first exactly once (for stride < context), in a window of at most `context`, after context − stride tokens", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.integer({ min: 2, max: 64 }), fc.integer({ min: 1, max: 64 }), (length, context, s) => {
        const stride = Math.min(s, context - 1);
        const times = new Array<number>(length).fill(0);
        for (const w of slidingWindows(length, context, stride)) {
          expect(w.end - w.begin).toBeLessThanOrEqual(context);
          expect(w.scoredFrom).toBeGreaterThan(w.begin);
          for (let t = w.scoredFrom; t < w.end; t++) {
            times[t]!++;
            expect(t - w.begin).toBeGreaterThanOrEqual(Math.min(t, context - stride));
          }
        }
        expect(times).toEqual([0, ...new Array<number>(length - 1).fill(1)]);
      }),
    );
  });
  it("disjoint windows (stride = context) score all but each window's first token", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.integer({ min: 2, max: 64 }), (length, context) => {
        const scored = new Set<number>();
        for (const w of slidingWindows(length, context, context)) for (let t = w.scoredFrom; t < w.end; t++) scored.add(t);
        for (let t = 0; t < length; t++) expect(scored.has(t), `token ${t}`).toBe(t % context !== 0);
      }),
    );
  });
});

describe("perplexity of the tiny model", () => {
  let model: Model;
  beforeAll(async () => {
    const path = join(mkdtempSync(join(tmpdir(), "llmc-ppl-")), "tiny.gguf");
    await writeTinyModel(path, { contextLength: 64 });
    model = await loadModel(path, { backend: "cpu", onNote: () => {} });
  });
  afterAll(() => model?.dispose());

  // A fixed pseudo-random text of token ids, BOS first.
  const text = (n: number, seed = 3) => [1, ...Array.from({ length: n - 1 }, (_, i) => 3 + ((i * 97 + seed * 31 + ((i * i) % 13)) % (VOCAB - 3)))];

  /** −log p(tokens[at] | tokens[from..at)), read from the full distribution. */
  async function nllOf(tokens: number[], from: number, at: number): Promise<number> {
    const r = await model.logprobs(tokens.slice(from, at), { top: VOCAB });
    return -r.positions.at(-1)!.top.find((t) => t.id === tokens[at])!.logprob;
  }

  it("within one window: exp(mean NLL) of one full-context call, to 1e-9", async () => {
    const tokens = text(40);
    const full = await model.logprobs(tokens, { top: VOCAB });
    let nll = 0;
    for (let i = 1; i < tokens.length; i++) nll -= full.positions[i - 1]!.top.find((t) => t.id === tokens[i])!.logprob;
    const r = await perplexity(model, tokens);
    expect(r).toMatchObject({ tokens: 40, scored: 39, windows: 1, context: 64, stride: 32 });
    expect(Math.abs(r.perplexity / Math.exp(nll / 39) - 1)).toBeLessThan(1e-9);
    expect(Math.abs(r.nll / nll - 1)).toBeLessThan(1e-9);
    // Any stride gives the same when the text fits in the window.
    expect(Math.abs((await perplexity(model, tokens, { stride: 5 })).perplexity / r.perplexity - 1)).toBeLessThan(1e-12);
  });

  it("strided: context 4, stride 2 over 10 tokens scores each token with the windows worked out by hand", async () => {
    const tokens = text(10, 5);
    // Windows [0,4) scoring 1…3, [2,6) scoring 4,5, [4,8) scoring 6,7, [6,10) scoring 8,9.
    let nll = 0;
    for (const [from, at] of [[0, 1], [0, 2], [0, 3], [2, 4], [2, 5], [4, 6], [4, 7], [6, 8], [6, 9]] as const) nll += await nllOf(tokens, from, at);
    const r = await perplexity(model, tokens, { context: 4, stride: 2 });
    expect(r).toMatchObject({ tokens: 10, scored: 9, windows: 4, context: 4, stride: 2 });
    expect(Math.abs(r.perplexity / Math.exp(nll / 9) - 1)).toBeLessThan(1e-9);
  });

  it("context 2, stride 1: each token given only the one before it", async () => {
    const tokens = text(12, 7);
    let nll = 0;
    for (let i = 1; i < tokens.length; i++) nll += await nllOf(tokens, i - 1, i);
    const r = await perplexity(model, tokens, { context: 2, stride: 1 });
    expect(r.windows).toBe(11);
    expect(Math.abs(r.perplexity / Math.exp(nll / 11) - 1)).toBeLessThan(1e-9);
  });

  it("a text longer than the context: more context per token (smaller stride) moves perplexity little", async () => {
    const tokens = text(150, 11);
    const disjoint = await perplexity(model, tokens, { stride: 64 });
    const strided = await perplexity(model, tokens, { stride: 16 });
    expect(disjoint).toMatchObject({ windows: 3, scored: 147 }); // not tokens 64 and 128
    expect(strided).toMatchObject({ windows: 7, scored: 149 });
    for (const r of [disjoint, strided]) expect(r.perplexity).toBeGreaterThan(1);
    // A random model has no use for context, so the two agree to a few percent.
    expect(Math.abs(Math.log(strided.perplexity / disjoint.perplexity))).toBeLessThan(0.1);
  });

  it("a string is tokenized as the model does", async () => {
    const s = "hello world, hello again";
    const r = await perplexity(model, s);
    expect(r.tokens).toBe(model.tokenizer.encode(s).length);
    expect(r.perplexity).toBeCloseTo((await model.logprobs(model.tokenizer.encode(s), { top: 0 })).perplexity!, 9);
  });

  it("refuses a context past the model's, a stride past the context, a text of one token", async () => {
    await expect(perplexity(model, text(10), { context: 65 })).rejects.toThrow(InputError);
    await expect(perplexity(model, text(10), { context: 8, stride: 9 })).rejects.toThrow(/stride must be an integer from 1 to the context \(8\)/);
    await expect(perplexity(model, [1])).rejects.toThrow(/at least two tokens/);
  });
});

// Cancellation and the model's lifecycle: an AbortSignal ends a load, a generation or a logprobs call
// with the signal's reason; reset() and a new generation end a generation that waits for its consumer
// (GenerationSupersededError) and are refused while a step runs (ModelBusyError); dispose() ends what
// runs with ModelDisposedError. An abandoned iterator never locks the model.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GenerationSupersededError,
  InputError,
  loadModel,
  ModelBusyError,
  ModelDisposedError,
  WebGpuError,
  type GeneratedToken,
  type Model,
} from "../../src/index.js";
import { writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-lifecycle-"));
const tinyPath = join(tmp, "tiny.gguf");
let model: Model;

beforeAll(async () => {
  // A long context, so that a greedy generation of 1000 tokens takes seconds on the CPU (it never
  // meets EOS on this model).
  await writeTinyModel(tinyPath, { contextLength: 2048 });
  model = await loadModel(tinyPath, { backend: "cpu" });
});
afterAll(() => model?.dispose());

const greedy = { temperature: 0 };

async function tokensOf(it: AsyncIterable<GeneratedToken>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of it) out.push(t.token);
  return out;
}

/** Runs `it` to its end; returns the tokens it gave and what it threw. */
async function drain(it: AsyncIterator<GeneratedToken>): Promise<{ tokens: number[]; error: unknown }> {
  const tokens: number[] = [];
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) tokens.push(r.value.token);
  } catch (error) {
    return { tokens, error };
  }
  return { tokens, error: undefined };
}

const start = (m: Model, prompt: string, opts: Parameters<Model["generate"]>[1] = {}) => m.generate(prompt, { ...greedy, ...opts })[Symbol.asyncIterator]();

describe("AbortSignal", () => {
  it("ends a generation between two steps: the iterator throws the signal's reason", async () => {
    const expected = await tokensOf(model.generate("hello", { ...greedy, maxTokens: 10 }));
    const controller = new AbortController();
    const reason = new Error("enough");
    const it = start(model, "hello", { maxTokens: 10, signal: controller.signal });
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push(((await it.next()).value as GeneratedToken).token);
    controller.abort(reason);
    await expect(it.next()).rejects.toBe(reason);
    expect(got).toEqual(expected.slice(0, 3));
    // The model is free again, and its output unchanged.
    expect(await tokensOf(model.generate("hello", { ...greedy, maxTokens: 10 }))).toEqual(expected);
  });

  it("an aborted signal gives no token; the default reason is an AbortError", async () => {
    const { tokens, error } = await drain(start(model, "hello", { signal: AbortSignal.abort() }));
    expect(tokens).toEqual([]);
    expect((error as Error).name).toBe("AbortError");
  });

  it("a timer aborts a long CPU generation: the event loop gets in between steps", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = performance.now();
    const { tokens, error } = await drain(start(model, "hello", { maxTokens: 1000, signal: controller.signal }));
    expect((error as Error).name).toBe("AbortError");
    expect(tokens.length).toBeLessThan(1000);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("ends logprobs", async () => {
    const reason = new Error("stop scoring");
    await expect(model.logprobs([1, 5, 9], { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect((await model.logprobs([1, 5, 9])).tokens).toEqual([1, 5, 9]);
  });

  it("ends loadModel between two tensors, with the signal's reason", async () => {
    const reason = new Error("stop loading");
    await expect(loadModel(tinyPath, { backend: "cpu", signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const controller = new AbortController();
    let read = 0;
    const loading = loadModel(tinyPath, {
      backend: "cpu",
      signal: controller.signal,
      onProgress: (p) => {
        read = p.done;
        if (p.done === 2) controller.abort(reason);
      },
    });
    await expect(loading).rejects.toBe(reason);
    expect(read).toBe(2);
  });
});

describe("one generation at a time", () => {
  it("a new generation ends one that waits for its consumer; an abandoned iterator does not lock the model", async () => {
    const expected = await tokensOf(model.generate("ab ba", { ...greedy, maxTokens: 6 }));
    const abandoned = start(model, "hello", { maxTokens: 50 });
    await abandoned.next();
    expect(await tokensOf(model.generate("ab ba", { ...greedy, maxTokens: 6 }))).toEqual(expected);
    const err = await abandoned.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GenerationSupersededError);
    expect(err).toBeInstanceOf(InputError);
    expect((err as GenerationSupersededError).by).toBe("generate");
    // logprobs ends a waiting generation too.
    const waiting = start(model, "hello");
    await waiting.next();
    await model.logprobs([1, 2]);
    await expect(waiting.next()).rejects.toThrow(GenerationSupersededError);
  });

  it("while a step runs, generate, logprobs and reset are refused with ModelBusyError", async () => {
    const it = start(model, "hello", { maxTokens: 4 });
    const first = it.next(); // runs until the prefill step awaits
    // Called before anything is awaited, so the step is still running.
    const other = start(model, "hi").next();
    const scoring = model.logprobs([1, 2]);
    expect(() => model.reset()).toThrow(ModelBusyError);
    expect(() => model.reset()).toThrow(/reset\(\) was called while a step/);
    await expect(other).rejects.toThrow(ModelBusyError);
    await expect(scoring).rejects.toThrow(ModelBusyError);
    // The running generation is untouched.
    await first;
    const rest = await drain(it);
    expect(rest.error).toBeUndefined();
    expect(rest.tokens).toHaveLength(3);
  });

  it("reset() between two tokens ends that generation instead of corrupting it", async () => {
    const expected = await tokensOf(model.generate("hello", { ...greedy, maxTokens: 8 }));
    const it = start(model, "hello", { maxTokens: 8 });
    await it.next();
    await it.next();
    model.reset();
    await expect(it.next()).rejects.toThrow(GenerationSupersededError);
    expect(await tokensOf(model.generate("hello", { ...greedy, maxTokens: 8 }))).toEqual(expected);
  });

  it("breaking out of a loop (return()) frees the model at once", async () => {
    for await (const _ of model.generate("hello", { maxTokens: 5 })) break;
    model.reset();
    expect(await tokensOf(model.generate("hello", { ...greedy, maxTokens: 2 }))).toHaveLength(2);
  });
});

describe("dispose()", () => {
  const fresh = () => loadModel(tinyPath, { backend: "cpu" });

  it("between two tokens: the generation ends with ModelDisposedError, and so does every later call", async () => {
    const m = await fresh();
    const it = start(m, "hello", { maxTokens: 20 });
    await it.next();
    m.dispose();
    await expect(it.next()).rejects.toThrow(ModelDisposedError);
    await expect(start(m, "hello").next()).rejects.toThrow(ModelDisposedError);
    await expect(m.logprobs([1, 2])).rejects.toThrow(ModelDisposedError);
    expect(() => m.reset()).toThrow(ModelDisposedError);
    m.dispose(); // twice is fine
  });

  it("during a step: the step ends, then the generation throws ModelDisposedError", async () => {
    const m = await fresh();
    const it = start(m, "hello", { maxTokens: 20 });
    const first = it.next();
    m.dispose();
    await expect(first).rejects.toThrow(ModelDisposedError);
  });

  it("on WebGPU, during a step: ModelDisposedError, not a device error", async () => {
    const m = await loadModel(tinyPath, { backend: "webgpu", maxSeqLen: 64 });
    const it = start(m, "hello", { maxTokens: 20 });
    await it.next();
    const second = it.next(); // a decode step on the device
    m.dispose();
    const err = await second.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelDisposedError);
    expect(err).not.toBeInstanceOf(WebGpuError);
  });
});

// ignoreEos (--ignore-eos): generation goes on past an end-of-turn token — on a model whose
// end-of-turn token is the one greedy decoding picks first, greedy stops at once without it and runs
// to maxTokens with it.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/index.js";
import { writeTinyModel } from "./fixture.js";

const dir = mkdtempSync(join(tmpdir(), "llmc-ignore-eos-"));

async function tokens(path: string, opts: { maxTokens: number; ignoreEos?: boolean }) {
  const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
  try {
    const out: { token: number; text: string }[] = [];
    for await (const t of model.generate([1, 40, 41], { temperature: 0, ...opts })) out.push({ token: t.token, text: t.text });
    return { out, eot: model.tokenizer.eotIds };
  } finally {
    model.dispose();
  }
}

describe("ignoreEos", () => {
  it("goes on to maxTokens past end-of-turn tokens", async () => {
    const plain = join(dir, "plain.gguf");
    await writeTinyModel(plain);
    const first = (await tokens(plain, { maxTokens: 1 })).out[0]!.token;
    const ending = join(dir, "ending.gguf");
    await writeTinyModel(ending, { eosId: first });
    const stopped = await tokens(ending, { maxTokens: 6 });
    expect(stopped.out.map((t) => t.token)).toEqual([first]);
    const ignored = await tokens(ending, { maxTokens: 6, ignoreEos: true });
    expect(ignored.out).toHaveLength(6);
    expect(ignored.out[0]!.token).toBe(first);
    expect(ignored.out.filter((t) => ignored.eot.has(t.token)).length).toBeGreaterThan(0);
  });
});

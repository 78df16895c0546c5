// `llmc eval` and `llmc run --beams` as a user meets them: text files scored without a model
// (sacreBLEU's README example), perplexity and a generation task on the tiny random model, and the
// usage and input errors with their exit codes.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufferIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { loadModel, type Model } from "../../src/runtime/model.js";
import { writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-eval-cli-"));
const file = (name: string, text: string) => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

async function llmc(...args: string[]) {
  const io = bufferIO();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("llmc eval --hyp --ref", () => {
  const hyp = file("hyp.txt", "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  const ref1 = file("ref1.txt", "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
  const ref2 = file("ref2.txt", "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n");

  it("prints sacreBLEU's score for its README example, and ROUGE F1", async () => {
    const r = await llmc("eval", "--hyp", hyp, "--ref", ref1, "--ref", ref2);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^BLEU = 48\.53 /);
    expect(r.out).toMatch(/hyp_len = \d+ ref_len = \d+\)\n/);
    for (const name of ["ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"]) expect(r.out).toMatch(new RegExp(`^${name} +F 0\\.\\d{4}$`, "m"));
  });

  it("--json: the BLEU parts by sacreBLEU's names, ROUGE P/R/F; --metrics picks", async () => {
    const r = await llmc("eval", "--hyp", hyp, "--ref", ref1, "--ref", ref2, "--json");
    const json = JSON.parse(r.out) as { items: number; bleu: Record<string, unknown>; rouge: Record<string, Record<string, number>> };
    expect(json.items).toBe(3);
    expect(Object.keys(json.bleu)).toEqual(["score", "counts", "totals", "precisions", "bp", "sys_len", "ref_len"]);
    expect(json.bleu["score"] as number).toBeCloseTo(48.530827, 5);
    expect(Object.keys(json.rouge)).toEqual(["rouge1", "rouge2", "rougeL", "rougeLsum"]);
    expect(Object.keys(json.rouge["rouge1"]!)).toEqual(["precision", "recall", "fmeasure"]);
    // The first hypothesis equals its first reference: its ROUGE-1 F1 is 1, and the mean is at least 1/3.
    expect(json.rouge["rouge1"]!["fmeasure"]!).toBeGreaterThan(1 / 3);
    const onlyRouge = JSON.parse((await llmc("eval", "--hyp", hyp, "--ref", ref1, "--metrics", "rouge", "--json")).out) as Record<string, unknown>;
    expect(Object.keys(onlyRouge)).toEqual(["items", "rouge"]);
  });

  it("a reference file of another length is bad input (1), naming it", async () => {
    const short = file("short.txt", "one line\n");
    const r = await llmc("eval", "--hyp", hyp, "--ref", short);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${short} has 1 lines but ${hyp} has 3`);
    expect((await llmc("eval", "--hyp", join(tmp, "missing.txt"), "--ref", ref1)).err).toMatch(/missing\.txt: no such file/);
  });

  it("wrong command lines are usage errors (2)", async () => {
    for (const args of [
      [],
      ["--hyp", hyp],
      ["model.gguf", "--hyp", hyp, "--ref", ref1],
      ["model.gguf", "--data", hyp, "--task", hyp],
      ["model.gguf", "--task", hyp, "--stride", "4"],
      ["--hyp", hyp, "--ref", ref1, "--metrics", "bleu,meteor"],
      ["model.gguf", "--task", hyp, "--beams", "0"],
      ["model.gguf", "--data", hyp, "--context", "-3"],
    ]) {
      const r = await llmc("eval", ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toMatch(/^llmc eval: /);
    }
  });
});

describe("llmc eval MODEL", () => {
  const modelPath = join(tmp, "tiny.gguf");
  let model: Model;
  beforeAll(async () => {
    await writeTinyModel(modelPath, { contextLength: 64 });
    model = await loadModel(modelPath, { backend: "cpu", onNote: () => {} });
  });
  afterAll(() => model?.dispose());

  it("--data: the perplexity of a text that fits the context is the logprobs perplexity", async () => {
    const text = "hello world, hello again and again";
    const data = file("data.txt", text);
    const r = await llmc("eval", modelPath, "--data", data, "--backend", "cpu", "--json");
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as Record<string, number>;
    expect(Object.keys(json)).toEqual(["perplexity", "tokens", "scored", "nll", "windows", "context", "stride"]);
    const tokens = model.tokenizer.encode(text);
    expect(json).toMatchObject({ tokens: tokens.length, scored: tokens.length - 1, windows: 1, context: 64, stride: 32 });
    expect(json["perplexity"]! / (await model.logprobs(tokens, { top: 0 })).perplexity!).toBeCloseTo(1, 9);
    const plain = await llmc("eval", modelPath, "--data", data, "--backend", "cpu", "--context", "4", "--stride", "2");
    expect(plain.out).toMatch(new RegExp(`^perplexity \\d+\\.\\d{4}\\ntokens ${tokens.length} \\(${tokens.length - 1} scored\\), windows \\d+, context 4, stride 2\\n$`));
  });

  it("--task: generates each prompt greedily and scores the outputs", async () => {
    const task = file("task.jsonl", '{"prompt": "hello", "references": ["hello world", "hi world"]}\n\n{"prompt": "again", "reference": "and again"}\n');
    const r = await llmc("eval", modelPath, "--task", task, "--backend", "cpu", "-n", "4", "--json");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as { items: number; outputs: string[]; bleu: { sys_len: number }; rouge: object };
    expect(json.items).toBe(2);
    const greedy = async (prompt: string) => {
      let text = "";
      for await (const t of model.generate(prompt, { temperature: 0, maxTokens: 4 })) text += t.text;
      return text;
    };
    expect(json.outputs).toEqual([await greedy("hello"), await greedy("again")]);
    expect(Object.keys(json.rouge)).toEqual(["rouge1", "rouge2", "rougeL", "rougeLsum"]);
    const beams = await llmc("eval", modelPath, "--task", task, "--backend", "cpu", "-n", "4", "--beams", "3", "--length-penalty", "0.5");
    expect(beams.code).toBe(0);
    expect(beams.out).toMatch(/^BLEU = /);
  });

  it("a bad task line is bad input (1), with its file and line", async () => {
    const task = file("bad.jsonl", '{"prompt": "hello", "references": ["x"]}\n{"prompt": 3}\n');
    const r = await llmc("eval", modelPath, "--task", task, "--backend", "cpu");
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${task}:2: "prompt" must be a string`);
  });

  it("llmc run --beams N --length-penalty A", async () => {
    const r = await llmc("run", modelPath, "--backend", "cpu", "-p", "hello", "-n", "5", "--beams", "3", "--length-penalty", "0");
    expect(r.code).toBe(0);
    let text = "";
    for await (const t of model.generate("hello", { beams: 3, lengthPenalty: 0, maxTokens: 5 })) text += t.text;
    expect(r.out).toBe(text.endsWith("\n") || text === "" ? text : `${text}\n`);
    expect(r.err).toMatch(/prompt \d+ tokens, \d+ tokens by beam search \(3 beams\) in [\d.]+ s; backend cpu/);
    expect((await llmc("run", modelPath, "-p", "x", "--beams", "2", "--temperature", "0.5")).code).toBe(2);
    expect((await llmc("run", modelPath, "-p", "x", "--length-penalty", "1")).code).toBe(2);
  });
});

// `llmc run`, `llmc chat` and `llmc logprobs` on a tiny random GGUF model: what they print agrees with
// the API, the JSON has exactly the documented shape, and bad input is a message and exit code 1
// (a bad command line, exit 2), never a stack trace. The commands are called as main() calls them:
// a UsageError or a parseArgs error is exit code 2 there.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runChat } from "../../src/cli/commands/chat.js";
import { UsageError } from "../../src/cli/commands/common.js";
import { runLogprobs } from "../../src/cli/commands/logprobs.js";
import { runRun } from "../../src/cli/commands/run.js";
import { bufferIO, type CliIO } from "../../src/cli/io.js";
import { loadModel, type Model } from "../../src/index.js";
import { applyChatTemplate, type ChatMessage } from "../../src/runtime/tokenizer/index.js";
import { VOCAB, writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-cli-gen-"));
const tinyPath = join(tmp, "tiny.gguf");
let model: Model;

beforeAll(async () => {
  await writeTinyModel(tinyPath, { contextLength: 256 });
  model = await loadModel(tinyPath, { backend: "cpu" });
});
afterAll(() => model?.dispose());

type Command = (args: string[], io: CliIO) => Promise<number>;

/** Runs a command with main()'s handling of command-line errors. */
async function llmc(command: Command, ...args: string[]) {
  const io = bufferIO();
  let code: number;
  try {
    code = await command(args, io);
  } catch (e) {
    if (!(e instanceof UsageError) && !String((e as NodeJS.ErrnoException).code).startsWith("ERR_PARSE_ARGS")) throw e;
    io.err(`${(e as Error).message}\n`);
    code = 2;
  }
  return { code, out: io.stdout(), err: io.stderr() };
}

async function apiText(prompt: string | number[], opts: Parameters<Model["generate"]>[1]): Promise<string> {
  let text = "";
  for await (const t of model.generate(prompt, opts)) text += t.text;
  return text;
}

const withNewline = (s: string) => (s === "" || s.endsWith("\n") ? s : `${s}\n`);
const cpu = ["--backend", "cpu"];

describe("llmc run", () => {
  it("streams the same text as the API, and statistics to stderr", async () => {
    const r = await llmc(runRun, tinyPath, ...cpu, "--prompt", "hello world", "--max-tokens", "20", "--seed", "5", "--temperature", "0.9", "--top-k", "20", "--stop", "zzz");
    expect(r.code).toBe(0);
    const expected = await apiText("hello world", { maxTokens: 20, seed: 5, temperature: 0.9, topK: 20, stop: ["zzz"] });
    expect(expected.length).toBeGreaterThan(0);
    expect(r.out).toBe(withNewline(expected));
    expect(model.promptTokens("hello world")).toHaveLength(5);
    expect(r.err).toMatch(/prompt 5 tokens, prefill [\d.]+ tokens\/s; \d+ tokens generated, decode [\d.]+ tokens\/s; backend cpu/);
    // The same seed, the same text; another seed, other text.
    expect((await llmc(runRun, tinyPath, ...cpu, "-p", "hello world", "-n", "20", "--seed", "5", "--temperature", "0.9", "--top-k", "20")).out).toBe(r.out);
    expect((await llmc(runRun, tinyPath, ...cpu, "-p", "hello world", "-n", "20", "--seed", "6", "--temperature", "0.9", "--top-k", "20")).out).not.toBe(r.out);
  });

  it("prints the seed with --verbose, and applies the chat template with --chat", async () => {
    const r = await llmc(runRun, tinyPath, ...cpu, "-p", "hello", "-n", "6", "--temperature", "0", "--chat", "-v");
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/llmc: seed \d+/);
    expect(r.out).toBe(withNewline(await apiText("hello", { maxTokens: 6, temperature: 0, chat: true })));
  });

  it("bad input: exit 1 with a message and no stack trace", async () => {
    const text = join(tmp, "notes.txt");
    writeFileSync(text, "not a model");
    const gpt2 = join(tmp, "gpt2.gguf");
    await writeTinyModel(gpt2, { architecture: "gpt2" });
    const cases: [string, RegExp][] = [
      [join(tmp, "missing.gguf"), /missing\.gguf: no such file or directory/],
      [text, /notes\.txt is not a GGUF file/],
      [gpt2, /unsupported general\.architecture "gpt2"; supported architectures: llama/],
    ];
    for (const [file, message] of cases) {
      const r = await llmc(runRun, file, ...cpu, "--prompt", "hi");
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^llmc run: /);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
    const cuda = await llmc(runRun, tinyPath, "--backend", "cuda", "--prompt", "hi");
    expect(cuda).toMatchObject({ code: 1, err: expect.stringMatching(/the CUDA backend is unavailable: .*libcuda\.so\.1/) as unknown });
    const full = await llmc(runRun, tinyPath, ...cpu, "--set", "max_seq_len=4", "--prompt", "hello world ab ba");
    expect(full.code).toBe(1);
    expect(full.err).toMatch(/max_seq_len is 4/);
  });

  it("bad command lines: exit 2", async () => {
    for (const args of [
      [tinyPath],
      ["--prompt", "x"],
      [tinyPath, "--prompt", "x", "--temperature", "hot"],
      [tinyPath, "--prompt", "x", "--top-p", "0"],
      [tinyPath, "--prompt", "x", "--max-tokens", "1.5"],
      [tinyPath, "--prompt", "x", "--backend", "tpu"],
      [tinyPath, "--prompt", "x", "--bogus"],
    ]) {
      const r = await llmc(runRun, ...args);
      expect(r.code, args.join(" ")).toBe(2);
    }
    expect((await llmc(runRun, tinyPath, "--prompt", "x", "--top-p", "0")).err).toMatch(/--top-p must be in \(0, 1\]/);
  });
});

describe("llmc logprobs", () => {
  it("--json prints exactly one object of the documented shape, equal to the API's", async () => {
    const r = await llmc(runLogprobs, tinyPath, ...cpu, "--tokens", "1, 273,276,262", "--top", "3", "--json");
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split("\n")).toHaveLength(1);
    const json = JSON.parse(r.out) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(["tokens", "positions", "perplexity"]);
    expect(json["tokens"]).toEqual([1, 273, 276, 262]);
    const positions = json["positions"] as { token: number; top: { id: number; logprob: number }[] }[];
    expect(positions).toHaveLength(4);
    for (const p of positions) {
      expect(Object.keys(p)).toEqual(["token", "top"]);
      expect(p.top).toHaveLength(3);
      for (const t of p.top) expect(Object.keys(t)).toEqual(["id", "logprob"]);
    }
    expect(positions.map((p) => p.token)).toEqual([1, 273, 276, 262]);
    expect(json).toEqual(await model.logprobs([1, 273, 276, 262], { top: 3 }));
    expect(typeof json["perplexity"]).toBe("number");
  });

  it("--text tokenizes as the model does; the table ends with the perplexity", async () => {
    const r = await llmc(runLogprobs, tinyPath, ...cpu, "--text", "hello world");
    expect(r.code).toBe(0);
    const { perplexity } = await model.logprobs(model.tokenizer.encode("hello world"));
    expect(r.out).toContain(`perplexity: ${perplexity!.toFixed(4)} over 4 predicted tokens`);
    expect(r.out.split("\n")[1]).toMatch(/^\s+1\s+273 "▁hello"/);
  });

  it("a token id outside the vocabulary: exit 1 with a message; bad command lines: exit 2", async () => {
    const r = await llmc(runLogprobs, tinyPath, ...cpu, "--tokens", `1,${VOCAB}`, "--json");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toBe(`llmc logprobs: token id ${VOCAB} is out of range: the vocabulary has ${VOCAB} tokens (ids 0…${VOCAB - 1})\n`);
    expect((await llmc(runLogprobs, tinyPath, "--tokens", "1,x")).code).toBe(2);
    expect((await llmc(runLogprobs, tinyPath)).code).toBe(2);
    expect((await llmc(runLogprobs, tinyPath, "--tokens", "1", "--text", "a")).code).toBe(2);
    expect((await llmc(runLogprobs, tinyPath, "--tokens", "1", "--top", "-2")).code).toBe(2);
    expect((await llmc(runLogprobs, join(tmp, "missing.gguf"), "--tokens", "1")).code).toBe(1);
  });
});

describe("llmc chat", () => {
  const chat = (input: string, ...args: string[]) => {
    const command: Command = (a, io) => runChat(a, io, Readable.from([input]));
    return llmc(command, tinyPath, ...cpu, "--temperature", "0", "-n", "8", ...args);
  };
  const templated = async (kind: "llama2" | "llama3", messages: ChatMessage[]) =>
    apiText(model.tokenizer.encode(applyChatTemplate(kind, messages, { addGenerationPrompt: true }), { addBos: false, parseSpecial: true }), {
      temperature: 0,
      maxTokens: 8,
    });

  it("one message per line from a pipe, each reply in the template the file implies; /reset starts over; /exit quits", async () => {
    const r = await chat("hello\nab ba\n/reset\nhello\n/exit\nnever read\n");
    expect(r.code).toBe(0);
    const first = await templated("llama2", [{ role: "user", content: "hello" }]);
    const second = await templated("llama2", [
      { role: "user", content: "hello" },
      { role: "assistant", content: first },
      { role: "user", content: "ab ba" },
    ]);
    expect(r.out).toBe(`${first}\n${second}\n${first}\n`);
    expect(second).not.toBe(first);
  });

  it("--template picks another template; --system adds a system message", async () => {
    const r = await chat("hello\n", "--template", "llama3", "--system", "be brief");
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${await templated("llama3", [{ role: "system", content: "be brief" }, { role: "user", content: "hello" }])}\n`);
    expect((await chat("hi\n", "--template", "chatml")).code).toBe(2);
  });

  it("bad input: exit 1", async () => {
    const r = await llmc((a, io) => runChat(a, io, Readable.from([""])), join(tmp, "missing.gguf"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no such file or directory/);
  });
});

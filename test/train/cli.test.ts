// `llmc train`: flag errors (exit 2, naming the flag), bad data (exit 1), and end to end on a tiny
// LLaMA (dim 16, 2 layers, the vocabulary init-weights trains): the loss falls, the output is a GGUF
// that the existing loader runs and that fits the training text better than the initial weights,
// fine-tuning starts from it, and a run stopped (as by Ctrl-C) and resumed takes bit for bit the
// steps of an uninterrupted one.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferIO, type CliIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { runTrain } from "../../src/cli/commands/train.js";
import { UsageError } from "../../src/cli/commands/common.js";
import { compileFile } from "../../src/compiler/compile.js";
import { loadModel } from "../../src/runtime/model.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initWeights } from "../../src/runtime/weights/init.js";

const LLM = "test/train/fixtures/micro-llama.llm";
const TEXT = "test/train/fixtures/tiny.txt";
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-train-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// The CPU reference by default here; the WebGPU test below compares the two.
const base = (out: string, ...more: string[]) => [LLM, "--data", TEXT, "--batch", "2", "--context", "16", "--lr", "1e-2", "--val-fraction", "0.2", "--eval-every", "3", "--backend", "cpu", "-o", out, ...more];

describe("llmc train: the command line", () => {
  const usage = async (args: string[], message: RegExp) => {
    await expect(runTrain(args, bufferIO())).rejects.toSatisfy((e) => e instanceof UsageError && message.test(e.message));
  };

  it("names the flag that is wrong", async () => {
    await usage([], /missing FILE\.llm or MODEL\.gguf/);
    await usage([LLM, "-o", "x.gguf"], /missing --data/);
    await usage([LLM, "--data", TEXT], /missing -o/);
    await usage([LLM, "--data", TEXT, "-o", "x.bin"], /-o must name a \.gguf file/);
    await usage(base("x.gguf", "--optimizer", "adam"), /--optimizer must be one of adamw, sgd, got 'adam'/);
    await usage(base("x.gguf", "--schedule", "linear"), /--schedule must be one of constant, cosine, step/);
    await usage(base("x.gguf", "--lr=-1"), /--lr takes a number > 0, got '-1'/);
    await usage(base("x.gguf", "--steps", "0"), /--steps takes an integer ≥ 1/);
    await usage(base("x.gguf", "--batch", "two"), /--batch takes an integer ≥ 1, got 'two'/);
    await usage(base("x.gguf", "--val-fraction", "1"), /--val-fraction takes a number in \[0, 1\)/);
    await usage(base("x.gguf", "--min-lr", "0.5"), /minimum learning rate must lie in \[0, lr\]/);
    await usage(base("x.gguf", "--nesterov"), /--nesterov is an SGD option/);
    await usage(base("x.gguf", "--dropout", "1"), /--dropout takes a number in \[0, 1\), got '1'/);
    await usage(base("x.gguf", "--dropout", "0.1", "--set", "resid_dropout=0.2"), /give the dropout once/);
    await usage(base("x.gguf", "--attn-dropout", "1.5"), /--attn-dropout takes a number in \[0, 1\), got '1.5'/);
    await usage(base("x.gguf", "--attn-dropout", "0.1", "--set", "attn_dropout=0.2"), /give the dropout once: --attn-dropout or --set attn_dropout/);
    await usage(base("x.gguf", "--backend", "tpu"), /--backend must be auto, webgpu, cpu or cuda/);
    await usage(base("x.gguf", "--context", "65"), /--context 65 is longer than the model's max_seq_len 64/);
  });

  it("--backend cuda without an NVIDIA driver says so and what to use instead (exit 1)", async () => {
    const io = bufferIO();
    const saved = process.env["LLMC_LIBCUDA"];
    process.env["LLMC_LIBCUDA"] = join(dir, "no-such-libcuda.so.1");
    try {
      expect(await main(["train", ...base(join(dir, "x.gguf"), "--backend", "cuda")], io)).toBe(1);
    } finally {
      if (saved === undefined) delete process.env["LLMC_LIBCUDA"];
      else process.env["LLMC_LIBCUDA"] = saved;
    }
    expect(io.stderr()).toMatch(/llmc train: --backend cuda: .*; train with --backend webgpu or cpu/);
  });

  it("reports missing or unusable data with the file and exit 1", async () => {
    let io = bufferIO();
    expect(await runTrain([LLM, "--data", join(dir, "none.txt"), "-o", join(dir, "x.gguf")], io)).toBe(1);
    expect(io.stderr()).toMatch(/none\.txt: no such file or directory \(check --data\)/);
    const jsonl = join(dir, "d.jsonl");
    await writeFile(jsonl, '{"content": "hello"}\n');
    io = bufferIO();
    expect(await runTrain([LLM, "--data", jsonl, "-o", join(dir, "x.gguf")], io)).toBe(1);
    expect(io.stderr()).toMatch(/d\.jsonl:1: no string field "text" \(it has "content"\); name the text field with --text-field/);
    io = bufferIO();
    expect(await runTrain([LLM, "--data", TEXT, "--context", "64", "--val-fraction", "0.9", "-o", join(dir, "x.gguf")], io)).toBe(1);
    expect(io.stderr()).toMatch(/fewer than --context \+ 1 = 65/);
  });

  it("prints its usage for --help", async () => {
    const io = bufferIO();
    expect(await main(["train", "--help"], io)).toBe(0);
    expect(io.stdout()).toMatch(/usage: llmc train FILE\.llm\|MODEL\.gguf --data PATH… -o OUT\.gguf/);
    expect(io.stdout()).toMatch(/--grad-accum K/);
  });
});

describe("llmc train: end to end on a tiny LLaMA", () => {
  const records = (io: { stdout: () => string }) =>
    io
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { step: number; loss: number; val_loss?: number; lr: number; grad_norm: number; tokens_per_s: number });
  const trajectory = (rs: ReturnType<typeof records>) => rs.map(({ step, loss, val_loss, lr, grad_norm }) => ({ step, loss, val_loss, lr, grad_norm }));
  let straight: ReturnType<typeof records>;
  const out = () => join(dir, "straight.gguf");

  it("lowers the loss and writes a model, its training state and a loss plot", async () => {
    const io = bufferIO();
    expect(await runTrain(base(out(), "--steps", "6", "--json"), io)).toBe(0);
    straight = records(io);
    expect(straight.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(straight[0]!.loss).toBeCloseTo(Math.log(300), 0); // random weights: about uniform over 300 tokens
    expect(straight[5]!.loss).toBeLessThan(straight[0]!.loss - 0.3);
    expect(straight.filter((r) => r.val_loss !== undefined).map((r) => r.step)).toEqual([3, 6]);
    expect(io.stderr()).toMatch(/wrote .*straight\.gguf \(\+ .*straight\.optim, .*straight\.loss\.svg\) at step 6/);
    expect((await stat(join(dir, "straight.optim"))).size).toBeGreaterThan(0);
    const svg = await readFile(join(dir, "straight.loss.svg"), "utf8");
    expect(svg).toMatch(/<polyline class="train"[^>]*points="(\S+ ){5}\S+"/);
    expect(svg).toMatch(/<polyline class="val"[^>]*points="\S+ \S+"/);
  });

  it("writes a GGUF the loader runs, with the vocabulary kept, that fits the text better than its start", async () => {
    const f = await openGGUF(out());
    expect(f.metadata["general.architecture"]).toBe("llama");
    expect((f.metadata["tokenizer.ggml.tokens"] as string[]).length).toBe(300);
    expect(f.metadata["llmc.train.step"]).toBe(6);
    await f.close();

    const init = join(dir, "init.gguf");
    await initWeights(compileFile(LLM).compiled!.model, init, { seed: 0 });
    const text = (await readFile(TEXT, "utf8")).split("\n")[0]!;
    const perplexity = async (path: string) => {
      const model = await loadModel(path, { backend: "cpu", onNote: () => undefined });
      try {
        return (await model.logprobs(model.tokenizer.encode(text).slice(0, 48))).perplexity!;
      } finally {
        model.dispose();
      }
    };
    const before = await perplexity(init);
    const after = await perplexity(out());
    expect(after).toBeLessThan(before * 0.8);
  });

  it("fine-tunes a GGUF: the architecture from the file, the weights it holds", async () => {
    const io = bufferIO();
    const tuned = join(dir, "tuned.gguf");
    expect(await runTrain([out(), "--data", TEXT, "--batch", "2", "--context", "16", "--steps", "2", "--lr", "1e-3", "--eval-every", "0", "--json", "-o", tuned], io)).toBe(0);
    const rs = records(io);
    // It starts where the first run ended, not from random weights.
    expect(rs[0]!.loss).toBeLessThan(straight[0]!.loss - 0.3);
  });

  it("stopped after 3 steps (as by Ctrl-C) and resumed, takes bit for bit the steps of the straight run", async () => {
    const part = join(dir, "part.gguf");
    const stop = new AbortController();
    const first = bufferIO();
    const watching: CliIO = { ...first, out: (t) => (first.out(t), t.includes('"step":3,') && stop.abort()) };
    expect(await runTrain(base(part, "--steps", "6", "--json", "--seed", "0"), watching, stop.signal)).toBe(0);
    expect(first.stderr()).toMatch(/stopped; checkpoint .*part\.gguf.* at step 3/);
    expect(first.stderr()).toMatch(/continue with --resume .*part\.gguf/);

    const second = bufferIO();
    expect(await runTrain(base(part, "--steps", "6", "--json", "--resume", part), second)).toBe(0);
    const joined = [...records(first), ...records(second)];
    expect(trajectory(joined)).toEqual(trajectory(straight));
    // The final weights are the same bytes.
    expect(await readFile(part)).toEqual(await readFile(out()));
  });

  it("refuses a weights file without its training state", async () => {
    const io = bufferIO();
    const lone = join(dir, "lone.gguf");
    await initWeights(compileFile(LLM).compiled!.model, lone, { seed: 0 });
    expect(await runTrain(base(join(dir, "y.gguf"), "--steps", "2", "--resume", lone), io)).toBe(1);
    expect(io.stderr()).toMatch(/--resume .*lone\.gguf: cannot read its training state .*lone\.optim/);
  });
});

describe("llmc train on WebGPU and with a trained tokenizer", () => {
  const records = (io: { stdout: () => string }) =>
    io.stdout().trim().split("\n").map((l) => JSON.parse(l) as { step: number; loss: number; val_loss?: number; lr: number; grad_norm: number });

  it("takes the CPU reference's steps on WebGPU (the same graph through the target layer, the optimiser on the device)", async () => {
    const cpu = bufferIO();
    expect(await runTrain(base(join(dir, "cpu.gguf"), "--steps", "4", "--json"), cpu)).toBe(0);
    const gpu = bufferIO();
    expect(await runTrain(base(join(dir, "gpu.gguf"), "--steps", "4", "--json", "--backend", "webgpu"), gpu), gpu.stderr()).toBe(0);
    expect(gpu.stderr()).toMatch(/training on webgpu/);
    const [a, b] = [records(cpu), records(gpu)];
    expect(b.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    b.forEach((r, i) => {
      expect(Math.abs(r.loss - a[i]!.loss)).toBeLessThan(1e-4 * a[i]!.loss);
      expect(Math.abs(r.grad_norm - a[i]!.grad_norm)).toBeLessThan(1e-3 * a[i]!.grad_norm);
    });
  });

  it("--dropout and --attn-dropout: WebGPU (optimiser on the device, or on the host) draws the CPU reference's masks, and dropout changes the steps", async () => {
    const run = async (name: string, ...more: string[]) => {
      const io = bufferIO();
      expect(await runTrain(base(join(dir, name), "--steps", "3", "--json", ...more), io), io.stderr()).toBe(0);
      return records(io);
    };
    const cpu = await run("drop-cpu.gguf", "--dropout", "0.8", "--attn-dropout", "0.5");
    const gpu = await run("drop-gpu.gguf", "--dropout", "0.8", "--attn-dropout", "0.5", "--backend", "webgpu");
    const hostOptimizer = await run("drop-gpu-host.gguf", "--dropout", "0.8", "--attn-dropout", "0.5", "--backend", "webgpu", "--host-optimizer");
    const plain = await run("plain-cpu.gguf");
    for (const steps of [gpu, hostOptimizer]) {
      steps.forEach((r, i) => {
        expect(Math.abs(r.loss - cpu[i]!.loss)).toBeLessThan(1e-5 * cpu[i]!.loss);
        expect(Math.abs(r.grad_norm - cpu[i]!.grad_norm)).toBeLessThan(1e-4 * cpu[i]!.grad_norm);
      });
    }
    // At random initial weights the residual branches are small: the masks move the loss and the
    // gradient norm little, but far more than the backends differ.
    expect(Math.abs(cpu[0]!.loss - plain[0]!.loss)).toBeGreaterThan(1e-4 * plain[0]!.loss);
    expect(Math.abs(cpu[0]!.grad_norm - plain[0]!.grad_norm)).toBeGreaterThan(2e-3 * plain[0]!.grad_norm);
  });

  it("from scratch, --tokenizer becomes the model's vocabulary: the output GGUF encodes as the tokenizer.json", async () => {
    const tokDir = join(dir, "tok");
    const io = bufferIO();
    expect(await main(["tokenizer", "train", "--kind", "sentencepiece", "--vocab-size", "300", TEXT, "-o", join(tokDir, "tokenizer.json")], io), io.stderr()).toBe(0);
    const run = bufferIO();
    expect(await runTrain(base(join(dir, "own-vocab.gguf"), "--steps", "2", "--tokenizer", join(tokDir, "tokenizer.json")), run), run.stderr()).toBe(0);
    const { tokenizerFromJSON, tokenizerFromGGUF } = await import("../../src/runtime/tokenizer/index.js");
    const json = tokenizerFromJSON(JSON.parse(await readFile(join(tokDir, "tokenizer.json"), "utf8")), JSON.parse(await readFile(join(tokDir, "tokenizer_config.json"), "utf8")));
    const file = await openGGUF(join(dir, "own-vocab.gguf"));
    try {
      const fromFile = tokenizerFromGGUF(file.metadata as Record<string, unknown>);
      const text = (await readFile(TEXT, "utf8")).slice(0, 400);
      expect(fromFile.encode(text)).toEqual(json.encode(text));
    } finally {
      await file.close();
    }
  });
});

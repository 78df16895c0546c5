// bench/fuzz.mjs with small counts, against src/: every input llmc parses (GGUF, a Hugging Face
// folder's safetensors, config.json, tokenizer.json, .llm source), damaged, gives success or one of
// llmc's user-facing errors (for .llm, diagnostics), never another exception. Large counts:
// `node bench/fuzz.mjs --count 5000` (docs/fuzz.md).

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import * as index from "../../src/index.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { compileFile } from "../../src/compiler/compile.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { tokenizerFromJSON } from "../../src/runtime/tokenizer/index.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initWeights } from "../../src/runtime/weights/init.js";
import { readTensorShapes } from "../../src/runtime/weights/loader.js";
import { modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { writeSafetensors } from "../../src/runtime/weights/safetensors.js";

interface Crash {
  kind: string;
  seed: number;
  input: string;
  error: string;
  stack: string;
}
interface FuzzResult {
  results: Record<string, { ok: number; user: number; crash: number }>;
  crashes: Crash[];
}
interface FuzzModule {
  KINDS: string[];
  fuzz(api: unknown, opts: { kinds?: string[]; count?: number; seed?: number; caseMs?: number }): Promise<FuzzResult>;
  userErrors(index: unknown): Record<string, unknown>;
}

// A computed specifier: the script is plain JavaScript, typed here by FuzzModule.
const script = pathToFileURL(join(process.cwd(), "bench", "fuzz.mjs")).href;
const { fuzz, KINDS, userErrors } = (await import(script)) as FuzzModule;

const api = {
  loadModel: index.loadModel,
  compileFile,
  checkFile,
  initWeights,
  openGGUF,
  modelTensors,
  writeSafetensors,
  readTensorShapes,
  tokenizerFromJSON,
  importHfConfig,
  errors: userErrors(index),
};

const COUNT = 100;

describe("damaged inputs get success or a user-facing error", () => {
  it("knows the error classes the package exports", () => {
    for (const [name, cls] of Object.entries(api.errors)) expect(cls, name).toBeTypeOf("function");
  });

  it.each(KINDS)(`%s: ${COUNT} cases`, async (kind) => {
    const { results, crashes } = await fuzz(api, { kinds: [kind], count: COUNT, seed: 1, caseMs: 10_000 });
    const report = crashes.map((c) => `--kind ${c.kind} --seed ${c.seed}: ${c.input}\n${c.stack}`).join("\n\n");
    expect(crashes, report).toEqual([]);
    // the mutations reach both outcomes, so neither the parser nor the mutator is trivially passing
    const r = results[kind]!;
    expect(r.ok + r.user).toBe(COUNT);
    expect(r.user, `${kind}: no mutated input was refused`).toBeGreaterThan(0);
    expect(r.ok, `${kind}: no mutated input was accepted`).toBeGreaterThan(0);
  });

  it("reports an internal exception as a crash, with the seed that replays it", async () => {
    const broken = {
      ...api,
      tokenizerFromJSON: () => {
        throw new TypeError("x is undefined");
      },
    };
    const { results, crashes } = await fuzz(broken, { kinds: ["tokenizer"], count: 3, seed: 7 });
    expect(results["tokenizer"]!.crash).toBe(3);
    expect(crashes.map((c) => c.seed)).toEqual([7, 8, 9]);
    expect(crashes[0]!.error).toBe("TypeError: x is undefined");
    expect(crashes[0]!.input).toMatch(/^tokenizer /);
  });

  it("reports a throw from the .llm checker as a crash, even of a user-facing class", async () => {
    const throwing = {
      ...api,
      checkFile: () => {
        throw new index.InputError("no");
      },
    };
    const { crashes } = await fuzz(throwing, { kinds: ["llm"], count: 1, seed: 1 });
    expect(crashes).toHaveLength(1);
  });
});

// The two crashes the fuzzer found (docs/fuzz.md), replayed as plain inputs.
describe("inputs the fuzzer once crashed on", () => {
  it("a weight group of 2^32 layers is a located E0404, not a RangeError", async () => {
    const { mkdtempSync, readFileSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "llmc-fuzz-replay-"));
    const file = join(dir, "huge.llm");
    const source = readFileSync("models/examples/tiny-llama.llm", "utf8").replace("n_layers = 2", "n_layers = 4294967296");
    writeFileSync(file, source.replace('import "llama.llm"', `import ${JSON.stringify(join(process.cwd(), "models", "llama.llm"))}`));
    const res = checkFile(file);
    const e = res.diagnostics.find((d) => d.code === "E0404");
    expect(e?.message).toMatch(/a loop over 4294967296 layers is unrolled at compile time/);
  });

  it("a tokenizer.json whose normalizer list is a number is refused with a plain Error", () => {
    const json = { version: "1.0", normalizer: { type: "Sequence", normalizers: 9007199254740994 }, pre_tokenizer: null, model: { type: "BPE", vocab: { a: 0, b: 1 }, merges: [] }, added_tokens: [] };
    let thrown: unknown;
    try {
      tokenizerFromJSON(json);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect(thrown).not.toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toMatch(/tokenizer/);
  });
});

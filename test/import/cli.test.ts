// `llmc import` on the command line: output to stdout or -o, names, and the exit status and message
// for each kind of bad input.

import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { runImport } from "../../src/cli/commands/import.js";
import { bufferIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { meta, writeGGUF } from "../../src/runtime/weights/gguf-writer.js";

const configsDir = fileURLToPath(new URL("../fixtures/configs/", import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-import-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]) {
  const io = bufferIO();
  const code = await main(["import", ...args], io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("llmc import", () => {
  it("prints the .llm for a config.json to stdout", async () => {
    const r = await run(join(configsDir, "Meta-Llama-3-8B.json"));
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(parseModule("out.llm", r.out).diagnostics).toEqual([]);
    expect(r.out).toContain('import "llama.llm"');
    expect(r.out).toContain("model meta_llama_3_8b extends llama {");
    expect(r.out).toMatch(/n_kv_heads\s*= 8\n/);
  });

  it("writes -o OUT.llm and names the model after it", async () => {
    const out = join(dir, "my-qwen.llm");
    const r = await run(join(configsDir, "Qwen2-0.5B.json"), "-o", out);
    expect(r).toMatchObject({ code: 0, out: "", err: "" });
    const text = await readFile(out, "utf8");
    expect(text).toContain("model my_qwen extends qwen2 {");
    expect(parseModule(out, text).diagnostics).toEqual([]);
  });

  it("takes a model directory and names the model after it; --name overrides", async () => {
    const model = join(dir, "Mistral-7B-v0.1");
    await mkdir(model, { recursive: true });
    await cp(join(configsDir, "Mistral-7B-v0.1.json"), join(model, "config.json"));
    expect((await run(model)).out).toContain("model mistral_7b_v0_1 extends mistral {");
    expect((await run(join(model, "config.json"), "--name", "Mistral")).out).toContain("model Mistral extends mistral {");
  });

  it("refuses an unknown model_type, naming it and the supported ones", async () => {
    const file = join(dir, "gpt2.json");
    await writeFile(file, JSON.stringify({ model_type: "gpt2", vocab_size: 50257 }));
    const r = await run(file);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toContain(`${file}: unsupported model_type "gpt2"`);
    for (const t of ["llama", "mistral", "qwen2", "gemma"]) expect(r.err).toContain(t);
  });

  it("names a file that is not valid JSON", async () => {
    const file = join(dir, "broken.json");
    await writeFile(file, '{ "model_type": "llama", ');
    const r = await run(file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file} is not valid JSON`);
  });

  it("names a missing required key", async () => {
    const file = join(dir, "no-layers.json");
    const json = JSON.parse(await readFile(join(configsDir, "TinyLlama-1.1B-Chat-v1.0.json"), "utf8"));
    delete json.num_hidden_layers;
    await writeFile(file, JSON.stringify(json));
    const r = await run(file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}: missing required key "num_hidden_layers"`);
  });

  it("names a file that does not exist, and a directory without config.json", async () => {
    const missing = join(dir, "nope.json");
    expect(await run(missing)).toMatchObject({ code: 1, err: `llmc import: cannot read ${missing}: no such file or directory\n` });
    const empty = join(dir, "empty");
    await mkdir(empty);
    expect((await run(empty)).err).toContain(`${empty} is a directory without a config.json`);
  });

  it("reads a file that starts with the GGUF magic as GGUF, whatever its name", async () => {
    // GGUF headers are tested in gguf-metadata.test.ts; here only the dispatch.
    const file = join(dir, "model.bin");
    await writeGGUF(file, { metadata: [meta.string("general.architecture", "falcon")] });
    const r = await run(file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}: unsupported general.architecture "falcon"`);
  });

  it("is a usage error (exit 2) without exactly one FILE or with a bad option", async () => {
    expect((await run()).code).toBe(2);
    expect((await run("a.json", "b.json")).code).toBe(2);
    expect((await run("a.json", "--bogus")).code).toBe(2);
    const config = join(configsDir, "gemma-2b.json");
    for (const name of ["not a name", "model", "gemma"]) {
      const r = await run(config, "--name", name);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--name '${name}' cannot name the model`);
    }
  });

  it("is callable directly with an IO", async () => {
    const io = bufferIO();
    expect(await runImport([join(configsDir, "gemma-2b.json")], io)).toBe(0);
    expect(io.stdout()).toContain("model gemma_2b extends gemma {");
  });
});

// Metadata in the language: a .llm declares the names file formats give its architecture and the
// keys of its config values. Loading a file finds the bundled .llm that declares its architecture
// name; `--arch` reads a file of any architecture by the keys its .llm declares; a declared key's
// value reaches the config (the soft-cap of a Gemma 2-style fixture), a key the .llm does not
// declare is warned about, and a missing required key names the key and the .llm line.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runImport } from "../../src/cli/commands/import.js";
import { bufferIO } from "../../src/cli/io.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { parseModule } from "../../src/compiler/parse/index.js";
import { acceptedNames, architectureFile, declaredNames, findArchitecture, supportedNames, type Architecture } from "../../src/compiler/import/architectures.js";
import { importGgufMetadata, readGgufHeader, type GgufHeader } from "../../src/compiler/import/gguf-metadata.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { ImportError } from "../../src/compiler/import/write-llm.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { loadModel } from "../../src/runtime/model.js";
import { initWeights, randomWeightSource } from "../../src/runtime/weights/init.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { meta } from "../../src/runtime/weights/gguf-writer.js";
import { writeTinyModel } from "../generate/fixture.js";
import { compileModel, SMALL } from "../weights/model-helpers.js";

const FIXTURE = join("test", "fixtures", "models", "gemma2-softcap.llm");
const CONFIG = { ...SMALL.gemma, final_softcap: 20.0, sliding_window: 8 };

let dir: string;
let gemma2: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmc-declared-keys-"));
  gemma2 = join(dir, "gemma2.gguf");
  await initWeights(compileModel(FIXTURE, CONFIG).model, gemma2);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function arch(path: string): Architecture {
  const res = architectureFile(path);
  if (!("arch" in res)) throw new Error(res.errors.map((d) => d.message).join("\n"));
  return res.arch;
}

function llm(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function refused(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ImportError);
    return (e as Error).message;
  }
  throw new Error("expected the import to be refused");
}

const bound = (bindings: { name: string; value: { value: unknown } }[]) => Object.fromEntries(bindings.map((b) => [b.name, b.value.value]));

describe("architecture names are declared in the .llm files", () => {
  it("finds the bundled model that declares a GGUF architecture or an HF model_type", () => {
    expect(findArchitecture("gguf", "llama")?.model.name).toBe("llama");
    expect(findArchitecture("gguf", "qwen2")?.importPath).toBe("qwen2.llm");
    expect(findArchitecture("hf", "mistral")?.model.name).toBe("mistral");
    expect(findArchitecture("hf", "gemma")?.model.name).toBe("gemma");
    expect(findArchitecture("gguf", "gemma2")?.model.name).toBe("gemma2");
    expect(findArchitecture("hf", "qwen3")?.model.name).toBe("qwen3");
    expect(findArchitecture("gguf", "phi3")?.model.name).toBe("phi3");
    // A multimodal Gemma 3 config.json names the model "gemma3", its text model "gemma3_text".
    expect(findArchitecture("hf", "gemma3")?.model.name).toBe("gemma3");
    // llama.cpp reads Mistral's files as "llama"; no bundled model is Phi-2.
    expect(findArchitecture("gguf", "mistral")).toBeNull();
    expect(findArchitecture("gguf", "phi2")).toBeNull();
    expect(supportedNames("gguf")).toEqual(["llama", "gemma", "gemma2", "gemma3", "phi3", "qwen2", "qwen3"]);
  });

  it("a model without a name of its own has its base's (what init-weights writes as general.architecture)", () => {
    const mistral = findArchitecture("hf", "mistral")!.model;
    expect(declaredNames(mistral, "gguf")).toEqual(["llama"]);
    expect(declaredNames(mistral, "hf")).toEqual(["mistral"]);
    expect(acceptedNames(mistral, "hf")).toEqual(["llama", "mistral"]);
  });

  it("a GGUF file loads with --arch a .llm that declares its architecture, instead of the bundled one", async () => {
    expect((await openGGUF(gemma2).then(async (f) => (await f.close(), f.metadata)))["general.architecture"]).toBe("gemma2");
    const notes: string[] = [];
    const model = await loadModel(gemma2, { backend: "cpu", arch: FIXTURE, onNote: (m) => notes.push(m) });
    try {
      expect(notes).toEqual([]);
      expect(model.config).toMatchObject({ final_softcap: 20, sliding_window: 8, head_dim: 16, n_kv_heads: 1 });
    } finally {
      model.dispose();
    }
  });

  it("Qwen3 too: a .llm that declares gguf \"qwen3\" reads qwen3.* keys", async () => {
    const qwen3 = llm("qwen3.llm", 'import "qwen2.llm"\n\nmodel qwen3_like extends qwen2 gguf "qwen3" {}\n');
    const path = join(dir, "qwen3.gguf");
    await initWeights(compileModel(qwen3, { ...SMALL.qwen2, n_kv_heads: 1 }).model, path);
    const { metadata } = await readGgufHeader(path);
    expect(metadata).toMatchObject({ "general.architecture": "qwen3", "qwen3.attention.head_count_kv": 1 });
    const model = await loadModel(path, { backend: "cpu", arch: qwen3, onNote: () => undefined });
    try {
      expect(model.config).toMatchObject({ n_kv_heads: 1, qkv_bias: true, rope_theta: 1000000 });
    } finally {
      model.dispose();
    }
  });
});

describe("declared keys flow into the config", () => {
  it("init-weights writes the fixture's keys under the file's architecture", async () => {
    const { metadata } = await readGgufHeader(gemma2);
    expect(metadata).toMatchObject({ "gemma2.final_logit_softcapping": 20, "gemma2.attention.sliding_window": 8, "gemma2.attention.key_length": 16 });
  });

  it("the soft-cap read from the file is the one the model computes with", async () => {
    const tokens = [1, 5, 9, 20, 33, 7];
    const model = await loadModel(gemma2, { backend: "cpu", arch: FIXTURE });
    let got: { id: number; logprob: number }[];
    try {
      got = (await model.logprobs(tokens, { top: 8 })).positions.at(-1)!.top;
    } finally {
      model.dispose();
    }
    const logprobsWith = (final_softcap: number) => {
      const { graph, model: m } = compileModel(FIXTURE, { ...CONFIG, final_softcap });
      const out = new CpuInterpreter(graph, randomWeightSource(m, 0)).step({ tokens: Int32Array.from(tokens) });
      const logits = (out.data as Float32Array).subarray((tokens.length - 1) * 300);
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((s, x) => s + Math.exp(x - max), 0));
      return (id: number) => logits[id]! - lse;
    };
    const with20 = logprobsWith(20);
    const with30 = logprobsWith(30); // the .llm default, which forgetting the key would have used
    for (const { id, logprob } of got) expect(Math.abs(logprob - with20(id))).toBeLessThan(1e-4);
    expect(Math.max(...got.map(({ id, logprob }) => Math.abs(logprob - with30(id))))).toBeGreaterThan(1e-3);
  });

  it("an HF config.json's declared keys, read for the --arch model", () => {
    const json = {
      model_type: "gemma2", vocab_size: 300, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16,
      intermediate_size: 96, final_logit_softcapping: 30.0, sliding_window: 4096, attn_logit_softcapping: 50.0, query_pre_attn_scalar: 256,
    };
    const imported = importHfConfig(json, "config.json", undefined, arch(FIXTURE));
    expect(imported.warnings).toEqual([]);
    expect(bound(imported.bindings)).toMatchObject({ final_softcap: 30, sliding_window: 4096, head_dim: 16, n_kv_heads: 1 });
    expect(imported.archImport).toBe(resolve(FIXTURE));
  });
});

describe("keys the .llm does not declare, and keys it requires", () => {
  async function header(): Promise<GgufHeader> {
    return readGgufHeader(gemma2);
  }

  it("warns once, naming every undeclared key under the architecture's prefix (ignored and format-level keys aside)", async () => {
    const h = await header();
    h.metadata["gemma2.query_pre_attn_scalar"] = 256;
    h.metadata["gemma2.attention.window_pattern"] = 2;
    h.metadata["gemma2.attn_logit_softcapping"] = 50; // ignored by the fixture
    h.metadata["general.url"] = "https://example.com"; // format-level
    const { warnings } = importGgufMetadata(h, "g.gguf", arch(FIXTURE));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^g\.gguf: keys "gemma2\.query_pre_attn_scalar", "gemma2\.attention\.window_pattern" are not declared by model 'gemma2_softcap' \(.*gemma2-softcap\.llm\), so they have no effect/);
  });

  it("loading a model passes the warning on; the imported HF keys of a bundled model are all declared", async () => {
    const path = join(dir, "extra-key.gguf");
    await writeTinyModel(path, { metadata: [meta.uint32("llama.expert_count", 8)] });
    const notes: string[] = [];
    const model = await loadModel(path, { backend: "cpu", onNote: (m) => notes.push(m) });
    model.dispose();
    expect(notes).toEqual([expect.stringContaining('key "llama.expert_count" is not declared by model \'llama\' (models/llama.llm)')]);
    const json = { model_type: "llama", vocab_size: 32, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, rope_scalling: null };
    expect(importHfConfig(json, "c.json").warnings).toEqual([expect.stringContaining('key "rope_scalling" is not declared by model \'llama\'')]);
  });

  it("a missing key of a parameter without a default is an error naming the key and the .llm line", async () => {
    const strict = llm(
      "strict.llm",
      'import "gemma.llm"\n\nmodel gemma2_strict extends gemma gguf "gemma2" {\n  config {\n    final_softcap: f32  gguf "{arch}.final_logit_softcapping"\n  }\n}\n',
    );
    const h = await header();
    expect(bound(importGgufMetadata(h, "g.gguf", arch(strict)).bindings)).toMatchObject({ final_softcap: 20 });
    delete h.metadata["gemma2.final_logit_softcapping"];
    expect(refused(() => importGgufMetadata(h, "g.gguf", arch(strict)))).toMatch(
      /^g\.gguf: missing required key "gemma2\.final_logit_softcapping" for config 'final_softcap' \(.*strict\.llm:5\)$/,
    );
    // `required` makes a key of a parameter with a default required in that format: llama.llm's epsilon.
    const l = await header();
    delete l.metadata["gemma2.attention.layer_norm_rms_epsilon"];
    expect(refused(() => importGgufMetadata(l, "g.gguf", arch(FIXTURE)))).toMatch(
      /missing required key "gemma2\.attention\.layer_norm_rms_epsilon" for config 'norm_eps' \(models\/llama\.llm:\d+\)/,
    );
  });

  it("--arch a .llm that declares another name reads the file as that model, with a warning", async () => {
    const imported = importGgufMetadata(await readGgufHeader(gemma2), "g.gguf", findArchitecture("gguf", "gemma")!);
    expect(imported.warnings).toEqual([
      expect.stringContaining(`g.gguf: general.architecture is "gemma2", which model 'gemma' does not declare (it declares gguf "llama" | "gemma")`),
      expect.stringContaining('keys "gemma2.final_logit_softcapping", "gemma2.attention.sliding_window" are not declared'),
    ]);
    expect(bound(imported.bindings)).toMatchObject({ head_dim: 16, n_kv_heads: 1 });
  });

  it("requires of the .llm are checked on the file's values, naming the key a value came from", async () => {
    const h = await header();
    h.metadata["gemma2.rope.dimension_count"] = 8;
    expect(refused(() => importGgufMetadata(h, "g.gguf", arch(FIXTURE)))).toMatch(
      /requirement failed: RoPE over part of each head \(rope_dim < head_dim\) is not supported \(rope_dim = 8, head_dim = 16\) \(models\/llama\.llm:\d+\); rope_dim = 8 was read from the model file's "gemma2\.rope\.dimension_count"/,
    );
  });
});

describe("llmc import --arch", () => {
  it("extends the given file's model with the values its keys read, and prints the warnings", async () => {
    const io = bufferIO();
    expect(await runImport([gemma2, "--arch", FIXTURE], io)).toBe(0);
    expect(io.stderr()).toBe("");
    const text = io.stdout();
    expect(parseModule("out.llm", text).diagnostics).toEqual([]);
    expect(text).toContain(`import ${JSON.stringify(resolve(FIXTURE))}`);
    expect(text).toMatch(/model gemma2_softcap_model extends gemma2_softcap \{/);
    expect(text).toMatch(/final_softcap = 20\.0\n/);
    const out = join(dir, "imported.llm");
    writeFileSync(out, text);
    expect(checkFile(out, { requireConcrete: true }).diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const bad = bufferIO();
    expect(await runImport([gemma2, "--arch", "models/gemma.llm"], bad)).toBe(0);
    expect(bad.stderr()).toContain("llmc import: warning: ");
  });
});

describe("the language: key clauses, format names, ignore", () => {
  function errors(text: string): string[] {
    const path = llm("lang.llm", text);
    return checkFile(path).diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`);
  }

  it("checks clauses: transforms and names exist, `required` and `else` exclude each other, one clause per format", () => {
    expect(errors('import "llama.llm"\nmodel m extends llama {\n  config {\n    x: int = 1  gguf "a" |> counts()  hf "b" else y\n  }\n}\n')).toEqual([
      expect.stringMatching(/^E0201 unknown key transform 'counts'; did you mean 'count'\?/),
      expect.stringMatching(/^E0201 unknown config value 'y'/),
    ]);
    expect(parseModule("t.llm", 'model m {\n  config {\n    x: int  gguf "a" required else 1  gguf "b"\n  }\n}\n').diagnostics.map((d) => d.message)).toEqual([
      "a key that is 'required' has no 'else' value: remove one of them",
      "config 'x' has more than one gguf clause; list alternative keys as gguf \"a\" | \"b\"",
    ]);
    expect(parseModule("t.llm", 'model m gguf "a" gguf "b" {\n  config {\n    x: int  gguf file "a"\n  }\n}\n').diagnostics.map((d) => d.message)).toEqual([
      "unknown key source 'file': write a metadata key \"…\", or tensor \"name\" for whether the file holds a tensor",
      "model 'm' names its gguf architecture more than once; list the names as gguf \"a\" | \"b\"",
    ]);
  });

  it("an override may restate a format's keys without a value", () => {
    expect(errors('import "llama.llm"\nmodel m extends llama {\n  config {\n    n_kv_heads  hf "kv" else 2\n    dim\n  }\n}\n')).toEqual([
      "E0101 config override 'dim' needs a value ('dim = …') or keys ('dim gguf \"…\"')",
    ]);
    const res = checkFile(llm("over.llm", 'import "llama.llm"\nmodel m extends llama {\n  config {\n    n_kv_heads  hf "kv" else 2\n  }\n}\n'));
    const kv = res.model!.config.get("n_kv_heads")!;
    expect(kv.keys.hf?.sources.map((s) => s.pattern)).toEqual(["kv"]);
    expect(kv.keys.gguf?.sources.map((s) => s.pattern)).toEqual(["{arch}.attention.head_count_kv"]);
  });
});

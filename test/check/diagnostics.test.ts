// Golden tests of the checker's diagnostics: each broken fixture reports every fault, at the right
// place, with the right code. Expectations are written from reading the fixtures, not from output.

import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { checkFile } from "../../src/compiler/check/index.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";

const fx = (name: string) => join("test", "fixtures", "check", name);

/** `models/llama.llm:LINE:COL` of the first occurrence of `needle`, so expectations survive edits there. */
function llamaAt(needle: string, offsetInNeedle = 0): string {
  const lines = readFileSync(join("models", "llama.llm"), "utf8").split("\n");
  const i = lines.findIndex((l) => l.includes(needle));
  return `models/llama.llm:${i + 1}:${lines[i]!.indexOf(needle) + 1 + offsetInNeedle}`;
}

/** `file:line:col code` of every error, plus the full text for message checks. */
function run(name: string, opts: Parameters<typeof checkFile>[1] = {}) {
  const res = checkFile(fx(name), opts);
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  return {
    res,
    where: errors.map((d) => `${d.span ? `${d.span.file.replace(/\\/g, "/")}:${d.span.start.line}:${d.span.start.column}` : "-"} ${d.code}`),
    text: errors.map((d) => formatDiagnostic(d, res.program.sources)).join("\n"),
  };
}

describe("checker diagnostics", () => {
  it("accepts a concrete model and checks its shapes", () => {
    const { where, res } = run("tiny.llm");
    expect(where).toEqual([]);
    expect(res.checked.map((m) => m.name)).toEqual(["tiny"]);
  });

  it("reports shape errors in overriding functions, each at its expression, and keeps going", () => {
    const { where, text } = run("shape-errors.llm");
    expect(where).toEqual(["test/fixtures/check/shape-errors.llm:12:12 E0301", "test/fixtures/check/shape-errors.llm:15:12 E0301"]);
    expect(text).toContain("@ contracts dim 32 of [T, 32] with dim 48 of [48, 32]");
    expect(text).toContain("use x @ w.T");
    expect(text).toContain("shapes [T, 64] and [T, 2, 16] do not broadcast");
    // The code frame underlines the offending expression.
    expect(text).toContain("12 |     return x @ w.w_up\n   |            ^^^^^^^^^^");
    expect(text).toContain("note: in the call of 'ffn' from here");
  });

  it("reports missing imports and unknown names with suggestions", () => {
    const { where, text } = run("name-errors.llm");
    expect(where).toEqual([
      "test/fixtures/check/name-errors.llm:2:8 E0203",
      "test/fixtures/check/name-errors.llm:5:18 E0201",
      "test/fixtures/check/name-errors.llm:9:10 E0201",
    ]);
    expect(text).toContain('cannot find import "does/not/exist.llm"');
    expect(text).toContain("unknown name 'gain'");
    expect(text).toContain("did you mean 'rms_norm'?");
  });

  it("reports config faults: failed requires with where values were set, bad dims, redeclarations, cycles, unknown overrides", () => {
    const { where, text } = run("config-errors.llm");
    expect(where).toEqual([
      `${llamaAt("n_heads % n_kv_heads == 0")} E0403`,
      `${llamaAt("head_dim % 2 == 0")} E0403`,
      `${llamaAt("w_gate: [ffn_dim", "w_gate: [".length)} E0404`,
      `${llamaAt("w_up: [ffn_dim", "w_up: [".length)} E0404`,
      `${llamaAt("w_down: [dim, ffn_dim", "w_down: [dim, ".length)} E0404`,
      "test/fixtures/check/config-errors.llm:11:5 E0202",
      "test/fixtures/check/config-errors.llm:12:14 E0402",
      "test/fixtures/check/config-errors.llm:14:5 E0201",
    ]);
    expect(text).toContain("n_heads must be a multiple of n_kv_heads (n_heads = 4, n_kv_heads = 3)");
    expect(text).toContain("test/fixtures/check/config-errors.llm:9:18: note: n_kv_heads = 3 is set here");
    expect(text).toContain("head_dim must be even (head_dim = 7)");
    expect(text).toContain("must be positive, got -5");
    expect(text).toContain("config 'a' depends on itself (a → b → a)");
  });

  it("reports an import cycle at the import that closes it", () => {
    const { where } = run("cycle-a.llm");
    expect(where).toEqual(["test/fixtures/check/cycle-b.llm:1:8 E0204"]);
  });

  it("applies --set overrides and reports unknown or ill-typed ones", () => {
    const ok = run("tiny.llm", { overrides: new Map([["n_layers", "3"]]) });
    expect(ok.where).toEqual([]);
    expect(ok.res.model!.config.get("n_layers")!.value!.value).toBe(3);
    const bad = run("tiny.llm", { overrides: new Map([["n_layer", "3"], ["dim", "abc"], ["norm_eps", "1e999"]]) });
    expect(bad.where).toEqual(["- E0201", "- E0401", "- E0401"]);
    expect(bad.text).toContain("did you mean 'n_layers'?");
    expect(bad.text).toContain("--set dim=abc: expected a number");
  });

  it("reports a missing file without a stack trace", () => {
    const { where, text } = run("no-such-file.llm");
    expect(where).toEqual(["- E0203"]);
    expect(text).toContain("no such file");
  });

  it("names unbound config values when a concrete model is required", () => {
    const res = checkFile("models/llama.llm", { requireConcrete: true });
    const missing = res.diagnostics.filter((d) => d.code === "E0401").map((d) => /config '(\w+)'/.exec(d.message)![1]);
    expect(missing).toEqual(["vocab_size", "dim", "n_layers", "ffn_dim", "n_heads"]);
  });
});

describe("shape checking catches what it should", () => {
  const tiny = (extra: string) => {
    const src = `import "llama.llm"\nmodel t extends llama {\n  config { vocab_size = 64\n dim = 32\n n_layers = 1\n n_heads = 4\n n_kv_heads = 2\n ffn_dim = 48 }\n${extra}\n}\n`;
    const path = join(process.cwd(), "test", "fixtures", "check", "__inline.llm");
    return checkFile(path, { overlay: new Map([[path, src]]) }).diagnostics.filter((d) => d.severity === "error");
  };

  it("rejects a KV append of the wrong head count", () => {
    const d = tiny("fn v_proj(x: [T, dim], w: layers) -> [T, n_heads, head_dim] { return heads(linear(x, w.wq), n_heads) }");
    expect(d.map((x) => x.code)).toContain("E0301");
  });

  it("rejects a wrong declared result type", () => {
    const d = tiny("fn ffn(x: [T, dim], w: layers) -> [T, ffn_dim] { return swiglu(x, w.w_gate, w.w_up, w.w_down) }");
    expect(d.map((x) => x.message).join("\n")).toContain("result of ffn: expected shape [T, ffn_dim=48], got [T, 32]");
  });

  it("rejects use of a weight whose 'when' is false", () => {
    const d = tiny("fn ffn(x: [T, dim], w: layers) -> [T, dim] { return x + w.bo }");
    expect(d.map((x) => x.code)).toEqual(["E0206"]);
  });

  it("accepts GQA, MQA and MHA head layouts", () => {
    for (const kv of [4, 2, 1]) {
      const path = join(process.cwd(), "test", "fixtures", "check", "__inline.llm");
      const src = `import "llama.llm"\nmodel t extends llama { config { vocab_size = 64\n dim = 32\n n_layers = 1\n n_heads = 4\n n_kv_heads = ${kv}\n ffn_dim = 48 } }\n`;
      const res = checkFile(path, { overlay: new Map([[path, src]]) });
      expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      expect(res.checked.length).toBe(1);
    }
  });
});

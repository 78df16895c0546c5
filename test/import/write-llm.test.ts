// The .llm text `llmc import` writes: model names become identifiers, and every value reads back
// (through the real parser) as the number, string or boolean that was bound.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseModule, type ModelDecl } from "../../src/compiler/parse/index.js";
import { formatValue, sanitizeModelName, writeLlm, type ConfigValue, type ImportedModel } from "../../src/compiler/import/write-llm.js";

/** Writes one binding and parses it back to its literal. */
function roundTrip(value: ConfigValue): number | string | boolean {
  const model: ImportedModel = { arch: "llama", archImport: "llama.llm", origin: "test", fileModelName: null, bindings: [{ name: "x", value }], warnings: [] };
  const { module, diagnostics } = parseModule("t.llm", writeLlm(model, { source: "t.json", modelName: "t" }));
  expect(diagnostics).toEqual([]);
  const config = (module.items[0] as ModelDecl).members[0];
  if (config?.kind !== "Config" || config.items[0]?.kind !== "ConfigParam") throw new Error("no config binding");
  let e = config.items[0].value!;
  let sign = 1;
  if (e.kind === "Unary" && e.op === "-") {
    sign = -1;
    e = e.operand;
  }
  if (e.kind === "Number") {
    expect(e.isInt).toBe(value.type === "int");
    return sign * e.value;
  }
  if (e.kind === "String" || e.kind === "Bool") return e.value;
  throw new Error(`unexpected ${e.kind}`);
}

describe("writeLlm", () => {
  it("reads back every f32 exactly, written as a float literal", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(roundTrip({ type: "f32", value: x })).toBe(x === 0 ? 0 : x); // -0 is written 0.0
      }),
    );
  });

  it("reads back every safe integer", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => roundTrip({ type: "int", value: n }) === n));
  });

  it("writes readable literals", () => {
    expect(formatValue({ type: "f32", value: 1e-5 })).toBe("1e-5");
    expect(formatValue({ type: "f32", value: 1e-6 })).toBe("1e-6");
    expect(formatValue({ type: "f32", value: 500000 })).toBe("500000.0");
    expect(formatValue({ type: "f32", value: 0.02 })).toBe("0.02");
    expect(formatValue({ type: "f32", value: 1e21 })).toBe("1e21");
    expect(formatValue({ type: "int", value: 131072 })).toBe("131072");
    expect(formatValue({ type: "enum", value: "llama3" })).toBe('"llama3"');
    expect(formatValue({ type: "bool", value: true })).toBe("true");
  });

  it("names the source, imports the architecture and extends it", () => {
    const model: ImportedModel = {
      arch: "qwen2",
      archImport: "qwen2.llm",
      origin: 'Hugging Face config.json, model_type "qwen2"',
      fileModelName: null,
      bindings: [{ name: "dim", value: { type: "int", value: 896 } }],
      warnings: [],
    };
    const text = writeLlm(model, { source: "Qwen2-0.5B/config.json", modelName: "qwen2_0_5b" });
    expect(text.split("\n").slice(0, 6)).toEqual([
      "// qwen2_0_5b: imported by `llmc import` from Qwen2-0.5B/config.json",
      '// (Hugging Face config.json, model_type "qwen2").',
      'import "qwen2.llm"',
      "",
      "model qwen2_0_5b extends qwen2 {",
      "  config {",
    ]);
  });
});

describe("sanitizeModelName", () => {
  it.each([
    ["Meta-Llama-3-8B", "meta_llama_3_8b"],
    ["TinyLlama 1.1B Chat v1.0", "tinyllama_1_1b_chat_v1_0"],
    ["Qwen2-0.5B", "qwen2_0_5b"],
    ["7b-model", "m_7b_model"],
    ["llama", "llama_model"], // would extend itself
    ["config", "config_model"], // a keyword
    ["---", "gemma_model"],
  ])("%s → %s", (raw, want) => {
    expect(sanitizeModelName(raw, "gemma")).toBe(want);
  });

  it("always gives an identifier that is neither a keyword nor an architecture", () => {
    fc.assert(
      fc.property(fc.string(), (raw) => {
        const name = sanitizeModelName(raw, "llama");
        const { diagnostics } = parseModule("t.llm", `model ${name} extends llama {}`);
        return diagnostics.length === 0 && !["llama", "mistral", "qwen2", "gemma"].includes(name);
      }),
    );
  });
});

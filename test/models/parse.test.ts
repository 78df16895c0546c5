// Every bundled .llm file (architectures and the standard library) parses without a diagnostic.

import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";

const modelsDir = fileURLToPath(new URL("../../models/", import.meta.url));

function llmFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? llmFiles(join(dir, e.name)) : e.name.endsWith(".llm") ? [join(dir, e.name)] : [],
  );
}

describe("models/", () => {
  const files = llmFiles(modelsDir).map((f) => relative(modelsDir, f));

  it("holds the standard library and the bundled architectures", () => {
    expect(files).toEqual(expect.arrayContaining(["std/nn.llm", "llama.llm", "mistral.llm", "qwen2.llm", "gemma.llm"]));
  });

  it.each(files)("%s parses with no diagnostics", (name) => {
    const text = readFileSync(join(modelsDir, name), "utf8");
    const { module, diagnostics } = parseModule(name, text);
    const sources = new Map([[name, text]]);
    expect(diagnostics.map((d) => formatDiagnostic(d, sources))).toEqual([]);
    expect(module.items.length).toBeGreaterThan(0);
  });
});

// fmt preserves meaning and is a fixed point: for generated ASTs (with comments and blank lines put
// into their text) and for every bundled .llm file, the formatted text parses without a diagnostic
// to the same tree, keeps each comment exactly once, and formats to itself.

import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { formatModule } from "../../src/compiler/fmt/format.js";
import { runs } from "../grammar/helpers.js";
import { commentTexts, insertComments, insertions, moduleArb, shape } from "./ast-arbitrary.js";

function parseClean(file: string, text: string) {
  const { module, diagnostics } = parseModule(file, text);
  const sources = new Map([[file, text]]);
  expect(diagnostics.map((d) => formatDiagnostic(d, sources)), `diagnostics for:\n${text}`).toEqual([]);
  return module;
}

/** format(text) parses to the tree of text, with the same comments, and is formatted already. */
function checkFormats(file: string, text: string): string {
  const before = parseClean(file, text);
  const formatted = formatModule(before, text);
  const after = parseClean(file, formatted);
  expect(shape(after), formatted).toEqual(shape(before));
  expect(commentTexts(after), formatted).toEqual(commentTexts(before));
  expect(formatModule(after, formatted)).toBe(formatted);
  return formatted;
}

describe("fmt on generated trees", () => {
  it("prints text that parses back to the same tree and formats to itself", () => {
    fc.assert(
      fc.property(moduleArb, (m) => {
        const printed = formatModule(m, "");
        const back = parseClean("gen.llm", printed);
        expect(shape(back)).toEqual(shape(m));
        expect(formatModule(back, printed)).toBe(printed);
      }),
      { numRuns: runs(1000, 2000) },
    );
  });

  it("keeps every comment exactly once, wherever it was, and stays idempotent", () => {
    fc.assert(
      fc.property(moduleArb, insertions, (m, ins) => {
        const { text, comments } = insertComments(formatModule(m, ""), ins);
        const parsed = parseClean("gen.llm", text);
        expect(shape(parsed)).toEqual(shape(m));
        expect(commentTexts(parsed)).toEqual(comments);
        const formatted = checkFormats("gen.llm", text);
        for (const c of comments) expect(formatted.split(c).length - 1, `${c} in\n${formatted}`).toBe(1);
      }),
      { numRuns: runs(1000, 2000) },
    );
  });
});

const modelsDir = fileURLToPath(new URL("../../models/", import.meta.url));
function llmFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? llmFiles(join(dir, e.name)) : e.name.endsWith(".llm") ? [join(dir, e.name)] : [],
    );
  } catch {
    return [];
  }
}
const bundled = llmFiles(modelsDir).map((f) => relative(modelsDir, f));

describe.runIf(bundled.length > 0)("fmt on the bundled models", () => {
  it.each(bundled)("%s: formatting keeps its meaning and comments, and is idempotent", (name) => {
    checkFormats(name, readFileSync(join(modelsDir, name), "utf8"));
  });
});

// Syntax diagnostics, by example: each broken file under test/fixtures/diagnostics/ has beside it
// the `file:line:col: error[CODE]: message` lines it must produce (in order of position).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { formatDiagnostic, sortDiagnostics } from "../../src/compiler/base/diagnostics.js";

const dir = fileURLToPath(new URL("../fixtures/diagnostics/", import.meta.url));
const cases = readdirSync(dir)
  .filter((f) => f.endsWith(".llm"))
  .sort();

function render(name: string, text: string): string[] {
  const { diagnostics } = parseModule(name, text);
  return sortDiagnostics(diagnostics).map((d) => formatDiagnostic(d, new Map([[name, text]])));
}

describe("syntax diagnostics", () => {
  it("has a broken file for each kind of syntax error", () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
  });

  it.each(cases)("%s", (name) => {
    const text = readFileSync(join(dir, name), "utf8");
    const expected = readFileSync(join(dir, name.replace(/\.llm$/, ".expected")), "utf8").trimEnd().split("\n");
    expect(render(name, text).map((d) => d.split("\n")[0])).toEqual(expected);
  });

  it("shows a code frame with a caret under the offending text", () => {
    const text = readFileSync(join(dir, "weight-clauses.llm"), "utf8");
    expect(render("weight-clauses.llm", text)[0]).toBe(
      [
        "weight-clauses.llm:3:14: error[E0104]: a weight's element type comes from the weight file; remove the type after the shape",
        "  |",
        '3 |     w: [dim] f16 gguf "w.weight"',
        "  |              ^^^",
      ].join("\n"),
    );
  });
});

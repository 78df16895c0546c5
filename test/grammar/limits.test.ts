// Absurd inputs: the parser answers each with a diagnostic or a tree, never an exception, and
// the formatter copes with what the parser accepts.

import { describe, expect, it } from "vitest";
import { MAX_DEPTH, MAX_NESTING, parseModule } from "../../src/compiler/parse/index.js";
import { formatModule } from "../../src/compiler/fmt/format.js";
import { expectWellFormed } from "./helpers.js";

const MB = 1 << 20;

function parse(text: string) {
  const r = parseModule("absurd.llm", text);
  expectWellFormed(r.diagnostics, new Map([["absurd.llm", text]]), text.length > 200 ? `${text.slice(0, 200)}…` : text);
  return r;
}

function where(text: string) {
  return parse(text).diagnostics.map((d) => `${d.span?.start.line}:${d.span?.start.column} ${d.code}`);
}

describe("absurd inputs", () => {
  it("refuses 500 nested parentheses with E0003 at the first one too deep", () => {
    const prefix = "fn f() { x = ";
    const text = `${prefix}${"(".repeat(500)}1${")".repeat(500)} }`;
    // `{` is the first level, so the parenthesis at depth MAX_NESTING + 1 is number MAX_NESTING.
    expect(where(text)).toEqual([`1:${prefix.length + MAX_NESTING} E0003`]);
    expect(parse(text).diagnostics[0]!.message).toContain(`nested more than ${MAX_NESTING} deep`);
  });

  it("accepts brackets nested exactly as deep as allowed", () => {
    const depth = MAX_NESTING - 1; // inside the fn's `{`
    const text = `fn f() { x = ${"[".repeat(depth)}1${"]".repeat(depth)} }`;
    const { module, diagnostics } = parse(text);
    expect(diagnostics).toEqual([]);
    expect(formatModule(module, text)).toBe(`fn f() {\n  x = ${"[".repeat(depth)}1${"]".repeat(depth)}\n}\n`);
  });

  it("refuses operator chains that would nest the tree too deep, with or without recursion in the parser", () => {
    const cases = {
      sum: "a + ".repeat(MAX_DEPTH + 10) + "a", // a loop in the parser, a deep tree
      members: "a" + ".b".repeat(MAX_DEPTH + 10),
      minus: "-".repeat(100_000) + "a", // recursion in the parser
      power: "a ** ".repeat(20_000) + "a",
      conditional: "c ? a : ".repeat(20_000) + "a",
    };
    for (const [name, chain] of Object.entries(cases)) {
      const text = `fn f() {\n  x = ${chain}\n}\n`;
      expect(where(text), name).toEqual([expect.stringMatching(/^2:\d+ E0003$/)]);
    }
    // The parser is usable again after running out of stack.
    expect(parse("fn f() { return -a ** b }").diagnostics).toEqual([]);
  });

  it("reports `1e999` as out of range (E0102)", () => {
    expect(where("fn f() { return 1e999 }")).toEqual(["1:17 E0102"]);
    expect(parse("fn f() { return 1e999 }").diagnostics[0]!.message).toBe("number '1e999' is out of range (it overflows a 64-bit float)");
  });

  it("reads a 1 MB line as a comment, a string, a name, and as a run of minus signs", () => {
    const comment = `// ${"x".repeat(MB)}\nfn f() {}\n`;
    expect(where(comment)).toEqual([]);
    expect(formatModule(parse(comment).module, comment)).toBe(comment);

    const string = `fn f() { return "${"é".repeat(MB)}" }`;
    expect(where(string)).toEqual([]);
    const name = `fn f() { return ${"x".repeat(MB)} }`;
    expect(where(name)).toEqual([]);

    const unterminated = `fn f() { return "${"x".repeat(MB)}`;
    expect(where(unterminated)).toEqual(["1:17 E0002", "1:16 E0101"]); // the string is dropped: a value is missing after `return`

    expect(where(`fn f() { x = ${"-".repeat(MB)}a }`)).toEqual([expect.stringMatching(/^1:\d+ E0003$/)]);
  });

  it("accepts an empty file, a blank one, and one of only comments", () => {
    for (const text of ["", "\n\n  \t\r\n", "// only\n/* comments */\n", "/* unclosed"]) {
      const { module, diagnostics } = parse(text);
      expect(module.items).toEqual([]);
      if (text === "/* unclosed") expect(diagnostics.map((d) => d.code)).toEqual(["E0002"]);
      else {
        expect(diagnostics).toEqual([]);
        expect(formatModule(module, text)).toBe(text.includes("//") ? "// only\n/* comments */\n" : "");
      }
    }
  });

  it("locates errors on lines ended by \\r\\n or a lone \\r as code frames count them (by \\n)", () => {
    expect(where("fn f() {\r\n  x = 1e999\r\n}")).toEqual(["2:7 E0102"]);
    expect(where("fn f() {\r  x = 1e999\r}")).toEqual(["1:16 E0102"]);
  });
});

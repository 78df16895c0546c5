// Source positions: the line index agrees with a naive scan, and a file of many comments checks in
// linear time (each comment's span used to rescan the file from its start).

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineIndex, type Position } from "../../src/compiler/base/diagnostics.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { parseModule } from "../../src/compiler/parse/index.js";

/** The definition: count `\n` before the offset; a lone `\r` is not a line break. */
function naivePosition(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < Math.min(offset, text.length); i++) {
    if (text[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

describe("line index", () => {
  it("gives the same line and column as a naive scan, for every offset of random text with \\n, \\r\\n and lone \\r", () => {
    const piece = fc.constantFrom("\n", "\r\n", "\r", "a", "é", " ", "\t", "😀", "//", "\n\n");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), (pieces) => {
        const text = pieces.join("");
        const index = new LineIndex(text);
        // One past the end too: spans end there.
        for (let offset = 0; offset <= text.length + 1; offset++) expect(index.position(offset)).toEqual(naivePosition(text, offset));
      }),
      { numRuns: 300 },
    );
  });

  it("places comments after \\r\\n and lone \\r lines where the lexer's tokens say", () => {
    const text = "// a\r\n// b\r// c\n/* d\r\n e */ // f";
    const { module } = parseModule("pos.llm", text);
    expect(module.comments.map((c) => [c.text, c.span.start.line, c.span.start.column, c.span.end.line, c.span.end.column])).toEqual([
      ["// a\r", 1, 1, 1, 6],
      ["// b\r// c", 2, 1, 2, 10],
      ["/* d\r\n e */", 3, 1, 4, 6],
      ["// f", 4, 7, 4, 11],
    ]);
  });
});

describe("many comments", () => {
  it("checks 100k lines of comments around a small model in linear time", () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-positions-"));
    try {
      const model = readFileSync(join("test", "fixtures", "check", "tiny.llm"), "utf8");
      writeFileSync(join(dir, "llama.llm"), readFileSync(join("models", "llama.llm"), "utf8"));
      const comments = Array.from({ length: 100_000 }, (_, i) => (i % 10 === 0 ? `/* block ${i}\r\n */` : `// comment line ${i}`)).join("\n");
      const file = join(dir, "many-comments.llm");
      writeFileSync(file, `${comments}\n${model}`);
      const started = performance.now();
      const res = checkFile(file);
      const seconds = (performance.now() - started) / 1000;
      expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
      expect(res.checked.map((m) => m.name)).toEqual(["tiny"]);
      // Before the line index this took minutes; the bound is loose for slow shared machines.
      expect(seconds).toBeLessThan(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

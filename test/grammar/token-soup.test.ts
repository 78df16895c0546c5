// Random sequences of the language's tokens and of arbitrary characters never make the parser
// throw, and every diagnostic it reports is well formed.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { expectWellFormed, runs } from "./helpers.js";

const keywords = "import fn model extends config weights state require else return for in true false gguf hf optional when if drop".split(" ");
const typeNames = "int f32 f16 bf16 i32 bool str".split(" ");
const punctuation = "-> |> ... .. ** == != <= >= && || < > = + - * / % @ ! ? : ; , . | ( ) [ ] { }".split(" ");

const token = fc.oneof(
  { arbitrary: fc.constantFrom(...keywords, ...typeNames), weight: 4 },
  { arbitrary: fc.constantFrom(...punctuation), weight: 8 },
  { arbitrary: fc.constantFrom("x", "dim", "layers", "T", "kv", "_a1", "integer", "index"), weight: 4 },
  fc.constantFrom("0", "12", "0.5", "1e-5", "1.5e3", "1e999", "99999999999999999999", "1.", "1e", "3..4"),
  fc.constantFrom('"s"', '"blk.{i}.w"', '"a\\"b"', '"', '"unterminated', '"\\', '"\n"'),
  fc.constantFrom("// c\n", "// c", "/* c */", "/* c", "/*/", "*/", "/**/"),
  { arbitrary: fc.constantFrom(" ", "\n", "\t", "\r\n", "\r", "  "), weight: 6 },
  fc.string({ unit: "binary", minLength: 1, maxLength: 3 }),
);

/** A token soup, sometimes glued together without spaces. */
const soup = fc
  .tuple(fc.array(token, { maxLength: 60 }), fc.boolean())
  .map(([tokens, spaced]) => tokens.join(spaced ? " " : ""));

/** A plausible start (so the parser goes deep into items) followed by soup. */
const prefixed = fc
  .tuple(fc.constantFrom("model m { ", "model m { config { ", "model m { weights { w: [", "fn f(x: [T]) -> [T] { ", "fn f() { y = ", ""), soup)
  .map(([a, b]) => a + b);

describe("parseModule on token soup", () => {
  it("never throws and reports only well-formed diagnostics", () => {
    fc.assert(
      fc.property(fc.oneof(soup, prefixed), (text) => {
        const { module, diagnostics } = parseModule("soup.llm", text);
        expect(module.kind).toBe("Module");
        expectWellFormed(diagnostics, new Map([["soup.llm", text]]), JSON.stringify(text));
      }),
      { numRuns: runs(2000, 10_000) },
    );
  });
});

// Shared by the front end's robustness tests: what every diagnostic must look like, the .llm files
// to mutate, and how many cases to run.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { expect } from "vitest";
import { llmLexer } from "../../src/compiler/parse/lexer.js";
import { positionAt, type Diagnostic } from "../../src/compiler/base/diagnostics.js";

/** fast-check runs: more on CI, where the time is there. */
export function runs(local: number, ci: number): number {
  return process.env["CI"] ? ci : local;
}

/** Each diagnostic has a code, a message, and a span inside the text whose line/column match its offset. */
export function expectWellFormed(diags: readonly Diagnostic[], sources: ReadonlyMap<string, string>, context: string): void {
  for (const d of diags) {
    const where = `${context}\n${JSON.stringify(d)}`;
    expect(d.code, where).toMatch(/^E\d{4}$/);
    expect(typeof d.message === "string" && d.message.trim().length > 0, where).toBe(true);
    if (!d.span) continue;
    const text = sources.get(d.span.file);
    expect(text, `unknown file in ${where}`).toBeDefined();
    const { start, end } = d.span;
    expect(0 <= start.offset && start.offset <= end.offset && end.offset <= text!.length, `span outside the text: ${where}`).toBe(true);
    expect(start, `start line/column: ${where}`).toEqual(positionAt(text!, start.offset));
    expect(end, `end line/column: ${where}`).toEqual(positionAt(text!, end.offset));
  }
}

const root = fileURLToPath(new URL("../../", import.meta.url));

function llmFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? llmFiles(join(dir, e.name)) : e.name.endsWith(".llm") ? [join(dir, e.name)] : [],
  );
}

/** Every bundled .llm file, and the test fixtures, as absolute path → text. */
export function corpus(): Map<string, string> {
  const files = [...llmFiles(join(root, "models")), ...llmFiles(join(root, "test", "fixtures"))];
  return new Map(files.map((f) => [f, readFileSync(f, "utf8")]));
}



// ---------------------------------------------------------------------------------------------
// Damage to a text: what the mutation tests apply to real files.

export type Mutation =
  | { op: "delete" | "duplicate" | "swap"; at: number }
  | { op: "replace"; at: number; image: string }
  | { op: "insert"; at: number; chars: string }
  | { op: "truncate"; at: number };

const images = [
  ..."fn model config weights state require else return for in if when gguf hf optional int f32 i32".split(" "),
  ..."-> |> .. ** == < = + - * / @ ! ? : ; , . | ( ) [ ] { }".split(" "),
  "x", "layers", "0", "1e999", '"s"', '"', "/*", "//", "\n",
];

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom("delete" as const, "duplicate" as const, "swap" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), image: fc.constantFrom(...images) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), chars: fc.string({ unit: "binary", minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);

/** Applies one mutation; token positions come from lexing the current text (comments count as tokens). */
export function mutate(text: string, m: Mutation): string {
  if (m.op === "insert") {
    const at = m.at % (text.length + 1);
    return text.slice(0, at) + m.chars + text.slice(at);
  }
  if (m.op === "truncate") return text.slice(0, m.at % (text.length + 1));
  const lexed = llmLexer.tokenize(text);
  const tokens = [...lexed.tokens, ...((lexed.groups["comments"] ?? []) as typeof lexed.tokens)]
    .map((t) => ({ start: t.startOffset, end: t.startOffset + t.image.length }))
    .sort((a, b) => a.start - b.start);
  if (tokens.length === 0) return text;
  const i = m.at % tokens.length;
  const t = tokens[i]!;
  switch (m.op) {
    case "delete":
      return text.slice(0, t.start) + text.slice(t.end);
    case "duplicate":
      return text.slice(0, t.end) + " " + text.slice(t.start);
    case "replace":
      return text.slice(0, t.start) + m.image + text.slice(t.end);
    case "swap": {
      const u = tokens[i + 1];
      if (!u) return text;
      return text.slice(0, t.start) + text.slice(u.start, u.end) + text.slice(t.end, u.start) + text.slice(t.start, t.end) + text.slice(u.end);
    }
  }
}

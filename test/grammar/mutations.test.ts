// Every bundled .llm file (and every fixture), damaged at random — tokens deleted, duplicated,
// swapped or replaced, characters inserted, the text truncated — never makes the parser throw, and
// each diagnostic is well formed. A mutant that still parses still formats, idempotently.
// (mutations-check.test.ts does the same for the checker.)

import { relative } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { formatModule } from "../../src/compiler/fmt/format.js";
import { corpus, expectWellFormed, mutate, mutation, runs } from "./helpers.js";

const files = [...corpus()];

describe.runIf(files.length > 0)("the front end on damaged .llm files", () => {
  it(`never throws, over ${files.length} files`, () => {
    fc.assert(
      fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
        const [path, original] = files[which % files.length]!;
        const text = mutations.reduce(mutate, original);
        const name = relative(process.cwd(), path);
        const context = `${name} after ${JSON.stringify(mutations)}`;

        const { module, diagnostics } = parseModule(name, text);
        expectWellFormed(diagnostics, new Map([[name, text]]), context);
        if (diagnostics.length === 0) {
          const formatted = formatModule(module, text);
          const again = parseModule(name, formatted);
          expect(again.diagnostics, `${context}\nformatted:\n${formatted}`).toEqual([]);
          expect(formatModule(again.module, formatted)).toBe(formatted);
        }
      }),
      { numRuns: runs(1500, 8000) },
    );
  });
});

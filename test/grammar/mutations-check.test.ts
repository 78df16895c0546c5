// The checker on damaged .llm files (see mutations.test.ts): it never throws, and each diagnostic
// is well formed and points into a file it loaded.

import { relative } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkFile } from "../../src/compiler/check/index.js";
import { corpus, expectWellFormed, mutate, mutation, runs } from "./helpers.js";

const files = [...corpus()];

const check = (path: string, text: string) => {
  const r = checkFile(path, { overlay: new Map([[path, text]]) });
  return { diagnostics: r.diagnostics, sources: r.program.sources };
};

describe("the checker on damaged .llm files", () => {
  it(`never throws, over ${files.length} files`, () => {
    expect(files.length).toBeGreaterThan(0);
    fc.assert(
      fc.property(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
        const [path, original] = files[which % files.length]!;
        const text = mutations.reduce(mutate, original);
        const checked = check(path, text);
        expectWellFormed(checked.diagnostics, checked.sources, `${relative(process.cwd(), path)} after ${JSON.stringify(mutations)}`);
      }),
      { numRuns: runs(300, 2000) },
    );
  });
});

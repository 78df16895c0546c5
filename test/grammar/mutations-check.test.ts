// The checker on damaged .llm files (see mutations.test.ts): it never throws, and each diagnostic
// is well formed and points into a file it loaded. Skipped until src/compiler/check/ has an entry
// that helpers.loadChecker knows how to call.

import { relative } from "node:path";
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import { corpus, expectWellFormed, loadChecker, mutate, mutation, runs } from "./helpers.js";

const files = [...corpus()];

describe.runIf(files.length > 0)("the checker on damaged .llm files", () => {
  let checker: Awaited<ReturnType<typeof loadChecker>> = null;
  beforeAll(async () => {
    checker = await loadChecker();
  });

  it(`never throws, over ${files.length} files`, (ctx) => {
    if (!checker) return ctx.skip();
    const check = checker;
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

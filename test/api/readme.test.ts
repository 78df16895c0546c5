// The embedding example in README.md runs as written: on a model from `llmc init-weights` (as the
// README makes it), with `import … from "llmc"` pointed at this checkout's src/index.ts.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runInitWeights } from "../../src/cli/commands/init-weights.js";
import { bufferIO } from "../../src/cli/io.js";
import { apiExample, runExample } from "./readme-example.js";

describe("README", () => {
  it("the embedding API example runs on a model made with llmc init-weights", async () => {
    const code = apiExample(readFileSync("README.md", "utf8"));
    expect(code, 'README.md has no ```js block that imports loadModel from "llmc"').toBeDefined();
    expect(code).toContain('"/tmp/tiny.gguf"');
    const dir = mkdtempSync(join(tmpdir(), "llmc-readme-"));
    const model = join(dir, "tiny.gguf");
    const io = bufferIO();
    expect(await runInitWeights(["models/examples/tiny-llama.llm", "-o", model], io), io.stderr()).toBe(0);
    const out = await runExample(code!, model, dir);
    expect(out).toMatch(/\nperplexity \d+(\.\d+)?\n$/);
    expect(out.length).toBeGreaterThan("\nperplexity 1\n".length);
  });
});

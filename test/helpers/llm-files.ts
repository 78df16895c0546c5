// .llm sources written to a temporary folder for one test file (removed after it), so checker tests
// can compile what they write the way the CLI compiles a file.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

/** A function that writes a .llm source and returns its path. Call at the top level of a test file. */
export function llmWriter(prefix: string): (text: string) => string {
  const dir = mkdtempSync(join(tmpdir(), `llmc-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let files = 0;
  return (text) => {
    const path = join(dir, `m${files++}.llm`);
    writeFileSync(path, text);
    return path;
  };
}

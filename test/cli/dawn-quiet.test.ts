// Dawn's own notes, printed from native code while an adapter opens (on llvmpipe: "Warning:
// maxDynamicUniformBuffersPerPipelineLayout artificially reduced …"), stay off stderr unless -v is
// given; llmc's own stderr lines are kept either way. Runs the CLI as a process, since the notes go to
// file descriptor 2 directly.

import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../generate/fixture.js";

const model = join(mkdtempSync(join(tmpdir(), "llmc-dawn-quiet-")), "tiny.gguf");
beforeAll(() => writeTinyModel(model, { contextLength: 64 }));

// The built CLI, as users run it (npm test builds it first).
function llmc(...args: string[]) {
  const env = { ...process.env, EGL_PLATFORM: "surfaceless" };
  delete env["LLMC_DAWN_LOG"];
  return spawnSync(process.execPath, ["bin/llmc", ...args], { env, encoding: "utf8", timeout: 120_000 });
}

describe("Dawn's notes on stderr", () => {
  it("are hidden by default and shown with -v; llmc's own summary stays", () => {
    const quiet = llmc("run", model, "--prompt", "Hi", "--max-tokens", "2", "--seed", "1", "--backend", "webgpu");
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stderr).toMatch(/llmc run: prompt \d+ tokens/);
    const verbose = llmc("run", model, "--prompt", "Hi", "--max-tokens", "2", "--seed", "1", "--backend", "webgpu", "-v");
    expect(verbose.status, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/llmc run: prompt \d+ tokens/);
    // llvmpipe's adapter always prints this note; on another adapter there may be none to hide.
    const note = /artificially reduced/;
    if (note.test(verbose.stderr)) expect(quiet.stderr).not.toMatch(note);
    else expect(quiet.stderr).not.toMatch(/^Warning:/m);
  });
});

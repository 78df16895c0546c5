// What `llmc run` says on stderr, from a fresh process (the notes below go to file descriptor 2
// directly, and kernels are only built once per process):
// - Dawn's own notes while an adapter opens (on llvmpipe: "Warning:
//   maxDynamicUniformBuffersPerPipelineLayout artificially reduced …") only with -v;
// - the time spent building kernels and pipelines apart from the prefill speed.

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
  const env: NodeJS.ProcessEnv = { ...process.env, EGL_PLATFORM: "surfaceless" };
  delete env["LLMC_DAWN_LOG"];
  return spawnSync(process.execPath, ["bin/llmc", ...args], { env, encoding: "utf8", timeout: 120_000 });
}

describe("Dawn's notes on stderr", () => {
  it("are hidden by default and shown with -v; llmc's own summary stays", () => {
    const quiet = llmc("run", model, "--prompt", "Hi", "--max-tokens", "2", "--seed", "1", "--backend", "webgpu");
    expect(quiet.status, quiet.stderr).toBe(0);
    expect(quiet.stderr).toMatch(/llmc run: prompt \d+ tokens, kernels built in \d+\.\d\d s; prefill [\d.]+ tokens\/s/);
    const verbose = llmc("run", model, "--prompt", "Hi", "--max-tokens", "2", "--seed", "1", "--backend", "webgpu", "-v");
    expect(verbose.status, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/llmc run: prompt \d+ tokens/);
    // llvmpipe's adapter always prints this note; on another adapter there may be none to hide.
    const note = /artificially reduced/;
    if (note.test(verbose.stderr)) expect(quiet.stderr).not.toMatch(note);
    else expect(quiet.stderr).not.toMatch(/^Warning:/m);
  });
});

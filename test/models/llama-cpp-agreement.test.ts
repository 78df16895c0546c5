// An independent reference in every test run: llama.cpp's next-token log-probabilities for small
// random GGUFs (test/fixtures/llama-cpp, written by bench/fixtures.mjs with node-llama-cpp). The
// GGUF is rebuilt here by `llmc init-weights` from the fixture's recipe and must be the same bytes
// llama.cpp read; then llmc's log-probabilities on the CPU and on WebGPU must match llama.cpp's
// within the fixture's tolerance (f32: 1e-3), with the same most likely token everywhere.

import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runInitWeights } from "../../src/cli/commands/init-weights.js";
import { bufferIO } from "../../src/cli/io.js";
import { loadModel } from "../../src/runtime/model.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";

interface Fixture {
  case: string;
  arch: string;
  config: Record<string, number | boolean>;
  dtype: string;
  seed: number;
  /** init-weights --perturb: noise on every weight after its initialiser. */
  perturb?: number;
  /** init-weights --name: general.name, where the default would trip a llama.cpp quirk. */
  general_name?: string;
  sha256: string;
  tolerance: number;
  tokens: number[];
  positions: { top: [number, number][]; next?: number }[];
}

const dir = join("test", "fixtures", "llama-cpp");
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Fixture);
const work = mkdtempSync(join(tmpdir(), "llmc-llama-cpp-"));

afterAll(releaseSharedGpu);

async function rebuild(f: Fixture): Promise<string> {
  const file = join(work, `${f.case}.gguf`);
  const sets = Object.entries(f.config).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const io = bufferIO();
  expect(await runInitWeights([join("models", `${f.arch}.llm`), ...sets, "--dtype", f.dtype, "--seed", String(f.seed), ...(f.perturb ? ["--perturb", String(f.perturb)] : []), ...(f.general_name ? ["--name", f.general_name] : []), "-o", file], io), io.stderr()).toBe(0);
  const sha = createHash("sha256").update(readFileSync(file)).digest("hex");
  if (sha !== f.sha256) throw new Error(`${f.case}: llmc init-weights no longer writes the file llama.cpp read (sha256 ${sha}); regenerate the fixtures: cd bench && npm ci && npm run fixtures`);
  return file;
}

describe("log-probabilities agree with llama.cpp", () => {
  expect(fixtures.length).toBeGreaterThanOrEqual(5);
  for (const f of fixtures) {
    for (const backend of ["cpu", "webgpu"] as const) {
      it(`${f.case} on ${backend} (tolerance ${f.tolerance})`, async () => {
        const file = await rebuild(f);
        const model = await loadModel(file, { backend, onNote: () => undefined });
        try {
          const lp = await model.logprobs(f.tokens, { top: 64 });
          let worst = 0;
          f.positions.forEach((want, i) => {
            const mine = new Map(lp.positions[i]!.top.map((e) => [e.id, e.logprob]));
            expect(lp.positions[i]!.top[0]!.id, `${f.case}: most likely token after ${i + 1} tokens`).toBe(want.top[0]![0]);
            for (const [id, logprob] of want.top) {
              const got = mine.get(id);
              expect(got, `${f.case}: token ${id} after ${i + 1} tokens is among llmc's top 64`).toBeDefined();
              worst = Math.max(worst, Math.abs(got! - logprob));
            }
          });
          expect(worst, `${f.case}: max |Δ log-probability| against llama.cpp`).toBeLessThanOrEqual(f.tolerance);
        } finally {
          model.dispose();
        }
      });
    }
  }
});

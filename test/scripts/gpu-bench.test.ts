// The GPU scripts' dry runs, in the repository (the bundles, which add PTX, Dawn and the Vulkan
// loader, are built and dry-run by scripts/gpu-bench/build.sh and scripts/gpu-check/build.sh):
// everything that needs no GPU — every model compiled and emitted, the benchmark weights generated
// and decoded, the CPU reference, the plan. Spawns the launchers over dist/ (npx tsc -p tsconfig.json).

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const run = (script: string, args: string[]) => spawnSync("bash", [script, ...args], { encoding: "utf8", env: { ...process.env, LLMC_LIBCUDA: "" } });

describe("GPU scripts, dry run", () => {
  it("gpu-bench.sh --dry-run passes and plans every row within the budget", () => {
    const json = join(mkdtempSync(join(tmpdir(), "llmc-gpu-bench-")), "bench.json");
    const r = run("scripts/gpu-bench.sh", ["--dry-run", "--json", json]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/FAIL/);
    for (const format of ["f16", "q8_0", "q4_0"]) {
      expect(r.stdout).toMatch(new RegExp(`PASS Llama-3-8B shape, ${format}: .*WGSL compiled`));
      expect(r.stdout).toMatch(new RegExp(`PASS ${format}: [0-9.]+ GB/s generated; a sample decodes to finite values`));
      for (const backend of ["cuda", "webgpu"]) expect(r.stdout).toContain(`${backend} ${format}: fill to 4096, decode 64`);
    }
    expect(r.stdout).not.toMatch(/over the budget/);
    expect(r.stdout).toMatch(/dry run passed\n$/);
    const report = JSON.parse(readFileSync(json, "utf8"));
    expect(report).toMatchObject({ tool: "llmc gpu-bench", dry_run: true, budget_s: 480, rows: [] });
  });

  it("gpu-bench.sh refuses an unknown format before it plans anything", () => {
    const r = run("scripts/gpu-bench.sh", ["--dry-run", "--formats", "q5_k"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown format q5_k/);
  });

  it("gpu-check.sh --dry-run still passes", () => {
    const r = run("scripts/gpu-check.sh", ["--dry-run"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PASS llama q4_0: CPU reference only/);
    expect(r.stdout).toMatch(/all checks passed\n$/);
  });
});

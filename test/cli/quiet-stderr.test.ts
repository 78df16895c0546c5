// withoutNativeStderr (runtime/webgpu/quiet.ts) silences file descriptor 2 while Dawn opens an
// adapter. Calls that overlap (two adapters opened at once) must leave the real stderr in place
// afterwards, whichever ends first. Runs in a child process of the built module, since it rewires
// the process's own fd 2.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/paths.js";

const script = `
const { withoutNativeStderr } = await import(${JSON.stringify(join(packageRoot(), "dist", "src", "runtime", "webgpu", "quiet.js"))});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.stderr.write("before\\n");
const a = withoutNativeStderr(async () => { process.stderr.write("hidden-a\\n"); await sleep(30); });
await sleep(5);
const b = withoutNativeStderr(async () => { await sleep(80); process.stderr.write("hidden-b\\n"); });
await a; // ends first: the real stderr must not come back while b still runs
process.stderr.write("hidden-between\\n");
await b;
process.stderr.write("after\\n");
`;

describe("silencing Dawn's stderr", () => {
  it("overlapping calls hide what they write and give the real stderr back when the last one ends", () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env["LLMC_DAWN_LOG"];
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env, encoding: "utf8", timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("before");
    expect(r.stderr).toContain("after");
    expect(r.stderr).not.toMatch(/hidden/);
  });
});

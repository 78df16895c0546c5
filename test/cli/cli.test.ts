// The command line as a user meets it: import a real config, read its parameter count; check a
// broken file; bad command lines. In-process through main(), plus one real process of bin/llmc.

import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { main } from "../../src/cli/main.js";
import { bufferIO } from "../../src/cli/io.js";

const expected = JSON.parse(readFileSync("test/fixtures/configs/expected-params.json", "utf8")) as Record<string, number>;
const tmp = mkdtempSync(join(tmpdir(), "llmc-cli-"));

async function llmc(...args: string[]) {
  const io = bufferIO();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("llmc import → llmc info", () => {
  for (const [name, params] of Object.entries(expected)) {
    it(`${name}: ${params.toLocaleString("en-US")} parameters`, async () => {
      const out = join(tmp, `${name}.llm`);
      const imp = await llmc("import", join("test", "fixtures", "configs", `${name}.json`), "-o", out);
      expect(imp.err).toBe("");
      expect(imp.code).toBe(0);
      const info = await llmc("info", out, "--json");
      expect(info.code).toBe(0);
      const parsed = JSON.parse(info.out) as { params: number; config: Record<string, unknown>; weights: { name: string }[] };
      expect(parsed.params).toBe(params);
      const text = await llmc("info", out);
      expect(text.out).toContain(`parameters: ${params.toLocaleString("en-US")}`);
      expect(await llmc("check", out)).toMatchObject({ code: 0 });
    });
  }
});

describe("llmc check", () => {
  it("exits 1 with located errors for a broken file, and 0 for a good one", async () => {
    const bad = join(tmp, "bad.llm");
    writeFileSync(bad, 'import "llama.llm"\nmodel m extends llama {\n  config { vocab_size = 10\n dim = 8\n n_layers = 1\n n_heads = 3\n n_kv_heads = 2\n ffn_dim = 4 }\n  fn ffn(x: [T, dim], w: layers) -> [T, dim] { return x + nope }\n}\n');
    const r = await llmc("check", bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.llm:9:59: error\[E0201\]: unknown name 'nope'/);
    expect(r.err).toMatch(/error\[E0403\]: requirement failed/);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    expect((await llmc("check", "models/std/nn.llm")).code).toBe(0);
  });

  it("bad command lines exit 2 with usage", async () => {
    expect((await llmc("check")).code).toBe(2);
    expect((await llmc("frobnicate")).code).toBe(2);
    expect((await llmc("info", "x.llm", "--bogus")).code).toBe(2);
    const h = await llmc("compile", "--help");
    expect(h.code).toBe(0);
    expect(h.out).toContain("usage: llmc compile");
  });

  it("import refuses an unknown architecture, naming it", async () => {
    const cfg = join(tmp, "config.json");
    writeFileSync(cfg, JSON.stringify({ model_type: "falcon", hidden_size: 8 }));
    const r = await llmc("import", cfg);
    expect(r.code).toBe(1);
    expect(r.err).toContain("falcon");
  });
});

describe("bin/llmc", () => {
  it("runs as a real process (after the build)", () => {
    const r = spawnSync(process.execPath, ["bin/llmc", "info", "models/examples/llama-3-8b.llm"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("parameters: 8,030,261,248");
    expect(execFileSync(process.execPath, ["bin/llmc", "--version"], { encoding: "utf8" })).toMatch(/^llmc \d/);
  });
});

// `llmc lsp` as editors start it: the built CLI (bin/llmc runs dist/) as a child process speaking
// JSON-RPC over stdio, from initialize to exit. Needs `npx tsc -p tsconfig.json` first (npm test
// builds); outside CI it is skipped when dist/ has no lsp command, under CI that is a failure.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { bufferIO } from "../../src/cli/io.js";
import { packageRoot } from "../../src/paths.js";
import { LspClient } from "./client.js";

const built = existsSync(join(packageRoot(), "dist", "src", "cli", "commands", "lsp.js"));
const CI = !!process.env["CI"];

describe("llmc lsp", () => {
  it("refuses arguments it does not know", async () => {
    const io = bufferIO();
    expect(await main(["lsp", "--tcp"], io)).toBe(2);
    expect(io.stderr()).toContain("unknown argument '--tcp'");
  });

  it.skipIf(!built && !CI)("serves over stdio: initialize, diagnostics, shutdown and exit with status 0", async () => {
    const dir = await mkdtemp(join(tmpdir(), "llmc-lsp-cli-"));
    const child = spawn(process.execPath, [join(packageRoot(), "bin", "llmc"), "lsp", "--stdio"], { cwd: dir, stdio: ["pipe", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const client = LspClient.over(child.stdout, child.stdin);
      const init = await client.initialize();
      expect(init.capabilities).toMatchObject({ hoverProvider: true, definitionProvider: true, documentFormattingProvider: true, documentSymbolProvider: true });
      const uri = await client.open(join(dir, "bad.llm"), "fn f(x: [N]) -> [N] {\n  return y\n}\n");
      const diags = await client.waitForDiagnostics(uri, (d) => d.length > 0);
      expect(diags[0]).toMatchObject({ code: "E0201", range: { start: { line: 1, character: 9 }, end: { line: 1, character: 10 } } });
      await client.rpc.sendRequest("shutdown");
      await client.rpc.sendNotification("exit");
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// `llmc fmt`: prints, rewrites (atomically, only when changed) or checks; never touches a file with
// syntax errors; names a file it cannot read.

import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/commands/common.js";
import { runFmt } from "../../src/cli/commands/fmt.js";
import { bufferIO } from "../../src/cli/io.js";

const messy = "fn f(x:[T]){return x*2;}\n";
const tidy = "fn f(x: [T]) {\n  return x * 2\n}\n";
const broken = "fn f(x: [T]) {\n  return x *\n}\n";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-fmt-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe("llmc fmt", () => {
  it("prints the formatted text by default and changes nothing", async () => {
    const path = await file("a.llm", messy);
    const io = bufferIO();
    expect(await runFmt([path], io)).toBe(0);
    expect(io.stdout()).toBe(tidy);
    expect(await readFile(path, "utf8")).toBe(messy);
  });

  it("--write rewrites only the files that change, leaving no temporary file behind", async () => {
    const a = await file("a.llm", messy);
    const b = await file("b.llm", tidy);
    const before = (await stat(b)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    const io = bufferIO();
    expect(await runFmt(["--write", a, b], io)).toBe(0);
    expect(await readFile(a, "utf8")).toBe(tidy);
    expect((await stat(b)).mtimeMs).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(["a.llm", "b.llm"]);
    expect(io.stdout()).toBe("");
  });

  it("--check lists the files that would change and exits 1", async () => {
    const a = await file("a.llm", messy);
    const b = await file("b.llm", tidy);
    const io = bufferIO();
    expect(await runFmt(["--check", a, b], io)).toBe(1);
    expect(io.stdout()).toBe(`${a}\n`);
    expect(await readFile(a, "utf8")).toBe(messy);

    const ok = bufferIO();
    expect(await runFmt(["--check", b], ok)).toBe(0);
    expect(ok.stdout()).toBe("");
  });

  it("never formats a file with syntax errors: prints its diagnostics and exits 1", async () => {
    const path = await file("bad.llm", broken);
    const io = bufferIO();
    expect(await runFmt(["--write", path], io)).toBe(1);
    expect(await readFile(path, "utf8")).toBe(broken);
    expect(io.stderr()).toContain(`${path}:3:1: error[E0101]: `);
    expect(io.stderr()).toContain("3 | }");
    expect(io.stderr()).toContain(`${path}: not formatted`);
  });

  it("names a file it cannot read, and still formats the others", async () => {
    const missing = join(dir, "missing.llm");
    const sub = join(dir, "sub.llm");
    await mkdir(sub);
    const a = await file("a.llm", messy);
    const io = bufferIO();
    expect(await runFmt([missing, sub, a], io)).toBe(1);
    expect(io.stderr()).toContain(`cannot read ${missing}: no such file`);
    expect(io.stderr()).toContain(`cannot read ${sub}: it is a directory`);
    expect(io.stdout()).toBe(tidy);
  });

  it("rejects a wrong command line (the CLI prints the usage and exits 2)", async () => {
    await expect(runFmt([], bufferIO())).rejects.toBeInstanceOf(UsageError);
    await expect(runFmt(["--write", "--check", "a.llm"], bufferIO())).rejects.toThrow("cannot be combined");
    await expect(runFmt(["--frobnicate", "a.llm"], bufferIO())).rejects.toMatchObject({ code: "ERR_PARSE_ARGS_UNKNOWN_OPTION" });
  });
});

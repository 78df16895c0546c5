// Numeric flags of run, chat and logprobs are decimal (Number() would take "0x10" as 16), and --seed
// takes any integer of up to 64 bits, reduced to the 32 bits the sampler uses as the API reduces a
// seed. Through main(), so that a bad flag is exit code 2.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { bufferIO } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { writeTinyModel } from "../generate/fixture.js";

const tmp = mkdtempSync(join(tmpdir(), "llmc-flags-"));
const tinyPath = join(tmp, "tiny.gguf");

beforeAll(async () => {
  await writeTinyModel(tinyPath);
});

async function llmc(...args: string[]) {
  const io = bufferIO();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

const run = (...args: string[]) => llmc("run", tinyPath, "--backend", "cpu", "--prompt", "hello", "-n", "8", ...args);

describe("numeric flags", () => {
  it("--seed takes any integer of up to 64 bits; only its low 32 bits matter", async () => {
    const big = await run("--seed", "99999999999999999");
    expect(big.code).toBe(0);
    // 99999999999999999 mod 2^32
    expect(big.out).toBe((await run("--seed", "1569325055")).out);
    const max = await run("--seed", "18446744073709551615");
    expect(max.code).toBe(0);
    expect(max.out).toBe((await run("--seed=-1")).out);
    expect(max.out).toBe((await run("--seed", "4294967295")).out);
    for (const seed of ["18446744073709551616", "-9223372036854775809", "1.5", "0x10", "1e3", ""]) {
      const r = await run(`--seed=${seed}`);
      expect(r.code, seed).toBe(2);
      expect(r.err).toMatch(/--seed takes an integer/);
    }
  });

  it("integers and numbers are decimal: 0x10, 0b1, 1e3 for an integer, and blanks are refused", async () => {
    for (const [flag, value] of [
      ["--max-tokens", "0x10"],
      ["-n", "0b11"],
      ["--max-tokens", "1e1"],
      ["--max-tokens", " 4"],
      ["--top-k", "0o7"],
      ["--repeat-last-n", "0x40"],
      ["--temperature", "0x1"],
      ["--top-p", "Infinity"],
      ["--min-p", " "],
    ] as const) {
      const r = await run(flag, value);
      expect(r.code, `${flag} ${value}`).toBe(2);
      expect(r.err).toMatch(/takes an? (integer|number)/);
    }
    for (const [flag, value] of [
      ["--max-tokens", "16"],
      ["--temperature", ".5"],
      ["--top-p", "9.5e-1"],
      ["--repeat-last-n", "+64"],
    ] as const) {
      expect((await run(flag, value)).code, `${flag} ${value}`).toBe(0);
    }
    const top = await llmc("logprobs", tinyPath, "--backend", "cpu", "--tokens", "1,5", "--top", "0x2");
    expect(top.code).toBe(2);
    expect(top.err).toMatch(/--top takes an integer/);
  });
});

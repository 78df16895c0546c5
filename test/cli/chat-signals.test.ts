// The real CLI as a user meets it: Ctrl-C in `llmc chat` stops a reply and returns to the prompt, and
// quits at the prompt or when pressed again within a second; quitting at the prompt ends its line;
// `llmc run … | head` stops quietly when the reader closes the pipe. Spawns bin/llmc (dist/, built by
// `npx tsc -p tsconfig.json`) on a small random model on the CPU. Ctrl-C arrives as SIGINT with
// piped input, and as a keypress (0x03) on a terminal, here a pseudo-terminal made by script(1).

import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const tmp = mkdtempSync(join(tmpdir(), "llmc-signals-"));
const tiny = join(tmp, "tiny.gguf");

beforeAll(() => {
  execFileSync(process.execPath, ["bin/llmc", "init-weights", "models/examples/tiny-llama.llm", "-o", tiny]);
});

// A reply of 3000 tokens (end-of-turn tokens do not end it) takes seconds.
const LONG_REPLY = ["--backend", "cpu", "--temperature", "0", "-n", "3000", "--ignore-eos", "--set", "max_seq_len=4096"];
/** Far less than a whole long reply takes. */
const PROMPTLY_MS = 10_000;

interface Run {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  err(): string;
  /** Resolves once stdout satisfies `ready`; rejects if the process ends first. */
  until(ready: (out: string) => boolean): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(command: string, args: string[]): Run {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters: { ready: (out: string) => boolean; resolve: () => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.filter((w) => w.ready(out))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return {
    child,
    out: () => out,
    err: () => err,
    exited,
    until: (ready) =>
      ready(out)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ ready, resolve });
            void exited.then((e) => reject(new Error(`exited (${JSON.stringify(e)}) before the output was ready:\n${out}\n${err}`)));
          }),
  };
}

const llmc = (...args: string[]) => start(process.execPath, ["bin/llmc", ...args]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("llmc chat, piped input: SIGINT", () => {
  it("during a reply stops it, and the chat goes on with the next line", async () => {
    const run = llmc("chat", tiny, ...LONG_REPLY);
    run.child.stdin.write("hello\n/exit\n");
    await run.until((out) => out.length > 20);
    const sent = performance.now();
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - sent).toBeLessThan(PROMPTLY_MS);
    expect(run.out().endsWith("\n")).toBe(true);
    expect(run.err()).toBe("");
  });

  it("a second one within a second quits with exit code 130", async () => {
    const run = llmc("chat", tiny, ...LONG_REPLY);
    run.child.stdin.write("hello\nab\n");
    await run.until((out) => out.length > 20);
    const sent = performance.now();
    run.child.kill("SIGINT");
    await sleep(200);
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: 130, signal: null });
    expect(performance.now() - sent).toBeLessThan(PROMPTLY_MS);
  });

  it("while it waits for the next line quits with exit code 130", async () => {
    const run = llmc("chat", tiny, "--backend", "cpu", "-n", "2");
    run.child.stdin.write("hello\n");
    await run.until((out) => out.includes("\n"));
    run.child.kill("SIGINT");
    expect(await run.exited).toEqual({ code: 130, signal: null });
  });
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

// util-linux's `script` gives the CLI a pseudo-terminal; CI installs it, so there it never skips.
describe.skipIf(!hasScript && !process.env["CI"])("llmc chat on a terminal", () => {
  it("has util-linux's script to make one", () => expect(hasScript).toBe(true));
  const terminal = (...args: string[]) => {
    const quoted = ["bin/llmc", "chat", tiny, ...args].map((a) => `'${a}'`).join(" ");
    return start("script", ["-qfec", `${JSON.stringify(process.execPath)} ${quoted}`, "/dev/null"]);
  };
  /** The prompt "> " was written since `from` (readline moves the cursor after it). */
  const promptAfter = (from: number) => (out: string) => /> (\x1b\[\d+G)?$/.test(out.slice(from));

  it("Ctrl-C stops a reply and shows the prompt again; at the prompt it quits, ending the line", async () => {
    const run = terminal(...LONG_REPLY);
    await run.until(promptAfter(0));
    run.child.stdin.write("hello\r");
    await run.until((out) => out.length > 300);
    run.child.stdin.write("\x03");
    const replied = run.out().length;
    await run.until((out) => out.includes("reply stopped") && promptAfter(replied)(out));
    run.child.stdin.write("\x03");
    expect((await run.exited).code).toBe(130);
    expect(run.out()).toMatch(/> (\x1b\[\d+G)?\r\n$/);
  });

  it("end of input (Ctrl-D) at the prompt quits, ending the line", async () => {
    const run = terminal("--backend", "cpu");
    await run.until(promptAfter(0));
    run.child.stdin.write("\x04");
    expect((await run.exited).code).toBe(0);
    expect(run.out()).toMatch(/> (\x1b\[\d+G)?\r\n$/);
  });
});

describe("llmc run", () => {
  it("stops quietly when the reader closes the pipe (llmc run … | head -c 10)", async () => {
    const run = llmc("run", tiny, "--prompt", "hello", ...LONG_REPLY);
    await run.until((out) => out.length >= 10);
    const closed = performance.now();
    run.child.stdout.destroy();
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - closed).toBeLessThan(PROMPTLY_MS);
    expect(run.err()).not.toMatch(/EPIPE|Error|\n\s+at /);
  });
});

// The playground as a user meets it: `llmc serve` hosts the built page; in headless Chromium an error
// typed into the editor shows up as a lint marker on the line Node's checker names, and goes away when
// fixed; the Model panel shows the parameter count `llmc info` computes; random weights from the
// server run in the page and stream tokens with their distribution. The server's own contract
// (assets only, a missing bundle, a taken port, random weights) is checked without a browser.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { checkFile } from "../../src/compiler/check/index.js";
import { modelInfo, formatCount } from "../../src/cli/commands/info.js";
import { startPlaygroundServer, ServeError, type PlaygroundServer } from "../../src/cli/commands/serve.js";
import { main } from "../../src/cli/main.js";
import { bufferIO } from "../../src/cli/io.js";

const CHROMIUM = "/usr/bin/chromium-headless-shell";
const TINY = resolve("models/examples/tiny-llama.llm");
const ARTIFACTS = resolve("test-artifacts");
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser && process.env["CI"]) throw new Error(`${CHROMIUM} is missing: the playground tests need Debian's chromium-headless-shell`);

let server: PlaygroundServer;

beforeAll(() => {
  // The page under test is the one built from this checkout.
  execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "pipe" });
}, 120_000);

beforeAll(async () => {
  server = await startPlaygroundServer({ port: 0 });
});

afterAll(async () => {
  await server?.close();
});

describe("llmc serve", () => {
  it("serves the page, its stylesheet and the bundle, and nothing else", async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain('src="playground.js"');
    for (const asset of ["playground.css", "playground.js"]) expect((await fetch(server.url + asset)).status, asset).toBe(200);
    // web/ holds the page's sources; only assets are served, and nothing outside the two folders.
    expect((await fetch(server.url + "main.ts")).status).toBe(404);
    expect((await fetch(server.url + "..%2fpackage.json")).status).toBe(404);
    expect((await fetch(server.url + "%2e%2e/%2e%2e/models/llama.llm")).status).toBe(404);
  });

  it("writes random weights for a source that checks, and the diagnostics for one that does not", async () => {
    const good = await fetch(server.url + "api/random-weights?seed=3", { method: "POST", body: readFileSync(TINY, "utf8") });
    expect(good.status).toBe(200);
    const bytes = new Uint8Array(await good.arrayBuffer());
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe("GGUF");

    const bad = await fetch(server.url + "api/random-weights", { method: "POST", body: readFileSync(TINY, "utf8").replace("dim = 64", "dim = 63") });
    expect(bad.status).toBe(422);
    expect(await bad.text()).toMatch(/error\[E04\d\d\]/);
  });

  it("says what to do when the bundle is not built", async () => {
    const empty = mkdtempSync(join(tmpdir(), "llmc-serve-"));
    await expect(startPlaygroundServer({ root: empty, port: 0 })).rejects.toThrow(ServeError);
    await expect(startPlaygroundServer({ root: empty, port: 0 })).rejects.toThrow(/npm run build:web/);
  });

  it("exits 1 with a clear message when the port is taken", async () => {
    const io = bufferIO();
    const code = await main(["serve", "--port", String(server.port)], io);
    expect(code).toBe(1);
    expect(io.stderr()).toContain(`port ${server.port} is already in use`);
    const bad = bufferIO();
    expect(await main(["serve", "--port", "http"], bad)).toBe(2);
  });
});

/** The .llm text the editor holds, line by line, as CodeMirror renders it (a short file renders whole). */
async function editorText(page: Page): Promise<string> {
  return page.$$eval(".cm-content > .cm-line", (lines) => lines.map((l) => (l.textContent ?? "").replace(/\u200b/g, "")).join("\n"));
}

/** 1-based line of each lint range of a severity, found from the line element that holds it. */
async function lintLines(page: Page, severity: "error" | "warning"): Promise<number[]> {
  return page.$$eval(
    `.cm-content .cm-lintRange-${severity}`,
    (ranges) =>
      ranges.map((r) => {
        const line = r.closest(".cm-line")!;
        return [...line.parentElement!.children].filter((c) => c.classList.contains("cm-line")).indexOf(line) + 1;
      }),
  );
}

/** Replaces a field's text as someone typing would. */
async function fill(page: Page, selector: string, text: string): Promise<void> {
  await page.click(selector);
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
  await page.keyboard.type(text);
}

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

describe.skipIf(!hasBrowser)("the playground page in Chromium", () => {
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-angle=swiftshader", `--remote-debugging-port=${await freePort()}`],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 900 });
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForSelector(".pill.ok", { timeout: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("opens on the bundled tiny model with the parameter count llmc info gives", async () => {
    const node = checkFile(TINY, { requireConcrete: true });
    expect(node.model).not.toBeNull();
    const params = modelInfo(node.model!).params;
    expect(await editorText(page)).toBe(readFileSync(TINY, "utf8"));
    expect(await page.$eval('[data-card="params"] .value', (e) => e.textContent)).toBe(formatCount(params));
    const weightNames = await page.$$eval("#weights-table td.mono:first-child", (tds) => tds.map((t) => t.textContent));
    expect(weightNames).toContain("embed");
    // The kernels of a decode step are listed and one is shown.
    expect(await page.$$eval("#kernel-list li", (l) => l.length)).toBeGreaterThan(0);
    expect(await page.$eval("#kernel-code", (e) => e.textContent)).toMatch(/@compute/);
    expect(await page.$eval("#ir-text", (e) => e.textContent?.length ?? 0)).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, "playground-model.png") });
    await page.click('.tabs [data-tab="kernels"]');
    await page.click("#kernel-list li:nth-child(2)");
    expect(await page.$eval("#kernel-code", (e) => e.textContent)).toMatch(/^\/\/ decode dispatch 1:/);
    await page.screenshot({ path: join(ARTIFACTS, "playground-kernels.png") });
    await page.click('.tabs [data-tab="model"]');
    expect(pageErrors).toEqual([]);
  });

  it("marks an error on the line Node's checker reports, and clears it when fixed", async () => {
    const original = await editorText(page);
    // Go to the line after `config {` and add an override of a parameter that does not exist.
    const configLine = original.split("\n").findIndex((l) => l.includes("config {")) + 1;
    await page.click(".cm-content");
    await page.keyboard.down("Control");
    await page.keyboard.press("Home");
    await page.keyboard.up("Control");
    for (let i = 1; i < configLine; i++) await page.keyboard.press("ArrowDown");
    await page.keyboard.press("End");
    await page.keyboard.press("Enter");
    await page.keyboard.type("hidden_size = 64");

    const edited = await editorText(page);
    expect(edited).not.toBe(original);
    const expected = checkFile(TINY, { overlay: new Map([[TINY, edited]]), requireConcrete: true }).diagnostics.filter((d) => d.severity === "error");
    expect(expected.length).toBeGreaterThan(0);
    const expectedLines = [...new Set(expected.filter((d) => d.span?.file.endsWith("tiny-llama.llm")).map((d) => d.span!.start.line))];
    expect(expectedLines).toEqual([configLine + 1]);

    await page.waitForSelector(".cm-content .cm-lintRange-error", { timeout: 10_000 });
    expect(await lintLines(page, "error")).toEqual(expectedLines);
    expect(await page.$$eval("#problems li.error", (l) => l.map((e) => Number(e.getAttribute("data-line"))))).toEqual(expectedLines);
    expect(await page.$eval("#problems li.error .message", (e) => e.textContent)).toBe(expected[0]!.message);
    expect(await page.$eval("#compile-status", (e) => e.textContent)).toMatch(/1 error/);
    await page.screenshot({ path: join(ARTIFACTS, "playground-error.png") });

    // Undo until the text is the original again; the marker and the problem go with the error.
    for (let i = 0; i < 30 && (await editorText(page)) !== original; i++) {
      await page.keyboard.down("Control");
      await page.keyboard.press("z");
      await page.keyboard.up("Control");
    }
    expect(await editorText(page)).toBe(original);
    await page.waitForSelector(".pill.ok", { timeout: 10_000 });
    await page.waitForFunction("!document.querySelector('.cm-lintRange-error')", { timeout: 10_000 });
    expect(await page.$$eval("#problems li", (l) => l.length)).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, "playground-fixed.png") });
  });

  it("runs a GGUF file picked in the page: streams tokens with their speed and distribution", async () => {
    // The file `llmc init-weights` writes for the tiny model; the page finds its architecture by name.
    const weights = await fetch(server.url + "api/random-weights?seed=1", { method: "POST", body: readFileSync(TINY, "utf8") });
    const file = join(mkdtempSync(join(tmpdir(), "llmc-playground-")), "tiny-llama.gguf");
    writeFileSync(file, new Uint8Array(await weights.arrayBuffer()));

    await page.click('.tabs [data-tab="run"]');
    const [chooser] = await Promise.all([page.waitForFileChooser(), page.click('label[for="gguf-file"]')]);
    await chooser.accept([file]);
    await page.waitForSelector(".load-status.ready, .load-status.error", { timeout: 120_000 });
    expect(await page.$eval("#load-status", (e) => e.textContent ?? "")).toMatch(/^Ready: 512 tokens, 256 positions, on .*tiny-llama\.gguf/);

    await fill(page, "#max-tokens", "8");
    await fill(page, "#temperature", "0");
    await page.click("#generate");
    await page.waitForSelector(".distribution .bar", { timeout: 180_000 });
    expect(await page.$$eval("#output .token", (t) => t.length)).toBeGreaterThan(0);
    expect(await page.$eval("#speed", (e) => e.textContent)).toMatch(/tokens\/s|1 token/);
    const probabilities = await page.$$eval(".distribution .p", (ps) => ps.map((p) => parseFloat(p.textContent ?? "")));
    expect(probabilities.length).toBe(10);
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(100.5);
    expect([...probabilities].sort((a, b) => b - a)).toEqual(probabilities);

    // Greedy decoding drew each token as the most likely one of its distribution.
    await page.hover("#output .token");
    expect(await page.$eval("#dist-title", (e) => e.textContent)).toMatch(/token \d+ was drawn/);
    expect(await page.$eval(".distribution .tok", (e) => e.classList.contains("chosen"))).toBe(true);

    await page.screenshot({ path: join(ARTIFACTS, "playground-run.png") });
    // The README's picture: refreshed on request, so a test run leaves the tree as it was.
    if (process.env["LLMC_UPDATE_SCREENSHOTS"]) {
      mkdirSync(resolve("docs/img"), { recursive: true });
      await page.screenshot({ path: resolve("docs/img/playground.png") });
    }
    expect(pageErrors).toEqual([]);
  }, 400_000);

  it("runs the editor's model on random weights from the server", async () => {
    await page.click('.tabs [data-tab="run"]');
    await page.click("#random-weights");
    // The click has already replaced the last model's status; wait for this load's outcome.
    await page.waitForSelector(".load-status.ready, .load-status.error", { timeout: 120_000 });
    expect(await page.$eval("#load-status", (e) => e.textContent ?? "")).toMatch(/^Ready: .*random weights/);
    await fill(page, "#max-tokens", "2");
    await page.click("#generate");
    await page.waitForSelector(".distribution .bar", { timeout: 180_000 });
    expect(await page.$$eval("#output .token", (t) => t.length)).toBeGreaterThan(0);
  }, 400_000);
});

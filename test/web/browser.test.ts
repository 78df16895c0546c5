// llmc/web in a real browser: dist/web/llmc.js, a test page and a GGUF written here (init-weights,
// seeded) are served from 127.0.0.1 to headless Chromium (SwiftShader WebGPU). In the page the tiny
// model's source compiles, the GGUF loads from its URL (streamed, cached) onto navigator.gpu, and
// greedy generation gives exactly the tokens Node's CPU interpreter gives, with logprobs within 1e-4.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import { loadModel } from "../../src/runtime/model.js";
import { initWeights } from "../../src/runtime/weights/init.js";

const CHROMIUM = "/usr/bin/chromium-headless-shell";
const TINY = resolve("models/examples/tiny-llama.llm");
const ARTIFACTS = resolve("test-artifacts");
const hasBrowser = existsSync(CHROMIUM);
if (!hasBrowser && process.env["CI"]) throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium-headless-shell`);

const MAX_SEQ_LEN = 32; // small, for SwiftShader's speed
const PROMPT = "Once upon a time";
const NEW_TOKENS = 6;

const PAGE = `<!doctype html><meta charset="utf-8"><title>llmc/web test</title><body><pre id="log">loading…</pre>
<script type="module">window.llmc = await import("/llmc.js"); document.getElementById("log").textContent = "ready";</script></body>`;

interface PageResult {
  diagnostics: unknown[];
  params?: number;
  irHasMatmul: boolean;
  kernels: number;
  badDiagnostic: { line: number; column: number; code?: string; file: string } | undefined;
  backend: string;
  progress: [number, number | undefined][];
  tokens: number[];
  firstTokenMs: number;
  loadMs: number;
  logprobs: { token: number; top: { id: number; logprob: number }[] }[];
  cachedProgress: number;
}

describe.skipIf(!hasBrowser)("llmc/web in Chromium", () => {
  let server: Server;
  let url: string;
  let browser: Browser;
  let page: Page;
  let gguf: string;
  let dir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "pipe" });
    dir = mkdtempSync(join(tmpdir(), "llmc-web-"));
    gguf = join(dir, "tiny.gguf");
    const res = compileFile(TINY, { overrides: new Map([["max_seq_len", String(MAX_SEQ_LEN)]]) });
    await initWeights(res.compiled!.model, gguf, { seed: 11 });
    const files: Record<string, [string, string | Buffer]> = {
      "/": ["text/html", PAGE],
      "/llmc.js": ["text/javascript", readFileSync("dist/web/llmc.js")],
      "/llmc.js.map": ["application/json", readFileSync("dist/web/llmc.js.map")],
      "/tiny.gguf": ["application/octet-stream", readFileSync(gguf)],
    };
    server = createServer((req, res) => {
      const file = files[req.url ?? ""];
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": file[0], "content-length": Buffer.byteLength(file[1]) }).end(file[1]);
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-angle=swiftshader"] });
    page = await browser.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => void (m.type() === "error" && pageErrors.push(m.text())));
    await page.goto(url, { waitUntil: "load" });
    await page.waitForSelector("#log::-p-text(ready)", { timeout: 60_000 });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => server?.close(done));
  });

  it("compiles, loads from a URL and generates what Node's CPU interpreter does", async () => {
    const source = readFileSync(TINY, "utf8");
    const r = await page.evaluate(
      async (source, maxSeqLen, prompt, newTokens) => {
        // The page's globals, typed here: the tests' typecheck has no DOM library.
        const page = globalThis as unknown as { llmc: typeof import("../../src/web/index.js"); document: { getElementById(id: string): { textContent: string } } };
        const llmc = page.llmc;
        const log = (s: string) => void (page.document.getElementById("log").textContent += `\n${s}`);
        const compiled = llmc.compileModel(source, { path: "models/examples/tiny-llama.llm", set: { max_seq_len: maxSeqLen } });
        const bad = llmc.compileModel(source.replace("dim = 64", "dim = 64 +"), { path: "bad.llm" });
        const progress: [number, number | undefined][] = [];
        const started = performance.now();
        const model = await llmc.loadModel("/tiny.gguf", { backend: "webgpu", onProgress: (l, t) => progress.push([l, t]) });
        const loadMs = performance.now() - started;
        log(`loaded on ${model.backend} in ${loadMs.toFixed(0)} ms`);
        const tokens: number[] = [];
        let firstTokenMs = 0;
        const t0 = performance.now();
        for await (const t of model.generate(prompt, { maxTokens: newTokens, temperature: 0 })) {
          if (tokens.length === 0) firstTokenMs = performance.now() - t0;
          tokens.push(t.token);
        }
        log(`generated ${tokens.join(" ")}; first token after ${firstTokenMs.toFixed(0)} ms`);
        const scored = await model.logprobs([...model.promptTokens(prompt), ...tokens], { top: 5 });
        const backend = model.backend;
        model.dispose();
        // The second load comes from the Cache API: its progress still counts the whole file.
        let cachedProgress = 0;
        const again = await llmc.loadModel("/tiny.gguf", { backend: "cpu", onProgress: (l) => (cachedProgress = l) });
        again.dispose();
        return {
          diagnostics: compiled.diagnostics,
          params: compiled.info?.params,
          irHasMatmul: /matmul|linear/.test(compiled.ir ?? ""),
          kernels: compiled.wgsl?.length ?? 0,
          badDiagnostic: bad.diagnostics.find((d) => d.severity === "error"),
          backend,
          progress,
          tokens,
          firstTokenMs,
          loadMs,
          logprobs: scored.positions,
          cachedProgress,
        };
      },
      source,
      MAX_SEQ_LEN,
      PROMPT,
      NEW_TOKENS,
    ) as PageResult;
    await page.screenshot({ path: join(ARTIFACTS, "web-browser.png") });
    console.log(`llmc/web in Chromium (${r.backend}): load ${r.loadMs.toFixed(0)} ms, first token ${r.firstTokenMs.toFixed(0)} ms`);

    expect(pageErrors).toEqual([]);
    const node = compileFile(TINY, { overrides: new Map([["max_seq_len", String(MAX_SEQ_LEN)]]) });
    expect(r.diagnostics).toEqual([]);
    expect(r.params).toBe(node.compiled!.params);
    expect(r.irHasMatmul).toBe(true);
    expect(r.kernels).toBeGreaterThan(0);
    expect(r.badDiagnostic).toMatchObject({ file: "bad.llm", line: expect.any(Number), column: expect.any(Number) });
    expect(r.backend).toMatch(/^webgpu/);
    const size = readFileSync(gguf).byteLength;
    expect(r.progress.at(-1)).toEqual([size, size]);
    expect(r.cachedProgress).toBe(size);

    const cpu = await loadModel(gguf, { backend: "cpu" });
    try {
      const tokens: number[] = [];
      for await (const t of cpu.generate(PROMPT, { maxTokens: NEW_TOKENS, temperature: 0 })) tokens.push(t.token);
      expect(r.tokens).toEqual(tokens);
      const ref = await cpu.logprobs([...cpu.promptTokens(PROMPT), ...tokens], { top: 5 });
      expect(r.logprobs.map((p) => p.top.map((t) => t.id))).toEqual(ref.positions.map((p) => p.top.map((t) => t.id)));
      let worst = 0;
      r.logprobs.forEach((p, i) => p.top.forEach((t, k) => (worst = Math.max(worst, Math.abs(t.logprob - ref.positions[i]!.top[k]!.logprob)))));
      expect(worst).toBeLessThan(1e-4);
    } finally {
      cpu.dispose();
    }
  }, 300_000);

  it("loads with an `llm` source that imports the bundled llama.llm (and one from `files`) and uses its config", async () => {
    // Neither value is in the GGUF file, so the architecture's own values stand.
    const llm = `import "llama.llm"\n\nmodel my_llama extends llama {\n  config {\n    rope_original_max_pos = 1234\n  }\n}\n`;
    const base = `import "llama.llm"\n\nmodel base_llama extends llama {\n  config {\n    rope_original_max_pos = 4321\n  }\n}\n`;
    const derived = `import "lib/base.llm"\n\nmodel derived_llama extends base_llama {\n  config {\n    rope_low_freq_factor = 2.0\n  }\n}\n`;
    const r = await page.evaluate(
      async (llm, derived, base, prompt, newTokens) => {
        const llmc = (globalThis as unknown as { llmc: typeof import("../../src/web/index.js") }).llmc;
        const run = async (opts: { llm: string; files?: Record<string, string>; path?: string }) => {
          const model = await llmc.loadModel("/tiny.gguf", { backend: "cpu", ...opts });
          try {
            const tokens: number[] = [];
            for await (const t of model.generate(prompt, { maxTokens: newTokens, temperature: 0 })) tokens.push(t.token);
            return { tokens, config: { ...model.config } };
          } finally {
            model.dispose();
          }
        };
        const bad = await llmc.loadModel("/tiny.gguf", { backend: "cpu", llm: `import "missing.llm"\n` }).then(
          (m) => (m.dispose(), "loaded"),
          (e: Error) => e.message,
        );
        return {
          direct: await run({ llm }),
          viaFiles: await run({ llm: derived, path: "app/model.llm", files: { "app/lib/base.llm": base } }),
          bad,
        };
      },
      llm,
      derived,
      base,
      PROMPT,
      NEW_TOKENS,
    );
    expect(pageErrors).toEqual([]);
    expect(r.direct.config["rope_original_max_pos"]).toBe(1234);
    expect(r.direct.config["dim"]).toBe(64); // the file's values still bind the rest
    expect(r.viaFiles.config["rope_original_max_pos"]).toBe(4321);
    expect(r.viaFiles.config["rope_low_freq_factor"]).toBe(2);
    expect(r.bad).toMatch(/the architecture source has errors: .*missing\.llm/);

    // Node, given the same source as a file with --arch, loads the same model and generates the same tokens.
    const arch = join(dir, "my-llama.llm");
    writeFileSync(arch, llm);
    const cpu = await loadModel(gguf, { backend: "cpu", arch });
    try {
      const tokens: number[] = [];
      for await (const t of cpu.generate(PROMPT, { maxTokens: NEW_TOKENS, temperature: 0 })) tokens.push(t.token);
      expect(r.direct.tokens).toHaveLength(NEW_TOKENS);
      expect(r.direct.tokens).toEqual(tokens);
      expect(r.direct.config).toEqual({ ...cpu.config });
    } finally {
      cpu.dispose();
    }
  }, 300_000);
});

// The language server driven over JSON-RPC (in-process, over in-memory streams): diagnostics with
// codes and ranges, in imported files too, unsaved buffers winning over disk; hover types worked out
// by hand from the fixture; definitions across imports; formatting equal to `llmc fmt`; completion;
// document symbols.

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CompletionItem, DocumentSymbol, Hover, Location, TextEdit } from "vscode-languageserver-protocol";
import { runFmt } from "../../src/cli/commands/fmt.js";
import { bufferIO } from "../../src/cli/io.js";
import { bundledModelsDir } from "../../src/paths.js";
import { LspClient } from "./client.js";

// Shapes by hand: h = embed[tokens] is [T, dim] = [T, 8]; heads(h, 2) splits 8 into 2 heads of 4.
const tiny = `import "std/nn.llm"

// A tiny model whose shapes can be worked out by hand.
model tiny {
  config {
    vocab_size: int = 32
    dim: int = 8
    n_heads: int = 2
    head_dim: int = dim / n_heads
  }
  weights {
    embed: [vocab_size, dim]  gguf "token_embd.weight"
    norm_w: [dim]  gguf "output_norm.weight"
  }
  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size] {
    h = embed[tokens]
    q = heads(h, n_heads)
    x = rms_norm(h, norm_w, 1e-5)
    return linear(x, embed)
  }
}
`;

const stdPath = join(bundledModelsDir(), "std", "nn.llm");
const stdUri = pathToFileURL(stdPath).href;
const hoverText = (h: Hover | null) => (h && typeof h.contents === "object" && "value" in h.contents ? h.contents.value : "");

let dir: string;
let client: LspClient;
let tinyUri: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-lsp-"));
  client = LspClient.inProcess();
  await client.initialize();
  tinyUri = await client.open(join(dir, "tiny.llm"), tiny);
});

afterAll(async () => {
  client.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe("diagnostics", () => {
  it("a clean file publishes none, then an unknown name is reported at its range with its code", async () => {
    await client.waitForDiagnostics(tinyUri, (d) => d.length === 0);
    await client.change(tinyUri, tiny.replace("rms_norm(h, norm_w,", "rms_norm(h, norm_ww,"));
    const diags = await client.waitForDiagnostics(tinyUri, (d) => d.length > 0);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({
      code: "E0201",
      severity: 1,
      source: "llmc",
      range: { start: { line: 17, character: 20 }, end: { line: 17, character: 27 } },
    });
    expect(diags[0]!.message).toContain("norm_ww");
    await client.change(tinyUri, tiny);
    await client.waitForDiagnostics(tinyUri, (d) => d.length === 0);
  });

  it("errors in an imported file go to that file; its unsaved buffer wins over the disk", async () => {
    const base = join(dir, "base.llm");
    await writeFile(base, "fn f(x: [T]) -> [T] {\n  return x *\n}\n");
    const mainText = 'import "base.llm"\n\nfn g(x: [N]) -> [N] {\n  return f(x)\n}\n';
    const mainUri = await client.open(join(dir, "main.llm"), mainText);
    const baseUri = pathToFileURL(base).href;
    const broken = await client.waitForDiagnostics(baseUri, (d) => d.length > 0);
    expect(broken[0]).toMatchObject({ code: "E0101", range: { start: { line: 2, character: 0 } } });
    expect(client.diagnostics.get(mainUri)).toEqual([]);

    await client.open(base, "fn f(x: [T]) -> [T] {\n  return x * 2.0\n}\n");
    await client.waitForDiagnostics(baseUri, (d) => d.length === 0);

    // `h` exists only in the unsaved buffer of base.llm.
    await client.change(baseUri, "fn h(x: [T]) -> [T] {\n  return x * 2.0\n}\n");
    await client.change(mainUri, mainText.replace("f(x)", "h(x)"));
    await client.waitForDiagnostics(mainUri, (d) => d.length === 0);
    await client.change(mainUri, mainText);
    const unknown = await client.waitForDiagnostics(mainUri, (d) => d.length > 0);
    expect(unknown[0]).toMatchObject({ code: "E0201", range: { start: { line: 3, character: 9 }, end: { line: 3, character: 10 } } });
  });
});

describe("hover", () => {
  it("a local's shape and dtype", async () => {
    const h = await client.request<Hover>("textDocument/hover", tinyUri, 16, 4);
    expect(hoverText(h)).toContain("`[T, 2, 4] f32`");
    expect(h.range).toEqual({ start: { line: 16, character: 4 }, end: { line: 16, character: 5 } });
  });

  it("a use of a binding, and a forward input", async () => {
    expect(hoverText(await client.request("textDocument/hover", tinyUri, 17, 17))).toContain("`[T, 8] f32`");
    expect(hoverText(await client.request("textDocument/hover", tinyUri, 15, 14))).toContain("`[T] i32`");
  });

  it("a config value's type and resolved value", async () => {
    const text = hoverText(await client.request("textDocument/hover", tinyUri, 8, 6));
    expect(text).toContain("head_dim: int = dim / n_heads");
    expect(text).toContain("**4**");
  });

  it("a weight's declared and evaluated shape", async () => {
    const text = hoverText(await client.request("textDocument/hover", tinyUri, 15, 9));
    expect(text).toContain("embed: [vocab_size, dim]");
    expect(text).toContain("`[32, 8] f32`");
  });

  it("a standard-library function's signature and doc comment", async () => {
    const text = hoverText(await client.request("textDocument/hover", tinyUri, 17, 10));
    expect(text).toContain("fn rms_norm(x: [..., D], w: [D], eps: f32) -> [..., D]");
    expect(text).toContain("RMSNorm over the last axis");
  });

  it("a parameter inside the standard library, typed by the model that calls it", async () => {
    const stdText = await readFile(stdPath, "utf8");
    await client.open(stdPath, stdText);
    const lines = stdText.split("\n");
    const line = lines.findIndex((l) => l.startsWith("fn rms_norm("));
    const text = hoverText(await client.request("textDocument/hover", stdUri, line, "fn rms_norm(".length));
    expect(text).toContain("(parameter) x: [..., D]");
    expect(text).toContain("in `tiny`: `[T, 8] f32`");
  });
});

describe("hover in an architecture whose config another open file binds", () => {
  it("shows the shapes tiny-llama.llm gives llama.llm's functions, right after both open", async () => {
    const models = bundledModelsDir();
    const llamaText = await readFile(join(models, "llama.llm"), "utf8");
    const llamaUri = await client.open(join(models, "llama.llm"), llamaText);
    await client.open(join(models, "examples", "tiny-llama.llm"), await readFile(join(models, "examples", "tiny-llama.llm"), "utf8"));
    // tiny_llama: dim 64, n_heads 4, so q_proj gives [T, 4, 64 / 4] heads.
    const line = llamaText.split("\n").findIndex((l) => l.trim().startsWith("q = rope(q_proj("));
    const text = hoverText(await client.request("textDocument/hover", llamaUri, line, 4));
    expect(text).toContain("in `tiny_llama`: `[T, 4, 16] f32`");
  });

  it("completes a layer's weights after `w.`", async () => {
    const llamaText = await readFile(join(bundledModelsDir(), "llama.llm"), "utf8");
    const llamaUri = pathToFileURL(join(bundledModelsDir(), "llama.llm")).href;
    const lines = llamaText.split("\n");
    const line = lines.findIndex((l) => l.includes("q = linear(x, w.wq)"));
    const items = await client.request<CompletionItem[]>("textDocument/completion", llamaUri, line, lines[line]!.indexOf("w.wq") + 2);
    const labels = items.map((i) => i.label);
    expect(labels).toEqual(expect.arrayContaining(["attn_norm", "wq", "wk", "wv", "wo", "bq", "ffn_norm", "w_gate", "w_up", "w_down"]));
    expect(labels).not.toContain("rms_norm");
  });
});

describe("definition", () => {
  it("a standard-library call jumps into models/std/nn.llm", async () => {
    const stdLines = (await readFile(stdPath, "utf8")).split("\n");
    const loc = await client.request<Location>("textDocument/definition", tinyUri, 17, 10);
    expect(loc.uri).toBe(stdUri);
    expect(loc.range.start).toEqual({ line: stdLines.findIndex((l) => l.startsWith("fn rms_norm(")), character: 3 });
  });

  it("the import string opens the imported file", async () => {
    const loc = await client.request<Location>("textDocument/definition", tinyUri, 0, 10);
    expect(loc.uri).toBe(stdUri);
  });

  it("config values and SSA bindings", async () => {
    const cfg = await client.request<Location>("textDocument/definition", tinyUri, 16, 18);
    expect(cfg).toMatchObject({ uri: tinyUri, range: { start: { line: 7, character: 4 } } });
    const local = await client.request<Location>("textDocument/definition", tinyUri, 17, 17);
    expect(local).toMatchObject({ uri: tinyUri, range: { start: { line: 15, character: 4 } } });
  });
});

describe("formatting", () => {
  it("returns the text llmc fmt prints", async () => {
    const messy = 'import "std/nn.llm"\nfn f(x:[N,D],w:[D]) -> [N,D]{ y=rms_norm(x,w,1e-5);return y*2.0}\n';
    const path = join(dir, "messy.llm");
    await writeFile(path, messy);
    const io = bufferIO();
    expect(await runFmt([path], io)).toBe(0);
    const uri = await client.open(path, messy);
    const edits = await client.request<TextEdit[]>("textDocument/formatting", uri);
    expect(edits).toHaveLength(1);
    expect(applyEdits(messy, edits)).toBe(io.stdout());
  });
});

describe("completion and symbols", () => {
  it("completes standard-library functions, built-ins and names in scope", async () => {
    const items = await client.request<CompletionItem[]>("textDocument/completion", tinyUri, 18, 11);
    const labels = items.map((i) => i.label);
    for (const name of ["rms_norm", "softmax", "heads", "attention", "h", "x", "n_heads", "embed"]) expect(labels).toContain(name);
    expect(items.find((i) => i.label === "softmax")!.detail).toBe("fn softmax(x: [..., D]) -> [..., D]");
  });

  it("lists the model's config values, weights and functions", async () => {
    const symbols = await client.request<DocumentSymbol[]>("textDocument/documentSymbol", tinyUri);
    expect(symbols.map((s) => s.name)).toEqual(["tiny"]);
    expect(symbols[0]!.children!.map((s) => s.name)).toEqual(["vocab_size", "dim", "n_heads", "head_dim", "embed", "norm_w", "forward"]);
  });
});

/** Applies LSP edits (non-overlapping) to a text. */
function applyEdits(text: string, edits: TextEdit[]): string {
  const lines = text.split("\n");
  const offset = (p: { line: number; character: number }) => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}

// The llmc playground: a .llm editor with live diagnostics, the compiled model beside it (config,
// weights, IR, WGSL kernels), and a Run panel that executes it in the browser. Everything runs in
// the page through the browser entry of llmc; `llmc serve` only hosts it (and writes random weights).

import type { EditorView } from "@codemirror/view";
import { bundledModels, compileModel } from "../src/web/index.js";
import { createEditor, revealPosition, setDocument, type SourceDiagnostic } from "./editor.js";
import { byId, el } from "./dom.js";
import { markStale, renderIR, renderKernels, renderModelInfo } from "./panels.js";
import { RunPanel } from "./run.js";

const DEFAULT_MODEL = "models/examples/tiny-llama.llm";

/**
 * The bundled files one can start from: examples are complete models; the architectures leave
 * sizes unbound (a GGUF or `llmc import` gives them), so they show those as errors until set.
 * std/ holds library code, not models.
 */
function modelChoices(): HTMLOptGroupElement[] {
  const paths = Object.keys(bundledModels).filter((p) => !p.startsWith("models/std/"));
  const group = (label: string, members: string[]) =>
    el("optgroup", { label }, ...members.sort((a, b) => (a === DEFAULT_MODEL ? -1 : b === DEFAULT_MODEL ? 1 : a.localeCompare(b))).map((p) => el("option", { value: p }, p.replace(/^models\/(examples\/)?/, "").replace(/\.llm$/, ""))));
  return [
    group("examples", paths.filter((p) => p.startsWith("models/examples/"))),
    group("architectures (sizes unbound)", paths.filter((p) => !p.startsWith("models/examples/"))),
  ];
}

class Playground {
  private view!: EditorView;
  private path = DEFAULT_MODEL;
  private compiles = false;
  private readonly run: RunPanel;

  constructor() {
    const picker = byId<HTMLSelectElement>("model-picker");
    picker.replaceChildren(...modelChoices());
    picker.value = this.path;
    picker.addEventListener("change", () => {
      this.path = picker.value;
      setDocument(this.view, bundledModels[this.path] ?? "");
    });

    for (const tab of document.querySelectorAll<HTMLButtonElement>(".tabs [data-tab]")) {
      tab.addEventListener("click", () => showTab(tab.dataset["tab"]!));
    }

    this.run = new RunPanel({ source: () => this.view.state.doc.toString(), sourceCompiles: () => this.compiles });
    this.view = createEditor(byId("editor"), bundledModels[this.path] ?? "", (source) => this.compile(source));
  }

  /** One compile: panels, the status pill and the problem list; returns this file's diagnostics for the editor. */
  private compile(source: string): SourceDiagnostic[] {
    const started = performance.now();
    let result: ReturnType<typeof compileModel>;
    try {
      result = compileModel(source, { path: this.path });
    } catch (err) {
      // A compiler fault is a bug, not the author's error; say so where they look.
      result = { diagnostics: [{ severity: "error", message: `internal compiler error: ${(err as Error).message}`, file: this.path, line: 1, column: 1 }] };
    }
    const ms = performance.now() - started;
    const errors = result.diagnostics.filter((d) => d.severity === "error");
    this.compiles = errors.length === 0 && result.info !== undefined;

    if (result.info) renderModelInfo(result.info, result.wgsl?.length ?? null);
    if (result.ir !== undefined) renderIR(result.ir);
    if (result.wgsl) renderKernels(result.wgsl);
    markStale(!this.compiles);

    const pill = byId("compile-status");
    const warnings = result.diagnostics.length - errors.length;
    pill.className = `pill ${errors.length ? "error" : "ok"}`;
    pill.textContent = errors.length
      ? `${errors.length} error${errors.length === 1 ? "" : "s"}`
      : `compiled in ${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms${warnings ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : ""}`;

    this.renderProblems(result.diagnostics);
    this.run.sourceChanged();
    return result.diagnostics.filter((d) => this.isThisFile(d.file));
  }

  private isThisFile(file: string): boolean {
    return file === this.path || file.endsWith("/" + this.path) || this.path.endsWith("/" + file);
  }

  /** Every diagnostic, imported files' too (the editor can only mark its own file). */
  private renderProblems(diags: readonly SourceDiagnostic[]): void {
    byId("problems").replaceChildren(
      ...diags.map((d) => {
        const here = this.isThisFile(d.file);
        const item = el(
          "li",
          { class: d.severity, "data-line": String(d.line), "data-column": String(d.column) },
          el("span", { class: "sev" }, d.code ? `${d.severity}[${d.code}]` : d.severity),
          el("span", { class: "where" }, `${here ? "" : d.file + ":"}${d.line}:${d.column}`),
          el("span", { class: "message" }, d.message),
        );
        if (here) item.addEventListener("click", () => revealPosition(this.view, d.line, d.column));
        return item;
      }),
    );
  }
}

function showTab(name: string): void {
  for (const tab of document.querySelectorAll<HTMLElement>(".tabs [data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset["tab"] === name));
  for (const panel of document.querySelectorAll<HTMLElement>(".panel[data-panel]")) panel.hidden = panel.dataset["panel"] !== name;
}

new Playground();

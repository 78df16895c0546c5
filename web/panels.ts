// What the compiler made of the source: the model's config, weights and size, the IR text, and the
// WGSL kernels of one decode step. Each render replaces its panel; a failed compile keeps the last
// good panels (dimmed), so a typo does not blank what one was reading.

import { byId, el, formatBytes, formatCount } from "./dom.js";

export interface ModelInfo {
  name: string;
  config: Record<string, unknown>;
  weights: { name: string; shape: number[]; dtype: string }[];
  params: number;
}

export interface Kernel {
  name: string;
  code: string;
}

export function renderModelInfo(info: ModelInfo, kernelCount: number | null): void {
  const cfg = info.config;
  const num = (k: string) => (typeof cfg[k] === "number" ? formatCount(cfg[k] as number) : "–");
  const cards: [string, string, string][] = [
    ["params", formatCount(info.params), "parameters"],
    ["bytes", formatBytes(info.params * 4), "weights at f32"],
    ["layers", num("n_layers"), "layers"],
    ["dim", num("dim"), "model dim"],
    ["vocab", num("vocab_size"), "vocabulary"],
  ];
  if (kernelCount !== null) cards.push(["kernels", formatCount(kernelCount), "kernels per decode step"]);
  byId("model-cards").replaceChildren(
    el("div", { class: "card card-name" }, el("div", { class: "value" }, info.name), el("div", { class: "label" }, "model")),
    ...cards.map(([key, value, label]) => el("div", { class: "card", "data-card": key }, el("div", { class: "value" }, value), el("div", { class: "label" }, label))),
  );

  byId("config-table").replaceChildren(
    el("tr", {}, el("th", {}, "name"), el("th", {}, "value")),
    ...Object.entries(cfg).map(([k, v]) => el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "mono" }, formatValue(v)))),
  );

  byId("weights-table").replaceChildren(
    el("tr", {}, el("th", {}, "name"), el("th", {}, "shape"), el("th", {}, "dtype"), el("th", {}, "params")),
    ...weightRows(info.weights),
  );
}

/** Per-layer weights repeat: layer 0 and the last layer are shown, one row stands for the rest. */
function weightRows(weights: ModelInfo["weights"]): HTMLTableRowElement[] {
  const lastLayer = new Map<string, number>();
  for (const w of weights) {
    const m = /^([^.]+)\.(\d+)\./.exec(w.name);
    if (m) lastLayer.set(m[1]!, Math.max(lastLayer.get(m[1]!) ?? 0, Number(m[2])));
  }
  const rows: HTMLTableRowElement[] = [];
  const summarised = new Set<string>();
  for (const w of weights) {
    const m = /^([^.]+)\.(\d+)\./.exec(w.name);
    if (m) {
      const group = m[1]!;
      const layer = Number(m[2]);
      const last = lastLayer.get(group)!;
      if (layer > 0 && layer < last) {
        if (!summarised.has(group)) {
          summarised.add(group);
          const span = last - 1 === 1 ? "layer 1 repeats" : `layers 1 to ${last - 1} repeat`;
          rows.push(el("tr", { class: "group" }, el("td", { colspan: "4" }, `… ${group}: ${span} layer 0`)));
        }
        continue;
      }
    }
    const params = w.shape.reduce((a, b) => a * b, 1);
    rows.push(
      el(
        "tr",
        {},
        el("td", { class: "mono" }, w.name),
        el("td", { class: "shape" }, `[${w.shape.join(", ")}]`),
        el("td", { class: "mono" }, w.dtype),
        el("td", { class: "num" }, formatCount(params)),
      ),
    );
  }
  return rows;
}

function formatValue(v: unknown): string {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

export function renderIR(text: string): void {
  byId("ir-text").textContent = text;
}

/** The kernel list keeps its selection by name across recompiles, so an edit does not lose one's place. */
export function renderKernels(kernels: readonly Kernel[]): void {
  const list = byId("kernel-list");
  const code = byId("kernel-code");
  const previous = list.querySelector<HTMLElement>('[aria-selected="true"]')?.dataset["name"];
  const select = (i: number) => {
    for (const item of list.children) item.setAttribute("aria-selected", String(item === list.children[i]));
    code.textContent = kernels[i]?.code ?? "";
  };
  list.replaceChildren(
    ...kernels.map((k, i) => {
      const item = el("li", { role: "option", "data-name": k.name, title: k.name }, el("span", { class: "index" }, String(i + 1).padStart(2, " ")), kernelLabel(k));
      item.addEventListener("click", () => select(i));
      return item;
    }),
  );
  if (kernels.length === 0) {
    code.textContent = "No kernels: the model did not compile to WGSL.";
    return;
  }
  const keep = kernels.findIndex((k) => k.name === previous);
  select(keep >= 0 ? keep : 0);
}

/** What a kernel computes, from the header line the web entry writes (`// decode dispatch 3: rms_norm; …`), else its file name. */
function kernelLabel(k: Kernel): string {
  return /^\/\/ decode dispatch \d+: ([^;\n]+)/.exec(k.code)?.[1] ?? k.name;
}

/** Marks the panels as describing an earlier version of the source. */
export function markStale(stale: boolean): void {
  for (const panel of document.querySelectorAll<HTMLElement>(".panel:not(.run)")) panel.classList.toggle("stale", stale);
}

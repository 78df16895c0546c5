// The Run panel: weights in (random ones from `llmc serve`, a GGUF file, a URL), text out, streamed
// with its speed, and the next-token distribution at every generated position.
//
// The distribution comes from one `logprobs` pass over prompt + output after generation ends, not
// from the sampler during it: a generation step does not return its logits, and one extra pass
// costs less than one per token.

import { loadModel } from "../src/web/index.js";
import type { Model } from "../src/runtime/model.js";
import { byId, el, formatBytes } from "./dom.js";

const TOP_K = 10;

/** What the panel needs from the rest of the page. */
export interface RunHost {
  /** The source in the editor now. */
  source(): string;
  /** Whether that source compiles; a model is only built from a good one. */
  sourceCompiles(): boolean;
}

interface Generation {
  promptIds: number[];
  tokens: { id: number; text: string }[];
  distributions: { token: number; top: { id: number; logprob: number }[] }[] | null;
}

export class RunPanel {
  private model: Model | null = null;
  private loadedSource: string | null = null;
  private busy = false;
  private abort: AbortController | null = null;
  private last: Generation | null = null;

  private readonly status = byId("load-status");
  private readonly progress = byId<HTMLProgressElement>("load-progress");
  private readonly prompt = byId<HTMLTextAreaElement>("prompt");
  private readonly output = byId("output");
  private readonly speed = byId("speed");
  private readonly distribution = byId("distribution");
  private readonly distTitle = byId("dist-title");
  private readonly generateButton = byId<HTMLButtonElement>("generate");
  private readonly predictButton = byId<HTMLButtonElement>("predict");
  private readonly stopButton = byId<HTMLButtonElement>("stop");
  private readonly loadButtons = [byId<HTMLButtonElement>("random-weights"), ...document.querySelectorAll<HTMLButtonElement>("#gguf-url-form button")];

  constructor(private readonly host: RunHost) {
    byId("random-weights").addEventListener("click", () => void this.loadRandom());
    byId<HTMLInputElement>("gguf-file").addEventListener("change", (e) => {
      const input = e.target as HTMLInputElement;
      const file = input.files?.[0];
      input.value = "";
      if (file) void this.load(file, `${file.name} (${formatBytes(file.size)})`, false);
    });
    byId("gguf-url-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const url = byId<HTMLInputElement>("gguf-url").value.trim();
      if (url) void this.load(url, url, false);
    });
    this.generateButton.addEventListener("click", () => void this.generate());
    this.predictButton.addEventListener("click", () => void this.predict());
    this.stopButton.addEventListener("click", () => this.abort?.abort());
    this.prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void this.generate();
    });
    this.showDistribution(null, null);
  }

  /** Called after each compile: a model built from another version of the source says so. */
  sourceChanged(): void {
    if (this.model && this.loadedSource !== null && this.loadedSource !== this.host.source()) {
      this.setStatus(`${this.describeModel()} — built from an earlier version of the editor's source; load again to run the new one.`, "ready");
    }
  }

  private async loadRandom(): Promise<void> {
    if (!this.host.sourceCompiles()) return this.setStatus("Fix the errors in the editor first: random weights are made for the model there.", "error");
    const source = this.host.source();
    this.setStatus("Writing random weights…");
    let bytes: ArrayBuffer;
    try {
      const seed = Math.max(0, Math.floor(Number(byId<HTMLInputElement>("seed").value) || 0));
      const res = await fetch(`api/random-weights?seed=${seed}`, { method: "POST", body: source, headers: { "content-type": "text/plain" } });
      if (res.status === 404 || res.status === 405) {
        return this.setStatus("Random weights are written by 'llmc serve', and this copy of the page has no server: open a GGUF file instead.", "error");
      }
      if (!res.ok) return this.setStatus(await res.text(), "error");
      bytes = await res.arrayBuffer();
    } catch (err) {
      return this.setStatus(`Could not reach the server for random weights: ${(err as Error).message}`, "error");
    }
    await this.load(new Uint8Array(bytes), `random weights (${formatBytes(bytes.byteLength)})`, true, source);
  }

  /** `withSource`: compile the editor's .llm for these weights; otherwise the file's architecture picks a bundled one. */
  private async load(weights: Uint8Array | Blob | string, label: string, withSource: boolean, source = this.host.source()): Promise<void> {
    if (this.busy) return;
    this.setBusy(true);
    this.model?.dispose();
    this.model = null;
    this.last = null;
    this.setStatus(`Loading ${label}…`);
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    try {
      this.model = await loadModel(weights, {
        ...(withSource ? { llm: source } : {}),
        onProgress: (loaded, total) => {
          if (total) this.progress.value = loaded / total;
        },
      });
      this.loadedSource = withSource ? source : null;
      this.setStatus(`${this.describeModel()} — ${label}`, "ready");
      this.output.replaceChildren();
      this.speed.textContent = "";
      this.showDistribution(null, null);
    } catch (err) {
      this.setStatus((err as Error).message, "error");
    } finally {
      this.progress.hidden = true;
      this.setBusy(false);
    }
  }

  private describeModel(): string {
    const m = this.model!;
    return `Ready: ${m.tokenizer.vocabSize} tokens, ${m.maxSeqLen} positions, on ${m.backend}`;
  }

  private async generate(): Promise<void> {
    const model = this.model;
    if (!model || this.busy) return;
    this.setBusy(true, true);
    this.abort = new AbortController();
    const promptText = this.prompt.value;
    const maxTokens = clampInt(byId<HTMLInputElement>("max-tokens").value, 1, Math.max(1, model.maxSeqLen - 1), 32);
    const temperature = Math.max(0, Number(byId<HTMLInputElement>("temperature").value) || 0);
    const seed = clampInt(byId<HTMLInputElement>("seed").value, 0, 0xffffffff, 0);
    const gen: Generation = { promptIds: [], tokens: [], distributions: null };
    this.last = gen;
    this.output.replaceChildren(el("span", { class: "prompt-text" }, promptText));
    this.speed.textContent = "";
    this.showDistribution(null, null);
    let first = 0;
    const started = performance.now();
    try {
      gen.promptIds = model.promptTokens(promptText);
      model.reset();
      for await (const t of model.generate(promptText, { maxTokens, temperature, seed, signal: this.abort.signal })) {
        const now = performance.now();
        if (gen.tokens.length === 0) first = now;
        const k = gen.tokens.length;
        gen.tokens.push({ id: t.token, text: t.text });
        if (t.text) this.output.append(this.tokenSpan(t.text, k));
        this.speed.textContent = speedText(gen.tokens.length, started, first, now);
      }
    } catch (err) {
      if ((err as Error).name !== "AbortError") this.output.append(el("div", { class: "load-status error" }, (err as Error).message));
    }
    this.abort = null;
    this.setBusy(true);
    // One pass gives the distribution before every generated token and after the last one.
    try {
      if (gen.tokens.length > 0) {
        const ids = [...gen.promptIds, ...gen.tokens.map((t) => t.id)].slice(0, model.maxSeqLen);
        const lp = await model.logprobs(ids, { top: TOP_K });
        gen.distributions = lp.positions;
        this.showDistribution(gen, null);
      }
    } catch (err) {
      this.distribution.replaceChildren(el("div", { class: "empty" }, `No distribution: ${(err as Error).message}`));
    }
    this.setBusy(false);
  }

  /** The distribution after the prompt alone. */
  private async predict(): Promise<void> {
    const model = this.model;
    if (!model || this.busy) return;
    this.setBusy(true);
    try {
      const ids = model.promptTokens(this.prompt.value);
      const lp = await model.logprobs(ids, { top: TOP_K });
      const gen: Generation = { promptIds: ids, tokens: [], distributions: lp.positions };
      this.last = gen;
      this.output.replaceChildren(el("span", { class: "prompt-text" }, this.prompt.value));
      this.speed.textContent = "";
      this.showDistribution(gen, null);
    } catch (err) {
      this.distribution.replaceChildren(el("div", { class: "empty" }, (err as Error).message));
    }
    this.setBusy(false);
  }

  private tokenSpan(text: string, k: number): HTMLElement {
    const span = el("span", { class: "token", "data-k": String(k), title: `token ${k + 1}` }, text);
    span.addEventListener("mouseenter", () => this.last && this.showDistribution(this.last, k));
    span.addEventListener("click", () => this.last && this.showDistribution(this.last, k));
    return span;
  }

  /**
   * The top tokens at one position: before generated token `k` (that token marked), or with `k`
   * null after everything so far (the next token's distribution).
   */
  private showDistribution(gen: Generation | null, k: number | null): void {
    for (const s of this.output.querySelectorAll(".token.selected")) s.classList.remove("selected");
    const positions = gen?.distributions;
    if (!gen || !positions || positions.length === 0) {
      this.distTitle.textContent = "Next-token distribution";
      this.distribution.replaceChildren(el("div", { class: "empty" }, this.model ? "Generate, or press Next token, to see what the model predicts." : "Load weights to run the model."));
      return;
    }
    const at = k === null ? positions.length - 1 : gen.promptIds.length + k - 1;
    const position = positions[Math.min(Math.max(at, 0), positions.length - 1)]!;
    const chosen = k === null ? null : gen.tokens[k]!.id;
    if (k !== null) this.output.querySelector(`.token[data-k="${k}"]`)?.classList.add("selected");
    this.distTitle.textContent = k === null ? "Next-token distribution" : `Distribution that token ${k + 1} was drawn from`;
    const tokenizer = this.model!.tokenizer;
    const best = Math.exp(position.top[0]?.logprob ?? 0);
    this.distribution.replaceChildren(
      ...position.top.flatMap((t) => {
        const p = Math.exp(t.logprob);
        const cls = t.id === chosen ? "chosen" : "";
        return [
          el("div", { class: `tok ${cls}`, title: `id ${t.id}` }, visibleToken(tokenizer.decode([t.id]), tokenizer.idToToken(t.id))),
          el("div", { class: `bar ${cls}`, style: `width: ${((p / best) * 100).toFixed(1)}%` }),
          el("div", { class: "p" }, `${(p * 100).toFixed(p >= 0.1 ? 1 : 2)}%`),
        ];
      }),
    );
  }

  private setStatus(text: string, kind: "" | "ready" | "error" = ""): void {
    this.status.textContent = text;
    this.status.className = `load-status ${kind}`;
  }

  private setBusy(busy: boolean, generating = false): void {
    this.busy = busy;
    for (const b of this.loadButtons) b.disabled = busy;
    this.generateButton.disabled = busy || !this.model;
    this.predictButton.disabled = busy || !this.model;
    // Stop takes Generate's place while a generation runs.
    this.generateButton.hidden = generating;
    this.stopButton.hidden = !generating;
  }
}

/** Token text with its whitespace visible; control tokens by their name. */
function visibleToken(text: string, piece: string | undefined): string {
  if (text === "" && piece) return piece;
  return text.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

/** Decode speed counts from the first token (its wait is the prompt's prefill, shown apart). */
function speedText(n: number, started: number, first: number, now: number): string {
  const ttft = `first token ${((first - started) / 1000).toFixed(2)} s`;
  if (n < 2 || now <= first) return `${n} token${n === 1 ? "" : "s"} · ${ttft}`;
  return `${n} tokens · ${((n - 1) / ((now - first) / 1000)).toFixed(1)} tokens/s · ${ttft}`;
}

function clampInt(text: string, lo: number, hi: number, fallback: number): number {
  const v = Math.floor(Number(text));
  return Number.isFinite(v) ? Math.min(Math.max(v, lo), hi) : fallback;
}

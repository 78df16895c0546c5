// `llmc info FILE.llm [--set k=v] [--json]`: the resolved config, the weight table and the
// parameter count of a model.

import { parseArgs } from "node:util";
import { checkFile } from "../../compiler/check/index.js";
import { parameterCount, type ResolvedModel, type WeightField } from "../../compiler/check/model.js";
import { formatScalar } from "../../compiler/check/scalar.js";
import type { CliIO } from "../io.js";
import { parseSetFlags, printDiagnostics, UsageError } from "./common.js";

export const infoUsage = `usage: llmc info FILE.llm [--set name=value]… [--model NAME] [--json]

Prints the model's resolved config, its weights (shape, GGUF name, HF name) and its parameter count.`;

export interface WeightRow {
  name: string;
  shape: number[];
  params: number;
  gguf: string | null;
  hf: string | null;
  transforms: string[];
  optional: boolean;
  tied_to: string | null;
}

export interface ModelInfo {
  model: string;
  extends: string[];
  params: number;
  config: Record<string, number | boolean | string | null>;
  weights: WeightRow[];
  kv_cache: { name: string; layers: number; max_seq_len: number; kv_heads: number; head_dim: number }[];
}

export function modelInfo(model: ResolvedModel): ModelInfo {
  const config: ModelInfo["config"] = {};
  for (const [n, e] of model.config) config[n] = e.value ? e.value.value : null;
  const rows: WeightRow[] = [];
  const row = (name: string, f: WeightField, index: number | null): WeightRow => {
    const sub = (p: string) => (index === null ? p : p.replace(/\{i\}/g, String(index)));
    return {
      name,
      shape: f.shape,
      params: f.tiedTo ? 0 : f.shape.reduce((a, b) => a * b, 1),
      gguf: f.tiedTo ? null : f.gguf ? sub(f.gguf.pattern) : null,
      hf: f.tiedTo ? null : f.hf ? sub(f.hf.pattern) : null,
      transforms: [...(f.hf?.transforms ?? []).map((t) => `hf |> ${t.name}(${t.args.map(formatScalar).join(", ")})`)],
      optional: f.optional,
      tied_to: f.tiedTo,
    };
  };
  for (const w of model.weights.values()) {
    if ("count" in w) {
      for (let i = 0; i < w.count; i++) for (const f of w.fields.values()) rows.push(row(`${w.name}.${i}.${f.name}`, f, i));
    } else rows.push(row(w.name, w, null));
  }
  return {
    model: model.name,
    extends: model.chain.slice(0, -1).map((m) => m.name.name).reverse(),
    params: parameterCount(model),
    config,
    weights: rows,
    kv_cache: [...model.state.values()].map((s) => ({ name: s.name, layers: s.layers, max_seq_len: s.maxSeqLen, kv_heads: s.heads, head_dim: s.headDim })),
  };
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

export async function runInfo(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: "string", multiple: true },
      model: { type: "string" },
      json: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("llmc info takes one .llm file", infoUsage);
  const res = checkFile(positionals[0]!, { overrides: parseSetFlags(values.set), requireConcrete: true, ...(values.model ? { model: values.model } : {}) });
  if (printDiagnostics(res.diagnostics, res.program.sources, io) > 0 || !res.model) return 1;
  const info = modelInfo(res.model);
  if (values.json) {
    io.out(JSON.stringify(info, null, 2) + "\n");
    return 0;
  }
  const lines: string[] = [];
  lines.push(`model ${info.model}${info.extends.length ? ` (extends ${info.extends.join(" → ")})` : ""}`);
  lines.push(`parameters: ${formatCount(info.params)}`);
  lines.push("", "config:");
  const width = Math.max(...Object.keys(info.config).map((k) => k.length));
  for (const [n, e] of res.model.config) {
    const v = e.value ? formatScalar(e.value) : "(none)";
    lines.push(`  ${n.padEnd(width)}  ${v}${e.setBy === "default" ? "" : `   (${e.setBy === "--set" ? "--set" : "set by " + modelThatSet(res.model, n)})`}`);
  }
  for (const s of info.kv_cache) {
    const bytesPerToken = s.layers * s.kv_heads * s.head_dim * 2 * 4;
    lines.push("", `state ${s.name}: KV cache [${s.layers} layers, ${s.max_seq_len} positions, ${s.kv_heads} heads, ${s.head_dim}] — ${formatCount(bytesPerToken)} bytes per token at f32`);
  }
  lines.push("", "weights:");
  // Per-layer weights repeat: show layer 0 and the last layer unless --all.
  const groups = new Map<string, number>();
  for (const w of res.model.weights.values()) if ("count" in w) groups.set(w.name, w.count);
  const shown = info.weights.filter((r) => {
    if (values.all) return true;
    const m = /^([^.]+)\.(\d+)\./.exec(r.name);
    if (!m) return true;
    const i = Number(m[2]);
    return i === 0 || i === groups.get(m[1]!)! - 1;
  });
  const header = ["name", "shape", "params", "gguf", "hf"];
  const table = shown.map((r) => [
    r.name,
    `[${r.shape.join(", ")}]`,
    r.tied_to ? `tied to ${r.tied_to}` : formatCount(r.params),
    r.gguf ?? "-",
    (r.hf ?? "-") + (r.transforms.length ? `  ${r.transforms.map((t) => t.replace(/^hf /, "")).join(" ")}` : "") + (r.optional ? "  (optional)" : ""),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]) => "  " + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  lines.push(fmtRow(header));
  let lastLayer = -1;
  for (const r of table) {
    const m = /^[^.]+\.(\d+)\./.exec(r[0]!);
    const layer = m ? Number(m[1]) : -1;
    if (!values.all && layer > 0 && lastLayer === 0) lines.push(`  … layers 1 to ${layer - 1} repeat layer 0 (--all lists them)`);
    lastLayer = layer;
    lines.push(fmtRow(r));
  }
  io.out(lines.join("\n") + "\n");
  return 0;
}

function modelThatSet(model: ResolvedModel, name: string): string {
  for (let i = model.chain.length - 1; i >= 0; i--) {
    const m = model.chain[i]!;
    for (const mem of m.members) if (mem.kind === "Config" && mem.items.some((it) => it.kind === "ConfigParam" && it.name.name === name && !it.type)) return m.name.name;
  }
  return model.name;
}

// Small models of every bundled architecture, and a Hugging Face checkpoint writer written from
// llama.cpp's conversion rules rather than from llmc's transform code, so the loader is checked
// against an independent statement of what a checkpoint looks like.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compileFile, type Compiled } from "../../src/compiler/compile.js";
import type { ResolvedModel } from "../../src/compiler/check/model.js";
import { modelTensors, type ModelTensor } from "../../src/runtime/weights/model-tensors.js";
import { writeSafetensors, type SafetensorsTensorInput } from "../../src/runtime/weights/safetensors.js";

export type Config = Record<string, number | string | boolean>;

/** Tiny but complete: GQA, every row a multiple of 32 (so q8_0/q4_0 apply), a vocabulary with byte tokens. */
export const SMALL: Record<"llama" | "qwen2" | "gemma" | "mistral", Config> = {
  llama: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 },
  qwen2: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 },
  // head_dim 16 ≠ dim / n_heads = 32, and multi-query attention, as Gemma 2B
  gemma: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 2, n_kv_heads: 1, head_dim: 16, ffn_dim: 96, max_seq_len: 32 },
  mistral: { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32, sliding_window: 4 },
};

export function compileModel(file: string, cfg: Config): Compiled {
  const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
  const res = compileFile(file.endsWith(".llm") ? file : join("models", `${file}.llm`), { overrides });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || !res.compiled) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled;
}

/**
 * llama.cpp's `permute` (convert_hf_to_gguf.py), HF → GGUF row order, transcribed literally:
 * w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols).
 * Returns, for each output row, the input row it comes from.
 */
export function llamaCppPermuteRows(rows: number, nHead: number): number[] {
  const half = rows / nHead / 2;
  const from: number[] = [];
  // after swapaxes(1, 2) the shape is (n_head, half, 2, cols), read in C order
  for (let h = 0; h < nHead; h++) for (let j = 0; j < half; j++) for (let a = 0; a < 2; a++) from.push(h * 2 * half + a * half + j);
  return from;
}

/** Rows of `values` ([rows, cols] or [rows]) so that out[r] = values[from[r]]. */
export function gatherRows(values: Float32Array, rows: number, from: number[]): Float32Array {
  const cols = values.length / rows;
  const out = new Float32Array(values.length);
  from.forEach((src, r) => out.set(values.subarray(src * cols, (src + 1) * cols), r * cols));
  return out;
}

/** The HF checkpoint form of IR values: the inverse of llama.cpp's permute on tensors the .llm marks rope_permute. */
export function toHfOrder(t: ModelTensor, values: Float32Array): Float32Array {
  let v = values;
  for (const tr of t.field.hf?.transforms ?? []) {
    if (tr.name === "rows") continue; // writeHfCheckpoint concatenates the parts
    if (tr.name !== "rope_permute") throw new Error(`test helper: unexpected hf transform ${tr.name}`);
    const rows = t.shape[0]!;
    const from = llamaCppPermuteRows(rows, tr.args[0]!.value as number);
    const inverse = new Array<number>(rows);
    from.forEach((src, r) => (inverse[src] = r));
    v = gatherRows(v, rows, inverse);
  }
  return v;
}

export function hfName(t: ModelTensor): string {
  return t.field.hf!.pattern.replace(/\{i\}/g, String(t.layer));
}

/**
 * Writes a Hugging Face checkpoint directory (config.json, and model.safetensors or `shards` shards
 * with model.safetensors.index.json) holding the given IR values.
 */
export async function writeHfCheckpoint(
  model: ResolvedModel,
  dir: string,
  values: (irName: string) => Float32Array,
  opts: { dtype?: "f32" | "f16" | "bf16"; shards?: number } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify({ model_type: model.chain[0]!.name.name }));
  // A fused checkpoint tensor (Phi-3's qkv_proj, gate_up_proj) is its parts stacked along rows,
  // in the order of their rows(start, …).
  const byName = new Map<string, ModelTensor[]>();
  for (const t of modelTensors(model)) byName.set(hfName(t), [...(byName.get(hfName(t)) ?? []), t]);
  const start = (t: ModelTensor) => (t.field.hf!.transforms[0]?.name === "rows" ? (t.field.hf!.transforms[0]!.args[0]!.value as number) : 0);
  const tensors: SafetensorsTensorInput[] = [...byName].map(([name, parts]) => {
    parts.sort((a, b) => start(a) - start(b));
    const data = parts.map((t) => toHfOrder(t, values(t.irName)));
    const stacked = new Float32Array(data.reduce((n, d) => n + d.length, 0));
    data.reduce((at, d) => (stacked.set(d, at), at + d.length), 0);
    return { name, shape: [parts.reduce((n, t) => n + t.shape[0]!, 0), ...parts[0]!.shape.slice(1)], dtype: opts.dtype ?? "f32", data: stacked };
  });
  const shards = opts.shards ?? 1;
  if (shards === 1) {
    await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const part = tensors.filter((_, i) => i % shards === s);
    for (const t of part) weightMap[t.name] = file;
    await writeSafetensors(join(dir, file), part, { format: "pt" });
  }
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// A generation task: prompts with reference outputs, one JSON object per line
// ({"prompt": "…", "references": ["…", …]} or {"prompt": "…", "reference": "…"}). The model continues
// each prompt (greedy, or by beam search) and the outputs are scored against the references.

import { InputError } from "../runtime/generate/errors.js";
import type { Model, ModelGenerateOptions } from "../runtime/model.js";

export interface TaskItem {
  prompt: string;
  references: string[];
}

/** The items of a JSONL task file; `file` names it in errors, with the line. Blank lines are skipped. */
export function parseTask(text: string, file: string): TaskItem[] {
  const items: TaskItem[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InputError(`${where}: not a JSON object: ${(e as Error).message}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InputError(`${where}: each line must be a JSON object with "prompt" and "references"`);
    const o = value as Record<string, unknown>;
    if (typeof o["prompt"] !== "string") throw new InputError(`${where}: "prompt" must be a string`);
    const refs = o["references"] ?? (o["reference"] === undefined ? undefined : [o["reference"]]);
    if (!Array.isArray(refs) || refs.length === 0 || refs.some((r) => typeof r !== "string")) {
      throw new InputError(`${where}: give "references" (a non-empty array of strings) or "reference" (a string)`);
    }
    items.push({ prompt: o["prompt"], references: refs as string[] });
  });
  if (items.length === 0) throw new InputError(`${file}: no items (expected one JSON object per line)`);
  return items;
}

export interface TaskOptions {
  /** The most tokens per output. Default generate's. */
  maxTokens?: number;
  /** Beam search with this many beams; default greedy decoding. */
  beams?: number;
  lengthPenalty?: number;
  /** Told after each item: items done, of how many. */
  onItem?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** The model's output for each item's prompt: greedy, or the best beam. */
export async function generateOutputs(model: Pick<Model, "generate">, items: readonly TaskItem[], opts: TaskOptions = {}): Promise<string[]> {
  const generate: ModelGenerateOptions = {
    beams: opts.beams ?? 1,
    ...(opts.lengthPenalty !== undefined ? { lengthPenalty: opts.lengthPenalty } : {}),
    ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const outputs: string[] = [];
  for (const item of items) {
    let text = "";
    for await (const t of model.generate(item.prompt, generate)) text += t.text;
    outputs.push(text);
    opts.onItem?.(outputs.length, items.length);
  }
  return outputs;
}

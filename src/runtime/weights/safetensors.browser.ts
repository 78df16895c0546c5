// Safetensors checkpoints are folders of files (config.json, tokenizer.json, shards): llmc reads
// them in Node. In a browser a model is one GGUF file, so these entries only say so.

import { WeightFileError } from "./errors.js";
import type { SafetensorsReader } from "./safetensors.js";

export type { SafetensorsReader } from "./safetensors.js";

export const SAFETENSORS_INDEX = "model.safetensors.index.json";

const nodeOnly = (path: string) => new WeightFileError(path, "safetensors checkpoints are read in Node only", { hint: "In a browser, load a GGUF file" });

export async function isDirectory(): Promise<boolean> {
  return false;
}

export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  throw nodeOnly(path);
}

export async function openSafetensorsIndex(path: string): Promise<SafetensorsReader> {
  throw nodeOnly(path);
}

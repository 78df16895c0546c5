// A browser has no file paths: weights come as bytes, a Blob or a URL (src/web/weights.ts), so every
// path-based entry says so.

import type { ByteSource } from "./byte-source.js";
import { WeightFileError } from "./errors.js";

const noPaths = (path: string) => new WeightFileError(path, "cannot be opened by path in a browser", { hint: "Pass the weights as an ArrayBuffer, a Blob or a URL" });

export async function openWeightFile(path: string): Promise<never> {
  throw noPaths(path);
}

export async function openFileSource(path: string): Promise<ByteSource> {
  throw noPaths(path);
}

export async function pathKind(path: string): Promise<"file" | "directory" | { error: string; missing: boolean }> {
  return { error: `${path} cannot be opened by path in a browser`, missing: true };
}

export async function fileHead(path: string): Promise<Uint8Array> {
  throw noPaths(path);
}

export async function readTextIfExists(): Promise<string | null> {
  return null;
}

export async function directoryEntries(): Promise<string[]> {
  return [];
}

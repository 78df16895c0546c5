// The one error type of the weight-file layer. Every message names the file, the tensor or metadata
// key when there is one, what is wrong, and what the user can do about it, so the CLI can print it
// as is, without a stack trace.

import { open, type FileHandle } from "node:fs/promises";

export interface WeightFileErrorDetails {
  tensor?: string;
  key?: string; // a metadata key
  hint?: string; // what to do about it
  cause?: unknown;
}

export class WeightFileError extends Error {
  override readonly name = "WeightFileError";
  readonly file: string;
  readonly tensor: string | undefined;
  readonly key: string | undefined;
  readonly problem: string;
  readonly hint: string | undefined;

  constructor(file: string, problem: string, details: WeightFileErrorDetails = {}) {
    const where = [file];
    if (details.tensor !== undefined) where.push(`tensor "${details.tensor}"`);
    if (details.key !== undefined) where.push(`metadata key "${details.key}"`);
    const sentence = (s: string) => (/[.!?]$/.test(s) ? s : `${s}.`);
    const message = `${where.join(": ")}: ${sentence(problem)}${details.hint ? ` ${sentence(details.hint)}` : ""}`;
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = file;
    this.tensor = details.tensor;
    this.key = details.key;
    this.problem = problem;
    this.hint = details.hint;
  }
}

/**
 * Opens a weight file and reads its header with `readHeader`; an unopenable file becomes a
 * WeightFileError, and the handle is closed if the header is bad.
 */
export async function openWeightFile<T>(path: string, readHeader: (path: string, handle: FileHandle) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const problem = code === "ENOENT" ? "no such file" : `cannot open the file (${(cause as Error).message})`;
    throw new WeightFileError(path, problem, { hint: "Check the path to the weight file", cause });
  }
  try {
    return await readHeader(path, handle);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

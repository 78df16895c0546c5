// Weight files on disk (Node): opening a path as a ByteSource, and the checks before a header is
// read. A browser has no paths (file.browser.ts); it gives bytes, a Blob or a URL instead.

import { open, readdir, readFile, stat, type FileHandle } from "node:fs/promises";
import type { ByteSource } from "./byte-source.js";
import { WeightFileError } from "./errors.js";

const READ_CHUNK = 1 << 30; // fs reads are limited to 2 GiB - 1 per call

/** Opens `path` and runs `readHeader` on it; the handle is closed if that throws. */
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

/** A regular file as a ByteSource; `what` says which kind of file the user should give instead. */
export async function openFileSource(path: string, what: string): Promise<ByteSource> {
  return openWeightFile(path, async (p, handle) => {
    const st = await handle.stat();
    if (!st.isFile()) throw new WeightFileError(p, "is not a regular file", { hint: `Give the path of ${what}` });
    return {
      size: st.size,
      read: async (position, length) => {
        const into = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(into, done, Math.min(length - done, READ_CHUNK), position + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done === length ? into : into.subarray(0, done);
      },
      close: () => handle.close(),
    };
  });
}

/** "file", "directory", or the error's message (ENOENT as "no such file or directory"). */
export async function pathKind(path: string): Promise<"file" | "directory" | { error: string; missing: boolean }> {
  try {
    return (await stat(path)).isDirectory() ? "directory" : "file";
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    return { error: missing ? "no such file or directory" : (e as Error).message, missing };
  }
}

/** The first `n` bytes of a file (fewer when it is shorter). */
export async function fileHead(path: string, n: number): Promise<Uint8Array> {
  const h = await open(path, "r");
  try {
    const head = new Uint8Array(n);
    const { bytesRead } = await h.read(head, 0, n, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}

/** The file's text, or null when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** The names in a directory, sorted; empty when it cannot be listed. */
export async function directoryEntries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

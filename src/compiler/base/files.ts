// The compiler's view of the file system: reading .llm sources and listing the bundled models. In
// Node it is the real one; in a browser (files.browser.ts, chosen by scripts/build-web.mjs) it is
// the bundled models embedded at build time plus the files a caller passes in memory.

import { readdirSync, readFileSync, statSync } from "node:fs";

export { basename, dirname, extname, isAbsolute, join, relative, resolve } from "node:path";

export function workingDirectory(): string {
  return process.cwd();
}

/** The file's text, or an Error saying why it cannot be had (`maxBytes`: larger files are refused). */
export function readSourceFile(path: string, maxBytes: number): string | Error {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return new Error("it is a directory");
    if (st.size > maxBytes) return new Error(`it is ${st.size} bytes; .llm files are limited to ${maxBytes}`);
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return new Error(code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String((e as Error).message));
  }
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Names of the files directly in `dir` that end with `ext`, sorted. */
export function filesIn(dir: string, ext: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(ext)).sort();
}

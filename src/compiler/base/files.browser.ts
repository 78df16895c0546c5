// The compiler's file system in a browser: the bundled models (models/**/*.llm, embedded at build
// time) under /llmc/models, and the files a caller passes with `overlay` (compileModel puts them
// under /llmc). POSIX paths only; the working directory is /llmc, so diagnostics name
// "models/std/nn.llm" and the caller's own paths.

import { models } from "llmc:embedded";
import { bundledModelsDir, packageRoot } from "../../paths.js";

const bundled = new Map(Object.entries(models).map(([path, text]) => [`${bundledModelsDir()}/${path}`, text]));

export function workingDirectory(): string {
  return packageRoot();
}

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** `.` and `..` resolved, no empty segments; always absolute. */
function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

export function resolve(...paths: string[]): string {
  let joined = workingDirectory();
  for (const p of paths) joined = isAbsolute(p) ? p : `${joined}/${p}`;
  return normalize(joined);
}

export function join(...paths: string[]): string {
  const joined = paths.filter((p) => p !== "").join("/");
  return isAbsolute(joined) ? normalize(joined) : normalize(joined).slice(1) || ".";
}

export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (isAbsolute(path) ? "/" : ".") : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function extname(path: string): string {
  const base = basename(path);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot) : "";
}

export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}

export function readSourceFile(path: string, maxBytes: number): string | Error {
  const text = bundled.get(resolve(path));
  if (text === undefined) return new Error("no such file (in a browser, pass the files a model imports to compileModel's `files`)");
  return text.length > maxBytes ? new Error(`it is ${text.length} characters; .llm files are limited to ${maxBytes}`) : text;
}

export function isFile(path: string): boolean {
  return bundled.has(resolve(path));
}

export function filesIn(dir: string, ext: string): string[] {
  const prefix = `${resolve(dir)}/`;
  return [...bundled.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/") && p.endsWith(ext)).map((p) => p.slice(prefix.length)).sort();
}

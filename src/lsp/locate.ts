// Between the editor's coordinates and the compiler's: LSP positions (0-based line and UTF-16
// character) and file URIs on one side, spans (1-based line/column, display paths) and AST nodes on
// the other.

import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Position, Range } from "vscode-languageserver";
import type * as A from "../compiler/parse/ast.js";

/** The absolute path of a span's file (spans name files by display path, relative to the working directory). */
export function absPath(displayFile: string): string {
  return resolve(displayFile);
}

export function uriOf(displayFile: string): string {
  return pathToFileURL(absPath(displayFile)).href;
}

export function pathOf(uri: string): string | null {
  return uri.startsWith("file:") ? fileURLToPath(uri) : null;
}

export function rangeOf(span: A.Span): Range {
  return {
    start: { line: span.start.line - 1, character: span.start.column - 1 },
    end: { line: span.end.line - 1, character: span.end.column - 1 },
  };
}

/** The character offset of an LSP position in a text (clamped to the text, as TextDocument does). */
export function offsetAt(text: string, pos: Position): number {
  let lineStart = 0;
  for (let line = 0; line < pos.line; line++) {
    const nl = text.indexOf("\n", lineStart);
    if (nl < 0) return text.length;
    lineStart = nl + 1;
  }
  const lineEnd = text.indexOf("\n", lineStart);
  return Math.min(lineStart + pos.character, lineEnd < 0 ? text.length : lineEnd);
}

/** Any AST node: every node has a kind and a span. */
export interface Node {
  kind: string;
  span: A.Span;
}

function isNode(v: unknown): v is Node {
  return typeof v === "object" && v !== null && typeof (v as Node).kind === "string" && typeof (v as Node).span === "object";
}

/** The children of a node, whatever its kind (so a field added to the AST is walked without change here). */
export function childrenOf(node: object): Node[] {
  const out: Node[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === "span" || key === "comments" || value === null || typeof value !== "object") continue;
    for (const child of Array.isArray(value) ? (value as unknown[]) : [value]) if (isNode(child)) out.push(child);
  }
  return out;
}

const contains = (span: A.Span, offset: number) => span.start.offset <= offset && offset <= span.end.offset;

/**
 * The nodes whose spans hold the offset, outermost first. A cursor just after a word still touches
 * it; of two touching siblings the later (the one the cursor is inside or before) wins.
 */
export function pathAt(module: A.Module, offset: number): Node[] {
  const path: Node[] = [module];
  let cur: Node = module;
  for (;;) {
    const kids = childrenOf(cur).filter((c) => contains(c.span, offset));
    const next = kids.length > 0 ? kids[kids.length - 1]! : undefined;
    if (!next) return path;
    path.push(next);
    cur = next;
  }
}

/** Every node under `root` (root included), depth first. */
export function* walk(root: Node): Generator<Node> {
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    yield n;
    const kids = childrenOf(n);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
  }
}

export function innermost<K extends Node["kind"]>(path: Node[], kind: K): (Node & { kind: K }) | null {
  for (let i = path.length - 1; i >= 0; i--) if (path[i]!.kind === kind) return path[i] as Node & { kind: K };
  return null;
}

/** The identifier-shaped word around an offset in a text, with where it starts. */
export function wordAt(text: string, offset: number): { word: string; start: number } {
  let start = offset;
  while (start > 0 && /[A-Za-z0-9_]/.test(text[start - 1]!)) start--;
  let end = offset;
  while (end < text.length && /[A-Za-z0-9_]/.test(text[end]!)) end++;
  return { word: text.slice(start, end), start };
}

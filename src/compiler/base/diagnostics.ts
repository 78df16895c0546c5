// Diagnostics shared by every phase: a code, a message and the source span it is about, printed as
// `file:line:col: error[CODE]: message` with a code frame. Phases collect them instead of throwing,
// so one run reports every error it can find.

/** A place in a source file. */
export interface Position {
  offset: number; // 0-based character offset
  line: number; // 1-based
  column: number; // 1-based
}

/** A range of source text. */
export interface Span {
  file: string;
  start: Position;
  end: Position; // exclusive
}

export type Severity = "error" | "warning" | "note";

export interface Diagnostic {
  severity: Severity;
  code: string; // e.g. "E0201"; the table in docs/diagnostics.md explains each
  message: string;
  span: Span | null; // null for errors about no particular place (a missing file given on the command line)
  notes?: { message: string; span: Span | null }[];
}

export function error(code: string, message: string, span: Span | null, notes?: Diagnostic["notes"]): Diagnostic {
  return notes ? { severity: "error", code, message, span, notes } : { severity: "error", code, message, span };
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === "error");
}

/** Source texts by file name, for code frames. */
export type SourceMap = ReadonlyMap<string, string>;

/** One lookup; for many in the same text build a LineIndex, which does not rescan from the start. */
export function positionAt(text: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

/**
 * Line starts of one text, found once, so each position is a binary search: a file's diagnostics and
 * comments cost O(n + k log n) instead of O(n·k). Only `\n` ends a line, as in positionAt.
 */
export class LineIndex {
  private readonly starts: number[] = [0];
  private readonly length: number;

  constructor(text: string) {
    this.length = text.length;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  position(offset: number): Position {
    const clamped = Math.min(offset, this.length);
    // The last line start at or before the offset.
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= clamped) lo = mid;
      else hi = mid - 1;
    }
    return { offset, line: lo + 1, column: offset - this.starts[lo]! + 1 };
  }

  span(file: string, start: number, end: number): Span {
    return { file, start: this.position(start), end: this.position(end) };
  }
}

const TAB_WIDTH = 4;

/** Renders one diagnostic: the header line, a code frame with a caret underline, then its notes. */
export function formatDiagnostic(d: Diagnostic, sources: SourceMap, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sevColor = d.severity === "error" ? "1;31" : d.severity === "warning" ? "1;33" : "1;36";
  const where = d.span ? `${d.span.file}:${d.span.start.line}:${d.span.start.column}: ` : "";
  const lines = [`${paint("1", where)}${paint(sevColor, `${d.severity}[${d.code}]`)}: ${d.message}`];
  if (d.span) lines.push(...codeFrame(d.span, sources, paint));
  for (const n of d.notes ?? []) {
    const nwhere = n.span ? `${n.span.file}:${n.span.start.line}:${n.span.start.column}: ` : "";
    lines.push(`${nwhere}${paint("1;36", "note")}: ${n.message}`);
    if (n.span) lines.push(...codeFrame(n.span, sources, paint));
  }
  return lines.join("\n");
}

function codeFrame(span: Span, sources: SourceMap, paint: (c: string, s: string) => string): string[] {
  const text = sources.get(span.file);
  if (text === undefined) return [];
  const srcLines = text.split("\n");
  const lineNo = span.start.line;
  const line = srcLines[lineNo - 1];
  if (line === undefined) return [];
  const gutter = String(lineNo).length;
  const shown = line.replace(/\t/g, " ".repeat(TAB_WIDTH)).replace(/\r$/, "");
  // Column in the tab-expanded line.
  const prefix = line.slice(0, span.start.column - 1);
  const col = prefix.replace(/\t/g, " ".repeat(TAB_WIDTH)).length;
  const sameLine = span.end.line === lineNo;
  const width = Math.max(1, sameLine ? span.end.column - span.start.column : shown.length - col);
  const pad = " ".repeat(gutter);
  const clipped = shown.length > 200 ? shown.slice(0, 200) + " …" : shown;
  return [
    `${pad} |`,
    `${paint("1;34", String(lineNo))} | ${clipped}`,
    `${pad} | ${" ".repeat(Math.min(col, 200))}${paint("1;31", "^".repeat(Math.min(width, Math.max(1, 200 - col))))}`,
  ];
}

/** Sorts by file, then position, so output is stable whatever order phases found them in. */
export function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return [...diags].sort((a, b) => {
    if (!a.span || !b.span) return a.span ? 1 : b.span ? -1 : 0;
    if (a.span.file !== b.span.file) return a.span.file < b.span.file ? -1 : 1;
    return a.span.start.offset - b.span.start.offset;
  });
}

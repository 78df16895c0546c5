// The documents open in the editor and what the checker makes of them. Each open document is checked
// as a root file with every open document's text overlaid on the disk (an unsaved import is checked
// as it stands in the editor). Diagnostics go to the file their span names, merged over the roots
// that reach it, so an error in an imported file shows in that file.

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DiagnosticSeverity, type Diagnostic as LspDiagnostic, type TextDocuments } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type * as A from "../compiler/parse/ast.js";
import type { Diagnostic } from "../compiler/base/diagnostics.js";
import { Analysis } from "./analysis.js";
import { absPath, pathOf, rangeOf } from "./locate.js";

export class Workspace {
  private readonly analyses = new Map<string, { an: Analysis; generation: number }>();
  /** The last module of each document that parsed without errors: completion's scope while a line is half-typed. */
  private readonly lastParsed = new Map<string, A.Module>();
  private readonly published = new Set<string>();
  /** Bumped on every edit, open and close: any of them can change what any root's check says. */
  private generation = 0;

  constructor(private readonly documents: TextDocuments<TextDocument>) {}

  changed(): void {
    this.generation++;
  }

  closed(uri: string): void {
    this.analyses.delete(uri);
    this.lastParsed.delete(uri);
    this.generation++;
  }

  /** The file path a document is checked under (an unsaved, untitled one gets a name of its own). */
  pathOf(uri: string): string {
    return pathOf(uri) ?? resolve(`untitled-${encodeURIComponent(uri)}.llm`);
  }

  /** The URI of a file as spans name it: the open document's, when there is one. */
  uriOf(displayFile: string): string {
    const abs = absPath(displayFile);
    for (const d of this.documents.all()) if (this.pathOf(d.uri) === abs) return d.uri;
    return pathToFileURL(abs).href;
  }

  /** The check of a document as a root, up to date with every open document. */
  analysis(uri: string): Analysis | null {
    const doc = this.documents.get(uri);
    if (!doc) return null;
    const cached = this.analyses.get(uri);
    if (cached && cached.generation === this.generation) return cached.an;
    const overlay = new Map(this.documents.all().map((d) => [this.pathOf(d.uri), d.getText()]));
    const an = new Analysis(this.pathOf(uri), overlay);
    this.analyses.set(uri, { an, generation: this.generation });
    const mod = an.module(this.pathOf(uri));
    if (mod && !an.result.program.parseFailed.has(an.result.program.root)) this.lastParsed.set(uri, mod);
    return an;
  }

  /** The module completion should read: the current one if it parsed, else the last that did. */
  moduleForCompletion(uri: string, an: Analysis): A.Module | null {
    const current = an.module(this.pathOf(uri));
    if (current && !an.result.program.parseFailed.has(an.result.program.root)) return current;
    return this.lastParsed.get(uri) ?? current ?? null;
  }

  /** Types recorded at a place by any open document's check (an architecture's shapes come from a file that binds its config). */
  shapesAt(key: string): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const doc of this.documents.all()) {
      const an = this.analysis(doc.uri);
      for (const [model, types] of an?.shapes.get(key) ?? []) {
        const set = out.get(model) ?? new Set<string>();
        for (const t of types) set.add(t);
        out.set(model, set);
      }
    }
    return out;
  }

  /** Checks every open document; the diagnostics of every file they reach, by URI (empty for files whose errors went away). */
  diagnostics(): Map<string, LspDiagnostic[]> {
    const byUri = new Map<string, { list: LspDiagnostic[]; seen: Set<string> }>();
    const add = (uri: string, d: Diagnostic, lsp: LspDiagnostic) => {
      const entry = byUri.get(uri) ?? { list: [], seen: new Set<string>() };
      byUri.set(uri, entry);
      const key = `${d.code}|${d.span?.start.offset ?? -1}|${d.message}`;
      if (!entry.seen.has(key)) {
        entry.seen.add(key);
        entry.list.push(lsp);
      }
    };
    for (const doc of this.documents.all()) {
      const an = this.analysis(doc.uri);
      if (!an) continue;
      byUri.set(doc.uri, byUri.get(doc.uri) ?? { list: [], seen: new Set() });
      for (const d of an.result.diagnostics) add(d.span ? this.uriOf(d.span.file) : doc.uri, d, this.toLsp(d));
    }
    const out = new Map<string, LspDiagnostic[]>();
    for (const uri of this.published) if (!byUri.has(uri)) out.set(uri, []);
    this.published.clear();
    for (const [uri, { list }] of byUri) {
      out.set(uri, list);
      if (list.length > 0) this.published.add(uri);
    }
    return out;
  }

  private toLsp(d: Diagnostic): LspDiagnostic {
    const spanless = (d.notes ?? []).filter((n) => !n.span).map((n) => `\nnote: ${n.message}`);
    const related = (d.notes ?? []).filter((n) => n.span).map((n) => ({ location: { uri: this.uriOf(n.span!.file), range: rangeOf(n.span!) }, message: n.message }));
    return {
      range: d.span ? rangeOf(d.span) : { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
      severity: d.severity === "error" ? DiagnosticSeverity.Error : d.severity === "warning" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
      code: d.code,
      source: "llmc",
      message: d.message + spanless.join(""),
      ...(related.length > 0 ? { relatedInformation: related } : {}),
    };
  }
}

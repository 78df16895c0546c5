// The .llm editor: CodeMirror 6 with the .llm highlighter and the compiler's diagnostics as lint
// markers. The lint source is the compile: CodeMirror's linter already debounces edits, and every
// compile also feeds the panels, so there is one compile per pause in typing.

import { EditorState } from "@codemirror/state";
import { EditorView, drawSelection, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from "@codemirror/view";
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { linter, lintGutter, type Diagnostic as LintDiagnostic } from "@codemirror/lint";
import type { Text } from "@codemirror/state";
import type { WebDiagnostic } from "../src/web/index.js";
import { llmHighlight, llmLanguage } from "./llm-language.js";

/** A compiler diagnostic as the web entry reports it: 1-based lines and columns, end exclusive. */
export type SourceDiagnostic = WebDiagnostic;

/** Compiles the text and returns the diagnostics that belong in this editor's file. */
export type LintCompile = (source: string) => readonly SourceDiagnostic[];

/** How long typing must pause before a recompile. */
export const LINT_DELAY_MS = 300;

export function createEditor(parent: HTMLElement, doc: string, compile: LintCompile): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        history(),
        indentOnInput(),
        indentUnit.of("  "),
        bracketMatching(),
        llmLanguage,
        syntaxHighlighting(llmHighlight),
        lintGutter(),
        linter((view) => compile(view.state.doc.toString()).map((d) => toLint(view.state.doc, d)), { delay: LINT_DELAY_MS }),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorView.contentAttributes.of({ "aria-label": ".llm source", spellcheck: "false" }),
      ],
    }),
  });
}

/** Replaces the whole document (a model picked from the list); the linter reruns on the change. */
export function setDocument(view: EditorView, text: string): void {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, selection: { anchor: 0 } });
  view.scrollDOM.scrollTop = 0;
}

/** Moves the cursor to a 1-based line and column and shows it. */
export function revealPosition(view: EditorView, line: number, column: number): void {
  const pos = offsetOf(view.state.doc, line, column);
  view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
  view.focus();
}

function toLint(doc: Text, d: SourceDiagnostic): LintDiagnostic {
  const from = offsetOf(doc, d.line, d.column);
  let to = d.endLine !== undefined ? offsetOf(doc, d.endLine, d.endColumn ?? d.column) : from;
  // A diagnostic at one point (an inserted token) still needs a character to underline.
  if (to <= from) to = Math.min(from + 1, doc.line(Math.min(Math.max(d.line, 1), doc.lines)).to);
  return {
    from,
    to: Math.max(from, to),
    severity: d.severity,
    message: d.message,
    ...(d.code ? { source: d.code } : {}),
  };
}

/** The document offset of a 1-based line and column, clamped into the document. */
function offsetOf(doc: Text, line: number, column: number): number {
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  return Math.min(l.from + Math.max(column - 1, 0), l.to);
}

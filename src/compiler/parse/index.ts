// Parse one .llm source text: lex → parse (one reused parser instance) → AST, collecting diagnostics.

import type { IToken, IRecognitionException } from "chevrotain";
import type * as A from "./ast.js";
import { llmLexer, LParen, LSquare, LCurly, RParen, RSquare, RCurly } from "./lexer.js";
import { parser } from "./parser.js";
import { AstBuilder } from "./to-ast.js";
import { error, LineIndex, type Diagnostic } from "../base/diagnostics.js";

export type * from "./ast.js";

/** Deeper nesting than this is refused before parsing, so a pathological file cannot exhaust the stack. */
export const MAX_NESTING = 64;

export interface ParseResult {
  module: A.Module;
  diagnostics: Diagnostic[];
}

export function parseModule(file: string, text: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lines = new LineIndex(text);
  const lexed = llmLexer.tokenize(text);

  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + Math.max(1, e.length));
    const shown = JSON.stringify(ch.length > 20 ? ch.slice(0, 20) + "…" : ch);
    diagnostics.push(error("E0001", `unexpected character ${shown}`, lines.span(file, e.offset, e.offset + Math.max(1, e.length))));
  }
  for (const t of (lexed.groups["invalid"] ?? []) as IToken[]) {
    const what = t.tokenType.name === "UnterminatedComment" ? "block comment is never closed (missing '*/')" : 'string is never closed (missing \'"\' on this line)';
    diagnostics.push(error("E0002", what, lines.span(file, t.startOffset, t.startOffset + Math.min(2, t.image.length))));
  }
  const comments: A.Comment[] = ((lexed.groups["comments"] ?? []) as IToken[]).map((t) => ({
    kind: "Comment",
    text: t.image,
    span: lines.span(file, t.startOffset, t.startOffset + t.image.length),
  }));

  const emptyModule: A.Module = { kind: "Module", file, imports: [], items: [], comments, span: lines.span(file, 0, text.length) };
  const tooDeep = findExcessiveNesting(lexed.tokens);
  if (tooDeep) {
    diagnostics.push(
      error("E0003", `brackets are nested more than ${MAX_NESTING} deep; split the expression with intermediate bindings`, lines.span(file, tooDeep.startOffset, tooDeep.startOffset + 1)),
    );
    return { module: emptyModule, diagnostics };
  }

  parser.input = lexed.tokens;
  let module: A.Module;
  try {
    const cst = parser.module();
    for (const e of parser.errors) diagnostics.push(syntaxError(file, text, lines, e, lexed.tokens));
    module = cst ? new AstBuilder(file, diagnostics).module(cst, comments) : emptyModule;
  } catch (e) {
    // Long chains of right-recursive operators (`- - - x`, `a ** b ** …`, `a ? b : c ? …`) can
    // exhaust the stack without any bracket; the parser is reset by the next `parser.input =`.
    if (!(e instanceof RangeError)) throw e;
    const at = parser.nextToken();
    const offset = Number.isFinite(at?.startOffset) && at.tokenType.name !== "EOF" ? at.startOffset : 0;
    diagnostics.push(error("E0003", "this expression nests too deeply to parse; split it with intermediate bindings", lines.span(file, offset, offset + (at?.image.length || 0))));
    return { module: emptyModule, diagnostics };
  }
  const tooDeepExpr = findExcessiveDepth(module);
  if (tooDeepExpr) {
    const start = tooDeepExpr.span.start.offset;
    diagnostics.push(error("E0003", `expressions are nested more than ${MAX_DEPTH} deep (counting operators); split them with intermediate bindings`, lines.span(file, start, start + 1)));
    return { module: emptyModule, diagnostics };
  }
  return { module, diagnostics };
}

/**
 * Nodes nested deeper than this are refused, so later phases can recurse over the tree: a chain
 * like `a + a + … + a` parses without recursion but builds a tree as deep as it is long.
 */
export const MAX_DEPTH = 1000;

/** A node nested deeper than MAX_DEPTH (the start of a long chain), found without recursion. */
function findExcessiveDepth(module: A.Module): { span: A.Span } | null {
  const stack: { node: object; depth: number }[] = [{ node: module, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    for (const [key, value] of Object.entries(node)) {
      if (key === "span" || key === "pathSpan" || key === "patternSpan" || value === null || typeof value !== "object") continue;
      for (const child of Array.isArray(value) ? (value as unknown[]) : [value]) {
        if (child === null || typeof child !== "object") continue;
        if (depth + 1 > MAX_DEPTH) return child as { span: A.Span };
        stack.push({ node: child, depth: depth + 1 });
      }
    }
  }
  return null;
}

function findExcessiveNesting(tokens: IToken[]): IToken | null {
  let depth = 0;
  for (const t of tokens) {
    const type = t.tokenType;
    if (type === LParen || type === LSquare || type === LCurly) {
      if (++depth > MAX_NESTING) return t;
    } else if (type === RParen || type === RSquare || type === RCurly) {
      depth = Math.max(0, depth - 1);
    }
  }
  return null;
}

function syntaxError(file: string, text: string, lines: LineIndex, e: IRecognitionException, tokens: IToken[]): Diagnostic {
  let t = e.token;
  // At end of input (or on a token inserted by recovery) point just after the previous real token.
  if (!t || t.tokenType.name === "EOF" || !Number.isFinite(t.startOffset)) {
    const before = (e as IRecognitionException & { previousToken?: IToken }).previousToken;
    const prev = before && Number.isFinite(before.startOffset) ? before : tokens[tokens.length - 1];
    const at = prev ? (prev.endOffset ?? prev.startOffset) + 1 : text.length;
    return error("E0101", friendlyMessage(e, "end of file"), lines.span(file, at, Math.min(at + 1, text.length)));
  }
  return error("E0101", friendlyMessage(e, `'${t.image}'`), lines.span(file, t.startOffset, (t.endOffset ?? t.startOffset) + 1));
}

function friendlyMessage(e: IRecognitionException, found: string): string {
  // Chevrotain's messages list every alternative path; keep the first line and name what was found.
  const first = e.message.split("\n")[0] ?? e.message;
  const expecting = /Expecting:? (?:token of type |one of these possible Token sequences:)?\s*-->?\s*(.*?)\s*<--/.exec(first)?.[1];
  // With recovery on, Chevrotain reports input left after the last item as a mismatched EOF.
  if (expecting === "EOF") {
    return found === "'import'" ? `unexpected ${found}: imports come before every fn and model` : `unexpected ${found}: expected an import, a fn or a model`;
  }
  if (expecting) return `expected ${expecting} but found ${found}`;
  if (e.name === "NoViableAltException") return `unexpected ${found} here`;
  return `${first.replace(/\s+/g, " ")}`;
}

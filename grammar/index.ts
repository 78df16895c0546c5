// Parse one .llm source text: lex → parse (one reused parser instance) → AST, collecting diagnostics.

import type { IToken, IRecognitionException } from "chevrotain";
import type * as A from "./ast.js";
import { llmLexer, LParen, LSquare, LCurly, RParen, RSquare, RCurly } from "./lexer.js";
import { parser } from "./parser.js";
import { AstBuilder } from "./to-ast.js";
import { error, spanAt, type Diagnostic } from "../src/compiler/diagnostics.js";

export type * from "./ast.js";

/** Deeper nesting than this is refused before parsing, so a pathological file cannot exhaust the stack. */
export const MAX_NESTING = 200;

export interface ParseResult {
  module: A.Module;
  diagnostics: Diagnostic[];
}

export function parseModule(file: string, text: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lexed = llmLexer.tokenize(text);

  for (const e of lexed.errors) {
    const ch = text.slice(e.offset, e.offset + Math.max(1, e.length));
    const shown = JSON.stringify(ch.length > 20 ? ch.slice(0, 20) + "…" : ch);
    diagnostics.push(error("E0001", `unexpected character ${shown}`, spanAt(file, text, e.offset, e.offset + Math.max(1, e.length))));
  }
  for (const t of (lexed.groups["invalid"] ?? []) as IToken[]) {
    const what = t.tokenType.name === "UnterminatedComment" ? "block comment is never closed (missing '*/')" : 'string is never closed (missing \'"\' on this line)';
    diagnostics.push(error("E0002", what, spanAt(file, text, t.startOffset, t.startOffset + 2)));
  }
  const comments: A.Comment[] = ((lexed.groups["comments"] ?? []) as IToken[]).map((t) => ({
    kind: "Comment",
    text: t.image,
    span: spanAt(file, text, t.startOffset, t.startOffset + t.image.length),
  }));

  const emptyModule: A.Module = { kind: "Module", file, imports: [], items: [], comments, span: spanAt(file, text, 0, text.length) };
  const tooDeep = findExcessiveNesting(lexed.tokens);
  if (tooDeep) {
    diagnostics.push(
      error("E0003", `brackets are nested more than ${MAX_NESTING} deep; split the expression with intermediate bindings`, spanAt(file, text, tooDeep.startOffset, tooDeep.startOffset + 1)),
    );
    return { module: emptyModule, diagnostics };
  }

  parser.input = lexed.tokens;
  const cst = parser.module();
  for (const e of parser.errors) diagnostics.push(syntaxError(file, text, e, lexed.tokens));

  const builder = new AstBuilder(file, diagnostics);
  const module = cst ? builder.module(cst, comments) : emptyModule;
  return { module, diagnostics };
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

function syntaxError(file: string, text: string, e: IRecognitionException, tokens: IToken[]): Diagnostic {
  let t = e.token;
  // At end of input (or on a token inserted by recovery) point just after the previous real token.
  if (!t || t.tokenType.name === "EOF" || !Number.isFinite(t.startOffset)) {
    const before = (e as IRecognitionException & { previousToken?: IToken }).previousToken;
    const prev = before && Number.isFinite(before.startOffset) ? before : tokens[tokens.length - 1];
    const at = prev ? (prev.endOffset ?? prev.startOffset) + 1 : text.length;
    return error("E0101", friendlyMessage(e, "end of file"), spanAt(file, text, at, at + 1));
  }
  return error("E0101", friendlyMessage(e, `'${t.image}'`), spanAt(file, text, t.startOffset, (t.endOffset ?? t.startOffset) + 1));
}

function friendlyMessage(e: IRecognitionException, found: string): string {
  // Chevrotain's messages list every alternative path; keep the first line and name what was found.
  const first = e.message.split("\n")[0] ?? e.message;
  const expecting = /Expecting:? (?:token of type |one of these possible Token sequences:)?\s*-->?\s*(.*?)\s*<--/.exec(first)?.[1];
  if (expecting) return `expected ${expecting} but found ${found}`;
  if (e.name === "NoViableAltException") return `unexpected ${found} here`;
  if (e.name === "NotAllInputParsedException") return `unexpected ${found}: expected an import, a fn or a model`;
  return `${first.replace(/\s+/g, " ")}`;
}

// The TextMate grammar of editors/vscode against the compiler's own lexer: over every bundled
// models/**/*.llm file, each token the lexer finds (keywords, type names, numbers, strings, comments,
// function names, operators, brackets) must carry the scope an editor theme needs. The grammar runs
// on the small tokenizer in textmate.ts (vscode-textmate is not installed here).

import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { IToken, TokenType } from "chevrotain";
import { allTokens, llmLexer, TypeName, Identifier } from "../../src/compiler/parse/lexer.js";
import { builtins } from "../../src/compiler/check/builtins.js";
import { bundledModelsDir, packageRoot } from "../../src/paths.js";
import { tokenize, type Grammar } from "./textmate.js";

const grammar = JSON.parse(readFileSync(join(packageRoot(), "editors/vscode/syntaxes/llm.tmLanguage.json"), "utf8")) as Grammar;

function llmFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? llmFiles(join(dir, e.name)) : e.name.endsWith(".llm") ? [join(dir, e.name)] : [],
  );
}

const isKeyword = (t: TokenType) => (t as TokenType & { LONGER_ALT?: unknown }).LONGER_ALT === Identifier && !(t.CATEGORIES ?? []).includes(TypeName);
const isTypeName = (t: TokenType) => (t.CATEGORIES ?? []).includes(TypeName);

/** The scope a token must carry (a prefix of one of its scopes), from the lexer's token type and its neighbours. */
function expectedScope(tokens: IToken[], i: number): RegExp | null {
  const t = tokens[i]!;
  const type = t.tokenType;
  const prev = tokens[i - 1]?.tokenType.name;
  const next = tokens[i + 1]?.tokenType.name;
  if (type.name === "Fn") return /^storage\.type\.function/;
  if (type.name === "Model") return /^storage\.type\.model/;
  if (type.name === "True" || type.name === "False") return /^constant\.language\.boolean/;
  if (isKeyword(type)) return /^keyword\./;
  if (isTypeName(type)) return /^storage\.type\.primitive/;
  switch (type.name) {
    case "NumberLiteral":
      return /^constant\.numeric/;
    case "StringLiteral":
      return /^string\.quoted\.double/;
    case "Identifier":
      if (t.image === "tensor" && next === "StringLiteral") return /^keyword\./; // a key clause's `tensor "name"`
      if (prev === "Fn") return /^entity\.name\.function/;
      if (prev === "Model") return /^entity\.name\.type\.model/;
      if (prev === "Extends") return /^entity\.other\.inherited-class/;
      if (next === "LParen") return Object.hasOwn(builtins, t.image) ? /^support\.function\.builtin/ : /^(entity\.name\.function|support\.function)/;
      return /^(?!keyword|storage|constant)/; // a plain name is never highlighted as a keyword, type or literal
    case "Arrow":
      return /^keyword\.operator\.arrow|^punctuation\.separator\.type/;
    case "PipeGt":
      return /^keyword\.operator\.pipe/;
    case "LSquare":
      return prev === "Colon" || prev === "Arrow" ? /^punctuation\.definition\.shape\.begin/ : /^punctuation\./;
    case "RSquare":
      return /^punctuation\./;
    case "Plus": case "Minus": case "Star": case "Slash": case "Percent": case "StarStar": case "At":
    case "EqEq": case "NotEq": case "LtEq": case "GtEq": case "Lt": case "Gt": case "AndAnd": case "OrOr": case "Bang":
    case "Equals": case "Ellipsis": case "DotDot":
      return /^keyword\.operator\./;
    case "LCurly": case "RCurly": case "LParen": case "RParen": case "Comma":
      return /^punctuation\./;
    default:
      return null;
  }
}

function scopeAt(scopes: string[][], offset: number): string[] {
  return scopes[offset] ?? [];
}

describe("the TextMate grammar for .llm", () => {
  const files = llmFiles(bundledModelsDir());

  it("finds the bundled models", () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
  });

  it.each(files.map((f) => [f.slice(bundledModelsDir().length + 1), f]))("scopes the lexer's tokens of %s", (_name, file) => {
    const text = readFileSync(file, "utf8");
    const scopes = tokenize(grammar, text);
    const lexed = llmLexer.tokenize(text);
    const wrong: string[] = [];
    lexed.tokens.forEach((t, i) => {
      const want = expectedScope(lexed.tokens, i);
      if (!want) return;
      const have = scopeAt(scopes, t.startOffset);
      if (!have.some((s) => want.test(s)) && !(want.source.startsWith("^(?!") && have.every((s) => want.test(s)))) {
        wrong.push(`${t.startLine}:${t.startColumn} ${t.tokenType.name} '${t.image}': [${have.join(" ")}], want ${want}`);
      }
    });
    for (const c of (lexed.groups["comments"] ?? []) as IToken[]) {
      for (const at of [c.startOffset, c.endOffset!]) {
        if (!scopeAt(scopes, at).some((s) => s.startsWith("comment."))) wrong.push(`${c.startLine}:${c.startColumn} comment: [${scopeAt(scopes, at).join(" ")}]`);
      }
    }
    expect(wrong.slice(0, 20)).toEqual([]);
  });

  it("knows every keyword and type name of the lexer", () => {
    const words = allTokens.filter((t) => isKeyword(t) || isTypeName(t)).map((t) => (t.PATTERN as RegExp).source);
    expect(words.length).toBeGreaterThan(20);
    // `;` between them, so no word reads as the name a keyword declares (`fn model`).
    const text = words.join(";");
    const scopes = tokenize(grammar, text);
    let at = 0;
    for (const w of words) {
      expect(scopeAt(scopes, at).some((s) => /^(keyword|storage|constant\.language)/.test(s)), w).toBe(true);
      at += w.length + 1;
    }
  });

  it("highlights every built-in called as a function", () => {
    const names = Object.keys(builtins);
    const text = names.map((n) => `${n}(x)`).join(" ");
    const scopes = tokenize(grammar, text);
    let at = 0;
    for (const n of names) {
      expect(scopeAt(scopes, at), n).toContain("support.function.builtin.llm");
      at += n.length + 4;
    }
  });

  it("scopes a shape's dims, a string's placeholders and a block comment across lines", () => {
    const text = 'fn f(x: [..., D]) {\n  /* a\n  b */ return "blk.{i}.w"\n}';
    const scopes = tokenize(grammar, text);
    expect(scopeAt(scopes, text.indexOf("..."))).toContain("keyword.operator.ellipsis.llm");
    expect(scopeAt(scopes, text.indexOf("D"))).toEqual(["meta.type.shape.llm", "variable.other.dim.llm"]);
    expect(scopeAt(scopes, text.indexOf("b */"))).toEqual(["comment.block.llm"]);
    expect(scopeAt(scopes, text.indexOf("{i}"))).toContain("constant.other.placeholder.llm");
    expect(scopeAt(scopes, text.indexOf("return"))).toEqual(["keyword.control.llm"]);
  });

  it("is what the extension contributes, with a language configuration for .llm", () => {
    const dir = join(packageRoot(), "editors/vscode");
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    expect(manifest.contributes.languages).toEqual([expect.objectContaining({ id: "llm", extensions: [".llm"] })]);
    const [contributed] = manifest.contributes.grammars;
    expect(contributed).toMatchObject({ language: "llm", scopeName: grammar.scopeName });
    expect(JSON.parse(readFileSync(join(dir, contributed.path), "utf8"))).toEqual(grammar);
    const config = JSON.parse(readFileSync(join(dir, manifest.contributes.languages[0].configuration), "utf8"));
    expect(config.comments).toEqual({ lineComment: "//", blockComment: ["/*", "*/"] });
    expect(config.brackets).toEqual([["{", "}"], ["[", "]"], ["(", ")"]]);
    expect(existsSync(join(dir, manifest.main))).toBe(true);
    expect(manifest.dependencies).toHaveProperty("vscode-languageclient");
  });
});

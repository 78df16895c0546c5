// Tokens of the .llm language. Whitespace (newlines included) is skipped: statements are delimited by
// their own structure, `;` is an optional separator. Comments go to their own group so fmt can keep them.

import { createToken, Lexer, type TokenType } from "chevrotain";

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const LineComment = createToken({ name: "LineComment", pattern: /\/\/[^\n]*/, group: "comments" });
export const BlockComment = createToken({ name: "BlockComment", pattern: /\/\*[\s\S]*?\*\//, line_breaks: true, group: "comments" });

// Unterminated comments and strings lex as one token each so the error names what is wrong, not a stray `/`.
export const UnterminatedComment = createToken({ name: "UnterminatedComment", pattern: /\/\*[\s\S]*/, line_breaks: true, group: "invalid" });
export const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\n]|\\.)*/, group: "invalid" });

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });

// Keywords: reserved words that Identifier would otherwise match.
const keywordTokens: TokenType[] = [];
function keyword(word: string, name: string): TokenType {
  const t = createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'` });
  keywordTokens.push(t);
  return t;
}
export const Import = keyword("import", "Import");
export const Fn = keyword("fn", "Fn");
export const Model = keyword("model", "Model");
export const Extends = keyword("extends", "Extends");
export const Config = keyword("config", "Config");
export const Weights = keyword("weights", "Weights");
export const State = keyword("state", "State");
// `required` before `require`, which prefixes it.
export const Required = keyword("required", "Required");
export const Require = keyword("require", "Require");
export const Else = keyword("else", "Else");
export const Return = keyword("return", "Return");
export const For = keyword("for", "For");
// `init` (a weight's initialiser) before `in`, which prefixes it.
export const Init = keyword("init", "Init");
export const In = keyword("in", "In");
export const True = keyword("true", "True");
export const False = keyword("false", "False");
export const Gguf = keyword("gguf", "Gguf");
export const Hf = keyword("hf", "Hf");
export const Optional = keyword("optional", "Optional");
export const When = keyword("when", "When");
export const If = keyword("if", "If");
export const Drop = keyword("drop", "Drop");
export const Ignore = keyword("ignore", "Ignore");
export const Within = keyword("within", "Within");
// Scalar and element types.
export const TypeName = createToken({ name: "TypeName", pattern: Lexer.NA, label: "a type name" });
const typeNameTokens: TokenType[] = [];
function typeName(word: string, name: string): TokenType {
  const t = createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, categories: TypeName, label: `'${word}'` });
  typeNameTokens.push(t);
  return t;
}
export const TInt = typeName("int", "TInt");
export const TF32 = typeName("f32", "TF32");
export const TF16 = typeName("f16", "TF16");
export const TBF16 = typeName("bf16", "TBF16");
export const TI32 = typeName("i32", "TI32");
export const TBool = typeName("bool", "TBool");
export const TStr = typeName("str", "TStr");

export const NumberLiteral = createToken({
  name: "NumberLiteral",
  // `1..n` is a range, so a fraction needs a digit after the dot.
  pattern: /\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+/,
  label: "a number",
});
export const StringLiteral = createToken({ name: "StringLiteral", pattern: /"(?:[^"\\\n]|\\.)*"/, label: "a string" });

function punct(name: string, pattern: string): TokenType {
  return createToken({ name, pattern: new RegExp(pattern.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")), label: `'${pattern}'` });
}
export const Arrow = punct("Arrow", "->");
export const PipeGt = punct("PipeGt", "|>");
export const Ellipsis = punct("Ellipsis", "...");
export const DotDot = punct("DotDot", "..");
export const StarStar = punct("StarStar", "**");
export const EqEq = punct("EqEq", "==");
export const NotEq = punct("NotEq", "!=");
export const LtEq = punct("LtEq", "<=");
export const GtEq = punct("GtEq", ">=");
export const AndAnd = punct("AndAnd", "&&");
export const OrOr = punct("OrOr", "||");
export const Lt = punct("Lt", "<");
export const Gt = punct("Gt", ">");
export const Equals = punct("Equals", "=");
export const Plus = punct("Plus", "+");
export const Minus = punct("Minus", "-");
export const Star = punct("Star", "*");
export const Slash = punct("Slash", "/");
export const Percent = punct("Percent", "%");
export const At = punct("At", "@");
export const Bang = punct("Bang", "!");
export const Question = punct("Question", "?");
export const Colon = punct("Colon", ":");
export const Semicolon = punct("Semicolon", ";");
export const Comma = punct("Comma", ",");
export const Dot = punct("Dot", ".");
export const Pipe = punct("Pipe", "|");
export const LParen = punct("LParen", "(");
export const RParen = punct("RParen", ")");
export const LSquare = punct("LSquare", "[");
export const RSquare = punct("RSquare", "]");
export const LCurly = punct("LCurly", "{");
export const RCurly = punct("RCurly", "}");

// Order matters: comments before Slash, longer operators before their prefixes (`...` before `..`),
// keywords before Identifier, and type names before keywords that prefix them (`int` before `in`).
export const allTokens: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedComment,
  ...typeNameTokens,
  ...keywordTokens,
  TypeName,
  Identifier,
  NumberLiteral,
  StringLiteral,
  UnterminatedString,
  Arrow,
  PipeGt,
  Ellipsis,
  DotDot,
  StarStar,
  EqEq,
  NotEq,
  LtEq,
  GtEq,
  AndAnd,
  OrOr,
  Lt,
  Gt,
  Equals,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  At,
  Bang,
  Question,
  Colon,
  Semicolon,
  Comma,
  Dot,
  Pipe,
  LParen,
  RParen,
  LSquare,
  RSquare,
  LCurly,
  RCurly,
];

// Only `\n` ends a line (a lone `\r` does not), as in positionAt and the code frames of diagnostics.
export const llmLexer = new Lexer(allTokens, {
  positionTracking: "full",
  ensureOptimizations: false,
  lineTerminatorsPattern: /\n/g,
  lineTerminatorCharacters: ["\n"],
});

// Syntax highlighting for .llm files: a CodeMirror stream tokenizer over docs/language.md's lexical
// structure (keywords, type names, numbers, strings, comments, operators). Highlighting only needs
// tokens, so the compiler's parser is not involved.

import { HighlightStyle, StreamLanguage, type StreamParser } from "@codemirror/language";
import { tags as t } from "@lezer/highlight";

const KEYWORDS = new Set(
  "import fn model extends config weights state require required ignore within else return for in true false gguf hf optional when if drop tensor".split(" "),
);
const TYPES = new Set(["int", "f32", "f16", "bf16", "i32", "bool", "str", "KVCache"]);
// Built-in operations and the standard library's common ones (docs/language.md, models/std/nn.llm).
const BUILTINS = new Set(
  (
    "exp log sqrt rsqrt sin cos tanh sigmoid silu gelu erf abs recip dropout neg max min where to_f32 to_i32 transpose reshape heads merge " +
    "sum mean amax concat arange rotary attention append rms_norm rms_norm_offset layer_norm layer_norm_no_bias softmax swiglu geglu rope " +
    "rope_pairs rope_halves rope_inv_freq rope_permute rows add count as replace null_as one_of floor ceil"
  ).split(" "),
);

interface LlmState {
  inBlockComment: boolean;
}

const llmParser: StreamParser<LlmState> = {
  name: "llm",
  startState: () => ({ inBlockComment: false }),
  token(stream, state) {
    if (state.inBlockComment) {
      state.inBlockComment = !skipBlockComment(stream);
      return "blockComment";
    }
    if (stream.eatSpace()) return null;
    if (stream.match("//")) {
      stream.skipToEnd();
      return "lineComment";
    }
    if (stream.match("/*")) {
      state.inBlockComment = !skipBlockComment(stream);
      return "blockComment";
    }
    if (stream.peek() === '"') {
      stream.next();
      let escaped = false;
      for (let c = stream.next(); c !== undefined && c !== null; c = stream.next()) {
        if (c === '"' && !escaped) break;
        escaped = !escaped && c === "\\";
      }
      return "string";
    }
    if (stream.match(/^\d+(\.\d+)?([eE][+-]?\d+)?/)) return "number";
    const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*/) as RegExpMatchArray | null;
    if (word) {
      const w = word[0];
      if (w === "true" || w === "false") return "bool";
      if (KEYWORDS.has(w)) return w === "model" || w === "fn" ? "definitionKeyword" : "keyword";
      if (TYPES.has(w)) return "typeName";
      if (stream.peek() === "(" && BUILTINS.has(w)) return "variableName.standard";
      if (stream.peek() === "(") return "variableName.function";
      return "variableName";
    }
    if (stream.match(/^(\|>|->|\.\.\.|\.\.|\*\*|==|!=|<=|>=|&&|\|\||[-+*/%@<>=!?:|])/)) return "operator";
    if (stream.match(/^[{}()[\]]/)) return "bracket";
    stream.next();
    return "punctuation";
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
};

/** Consumes up to and including `*\/`; false when the comment goes on past this line. */
function skipBlockComment(stream: { match(s: string): unknown; next(): string | void; eol(): boolean }): boolean {
  while (!stream.eol()) {
    if (stream.match("*/")) return true;
    stream.next();
  }
  return false;
}

export const llmLanguage = StreamLanguage.define(llmParser);

export const llmHighlight = HighlightStyle.define([
  { tag: [t.keyword, t.definitionKeyword], color: "var(--hl-keyword)", fontWeight: "600" },
  { tag: t.typeName, color: "var(--hl-type)" },
  { tag: [t.number, t.bool], color: "var(--hl-number)" },
  { tag: t.string, color: "var(--hl-string)" },
  { tag: [t.lineComment, t.blockComment], color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: t.standard(t.variableName), color: "var(--hl-builtin)" },
  { tag: t.function(t.variableName), color: "var(--hl-function)" },
  { tag: t.operator, color: "var(--hl-operator)" },
  { tag: t.bracket, color: "var(--hl-bracket)" },
]);

// fast-check arbitraries for .llm ASTs in the forms the parser builds (a Range only as a `for`
// iterable, a Slice only as an index, parentheses never in the tree), and helpers to compare trees.

import fc from "fast-check";
import type * as A from "../../src/compiler/parse/ast.js";
import { llmLexer } from "../../src/compiler/parse/lexer.js";

const zero = { offset: 0, line: 1, column: 1 };
const S: A.Span = { file: "gen.llm", start: zero, end: zero };

/** Names, among them near-misses of keywords and type names that must still lex as identifiers. */
const identNames = [
  "a", "b", "x", "h", "w", "T", "P", "D", "dim", "n_heads", "layers", "embed", "kv", "_t", "x1",
  "index", "ins", "integer", "f32x", "bf16_", "ifx", "elsewhere", "format", "configs", "weights_",
  "stated", "hf2", "gguf_name", "optional_", "whenever", "truth", "falsey", "returns", "fnord", "models", "dropped",
];

export const identName = fc.constantFrom(...identNames);
const ident = identName.map((name): A.Ident => ({ kind: "Ident", name, span: S }));

const numberRaw = fc.oneof(
  fc.constantFrom("0", "1", "2", "10", "007", "1e-5", "0.5", "1.5e3", "2E+2", "1e9"),
  fc.nat().map(String),
  fc.maxSafeNat().map(String),
  fc.tuple(fc.nat(1_000_000), fc.stringMatching(/^\d{1,6}$/)).map(([a, b]) => `${a}.${b}`),
  fc.tuple(fc.nat(1000), fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), fc.nat(290)).map((p) => p.join("")),
);
const numberLit = numberRaw.map((raw): A.NumberLit => ({ kind: "Number", value: Number(raw), isInt: /^\d+$/.test(raw), raw, span: S }));

/** Any text, weighted towards the characters a string literal must escape. */
export const stringValue = fc.oneof(
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.string({ unit: fc.constantFrom("a", "\\", '"', "\n", "\t", "{i}", ".", " ", "\r", "é", "\u2028"), maxLength: 6 }),
);
const stringLit = stringValue.map((value): A.StringLit => ({ kind: "String", value, span: S }));
const boolLit = fc.boolean().map((value): A.BoolLit => ({ kind: "Bool", value, span: S }));
const nameExpr = identName.map((name): A.Name => ({ kind: "Name", name, span: S }));

const leaf: fc.Arbitrary<A.Expr> = fc.oneof({ arbitrary: nameExpr, weight: 3 }, numberLit, stringLit, boolLit);

const binaryOps: A.BinaryOp[] = ["+", "-", "*", "/", "%", "@", "**", "==", "!=", "<", "<=", ">", ">=", "&&", "||"];

const exprCache = new Map<number, fc.Arbitrary<A.Expr>>();

/** Expressions of every kind, nested at most `depth` deep. */
export function expr(depth: number): fc.Arbitrary<A.Expr> {
  if (depth <= 0) return leaf;
  const cached = exprCache.get(depth);
  if (cached) return cached;
  const sub = expr(depth - 1);
  const args = fc.array(
    fc.record({ name: fc.option(ident, { freq: 3 }), value: sub }).map(({ name, value }): A.Arg => ({ kind: "Arg", name, value, span: S })),
    { maxLength: 3 },
  );
  const slice = fc
    .record({ start: fc.option(sub), end: fc.option(sub) })
    .map(({ start, end }): A.SliceIndex => ({ kind: "Slice", start, end, span: S }));
  const arb: fc.Arbitrary<A.Expr> = fc.oneof(
    { arbitrary: leaf, weight: 3 },
    fc.array(sub, { maxLength: 3 }).map((elems): A.Expr => ({ kind: "List", elems, span: S })),
    fc.record({ op: fc.constantFrom<A.UnaryOp>("-", "!"), operand: sub }).map((r): A.Expr => ({ kind: "Unary", ...r, span: S })),
    {
      arbitrary: fc.record({ op: fc.constantFrom(...binaryOps), left: sub, right: sub }).map((r): A.Expr => ({ kind: "Binary", ...r, span: S })),
      weight: 4,
    },
    fc.record({ cond: sub, then: sub, else: sub }).map((r): A.Expr => ({ kind: "Conditional", ...r, span: S })),
    fc.record({ callee: ident, args }).map((r): A.Expr => ({ kind: "Call", ...r, span: S })),
    fc.record({ target: sub, method: ident, args }).map((r): A.Expr => ({ kind: "MethodCall", ...r, span: S })),
    fc.record({ target: sub, name: ident }).map((r): A.Expr => ({ kind: "Member", ...r, span: S })),
    fc
      .record({ target: sub, indices: fc.array(fc.oneof(sub, slice), { minLength: 1, maxLength: 3 }) })
      .map((r): A.Expr => ({ kind: "Index", ...r, span: S })),
  );
  exprCache.set(depth, arb);
  return arb;
}

const dims = fc.array(expr(2), { maxLength: 3 });

export function typeExpr(depth: number): fc.Arbitrary<A.TypeExpr> {
  const alts: fc.Arbitrary<A.TypeExpr>[] = [
    fc
      .record({ ellipsis: fc.boolean(), dims, dtype: fc.option(fc.constantFrom<A.DTypeName>("f32", "f16", "bf16", "i32", "bool")) })
      .map((r): A.TypeExpr => ({ kind: "TensorType", ...r, span: S })),
    fc.constantFrom<A.ScalarTypeName>("int", "f32", "bool", "str").map((name): A.TypeExpr => ({ kind: "ScalarType", name, span: S })),
    fc.array(stringValue, { minLength: 1, maxLength: 3 }).map((values): A.TypeExpr => ({ kind: "EnumType", values, span: S })),
    fc.record({ name: ident, args: dims }).map((r): A.TypeExpr => ({ kind: "NamedType", ...r, span: S })),
  ];
  if (depth > 0) {
    alts.push(fc.array(typeExpr(depth - 1), { minLength: 1, maxLength: 3 }).map((elems): A.TypeExpr => ({ kind: "TupleType", elems, span: S })));
  }
  return fc.oneof(...alts);
}

function stmts(depth: number): fc.Arbitrary<A.Stmt[]> {
  const e = expr(3);
  const alts: fc.Arbitrary<A.Stmt>[] = [
    fc.record({ targets: fc.array(ident, { minLength: 1, maxLength: 3 }), value: e }).map((r): A.Stmt => ({ kind: "Assign", ...r, span: S })),
    e.map((value): A.Stmt => ({ kind: "Return", value, span: S })),
  ];
  if (depth > 0) {
    const range = fc.record({ start: e, end: e }).map((r): A.Expr => ({ kind: "Range", ...r, span: S }));
    alts.push(
      fc
        .record({ index: ident, item: fc.option(ident), iterable: fc.oneof(e, range), body: stmts(depth - 1) })
        .map((r): A.Stmt => ({ kind: "For", ...r, span: S })),
    );
  }
  return fc.array(fc.oneof(...alts), { maxLength: 4 });
}

const fnDecl: fc.Arbitrary<A.FnDecl> = fc
  .record({
    name: ident,
    params: fc.array(
      fc.record({ name: ident, type: typeExpr(1), default: fc.option(expr(2)) }).map((r): A.Param => ({ kind: "Param", ...r, span: S })),
      { maxLength: 4 },
    ),
    ret: fc.option(typeExpr(1)),
    body: stmts(2),
  })
  .map((r): A.FnDecl => ({ kind: "Fn", ...r, span: S }));

const call: fc.Arbitrary<A.Call> = fc
  .record({
    callee: ident,
    args: fc.array(
      fc.record({ name: fc.option(ident, { freq: 3 }), value: expr(1) }).map((r): A.Arg => ({ kind: "Arg", ...r, span: S })),
      { maxLength: 2 },
    ),
  })
  .map((r): A.Call => ({ kind: "Call", ...r, span: S }));

/** Key names: realistic, or any text. */
const keyPattern = fc.oneof(fc.constantFrom("{arch}.block_count", "rope_scaling.factor", "output.weight", "tokenizer.ggml.tokens"), stringValue);
const keySource: fc.Arbitrary<A.KeySource> = fc
  .record({ tensor: fc.boolean(), pattern: keyPattern, transforms: fc.array(call, { maxLength: 2 }) })
  .map((r): A.KeySource => ({ kind: "KeySource", ...r, patternSpan: S, span: S }));
const keyClause = (format: A.KeyFormat): fc.Arbitrary<A.KeyClause> =>
  fc
    .record({ sources: fc.array(keySource, { minLength: 1, maxLength: 3 }), required: fc.boolean(), when: fc.option(expr(2)), fallback: fc.option(expr(2)) })
    // `required` and `else` exclude each other.
    .map((r): A.KeyClause => ({ kind: "KeyClause", format, ...r, fallback: r.required ? null : r.fallback, span: S }));
const keyClauses: fc.Arbitrary<A.KeyClause[]> = fc
  .tuple(fc.option(keyClause("gguf")), fc.option(keyClause("hf")))
  .map((cs) => cs.filter((c): c is A.KeyClause => c !== null));
const formatName = fc.constantFrom<A.KeyFormat>("gguf", "hf");

const configItem: fc.Arbitrary<A.ConfigItem> = fc.oneof(
  fc
    .record({ name: ident, type: fc.option(typeExpr(1)), value: fc.option(expr(3)), keys: keyClauses })
    .map((r): A.ConfigItem => ({ kind: "ConfigParam", ...r, span: S })),
  fc
    .record({ conds: fc.array(expr(3), { minLength: 1, maxLength: 3 }), message: fc.option(stringValue) })
    .map((r): A.ConfigItem => ({ kind: "Require", ...r, span: S })),
  fc
    .record({ format: formatName, keys: fc.array(keyPattern, { minLength: 1, maxLength: 3 }) })
    .map((r): A.ConfigItem => ({ kind: "IgnoreKeys", ...r, span: S })),
);

/** Tensor-name patterns: mostly realistic (so some declarations wrap), sometimes any text. */
const pattern = fc.oneof(
  fc.constantFrom("token_embd.weight", "blk.{i}.attn_q.weight", "model.layers.{i}.self_attn.q_proj.weight", "output.weight"),
  stringValue,
);
const tensorName: fc.Arbitrary<A.TensorName> = fc
  .record({ pattern, transforms: fc.array(call, { maxLength: 2 }) })
  .map((r): A.TensorName => ({ kind: "TensorName", ...r, patternSpan: S, span: S }));

function weightItems(depth: number): fc.Arbitrary<A.WeightItem[]> {
  const decl: fc.Arbitrary<A.WeightItem> = fc
    .record({
      name: ident,
      shape: dims,
      gguf: fc.option(tensorName),
      hf: fc.option(tensorName),
      optional: fc.boolean(),
      when: fc.option(expr(2), { freq: 3 }),
      tie: fc.option(
        fc.record({ target: ident, cond: fc.option(expr(2)) }).map((r): A.Tie => ({ kind: "Tie", ...r, span: S })),
        { freq: 3 },
      ),
    })
    .map((r): A.WeightItem => ({ kind: "Weight", ...r, span: S }));
  const drop = ident.map((name): A.WeightItem => ({ kind: "WeightDrop", name, span: S }));
  const item = fc.oneof({ arbitrary: decl, weight: 3 }, drop);
  if (depth <= 0) return fc.array(item, { maxLength: 4 });
  const group = fc
    .record({ name: ident, count: expr(2), items: weightItems(depth - 1) })
    .map((r): A.WeightItem => ({ kind: "WeightGroup", ...r, span: S }));
  return fc.array(fc.oneof({ arbitrary: item, weight: 4 }, group), { maxLength: 4 });
}

const member: fc.Arbitrary<A.ModelMember> = fc.oneof(
  fc.array(configItem, { maxLength: 5 }).map((items): A.ModelMember => ({ kind: "Config", items, span: S })),
  weightItems(1).map((items): A.ModelMember => ({ kind: "Weights", items, span: S })),
  fc.record({ name: ident, type: typeExpr(1) }).map((r): A.ModelMember => ({ kind: "State", ...r, span: S })),
  fnDecl,
  ident.map((name): A.ModelMember => ({ kind: "FnDrop", name, span: S })),
);

const formatNames: fc.Arbitrary<A.FormatNames[]> = fc
  .tuple(...(["gguf", "hf"] as const).map((format) => fc.option(fc.array(stringValue, { minLength: 1, maxLength: 2 }).map((names) => ({ format, names })))))
  .map((fs) => fs.filter((f) => f !== null).map((f): A.FormatNames => ({ kind: "FormatNames", ...f, span: S })));

const modelDecl: fc.Arbitrary<A.ModelDecl> = fc
  .record({ name: ident, extends: fc.option(ident), formatNames, members: fc.array(member, { maxLength: 4 }) })
  .map((r): A.ModelDecl => ({ kind: "Model", ...r, span: S }));

/** A whole module with no comments (comments are inserted into printed text, where they have positions). */
export const moduleArb: fc.Arbitrary<A.Module> = fc
  .record({
    imports: fc.array(
      stringValue.map((path): A.Import => ({ kind: "Import", path, pathSpan: S, span: S })),
      { maxLength: 2 },
    ),
    items: fc.array(fc.oneof(fnDecl, modelDecl), { maxLength: 3 }),
  })
  .map((r): A.Module => ({ kind: "Module", file: "gen.llm", ...r, comments: [], span: S }));

// ---------------------------------------------------------------------------------------------

const spanKeys = new Set(["span", "pathSpan", "patternSpan"]);

/** The tree without positions and comments, for comparing what two texts mean. */
export function shape(m: A.Module): unknown {
  return JSON.parse(JSON.stringify({ ...m, comments: undefined, file: undefined }, (k, v: unknown) => (spanKeys.has(k) ? undefined : v)));
}

/** Comment texts as fmt prints them (line comments lose trailing blanks), sorted. */
export function commentTexts(m: A.Module): string[] {
  return m.comments.map((c) => (c.text.startsWith("//") ? c.text.trimEnd() : c.text)).sort();
}

export interface Insertion {
  at: number; // index into the boundaries of the text, taken modulo their count
  what: "line" | "block" | "multiline" | "blank" | "join";
}

export const insertions = fc.array(
  fc.record({ at: fc.nat(), what: fc.constantFrom<Insertion["what"]>("line", "block", "multiline", "blank", "join") }),
  { maxLength: 8 },
);

/**
 * Puts numbered comments and blank lines into a comment-free text at token boundaries (before a
 * token, or at the end of a line), and joins lines. Returns the new text and the comments' texts.
 */
export function insertComments(text: string, list: Insertion[]): { text: string; comments: string[] } {
  const newlines: number[] = [];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) newlines.push(i);
  const starts = [...llmLexer.tokenize(text).tokens.map((t) => t.startOffset), ...newlines, text.length];
  const chosen = list.flatMap((ins, k) => {
    if (ins.what !== "join") return [{ ...ins, pos: starts[ins.at % starts.length]!, k }];
    return newlines.length > 0 ? [{ ...ins, pos: newlines[ins.at % newlines.length]!, k }] : [];
  });
  // From the end, so earlier positions stay valid; at one position a join goes first, while the newline is still there.
  chosen.sort((a, b) => b.pos - a.pos || Number(b.what === "join") - Number(a.what === "join") || b.k - a.k);
  const comments: string[] = [];
  let out = text;
  for (const c of chosen) {
    let piece: string;
    if (c.what === "join") {
      if (out[c.pos] === "\n") out = out.slice(0, c.pos) + " " + out.slice(c.pos + 1);
      continue;
    } else if (c.what === "line") {
      piece = ` // c${c.k}\n`;
      comments.push(`// c${c.k}`);
    } else if (c.what === "block") {
      piece = ` /* c${c.k} */ `;
      comments.push(`/* c${c.k} */`);
    } else if (c.what === "multiline") {
      piece = ` /* c${c.k}\n   continued */ `;
      comments.push(`/* c${c.k}\n   continued */`);
    } else {
      piece = "\n\n";
    }
    out = out.slice(0, c.pos) + piece + out.slice(c.pos);
  }
  return { text: out, comments: comments.sort() };
}

// `llmc fmt`: the canonical layout of a .llm file, printed from its AST. The output parses back to
// the same AST (spans aside), formatting is idempotent, and every comment survives exactly once:
// a comment before a node is printed above it, one on the same line after it stays at the end of
// that line, and one inside a node's one-line form moves above the node.

import type * as A from "../parse/ast.js";

const INDENT = "  ";
const MAX_WIDTH = 100;
/** Weight heads (`name: [shape]`) longer than this do not push the clause column of their neighbours. */
const HEAD_ALIGN_CAP = 40;
/** Continuation lines of a wrapped weight align under its first clause unless that is further right than this. */
const CONTINUATION_CAP = 48;

export function formatModule(module: A.Module, source: string): string {
  const lines = new Formatter(module, source).module();
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// Expressions: minimal parentheses from the precedence table of docs/language.md.

const enum Prec {
  Conditional = 0,
  Or = 1,
  And = 2,
  Compare = 3,
  Add = 4,
  Mul = 5,
  Unary = 6,
  Pow = 7,
  Postfix = 8,
}

const binaryPrec: Record<A.BinaryOp, Prec> = {
  "||": Prec.Or,
  "&&": Prec.And,
  "==": Prec.Compare,
  "!=": Prec.Compare,
  "<": Prec.Compare,
  "<=": Prec.Compare,
  ">": Prec.Compare,
  ">=": Prec.Compare,
  "+": Prec.Add,
  "-": Prec.Add,
  "*": Prec.Mul,
  "/": Prec.Mul,
  "%": Prec.Mul,
  "@": Prec.Mul,
  "**": Prec.Pow,
};

function precOf(e: A.Expr): Prec {
  switch (e.kind) {
    case "Conditional":
    case "Range":
      return Prec.Conditional;
    case "Binary":
      return binaryPrec[e.op];
    case "Unary":
      return Prec.Unary;
    default:
      return Prec.Postfix;
  }
}

/** Operand precedences a binary operator needs so the parser rebuilds the same tree. */
function operandPrecs(op: A.BinaryOp): [Prec, Prec] {
  const p = binaryPrec[op];
  if (op === "**") return [Prec.Postfix, Prec.Unary]; // the base is a postfix expression; right-assoc
  if (p === Prec.Compare) return [p + 1, p + 1]; // comparisons do not chain
  return [p, p + 1]; // left-associative
}

/** An expression with the fewest parentheses that parse back to the same tree. */
export function formatExpr(e: A.Expr): string {
  return expr(e, Prec.Conditional);
}

/** `e` where the grammar needs an expression of precedence `min` or tighter. */
function expr(e: A.Expr, min: Prec): string {
  const text = exprText(e);
  return precOf(e) < min ? `(${text})` : text;
}

function exprText(e: A.Expr): string {
  switch (e.kind) {
    case "Number":
      return e.raw;
    case "String":
      return quote(e.value);
    case "Bool":
      return e.value ? "true" : "false";
    case "Name":
      return e.name;
    case "List":
      return `[${e.elems.map(formatExpr).join(", ")}]`;
    case "Unary":
      return e.op + expr(e.operand, Prec.Unary);
    case "Binary": {
      const [l, r] = operandPrecs(e.op);
      return `${expr(e.left, l)} ${e.op} ${expr(e.right, r)}`;
    }
    case "Conditional":
      return `${expr(e.cond, Prec.Or)} ? ${formatExpr(e.then)} : ${formatExpr(e.else)}`;
    case "Call":
      return `${e.callee.name}(${args(e.args)})`;
    case "MethodCall":
      return `${expr(e.target, Prec.Postfix)}.${e.method.name}(${args(e.args)})`;
    case "Member":
      return `${expr(e.target, Prec.Postfix)}.${e.name.name}`;
    case "Index":
      return `${expr(e.target, Prec.Postfix)}[${e.indices.map(indexText).join(", ")}]`;
    case "Range":
      return `${formatExpr(e.start)}..${formatExpr(e.end)}`;
  }
}

function indexText(i: A.Expr | A.SliceIndex): string {
  if (i.kind !== "Slice") return formatExpr(i);
  return `${i.start ? formatExpr(i.start) : ""}:${i.end ? formatExpr(i.end) : ""}`;
}

function args(list: A.Arg[]): string {
  return list.map((a) => (a.name ? `${a.name.name}: ${formatExpr(a.value)}` : formatExpr(a.value))).join(", ");
}

/** A string literal with the language's escapes (`\"`, `\\`, `\n`, `\t`); other characters as they are. */
export function quote(s: string): string {
  return `"${s.replace(/[\\"\n\t]/g, (c) => (c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\${c}`))}"`;
}

export function formatType(t: A.TypeExpr): string {
  switch (t.kind) {
    case "TensorType":
      return `[${[...(t.ellipsis ? ["..."] : []), ...t.dims.map(formatExpr)].join(", ")}]${t.dtype ? ` ${t.dtype}` : ""}`;
    case "ScalarType":
      return t.name;
    case "EnumType":
      return t.values.map(quote).join(" | ");
    case "TupleType":
      return `(${t.elems.map(formatType).join(", ")})`;
    case "NamedType":
      return t.args.length > 0 ? `${t.name.name}[${t.args.map(formatExpr).join(", ")}]` : t.name.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Layout

/** One line-level thing in a block: a comment on its own line(s) or a node with its trailing comments. */
interface Entry {
  blankBefore: boolean;
  lines: string[]; // relative to the block's indentation; a multi-line block comment stays one string
  trailing: string | null; // comments after the node on its last line
  weight?: WeightCells; // a weight declaration, laid out with its neighbours
}

interface WeightCells {
  head: string; // `name: [shape]`
  gguf: string;
  hf: string;
  extras: string[]; // `optional`, `when cond`, `= target if cond`, `init f(args)`
}

type Blank = "always" | "preserve";

interface ListSpec<T> {
  blank: (index: number) => Blank;
  leadLimit: (child: T) => number; // comments before this offset print above the child
  render: (child: T) => Omit<Entry, "blankBefore" | "trailing">;
}

type Node = { span: A.Span };

class Formatter {
  private readonly comments: A.Comment[];
  private next = 0; // the first comment not yet printed
  private lastEnd = 0; // end offset of the last thing printed, for blank-line detection

  constructor(
    private readonly mod: A.Module,
    private readonly source: string,
  ) {
    this.comments = [...mod.comments].sort((a, b) => a.span.start.offset - b.span.start.offset);
  }

  module(): string[] {
    const children: (A.Import | A.Item)[] = [...this.mod.imports, ...this.mod.items];
    const entries = this.list(children, Infinity, {
      blank: (i) => (children[i]!.kind === "Import" ? "preserve" : "always"),
      leadLimit: (c) => (c.kind === "Import" ? c.span.end.offset : this.braceOffset(c)),
      render: (c) => (c.kind === "Import" ? { lines: [`import ${quote(c.path)}`] } : this.item(c, 0)),
    });
    return this.renderEntries(entries, 0);
  }

  // ------------------------------------------------------------------ comments

  private takeBefore(limit: number): A.Comment[] {
    const out: A.Comment[] = [];
    while (this.next < this.comments.length && this.comments[this.next]!.span.start.offset < limit) out.push(this.comments[this.next++]!);
    return out;
  }

  private takeOnLine(line: number, limit: number): string | null {
    const out: string[] = [];
    for (let c = this.comments[this.next]; c && c.span.start.line === line && c.span.start.offset < limit; c = this.comments[this.next]) {
      out.push(commentText(c));
      this.lastEnd = c.span.end.offset;
      this.next++;
    }
    return out.length > 0 ? out.join(" ") : null;
  }

  private lineStarts: number[] | null = null;

  private lineOf(offset: number): number {
    if (!this.lineStarts) {
      this.lineStarts = [0];
      for (let i = this.source.indexOf("\n"); i >= 0; i = this.source.indexOf("\n", i + 1)) this.lineStarts.push(i + 1);
    }
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  /** Whether the source has an empty line between two things printed one after the other (and only space between them). */
  private gap(from: number, to: number): boolean {
    if (from >= to) return false;
    const between = this.source.slice(from, to);
    return /^[\s;]*$/.test(between) && /\n[ \t\r]*\n/.test(between);
  }

  /** The `{` that opens a container's body, found in the source after its header (comments skipped). */
  private braceOffset(n: A.Item | A.ModelMember | A.WeightItem | A.Stmt): number {
    let from: number;
    switch (n.kind) {
      case "Fn":
        from = (n.ret ?? n.params[n.params.length - 1] ?? n.name).span.end.offset;
        break;
      case "Model":
        from = (n.formatNames[n.formatNames.length - 1] ?? n.extends ?? n.name).span.end.offset;
        break;
      case "Config":
        from = n.span.start.offset + "config".length;
        break;
      case "Weights":
        from = n.span.start.offset + "weights".length;
        break;
      case "WeightGroup":
        from = n.count.span.end.offset;
        break;
      case "For":
        from = n.iterable.span.end.offset;
        break;
      default:
        return n.span.end.offset;
    }
    const s = this.source;
    for (let i = from; i < n.span.end.offset && i < s.length; ) {
      const ch = s[i]!;
      if (ch === "{") return i;
      if (s.startsWith("//", i)) {
        const nl = s.indexOf("\n", i);
        i = nl < 0 ? s.length : nl + 1;
      } else if (s.startsWith("/*", i)) {
        const close = s.indexOf("*/", i + 2);
        i = close < 0 ? s.length : close + 2;
      } else if (/[\s()\]]/.test(ch)) {
        i++;
      } else {
        break;
      }
    }
    return from; // no source for this node (a generated AST): nothing lies between header and body
  }

  /**
   * The entries of one block: each child with the comments before it and those trailing it, then
   * the comments left before `end` (the block's closing brace).
   */
  private list<T extends Node>(children: readonly T[], end: number, spec: ListSpec<T>): Entry[] {
    const entries: Entry[] = [];
    children.forEach((child, i) => {
      const leading = this.takeBefore(spec.leadLimit(child));
      leading.forEach((c, k) => {
        const blank = entries.length > 0 && (k === 0 && spec.blank(i) === "always" ? true : this.gap(this.lastEnd, c.span.start.offset));
        entries.push({ blankBefore: blank, lines: [commentText(c)], trailing: null });
        this.lastEnd = c.span.end.offset;
      });
      const blankBefore =
        entries.length > 0 && (leading.length === 0 && spec.blank(i) === "always" ? true : this.gap(this.lastEnd, child.span.start.offset));
      const rendered = spec.render(child);
      this.lastEnd = child.span.end.offset;
      const limit = children[i + 1]?.span.start.offset ?? end;
      const trailing = this.takeOnLine(child.span.end.line, limit);
      entries.push({ ...rendered, blankBefore, trailing });
    });
    for (const c of this.takeBefore(end)) {
      entries.push({ blankBefore: entries.length > 0 && this.gap(this.lastEnd, c.span.start.offset), lines: [commentText(c)], trailing: null });
      this.lastEnd = c.span.end.offset;
    }
    return entries;
  }

  /** `header {` … `}` around a block's entries, with a comment on the brace line kept there. */
  private container<T extends Node>(owner: A.Item | A.ModelMember | A.WeightItem | A.Stmt, header: string[], children: readonly T[], depth: number, spec: ListSpec<T>): string[] {
    const brace = this.braceOffset(owner);
    const braceLine = brace < this.source.length ? this.lineOf(brace) : -1;
    const end = owner.span.end.offset;
    const onBraceLine = braceLine > 0 ? this.takeOnLine(braceLine, children[0]?.span.start.offset ?? end) : null;
    const entries = this.list(children, end, spec);
    const last = header.length - 1;
    if (entries.length === 0 && onBraceLine === null) return [...header.slice(0, last), `${header[last]} {}`];
    const open = `${header[last]} {${onBraceLine === null ? "" : `  ${onBraceLine}`}`;
    const body = this.renderEntries(entries, depth + 1).map(indent);
    return [...header.slice(0, last), open, ...body, "}"];
  }

  // ------------------------------------------------------------------ items

  private item(n: A.Item | A.ModelMember, depth: number): { lines: string[] } {
    switch (n.kind) {
      case "Fn":
        return { lines: this.fn(n, depth) };
      case "Model": {
        const names = n.formatNames.map((f) => ` ${f.format} ${f.names.map(quote).join(" | ")}`).join("");
        const header = `model ${n.name.name}${n.extends ? ` extends ${n.extends.name}` : ""}${names}`;
        return {
          lines: this.container(n, [header], n.members, depth, {
            // Consecutive `drop fn` lines stay together, as written.
            blank: (i) => (n.members[i]!.kind === "FnDrop" && n.members[i - 1]?.kind === "FnDrop" ? "preserve" : "always"),
            leadLimit: (m) => this.braceOffset(m),
            render: (m) => this.item(m, depth + 1),
          }),
        };
      }
      case "Config":
        return {
          lines: this.container(n, ["config"], n.items, depth, {
            blank: () => "preserve",
            leadLimit: (c) => c.span.end.offset,
            render: (c) => ({ lines: configItem(c, depth + 1) }),
          }),
        };
      case "Weights":
        return { lines: this.container(n, ["weights"], n.items, depth, this.weightSpec(depth + 1)) };
      case "State":
        return { lines: [`state ${n.name.name}: ${formatType(n.type)}`] };
      case "FnDrop":
        return { lines: [`drop fn ${n.name.name}`] };
    }
  }

  private fn(n: A.FnDecl, depth: number): string[] {
    const params = n.params.map((p) => `${p.name.name}: ${formatType(p.type)}${p.default ? ` = ${formatExpr(p.default)}` : ""}`);
    const ret = n.ret ? ` -> ${formatType(n.ret)}` : "";
    const oneLine = `fn ${n.name.name}(${params.join(", ")})${ret}`;
    // A signature too long for one line gets one parameter per line (the grammar has no trailing comma).
    const header =
      depth * INDENT.length + oneLine.length + 2 > MAX_WIDTH && params.length > 0
        ? [`fn ${n.name.name}(`, ...params.map((p, i) => `${INDENT}${p}${i < params.length - 1 ? "," : ""}`), `)${ret}`]
        : [oneLine];
    return this.container(n, header, n.body, depth, this.stmtSpec(depth + 1));
  }

  private stmtSpec(depth: number): ListSpec<A.Stmt> {
    return {
      blank: () => "preserve",
      leadLimit: (s) => this.braceOffset(s),
      render: (s) => ({ lines: this.stmt(s, depth) }),
    };
  }

  private stmt(s: A.Stmt, depth: number): string[] {
    switch (s.kind) {
      case "Assign":
        return wrapExpr(`${s.targets.map((t) => t.name).join(", ")} = `, s.value, depth);
      case "Return":
        return wrapExpr("return ", s.value, depth);
      case "For": {
        const header = `for ${s.index.name}${s.item ? `, ${s.item.name}` : ""} in ${formatExpr(s.iterable)}`;
        return this.container(s, [header], s.body, depth, this.stmtSpec(depth + 1));
      }
    }
  }

  private weightSpec(depth: number): ListSpec<A.WeightItem> {
    return {
      blank: () => "preserve",
      leadLimit: (w) => this.braceOffset(w),
      render: (w) => {
        if (w.kind === "WeightGroup") {
          return { lines: this.container(w, [`${w.name.name}[${formatExpr(w.count)}]`], w.items, depth, this.weightSpec(depth + 1)) };
        }
        if (w.kind === "WeightDrop") return { lines: [`drop ${w.name.name}`] };
        return { lines: [], weight: weightCells(w) };
      },
    };
  }

  // ------------------------------------------------------------------ entries → lines

  private renderEntries(entries: Entry[], depth: number): string[] {
    // Runs of adjacent weight declarations share their columns.
    for (let i = 0; i < entries.length; ) {
      if (!entries[i]!.weight) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < entries.length && entries[j]!.weight && !entries[j]!.blankBefore) j++;
      layoutWeights(entries.slice(i, j), depth * INDENT.length);
      i = j;
    }
    // Trailing comments of adjacent one-line entries line up.
    const trailingAt = new Map<Entry, number>();
    for (let i = 0; i < entries.length; ) {
      if (!oneLineWithTrailing(entries[i]!)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < entries.length && oneLineWithTrailing(entries[j]!) && !entries[j]!.blankBefore) j++;
      const col = entries.slice(i, j).reduce((w, e) => Math.max(w, e.lines[0]!.length), 0) + 2;
      for (const e of entries.slice(i, j)) trailingAt.set(e, col);
      i = j;
    }
    const out: string[] = [];
    for (const e of entries) {
      if (e.blankBefore) out.push("");
      const lines = [...e.lines];
      if (e.trailing !== null) {
        const last = lines.length - 1;
        const col = trailingAt.get(e) ?? lines[last]!.length + 2;
        lines[last] = lines[last]!.padEnd(col) + e.trailing;
      }
      for (const line of lines) out.push(line);
    }
    return out;
  }
}

function configItem(c: A.ConfigItem, depth: number): string[] {
  if (c.kind === "Require") {
    return [`require ${c.conds.map(formatExpr).join(", ")}${c.message !== null ? ` else ${quote(c.message)}` : ""}`];
  }
  if (c.kind === "IgnoreKeys") return pack([`ignore ${c.format} ${quote(c.keys[0]!)}`, ...c.keys.slice(1).map(quote)], ", ", depth);
  if (c.kind === "KeysWithin") return pack([`within ${c.format} ${quote(c.keys[0]!)}`, ...c.keys.slice(1).map(quote)], ", ", depth);
  const decl = `${c.name.name}${c.type ? `: ${formatType(c.type)}` : ""}`;
  const head = c.value ? wrapExpr(`${decl} = `, c.value, depth) : [decl];
  const clauses = c.keys.map(keyClausePieces);
  const one = [head[0]!, ...clauses.map((p) => p.join(" "))].join("  ");
  if (head.length === 1 && depth * INDENT.length + one.length <= MAX_WIDTH) return [one];
  // One clause per continuation line; a clause too long for one breaks before `|`, `required`/`when` and `else`.
  return [...head, ...clauses.flatMap((p) => pack(p, " ", depth + 1).map(indent))];
}

/** A key clause in the pieces it may break between: `gguf "a"`, `| "b"`, `required when c`, `else e`. */
function keyClausePieces(k: A.KeyClause): string[] {
  const source = (s: A.KeySource) => [`${s.tensor ? "tensor " : ""}${quote(s.pattern)}`, ...s.transforms.map((t) => `|> ${formatExpr(t)}`)].join(" ");
  const condition = [...(k.required ? ["required"] : []), ...(k.when ? [`when ${formatExpr(k.when)}`] : [])].join(" ");
  return [
    `${k.format} ${source(k.sources[0]!)}`,
    ...k.sources.slice(1).map((s) => `| ${source(s)}`),
    ...(condition ? [condition] : []),
    ...(k.fallback ? [`else ${formatExpr(k.fallback)}`] : []),
  ];
}

/** Pieces joined by `sep`, greedily on as few lines as fit in MAX_WIDTH; continuation lines are indented once more. */
function pack(pieces: string[], sep: string, depth: number): string[] {
  const lines = [pieces[0]!];
  for (const p of pieces.slice(1)) {
    const last = lines[lines.length - 1]!;
    const joined = `${last}${sep}${p}`;
    if (depth * INDENT.length + joined.length <= MAX_WIDTH) lines[lines.length - 1] = joined;
    else {
      lines[lines.length - 1] = `${last}${sep.trimEnd()}`;
      lines.push(INDENT + p);
    }
  }
  return lines;
}

/**
 * `prefix` + the expression, on one line when it fits; otherwise a chain of conditionals breaks
 * before each `:`, and a call puts one argument per line.
 */
function wrapExpr(prefix: string, e: A.Expr, depth: number): string[] {
  const one = prefix + formatExpr(e);
  if (depth * INDENT.length + one.length <= MAX_WIDTH) return [one];
  if (e.kind === "Conditional") {
    const lines = [`${prefix}${expr(e.cond, Prec.Or)} ? ${formatExpr(e.then)}`];
    let rest = e.else;
    for (; rest.kind === "Conditional"; rest = rest.else) lines.push(`${INDENT}: ${expr(rest.cond, Prec.Or)} ? ${formatExpr(rest.then)}`);
    lines.push(`${INDENT}: ${formatExpr(rest)}`);
    return lines;
  }
  if ((e.kind === "Call" || e.kind === "MethodCall") && e.args.length > 0) {
    const callee = e.kind === "Call" ? e.callee.name : `${expr(e.target, Prec.Postfix)}.${e.method.name}`;
    const list = e.args.map((a) => args([a]));
    return [`${prefix}${callee}(`, ...list.map((a, i) => `${INDENT}${a}${i < list.length - 1 ? "," : ""}`), ")"];
  }
  return [one];
}

function tensorName(keyword: string, t: A.TensorName | null): string {
  if (!t) return "";
  return [`${keyword} ${quote(t.pattern)}`, ...t.transforms.map((c) => `|> ${formatExpr(c)}`)].join(" ");
}

function weightCells(w: A.WeightDecl): WeightCells {
  const extras: string[] = [];
  if (w.optional) extras.push("optional");
  if (w.when) extras.push(`when ${formatExpr(w.when)}`);
  if (w.tie) extras.push(`= ${w.tie.target.name}${w.tie.cond ? ` if ${formatExpr(w.tie.cond)}` : ""}`);
  // Last, so `when c  init zeros` does not read as an initialiser that depends on c.
  if (w.init) extras.push(`init ${w.init.name.name}${w.init.args.length > 0 ? `(${args(w.init.args)})` : ""}`);
  return {
    head: `${w.name.name}: [${w.shape.map(formatExpr).join(", ")}]`,
    gguf: tensorName("gguf", w.gguf),
    hf: tensorName("hf", w.hf),
    extras,
  };
}

/**
 * Lays out a run of adjacent weight declarations in columns: heads padded so the clauses start
 * together, and `gguf`/`hf` clauses aligned when every line still fits. A declaration that does not
 * fit in MAX_WIDTH continues on lines aligned under its first clause.
 */
function layoutWeights(run: Entry[], indentWidth: number): void {
  const cells = run.map((e) => e.weight!);
  const headW = cells.reduce((w, c) => (c.head.length <= HEAD_ALIGN_CAP ? Math.max(w, c.head.length) : w), 0);
  const head = (c: WeightCells) => (c.head.length <= HEAD_ALIGN_CAP ? c.head.padEnd(headW) : c.head);
  const clauses = (c: WeightCells) => [c.gguf, c.hf, ...c.extras].filter((x) => x !== "");
  const fits = (line: string) => indentWidth + line.length <= MAX_WIDTH;

  const single = cells.map((c) => clauses(c).length > 0 && fits(`${head(c)}  ${clauses(c).join("  ")}`));
  // Column widths over the one-line declarations; a cell counts only when something follows it.
  const widths = [0, 0];
  cells.forEach((c, i) => {
    if (!single[i]) return;
    const cols = [c.gguf, c.hf];
    cols.forEach((cell, k) => {
      const later = cols.slice(k + 1).some((x) => x !== "") || c.extras.length > 0;
      if (later) widths[k] = Math.max(widths[k]!, cell.length);
    });
  });
  const aligned = (c: WeightCells): string => {
    const cols = [c.gguf, c.hf];
    const parts: string[] = [];
    cols.forEach((cell, k) => {
      const later = cols.slice(k + 1).some((x) => x !== "") || c.extras.length > 0;
      if (!later) {
        if (cell !== "") parts.push(cell);
      } else if (cell !== "" || widths[k]! > 0) {
        parts.push(cell.padEnd(widths[k]!));
      }
    });
    return [head(c), ...parts, ...c.extras].join("  ");
  };
  const useColumns = cells.every((c, i) => !single[i] || fits(aligned(c)));

  run.forEach((e, i) => {
    const c = cells[i]!;
    const cl = clauses(c);
    if (cl.length === 0) {
      e.lines = [c.head];
    } else if (single[i]) {
      e.lines = [useColumns ? aligned(c) : `${head(c)}  ${cl.join("  ")}`];
    } else {
      const first = `${head(c)}  `;
      const contCol = first.length <= CONTINUATION_CAP ? first.length : INDENT.length * 2;
      const lines = [first + cl[0]!];
      for (const clause of cl.slice(1)) {
        const last = lines[lines.length - 1]!;
        if (fits(`${last}  ${clause}`)) lines[lines.length - 1] = `${last}  ${clause}`;
        else lines.push(" ".repeat(contCol) + clause);
      }
      e.lines = lines;
    }
  });
}

function oneLineWithTrailing(e: Entry): boolean {
  return e.trailing !== null && e.lines.length === 1 && !e.lines[0]!.includes("\n") && !e.trailing.includes("\n");
}

function commentText(c: A.Comment): string {
  return c.text.startsWith("//") ? c.text.trimEnd() : c.text;
}

function indent(line: string): string {
  return line === "" ? line : INDENT + line;
}

// CST → AST. Defensive about nodes that error recovery left partial: a missing piece becomes a
// placeholder (an `<error>` name) so later phases never see undefined; the syntax error itself has
// already been reported by the parser.

import type { CstNode, IToken } from "chevrotain";
import type * as A from "./ast.js";
import { error, type Diagnostic } from "../base/diagnostics.js";

type Children = Record<string, (CstNode | IToken)[] | undefined>;

const isToken = (x: CstNode | IToken): x is IToken => (x as IToken).image !== undefined;

export class AstBuilder {
  private lastGood: A.Span;

  constructor(
    private readonly file: string,
    private readonly diagnostics: Diagnostic[],
  ) {
    const zero = { offset: 0, line: 1, column: 1 };
    this.lastGood = { file, start: zero, end: zero };
  }

  // ------------------------------------------------------------------ spans
  private tokenSpan(t: IToken | undefined): A.Span {
    if (!t || t.isInsertedInRecovery || !Number.isFinite(t.startOffset) || !Number.isFinite(t.startLine ?? NaN)) {
      return this.lastGood;
    }
    const span: A.Span = {
      file: this.file,
      start: { offset: t.startOffset, line: t.startLine!, column: t.startColumn! },
      end: { offset: (t.endOffset ?? t.startOffset) + 1, line: t.endLine ?? t.startLine!, column: (t.endColumn ?? t.startColumn!) + 1 },
    };
    this.lastGood = span;
    return span;
  }

  private nodeSpan(n: CstNode | undefined): A.Span {
    const l = n?.location;
    if (!l || !Number.isFinite(l.startOffset) || !Number.isFinite(l.startLine ?? NaN)) return this.lastGood;
    const endOk = Number.isFinite(l.endOffset ?? NaN) && Number.isFinite(l.endLine ?? NaN);
    const start = { offset: l.startOffset, line: l.startLine!, column: l.startColumn! };
    const span: A.Span = {
      file: this.file,
      start,
      end: endOk ? { offset: l.endOffset! + 1, line: l.endLine!, column: l.endColumn! + 1 } : start,
    };
    this.lastGood = span;
    return span;
  }

  private join(a: A.Span, b: A.Span): A.Span {
    return b.end.offset >= a.start.offset ? { file: this.file, start: a.start, end: b.end } : a;
  }

  // ------------------------------------------------------------------ child access
  private nodes(n: CstNode | undefined, key: string): CstNode[] {
    return ((n?.children as Children | undefined)?.[key] ?? []).filter((x): x is CstNode => !isToken(x));
  }
  private node(n: CstNode | undefined, key: string, i = 0): CstNode | undefined {
    return this.nodes(n, key)[i];
  }
  private tokens(n: CstNode | undefined, key: string): IToken[] {
    return ((n?.children as Children | undefined)?.[key] ?? []).filter(isToken).filter((t) => !t.isInsertedInRecovery);
  }
  private token(n: CstNode | undefined, key: string, i = 0): IToken | undefined {
    return this.tokens(n, key)[i];
  }

  private ident(t: IToken | undefined): A.Ident {
    return { kind: "Ident", name: t?.image ?? "<error>", span: this.tokenSpan(t) };
  }

  private stringValue(t: IToken | undefined): string {
    if (!t) return "";
    const raw = t.image.slice(1, -1);
    return raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
  }

  // ------------------------------------------------------------------ module
  module(cst: CstNode, comments: A.Comment[]): A.Module {
    const imports = this.nodes(cst, "importDecl").map((n) => this.importDecl(n));
    const items: A.Item[] = [];
    // Items come in source order; the CST keeps fnDecl and modelDecl in separate lists.
    const all = [...this.nodes(cst, "fnDecl"), ...this.nodes(cst, "modelDecl")].sort(
      (a, b) => (a.location?.startOffset ?? 0) - (b.location?.startOffset ?? 0),
    );
    for (const n of all) items.push(n.name === "fnDecl" ? this.fnDecl(n) : this.modelDecl(n));
    return { kind: "Module", file: this.file, imports, items, comments, span: this.nodeSpan(cst) };
  }

  private importDecl(n: CstNode): A.Import {
    const s = this.token(n, "StringLiteral");
    return { kind: "Import", path: this.stringValue(s), pathSpan: this.tokenSpan(s), span: this.nodeSpan(n) };
  }

  fnDecl(n: CstNode): A.FnDecl {
    const span = this.nodeSpan(n);
    const name = this.ident(this.token(n, "Identifier"));
    const params = this.nodes(n, "param").map((p) => this.param(p));
    const retNode = this.node(n, "typeExpr");
    const ret = retNode ? this.typeExpr(retNode) : null;
    return { kind: "Fn", name, params, ret, body: this.block(this.node(n, "block")), span };
  }

  private param(n: CstNode): A.Param {
    const def = this.node(n, "expr");
    return {
      kind: "Param",
      name: this.ident(this.token(n, "Identifier")),
      type: this.typeExpr(this.node(n, "typeExpr")),
      default: def ? this.expr(def) : null,
      span: this.nodeSpan(n),
    };
  }

  private block(n: CstNode | undefined): A.Stmt[] {
    return this.nodes(n, "stmt").flatMap((s): A.Stmt[] => {
      const r = this.node(s, "returnStmt");
      if (r) return [{ kind: "Return", value: this.expr(this.node(r, "expr")), span: this.nodeSpan(r) } satisfies A.Return];
      const f = this.node(s, "forStmt");
      if (f) return [this.forStmt(f)];
      const a = this.node(s, "assignStmt");
      if (a) {
        const targets = this.tokens(a, "Identifier").map((t) => this.ident(t));
        if (targets.length === 0) return [];
        return [{ kind: "Assign", targets, value: this.expr(this.node(a, "expr")), span: this.nodeSpan(a) } satisfies A.Assign];
      }
      return [];
    });
  }

  private forStmt(n: CstNode): A.For {
    const ids = this.tokens(n, "Identifier");
    const exprs = this.nodes(n, "expr");
    const start = this.expr(exprs[0]);
    const iterable: A.Expr =
      exprs.length > 1 ? { kind: "Range", start, end: this.expr(exprs[1]), span: this.join(start.span, this.nodeSpan(exprs[1])) } : start;
    return {
      kind: "For",
      index: this.ident(ids[0]),
      item: ids[1] ? this.ident(ids[1]) : null,
      iterable,
      body: this.block(this.node(n, "block")),
      span: this.nodeSpan(n),
    };
  }

  // ------------------------------------------------------------------ model
  private modelDecl(n: CstNode): A.ModelDecl {
    const span = this.nodeSpan(n);
    const ids = this.tokens(n, "Identifier");
    const members: A.ModelMember[] = [];
    const all = [
      ...this.nodes(n, "configBlock"),
      ...this.nodes(n, "weightsBlock"),
      ...this.nodes(n, "stateDecl"),
      ...this.nodes(n, "fnDecl"),
      ...this.nodes(n, "fnDrop"),
    ].sort((a, b) => (a.location?.startOffset ?? 0) - (b.location?.startOffset ?? 0));
    for (const m of all) {
      if (m.name === "configBlock") members.push(this.configBlock(m));
      else if (m.name === "weightsBlock") members.push(this.weightsBlock(m));
      else if (m.name === "stateDecl") members.push(this.stateDecl(m));
      else if (m.name === "fnDrop") members.push({ kind: "FnDrop", name: this.ident(this.token(m, "Identifier")), span: this.nodeSpan(m) });
      else members.push(this.fnDecl(m));
    }
    const hasExtends = this.tokens(n, "Extends").length > 0;
    const formatNames = this.nodes(n, "formatNames").map(
      (f): A.FormatNames => ({ kind: "FormatNames", format: this.keyFormat(f), names: this.tokens(f, "StringLiteral").map((t) => this.stringValue(t)), span: this.nodeSpan(f) }),
    );
    for (const [i, f] of formatNames.entries()) {
      if (formatNames.slice(0, i).some((g) => g.format === f.format)) {
        this.diagnostics.push(error("E0105", `model '${ids[0]?.image}' names its ${f.format} architecture more than once; list the names as ${f.format} "a" | "b"`, f.span));
      }
    }
    return {
      kind: "Model",
      name: this.ident(ids[0]),
      extends: hasExtends ? this.ident(ids[1]) : null,
      formatNames,
      members,
      span,
    };
  }

  private keyFormat(n: CstNode): A.KeyFormat {
    return this.token(this.node(n, "keyFormat"), "Hf") ? "hf" : "gguf";
  }

  private configBlock(n: CstNode): A.ConfigBlock {
    const items: A.ConfigItem[] = [];
    const all = [...this.nodes(n, "requireItem"), ...this.nodes(n, "ignoreItem"), ...this.nodes(n, "withinItem"), ...this.nodes(n, "configParam")].sort(
      (a, b) => (a.location?.startOffset ?? 0) - (b.location?.startOffset ?? 0),
    );
    for (const m of all) {
      if (m.name === "requireItem") {
        const msg = this.token(m, "StringLiteral");
        items.push({
          kind: "Require",
          conds: this.nodes(m, "expr").map((e) => this.expr(e)),
          message: msg ? this.stringValue(msg) : null,
          span: this.nodeSpan(m),
        });
      } else if (m.name === "ignoreItem") {
        items.push({ kind: "IgnoreKeys", format: this.keyFormat(m), keys: this.tokens(m, "StringLiteral").map((t) => this.stringValue(t)), span: this.nodeSpan(m) });
      } else if (m.name === "withinItem") {
        items.push({ kind: "KeysWithin", format: this.keyFormat(m), keys: this.tokens(m, "StringLiteral").map((t) => this.stringValue(t)), span: this.nodeSpan(m) });
      } else {
        const t = this.node(m, "typeExpr");
        const v = this.node(m, "expr");
        const name = this.ident(this.token(m, "Identifier"));
        const keys = this.nodes(m, "keyClause").map((c) => this.keyClause(c));
        for (const [i, k] of keys.entries()) {
          if (keys.slice(0, i).some((o) => o.format === k.format)) {
            this.diagnostics.push(error("E0105", `config '${name.name}' has more than one ${k.format} clause; list alternative keys as ${k.format} "a" | "b"`, k.span));
          }
        }
        items.push({
          kind: "ConfigParam",
          name,
          type: t ? this.typeExpr(t) : null,
          value: v ? this.expr(v) : null,
          keys,
          span: this.nodeSpan(m),
        });
      }
    }
    return { kind: "Config", items, span: this.nodeSpan(n) };
  }

  private keyClause(n: CstNode): A.KeyClause {
    const when = this.node(n, "when");
    const fallback = this.node(n, "fallback");
    const clause: A.KeyClause = {
      kind: "KeyClause",
      format: this.keyFormat(n),
      sources: this.nodes(n, "keySource").map((s) => this.keySource(s)),
      required: this.tokens(n, "Required").length > 0,
      when: when ? this.expr(when) : null,
      fallback: fallback ? this.expr(fallback) : null,
      span: this.nodeSpan(n),
    };
    if (clause.required && clause.fallback) {
      this.diagnostics.push(error("E0105", "a key that is 'required' has no 'else' value: remove one of them", clause.fallback.span));
    }
    return clause;
  }

  private keySource(n: CstNode): A.KeySource {
    const word = this.token(n, "Identifier");
    if (word && word.image !== "tensor") {
      this.diagnostics.push(error("E0105", `unknown key source '${word.image}': write a metadata key "…", or tensor "name" for whether the file holds a tensor`, this.tokenSpan(word)));
    }
    const s = this.token(n, "StringLiteral");
    return {
      kind: "KeySource",
      tensor: word !== undefined,
      pattern: this.stringValue(s),
      patternSpan: this.tokenSpan(s),
      transforms: this.nodes(n, "callExpr").map((c) => this.callExpr(c)),
      span: this.nodeSpan(n),
    };
  }

  private weightsBlock(n: CstNode): A.WeightsBlock {
    return { kind: "Weights", items: this.weightItems(n), span: this.nodeSpan(n) };
  }

  private weightItems(n: CstNode): A.WeightItem[] {
    return this.nodes(n, "weightItem").flatMap((w): A.WeightItem[] => {
      const g = this.node(w, "weightGroup");
      if (g) {
        return [
          {
            kind: "WeightGroup",
            name: this.ident(this.token(g, "Identifier")),
            count: this.expr(this.node(g, "expr")),
            items: this.weightItems(g),
            span: this.nodeSpan(g),
          },
        ];
      }
      const drop = this.node(w, "weightDrop");
      if (drop) return [{ kind: "WeightDrop", name: this.ident(this.token(drop, "Identifier")), span: this.nodeSpan(drop) }];
      const d = this.node(w, "weightDecl");
      return d ? [this.weightDecl(d)] : [];
    });
  }

  private weightDecl(n: CstNode): A.WeightDecl {
    const span = this.nodeSpan(n);
    const shapeNode = this.node(n, "tensorType");
    const shape = this.nodes(shapeNode, "expr").map((e) => this.expr(e));
    for (const t of this.tokens(shapeNode, "Ellipsis")) {
      this.diagnostics.push(error("E0106", "a weight's shape is fixed; '...' (any leading dims) is for the tensor types of functions", this.tokenSpan(t)));
    }
    if (this.token(shapeNode, "TypeName")) {
      this.diagnostics.push(
        error("E0104", "a weight's element type comes from the weight file; remove the type after the shape", this.tokenSpan(this.token(shapeNode, "TypeName"))),
      );
    }
    const decl: A.WeightDecl = {
      kind: "Weight",
      name: this.ident(this.token(n, "Identifier")),
      shape,
      gguf: null,
      hf: null,
      optional: this.tokens(n, "Optional").length > 0,
      when: null,
      tie: null,
      span,
    };
    const once = (what: string, clauseSpan: A.Span, present: boolean) => {
      if (present) this.diagnostics.push(error("E0105", `weight '${decl.name.name}' has more than one ${what} clause`, clauseSpan));
    };
    if (this.tokens(n, "Optional").length > 1) once("'optional'", this.tokenSpan(this.tokens(n, "Optional")[1]), true);
    for (const c of this.nodes(n, "ggufClause")) {
      once("'gguf'", this.nodeSpan(c), decl.gguf !== null);
      decl.gguf = this.tensorName(c);
    }
    for (const c of this.nodes(n, "hfClause")) {
      once("'hf'", this.nodeSpan(c), decl.hf !== null);
      decl.hf = this.tensorName(c);
    }
    for (const c of this.nodes(n, "whenClause")) {
      once("'when'", this.nodeSpan(c), decl.when !== null);
      decl.when = this.expr(this.node(c, "expr"));
    }
    for (const c of this.nodes(n, "tieClause")) {
      once("tie ('= other')", this.nodeSpan(c), decl.tie !== null);
      const cond = this.node(c, "expr");
      decl.tie = { kind: "Tie", target: this.ident(this.token(c, "Identifier")), cond: cond ? this.expr(cond) : null, span: this.nodeSpan(c) };
    }
    for (const c of this.nodes(n, "initClause")) {
      once("'init'", this.nodeSpan(c), decl.init !== undefined);
      const argList = this.node(c, "argList");
      decl.init = { kind: "InitClause", name: this.ident(this.token(c, "Identifier")), args: argList ? this.args(argList) : [], span: this.nodeSpan(c) };
    }
    return decl;
  }

  private tensorName(n: CstNode): A.TensorName {
    const s = this.token(n, "StringLiteral");
    return {
      kind: "TensorName",
      pattern: this.stringValue(s),
      patternSpan: this.tokenSpan(s),
      transforms: this.nodes(n, "callExpr").map((c) => this.callExpr(c)),
      span: this.nodeSpan(n),
    };
  }

  private stateDecl(n: CstNode): A.StateDecl {
    return {
      kind: "State",
      name: this.ident(this.token(n, "Identifier")),
      type: this.typeExpr(this.node(n, "typeExpr")),
      span: this.nodeSpan(n),
    };
  }

  // ------------------------------------------------------------------ types
  private typeExpr(n: CstNode | undefined): A.TypeExpr {
    const span = this.nodeSpan(n);
    const tensor = this.node(n, "tensorType");
    if (tensor) {
      const dt = this.token(tensor, "TypeName");
      return {
        kind: "TensorType",
        ellipsis: this.ellipsis(tensor),
        dims: this.nodes(tensor, "expr").map((e) => this.expr(e)),
        dtype: dt ? this.dtype(dt) : null,
        span: this.nodeSpan(tensor),
      };
    }
    const scalar = this.token(n, "TypeName");
    if (scalar) {
      const name = scalar.image;
      if (name === "int" || name === "f32" || name === "bool" || name === "str") return { kind: "ScalarType", name, span };
      this.diagnostics.push(
        error("E0103", `'${name}' is an element type of tensors, not a scalar type; scalars are int, f32, bool or str`, this.tokenSpan(scalar)),
      );
      return { kind: "ScalarType", name: "f32", span };
    }
    const named = this.node(n, "namedType");
    if (named) {
      return {
        kind: "NamedType",
        name: this.ident(this.token(named, "Identifier")),
        args: this.nodes(named, "expr").map((e) => this.expr(e)),
        span: this.nodeSpan(named),
      };
    }
    const en = this.node(n, "enumType");
    if (en) return { kind: "EnumType", values: this.tokens(en, "StringLiteral").map((t) => this.stringValue(t)), span: this.nodeSpan(en) };
    const tup = this.node(n, "tupleType");
    if (tup) return { kind: "TupleType", elems: this.nodes(tup, "typeExpr").map((t) => this.typeExpr(t)), span: this.nodeSpan(tup) };
    return { kind: "ScalarType", name: "f32", span }; // recovered: error already reported
  }

  /** Whether a tensor type starts with `...`; a second `...`, or one after a dim, is reported. */
  private ellipsis(tensor: CstNode): boolean {
    const marks = this.tokens(tensor, "Ellipsis");
    const firstDim = this.node(tensor, "expr")?.location?.startOffset ?? Infinity;
    marks.forEach((t, i) => {
      if (i > 0) this.diagnostics.push(error("E0106", "a tensor type has at most one '...'", this.tokenSpan(t)));
      else if (t.startOffset > firstDim) {
        this.diagnostics.push(error("E0106", "'...' stands for the leading dims, so it comes first: [..., D]", this.tokenSpan(t)));
      }
    });
    return marks.length > 0;
  }

  private dtype(t: IToken): A.DTypeName {
    const name = t.image;
    if (name === "f32" || name === "f16" || name === "bf16" || name === "i32" || name === "bool") return name;
    this.diagnostics.push(error("E0103", `'${name}' is not a tensor element type; use f32, f16, bf16, i32 or bool`, this.tokenSpan(t)));
    return "f32";
  }

  // ------------------------------------------------------------------ expressions
  expr(n: CstNode | undefined): A.Expr {
    if (!n) return this.errorExpr();
    const cond = this.orExpr(this.node(n, "orExpr"));
    const thenN = this.node(n, "then");
    if (!thenN) return cond;
    const elseN = this.node(n, "else");
    return { kind: "Conditional", cond, then: this.expr(thenN), else: this.expr(elseN), span: this.nodeSpan(n) };
  }

  private errorExpr(): A.Expr {
    return { kind: "Name", name: "<error>", span: this.lastGood };
  }

  private binaryChain(n: CstNode | undefined, sub: (c: CstNode | undefined) => A.Expr): A.Expr {
    if (!n) return this.errorExpr();
    const operands = this.nodes(n, "operands");
    const ops = this.tokens(n, "ops");
    let acc = sub(operands[0]);
    for (let i = 0; i < ops.length; i++) {
      const right = sub(operands[i + 1]);
      acc = { kind: "Binary", op: ops[i]!.image as A.BinaryOp, left: acc, right, span: this.join(acc.span, right.span) };
    }
    return acc;
  }

  private orExpr = (n: CstNode | undefined): A.Expr => this.binaryChain(n, this.andExpr);
  private andExpr = (n: CstNode | undefined): A.Expr => this.binaryChain(n, this.cmpExpr);
  private cmpExpr = (n: CstNode | undefined): A.Expr => this.binaryChain(n, this.addExpr);
  private addExpr = (n: CstNode | undefined): A.Expr => this.binaryChain(n, this.mulExpr);
  private mulExpr = (n: CstNode | undefined): A.Expr => this.binaryChain(n, this.unaryExpr);

  private unaryExpr = (n: CstNode | undefined): A.Expr => {
    if (!n) return this.errorExpr();
    const op = this.token(n, "op");
    if (op) {
      const operand = this.unaryExpr(this.node(n, "operand"));
      return { kind: "Unary", op: op.image as A.UnaryOp, operand, span: this.join(this.tokenSpan(op), operand.span) };
    }
    const pow = this.node(n, "pow");
    if (!pow) return this.errorExpr();
    const base = this.postfix(this.node(pow, "base"));
    const exp = this.node(pow, "exponent");
    if (!exp) return base;
    const right = this.unaryExpr(exp);
    return { kind: "Binary", op: "**", left: base, right, span: this.join(base.span, right.span) };
  };

  private postfix(n: CstNode | undefined): A.Expr {
    if (!n) return this.errorExpr();
    let acc = this.primary(this.node(n, "primary"));
    for (const s of this.nodes(n, "suffixes")) {
      const span = this.join(acc.span, this.nodeSpan(s));
      if (s.name === "memberSuffix") {
        const name = this.ident(this.token(s, "Identifier"));
        const args = this.node(s, "argList");
        acc = args
          ? { kind: "MethodCall", target: acc, method: name, args: this.args(args), span }
          : { kind: "Member", target: acc, name, span };
      } else {
        acc = { kind: "Index", target: acc, indices: this.nodes(s, "indexItem").map((i) => this.indexItem(i)), span };
      }
    }
    return acc;
  }

  private indexItem(n: CstNode): A.Expr | A.SliceIndex {
    const start = this.node(n, "start");
    const end = this.node(n, "end");
    const colon = this.tokens(n, "Colon").length > 0;
    if (!colon) return this.expr(start);
    return { kind: "Slice", start: start ? this.expr(start) : null, end: end ? this.expr(end) : null, span: this.nodeSpan(n) };
  }

  private args(n: CstNode): A.Arg[] {
    return this.nodes(n, "arg").map((a) => {
      const name = this.token(a, "name");
      return { kind: "Arg", name: name ? this.ident(name) : null, value: this.expr(this.node(a, "expr")), span: this.nodeSpan(a) };
    });
  }

  private callExpr(n: CstNode): A.Call {
    const argList = this.node(n, "argList");
    return {
      kind: "Call",
      callee: this.ident(this.token(n, "Identifier")),
      args: argList ? this.args(argList) : [],
      span: this.nodeSpan(n),
    };
  }

  private primary(n: CstNode | undefined): A.Expr {
    if (!n) return this.errorExpr();
    const span = this.nodeSpan(n);
    const num = this.token(n, "NumberLiteral");
    if (num) return this.number(num);
    const str = this.token(n, "StringLiteral");
    if (str) return { kind: "String", value: this.stringValue(str), span };
    if (this.token(n, "True")) return { kind: "Bool", value: true, span };
    if (this.token(n, "False")) return { kind: "Bool", value: false, span };
    const id = this.token(n, "Identifier");
    if (id) {
      const argList = this.node(n, "argList");
      if (argList) return { kind: "Call", callee: this.ident(id), args: this.args(argList), span };
      return { kind: "Name", name: id.image, span: this.tokenSpan(id) };
    }
    if (this.tokens(n, "LParen").length > 0) return this.expr(this.node(n, "expr"));
    if (this.tokens(n, "LSquare").length > 0) return { kind: "List", elems: this.nodes(n, "elems").map((e) => this.expr(e)), span };
    return this.errorExpr();
  }

  private number(t: IToken): A.NumberLit {
    const span = this.tokenSpan(t);
    const raw = t.image;
    const isInt = /^\d+$/.test(raw);
    let value = Number(raw);
    if (!Number.isFinite(value) || (isInt && !Number.isSafeInteger(value))) {
      this.diagnostics.push(
        error("E0102", `number '${raw.length > 40 ? raw.slice(0, 40) + "…" : raw}' is out of range (${isInt ? "integers must be below 2^53" : "it overflows a 64-bit float"})`, span),
      );
      value = 0;
    }
    return { kind: "Number", value, isInt, raw, span };
  }
}

// The elaborator: an abstract interpreter over a model's `forward`. It resolves names, inlines
// function calls, unrolls loops, folds scalars and checks every tensor op against the op table. What
// happens to each tensor is up to a Domain: the checker keeps only types, lowering builds the IR —
// so the checked program and the lowered program can never disagree.

import type * as A from "../parse/ast.js";
import { error, type Diagnostic } from "../base/diagnostics.js";
import { getOp, TypeRuleError, type Attrs, type DType, type TensorTy } from "../ops/table.js";
import {
  addDim, constDim, constValue, dimEquals, divDimExact, formatDim, formatShape, mulDim, subDim, symDim, type Dim,
} from "../base/symbolic.js";
import { coerceScalar, formatScalar, scalarBinary, scalarFunctions, scalarUnary, ScalarError, type Scalar } from "./scalar.js";
import { builtins, operandsLike, transposeLast, type Arg, type BuiltinCtx, type Tensor } from "./builtins.js";
import type { ResolvedModel, WeightField } from "./model.js";
import { describe, type Domain, type Value } from "./values.js";
import { suggest } from "./suggest.js";

/** The most iterations a loop may unroll to (range loops and weight-group loops alike). */
const MAX_UNROLLED = 100_000;

/** Calls nested deeper than this are reported as (probably) unbounded recursion. */
const MAX_CALL_DEPTH = 64;

export interface Program {
  /** Top-level functions of every loaded module, by name. */
  fns: Map<string, A.FnDecl>;
}

export interface ElaborateResult<TV> {
  inputs: { name: string; ty: TensorTy; v: TV }[];
  output: { ty: TensorTy; v: TV } | null;
}

const BIN_OPS: Partial<Record<A.BinaryOp, string>> = {
  "+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow",
  "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne", "&&": "and", "||": "or",
};

interface Frame<TV> {
  scope: Map<string, Value<TV>>;
  fn: A.FnDecl;
  model: ResolvedModel | null; // set for functions of the model
  callSite: A.Span | null;
  /** The dims `...` stands for in this call's signature, once an argument (or the result) binds them. */
  leading: Dim[] | null;
}

export class Elaborator<TV> {
  private readonly weightCache = new Map<string, Value<TV>>();
  private readonly stack: Frame<TV>[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly program: Program,
    private readonly model: ResolvedModel,
    private readonly domain: Domain<TV>,
    readonly diagnostics: Diagnostic[],
  ) {}

  // ------------------------------------------------------------------------------------ reporting
  private report(code: string, message: string, span: A.Span): Value<TV> {
    const key = `${code}|${span.file}:${span.start.offset}|${message}`;
    if (!this.seen.has(key)) {
      this.seen.add(key);
      const site = this.stack.length > 1 ? this.stack[this.stack.length - 1]!.callSite : null;
      const notes = site && site.file !== span.file || (site && site.start.offset !== span.start.offset)
        ? [{ message: `in the call of '${this.stack[this.stack.length - 1]!.fn.name.name}' from here`, span: site! }]
        : undefined;
      this.diagnostics.push(error(code, message, span, notes));
    }
    return { k: "poison" };
  }

  // ------------------------------------------------------------------------------------ entry
  run(): ElaborateResult<TV> {
    const fwd = this.model.fns.get("forward");
    if (!fwd) return { inputs: [], output: null };
    const decl = fwd.decl;
    const frame: Frame<TV> = { scope: new Map(), fn: decl, model: this.model, callSite: null, leading: null };
    const inputs: ElaborateResult<TV>["inputs"] = [];
    // T, the tokens of this step, and P, the positions cached before it, are dimensions forward's
    // body can use (`reshape(x, [T, 1])`, `arange(T) + P`).
    frame.scope.set("T", { k: "dim", d: symDim("T") });
    frame.scope.set("P", { k: "dim", d: symDim("P") });
    for (const prm of decl.params) {
      if (prm.type.kind !== "TensorType") {
        this.report("E0302", `forward's parameters are tensors (e.g. tokens: [T] i32), '${prm.name.name}' is not`, prm.type.span);
        continue;
      }
      if (prm.type.ellipsis) this.report("E0301", `forward's inputs have a fixed rank; '...' is for the parameters of other functions`, prm.type.span);
      const shape: Dim[] = [];
      for (const d of prm.type.dims) {
        if (d.kind === "Name" && d.name === "T") shape.push(symDim("T"));
        else {
          const v = this.evalIn(frame, d);
          const dim = this.asDim(v, d.span);
          if (!dim) continue;
          if (constValue(dim) === null) this.report("E0301", `forward's inputs may use config values and T (tokens in this step), not ${formatDim(dim)}`, d.span);
          shape.push(dim);
        }
      }
      const ty: TensorTy = { shape, dtype: prm.type.dtype ?? "f32" };
      const v = this.domain.input(prm.name.name, ty);
      inputs.push({ name: prm.name.name, ty, v });
      frame.scope.set(prm.name.name, { k: "tensor", ty, v });
    }
    this.stack.push(frame);
    const result = this.execBody(frame, decl.body);
    this.stack.pop();
    if (!result || result.k === "poison") return { inputs, output: null };
    if (result.k !== "tensor") {
      this.report("E0302", `forward must return a tensor, got ${describe(result)}`, decl.name.span);
      return { inputs, output: null };
    }
    if (decl.ret) this.checkResult(frame, decl, result);
    return { inputs, output: { ty: result.ty, v: result.v } };
  }

  // ------------------------------------------------------------------------------------ statements
  /** Runs statements until a return; the returned value, or null if there was none. */
  private execBody(frame: Frame<TV>, body: A.Stmt[]): Value<TV> | null {
    for (let i = 0; i < body.length; i++) {
      const st = body[i]!;
      const r = this.exec(frame, st);
      if (r) {
        if (i < body.length - 1) this.report("E0210", "this statement is never reached: it follows a return", body[i + 1]!.span);
        return r;
      }
    }
    return null;
  }

  private exec(frame: Frame<TV>, st: A.Stmt): Value<TV> | null {
    switch (st.kind) {
      case "Return":
        return this.eval(frame, st.value);
      case "Assign": {
        const v = this.eval(frame, st.value);
        if (st.targets.length === 1) {
          frame.scope.set(st.targets[0]!.name, v);
          return null;
        }
        if (v.k === "poison") {
          for (const t of st.targets) frame.scope.set(t.name, v);
          return null;
        }
        if (v.k !== "tuple" || v.elems.length !== st.targets.length) {
          this.report("E0303", `cannot unpack ${describe(v)} into ${st.targets.length} names`, st.value.span);
          for (const t of st.targets) frame.scope.set(t.name, { k: "poison" });
          return null;
        }
        st.targets.forEach((t, i) => frame.scope.set(t.name, v.elems[i]!));
        return null;
      }
      case "For": {
        const it = st.iterable;
        let indices: number[] = [];
        let group: Extract<Value<TV>, { k: "group" }> | null = null;
        if (it.kind === "Range") {
          const a = this.intOf(this.eval(frame, it.start), it.start.span);
          const b = this.intOf(this.eval(frame, it.end), it.end.span);
          if (a === null || b === null) return null;
          if (b - a > MAX_UNROLLED) {
            this.report("E0404", `a loop of ${b - a} iterations is unrolled at compile time; that is too many`, it.span);
            return null;
          }
          for (let i = a; i < b; i++) indices.push(i);
          if (st.item) this.report("E0303", "a range loop binds one name: for i in a..b", st.item.span);
        } else {
          const g = this.eval(frame, it);
          if (g.k === "poison") return null;
          if (g.k !== "group") {
            this.report("E0302", `a for loop iterates a weight group (for l, w in layers) or a range (for i in 0..n), not ${describe(g)}`, it.span);
            return null;
          }
          group = g;
          if (g.info.count > MAX_UNROLLED) {
            this.report("E0404", `a loop over ${g.info.count} layers is unrolled at compile time; that is too many (at most ${MAX_UNROLLED})`, it.span);
            return null;
          }
          indices = Array.from({ length: g.info.count }, (_, i) => i);
        }
        try {
          for (const i of indices) {
            frame.scope.set(st.index.name, { k: "scalar", s: { type: "int", value: i } });
            if (st.item && group) frame.scope.set(st.item.name, { k: "layer", info: group.info, index: i });
            if (group) this.domain.layer?.(i);
            const r = this.execBody(frame, st.body);
            if (r) return r;
          }
        } finally {
          if (group) this.domain.layer?.(null);
        }
        return null;
      }
    }
  }

  // ------------------------------------------------------------------------------------ expressions
  private evalIn(frame: Frame<TV>, e: A.Expr): Value<TV> {
    return this.eval(frame, e);
  }

  eval(frame: Frame<TV>, e: A.Expr): Value<TV> {
    switch (e.kind) {
      case "Number":
        return { k: "scalar", s: { type: e.isInt ? "int" : "f32", value: e.value } };
      case "String":
        return { k: "scalar", s: { type: "str", value: e.value } };
      case "Bool":
        return { k: "scalar", s: { type: "bool", value: e.value } };
      case "Name":
        return this.lookup(frame, e.name, e.span);
      case "List":
        return { k: "list", elems: e.elems.map((x) => this.eval(frame, x)) };
      case "Unary":
        return this.unary(frame, e);
      case "Binary":
        return this.binary(frame, e);
      case "Conditional": {
        const c = this.eval(frame, e.cond);
        if (c.k === "poison") return c;
        if (c.k === "scalar" && c.s.type === "bool") return this.eval(frame, c.s.value ? e.then : e.else);
        if (c.k === "tensor") return this.report("E0302", "a tensor condition needs where(cond, a, b); `c ? a : b` chooses at compile time", e.cond.span);
        return this.report("E0302", `a condition must be bool, got ${describe(c)}`, e.cond.span);
      }
      case "Call":
        return this.call(frame, e.callee.name, e.callee.span, null, e.args, e.span);
      case "MethodCall": {
        const target = this.eval(frame, e.target);
        if (target.k === "poison") return target;
        if (target.k === "stateLayer") return this.stateMethod(frame, target, e);
        return this.call(frame, e.method.name, e.method.span, { v: target, span: e.target.span }, e.args, e.span);
      }
      case "Member":
        return this.member(frame, e);
      case "Index":
        return this.index(frame, e);
      case "Range":
        return this.report("E0302", "a range a..b can only be iterated by a for loop", e.span);
    }
  }

  private lookup(frame: Frame<TV>, name: string, span: A.Span): Value<TV> {
    if (name === "<error>") return { k: "poison" };
    const local = frame.scope.get(name);
    if (local) return local;
    const m = frame.model;
    if (m) {
      const c = m.config.get(name);
      if (c) return c.value ? { k: "scalar", s: c.value } : { k: "poison" };
      const w = m.weights.get(name);
      if (w) {
        if ("count" in w) return { k: "group", info: w };
        return this.weightValue(name, w);
      }
      const st = m.state.get(name);
      if (st) return { k: "state", info: st };
      const absent = m.absentWeights.get(name);
      if (absent) {
        const why = "droppedBy" in absent ? `model '${absent.droppedBy}' drops it` : "its 'when' condition is false";
        return this.report("E0206", `weight '${name}' does not exist for this config (${why})`, span);
      }
    }
    const visible = [...frame.scope.keys(), ...(m ? [...m.config.keys(), ...m.weights.keys(), ...m.state.keys()] : [])];
    const where = m ? "" : " (top-level functions see only their parameters; pass the value in)";
    return this.report("E0201", `unknown name '${name}'${suggest(name, visible)}${where}`, span);
  }

  private weightValue(path: string, w: WeightField): Value<TV> {
    // A tied weight is the tensor it is tied to.
    const key = w.tiedTo ?? path;
    const cached = this.weightCache.get(key);
    if (cached) return cached;
    const ty: TensorTy = { shape: w.shape.map(constDim), dtype: "f32" };
    const v: Value<TV> = { k: "tensor", ty, v: this.domain.weight(key, ty) };
    this.weightCache.set(key, v);
    return v;
  }

  private unary(frame: Frame<TV>, e: A.Unary): Value<TV> {
    const x = this.eval(frame, e.operand);
    if (x.k === "poison") return x;
    if (x.k === "scalar") return this.foldScalar(() => scalarUnary(e.op, x.s), e.span);
    if (x.k === "dim" && e.op === "-") return { k: "dim", d: mulDim(x.d, constDim(-1)) };
    if (x.k === "tensor") return this.emit(e.op === "-" ? "neg" : "not", [x], {}, e.span);
    return this.report("E0302", `'${e.op}' does not apply to ${describe(x)}`, e.span);
  }

  private binary(frame: Frame<TV>, e: A.Binary): Value<TV> {
    const a = this.eval(frame, e.left);
    // Compile-time && and || short-circuit, so `has_bias && w.b` style guards work.
    if (a.k === "scalar" && a.s.type === "bool" && ((e.op === "&&" && !a.s.value) || (e.op === "||" && a.s.value))) return a;
    const b = this.eval(frame, e.right);
    if (a.k === "poison" || b.k === "poison") return { k: "poison" };
    if (a.k === "scalar" && b.k === "scalar") return this.foldScalar(() => scalarBinary(e.op, a.s, b.s), e.span);
    // Dimensions stay dimensions with integers; with an f32 they are tensor values (`P * 0.5`).
    const f32 = (v: Value<TV>) => v.k === "scalar" && v.s.type === "f32";
    const dimLike = (v: Value<TV>) => v.k === "dim" || (v.k === "scalar" && !f32(v));
    if (dimLike(a) && dimLike(b)) return this.dimArith(e, a, b);
    if (a.k === "tensor" || b.k === "tensor" || (a.k === "dim" && f32(b)) || (f32(a) && b.k === "dim")) {
      if (e.op === "@") {
        if (a.k !== "tensor" || b.k !== "tensor") return this.report("E0302", "'@' needs two tensors", e.span);
        return this.emit("matmul", [a, b], {}, e.span);
      }
      const op = BIN_OPS[e.op];
      if (!op) return this.report("E0302", `'${e.op}' does not apply to tensors`, e.span);
      const [x, y] = operandsLike(this.ctx, { v: a, span: e.left.span }, { v: b, span: e.right.span });
      return x && y ? this.emit(op, [x, y], {}, e.span) : { k: "poison" };
    }
    return this.report("E0302", `'${e.op}' does not apply to ${describe(a)} and ${describe(b)}`, e.span);
  }

  private dimArith(e: A.Binary, a: Value<TV>, b: Value<TV>): Value<TV> {
    const da = this.asDim(a, e.left.span);
    const db = this.asDim(b, e.right.span);
    if (!da || !db) return { k: "poison" };
    switch (e.op) {
      case "+": return { k: "dim", d: addDim(da, db) };
      case "-": return { k: "dim", d: subDim(da, db) };
      case "*": return { k: "dim", d: mulDim(da, db) };
      case "/": {
        const c = constValue(db);
        const q = c !== null ? divDimExact(da, c) : null;
        return q ? { k: "dim", d: q } : this.report("E0301", `${formatDim(da)} / ${formatDim(db)} is not an exact division of dimensions`, e.span);
      }
      case "==": case "!=": {
        const eq = dimEquals(da, db);
        if (!eq && (constValue(da) === null || constValue(db) === null)) {
          return this.report("E0301", `cannot decide ${formatDim(da)} ${e.op} ${formatDim(db)} at compile time`, e.span);
        }
        return { k: "scalar", s: { type: "bool", value: eq === (e.op === "==") } };
      }
      default:
        return this.report("E0301", `'${e.op}' on symbolic dimensions (${formatDim(da)}, ${formatDim(db)}) cannot be decided at compile time`, e.span);
    }
  }

  private foldScalar(f: () => Scalar, span: A.Span): Value<TV> {
    try {
      return { k: "scalar", s: f() };
    } catch (err) {
      if (!(err instanceof ScalarError)) throw err;
      return this.report("E0302", err.message, span);
    }
  }

  private member(frame: Frame<TV>, e: A.Member): Value<TV> {
    const t = this.eval(frame, e.target);
    if (t.k === "poison") return t;
    const name = e.name.name;
    if (t.k === "layer") {
      const f = t.info.fields.get(name);
      if (f) return this.weightValue(`${t.info.name}.${t.index}.${name}`, f);
      const absent = frame.model?.absentWeights.get(`${t.info.name}.${name}`);
      if (absent) {
        const why = "droppedBy" in absent ? `model '${absent.droppedBy}' drops it` : "its 'when' condition is false; guard its use with the same condition";
        return this.report("E0206", `weight '${t.info.name}.${name}' does not exist for this config (${why})`, e.name.span);
      }
      return this.report("E0201", `weight group '${t.info.name}' has no weight '${name}'${suggest(name, t.info.fields.keys())}`, e.name.span);
    }
    if (t.k === "tensor" && name === "T") return transposeLast(this.ctx, t, e.span);
    if (t.k === "tensor" && name === "shape") return { k: "list", elems: t.ty.shape.map((d) => ({ k: "dim", d })) };
    return this.report("E0201", `${describe(t)} has no member '${name}'${t.k === "tensor" ? " (tensors have .T and .shape; call functions as x.f())" : ""}`, e.name.span);
  }

  private index(frame: Frame<TV>, e: A.Index): Value<TV> {
    const t = this.eval(frame, e.target);
    if (t.k === "poison") return t;
    const single = e.indices.length === 1 && e.indices[0]!.kind !== "Slice" ? (e.indices[0] as A.Expr) : null;
    if (t.k === "group" || t.k === "state" || t.k === "list" || t.k === "tuple") {
      if (!single) return this.report("E0302", `${describe(t)} takes one integer index`, e.span);
      const i = this.intOf(this.eval(frame, single), single.span);
      if (i === null) return { k: "poison" };
      const n = t.k === "group" ? t.info.count : t.k === "state" ? t.info.layers : t.elems.length;
      const j = i < 0 ? i + n : i;
      if (j < 0 || j >= n) return this.report("E0404", `index ${i} is out of range for ${describe(t)} of ${n}`, single.span);
      if (t.k === "group") return { k: "layer", info: t.info, index: j };
      if (t.k === "state") return { k: "stateLayer", info: t.info, layer: j };
      return t.elems[j]!;
    }
    if (t.k !== "tensor") return this.report("E0302", `${describe(t)} cannot be indexed`, e.span);
    if (single) {
      const ix = this.eval(frame, single);
      if (ix.k === "tensor") return this.emit("gather", [t, ix], {}, e.span);
    }
    // Slicing: one entry per leading dim; an integer picks one element and drops the dim.
    if (e.indices.length > t.ty.shape.length) return this.report("E0301", `${e.indices.length} indices for a tensor of rank ${t.ty.shape.length}`, e.span);
    let cur: Value<TV> = t;
    const drop: number[] = [];
    for (let axis = 0; axis < e.indices.length; axis++) {
      if (cur.k !== "tensor") return cur;
      const ix = e.indices[axis]!;
      const size = cur.ty.shape[axis]!;
      let start: Dim;
      let end: Dim;
      if (ix.kind === "Slice") {
        if (!ix.start && !ix.end) continue;
        const s = ix.start ? this.boundDim(frame, ix.start, size) : constDim(0);
        const en = ix.end ? this.boundDim(frame, ix.end, size) : size;
        if (!s || !en) return { k: "poison" };
        start = s;
        end = en;
      } else {
        const s = this.boundDim(frame, ix, size);
        if (!s) return { k: "poison" };
        start = s;
        end = addDim(s, constDim(1));
        drop.push(axis);
      }
      cur = this.emit("slice", [cur], { axis, start, end }, e.span);
    }
    if (drop.length > 0 && cur.k === "tensor") {
      const shape = cur.ty.shape.filter((_, i) => !drop.includes(i));
      cur = this.emit("reshape", [cur], { shape }, e.span);
    }
    return cur;
  }

  /** A slice bound: negative constants count from the end of the dim. */
  private boundDim(frame: Frame<TV>, e: A.Expr, size: Dim): Dim | null {
    const d = this.asDim(this.eval(frame, e), e.span);
    if (!d) return null;
    const c = constValue(d);
    return c !== null && c < 0 ? addDim(size, d) : d;
  }

  private stateMethod(frame: Frame<TV>, target: Extract<Value<TV>, { k: "stateLayer" }>, e: A.MethodCall): Value<TV> {
    if (e.method.name !== "append") return this.report("E0201", `the KV cache has one method: append(k, v); not '${e.method.name}'`, e.method.span);
    if (e.args.length !== 2 || e.args.some((a) => a.name)) return this.report("E0303", "append takes two positional arguments: append(k, v)", e.span);
    const out: Value<TV>[] = [];
    const info = target.info;
    for (const [which, arg] of [["k", e.args[0]!], ["v", e.args[1]!]] as const) {
      const x = this.eval(frame, arg.value);
      if (x.k === "poison") return x;
      if (x.k !== "tensor") return this.report("E0302", `append's ${which} must be a tensor, got ${describe(x)}`, arg.span);
      const s = x.ty.shape;
      if (s.length !== 3 || constValue(s[1]!) !== info.heads || constValue(s[2]!) !== info.headDim) {
        return this.report("E0301", `the KV cache '${info.name}' holds [T, ${info.heads}, ${info.headDim}] per step; ${which} is ${formatShape(s)}`, arg.span);
      }
      out.push(this.emit("kv_append", [x], { state: info.name, layer: target.layer, which }, e.span));
    }
    return { k: "tuple", elems: out };
  }

  // ------------------------------------------------------------------------------------ calls
  private call(frame: Frame<TV>, name: string, nameSpan: A.Span, self: Arg<TV> | null, args: A.Arg[], span: A.Span): Value<TV> {
    const pos: Arg<TV>[] = self ? [self] : [];
    const named = new Map<string, Arg<TV>>();
    for (const a of args) {
      const v = this.eval(frame, a.value);
      if (a.name) {
        if (named.has(a.name.name)) return this.report("E0303", `argument '${a.name.name}' is given twice`, a.span);
        named.set(a.name.name, { v, span: a.value.span });
      } else {
        if (named.size > 0) return this.report("E0303", "positional arguments come before named ones", a.span);
        pos.push({ v, span: a.value.span });
      }
    }
    if ([...pos, ...named.values()].some((a) => a.v.k === "poison")) return { k: "poison" };

    // Resolution: the model's functions (most-derived), then top-level functions, then built-ins.
    const modelFn = frame.model?.fns.get(name);
    if (modelFn) return this.callUser(modelFn.decl, frame.model, pos, named, span);
    const top = this.program.fns.get(name);
    if (top) return this.callUser(top, null, pos, named, span);

    const allScalar = [...pos, ...named.values()].every((a) => a.v.k === "scalar");
    const sf = scalarFunctions[name];
    if (sf && allScalar && named.size === 0) return this.foldScalar(() => sf(pos.map((a) => (a.v as { s: Scalar }).s)), span);
    const b = builtins[name];
    if (b) {
      const bound = new Map<string, Arg<TV>>();
      if (pos.length > b.params.length) return this.report("E0303", `${name} takes at most ${b.params.length} arguments (${b.params.map((q) => q.name).join(", ")}), got ${pos.length}`, span);
      b.params.forEach((prm, i) => {
        const a = pos[i] ?? named.get(prm.name);
        if (a) bound.set(prm.name, a);
        else if (prm.default !== undefined) {
          const s: Scalar = typeof prm.default === "boolean" ? { type: "bool", value: prm.default } : { type: prm.kind === "f32" ? "f32" : "int", value: prm.default };
          bound.set(prm.name, { v: { k: "scalar", s }, span });
        }
      });
      for (const [n, a] of named) {
        const i = b.params.findIndex((q) => q.name === n);
        if (i < 0) return this.report("E0303", `${name} has no parameter '${n}'${suggest(n, b.params.map((q) => q.name))}; it takes ${b.params.map((q) => q.name).join(", ")}`, a.span);
        if (i < pos.length) return this.report("E0303", `argument '${n}' of ${name} is given twice`, a.span);
      }
      const missing = b.params.filter((q) => !bound.has(q.name));
      if (missing.length > 0) return this.report("E0303", `${name} is missing argument${missing.length > 1 ? "s" : ""} ${missing.map((q) => `'${q.name}'`).join(", ")}`, span);
      return b.run(this.ctx, bound, span);
    }
    const known = [...(frame.model?.fns.keys() ?? []), ...this.program.fns.keys(), ...Object.keys(builtins), ...Object.keys(scalarFunctions)];
    return this.report("E0201", `unknown function '${name}'${suggest(name, known)}`, nameSpan);
  }

  private callUser(decl: A.FnDecl, model: ResolvedModel | null, pos: Arg<TV>[], named: Map<string, Arg<TV>>, span: A.Span): Value<TV> {
    if (this.stack.length >= MAX_CALL_DEPTH) {
      return this.report("E0211", `calls nest more than ${MAX_CALL_DEPTH} deep at '${decl.name.name}': recursion is not supported`, span);
    }
    const frame: Frame<TV> = { scope: new Map(), fn: decl, model, callSite: span, leading: null };
    if (pos.length > decl.params.length) return this.report("E0303", `${decl.name.name} takes ${decl.params.length} argument(s), got ${pos.length}`, span);
    for (const [n, a] of named) {
      const i = decl.params.findIndex((q) => q.name.name === n);
      if (i < 0) return this.report("E0303", `${decl.name.name} has no parameter '${n}'${suggest(n, decl.params.map((q) => q.name.name))}`, a.span);
      if (i < pos.length) return this.report("E0303", `argument '${n}' of ${decl.name.name} is given twice`, a.span);
    }
    // Bind arguments; bare-name dims of tensor parameters bind shape variables first, so that
    // compound dims (`[D / 2]`) can be checked against them afterwards.
    const bound: { prm: A.Param; a: Arg<TV> }[] = [];
    for (let i = 0; i < decl.params.length; i++) {
      const prm = decl.params[i]!;
      let a = pos[i] ?? named.get(prm.name.name);
      if (!a && prm.default) a = { v: this.eval({ ...frame, scope: new Map(frame.scope) }, prm.default), span: prm.default.span };
      if (!a) return this.report("E0303", `${decl.name.name} is missing argument '${prm.name.name}'`, span);
      bound.push({ prm, a });
    }
    // `...` binds to the leading dims of the first argument that has them; the named dims align
    // with the trailing ones.
    const shapeVars = new Map<string, Dim>();
    for (const { prm, a } of bound) {
      if (prm.type.kind !== "TensorType" || a.v.k !== "tensor") continue;
      const shape = a.v.ty.shape;
      const lead = prm.type.ellipsis ? shape.length - prm.type.dims.length : 0;
      if (lead < 0) continue;
      if (prm.type.ellipsis) frame.leading ??= shape.slice(0, lead);
      prm.type.dims.forEach((d, i) => {
        if (d.kind !== "Name" || shapeVars.has(d.name) || this.isModelName(model, d.name)) return;
        const actual = shape[lead + i];
        if (actual) shapeVars.set(d.name, actual);
      });
    }
    for (const [n, d] of shapeVars) frame.scope.set(n, { k: "dim", d });
    for (const { prm, a } of bound) {
      const v = this.bindParam(frame, decl, prm, a);
      if (v.k === "poison") return v;
      frame.scope.set(prm.name.name, v);
    }
    this.stack.push(frame);
    try {
      const result = this.execBody(frame, decl.body);
      if (!result) return this.report("E0210", `function '${decl.name.name}' ends without a return`, decl.name.span);
      if (result.k === "poison") return this.placeholderFor(frame, decl) ?? result;
      return decl.ret ? this.checkResult(frame, decl, result) : result;
    } finally {
      this.stack.pop();
    }
  }

  /** A value of the declared result type, so the caller's checking continues past a faulty call. */
  private placeholderFor(frame: Frame<TV>, decl: A.FnDecl): Value<TV> | null {
    const t = decl.ret;
    if (t?.kind !== "TensorType" || (t.ellipsis && !frame.leading)) return null;
    const mark = this.diagnostics.length;
    const shape: Dim[] = t.ellipsis ? [...frame.leading!] : [];
    for (const d of t.dims) {
      const v = d.kind === "Name" && !frame.scope.has(d.name) && !this.isModelName(frame.model, d.name) ? null : this.eval(frame, d);
      const dim = v && (v.k === "dim" ? v.d : v.k === "scalar" && v.s.type === "int" ? constDim(v.s.value as number) : null);
      if (!dim) {
        this.diagnostics.length = mark;
        return null;
      }
      shape.push(dim);
    }
    const ty: TensorTy = { shape, dtype: t.dtype ?? "f32" };
    return { k: "tensor", ty, v: this.domain.placeholder(ty) };
  }

  private isModelName(model: ResolvedModel | null, name: string): boolean {
    return !!model && (model.config.has(name) || model.weights.has(name));
  }

  private bindParam(frame: Frame<TV>, decl: A.FnDecl, prm: A.Param, a: Arg<TV>): Value<TV> {
    const t = prm.type;
    const where = `argument '${prm.name.name}' of ${decl.name.name}`;
    switch (t.kind) {
      case "TensorType": {
        if (a.v.k !== "tensor") return this.report("E0302", `${where} must be a tensor ${this.typeText(frame, t)}, got ${describe(a.v)}`, a.span);
        const err = this.matchTensorType(frame, t, a.v.ty);
        return err ? this.report(err.code, `${where}: ${err.message}`, a.span) : a.v;
      }
      case "ScalarType": {
        if (t.name === "int" && a.v.k === "dim") return a.v;
        if (a.v.k !== "scalar") return this.report("E0302", `${where} must be ${t.name}, got ${describe(a.v)}`, a.span);
        try {
          return { k: "scalar", s: coerceScalar(a.v.s, t.name) };
        } catch (err) {
          return this.report("E0302", `${where}: ${(err as Error).message}`, a.span);
        }
      }
      case "EnumType": {
        if (a.v.k !== "scalar") return this.report("E0302", `${where} must be one of ${t.values.join(" | ")}, got ${describe(a.v)}`, a.span);
        try {
          return { k: "scalar", s: coerceScalar(a.v.s, { enum: t.values }) };
        } catch (err) {
          return this.report("E0302", `${where}: ${(err as Error).message}`, a.span);
        }
      }
      case "NamedType": {
        const g = frame.model?.weights.get(t.name.name);
        if (!g || !("count" in g)) {
          return this.report("E0201", `unknown parameter type '${t.name.name}' (a parameter can be typed as a weight group of the model, e.g. 'w: layers')`, t.span);
        }
        if (a.v.k !== "layer" || a.v.info.name !== g.name) return this.report("E0302", `${where} must be one layer of '${g.name}', got ${describe(a.v)}`, a.span);
        return a.v;
      }
      case "TupleType":
        return this.report("E0302", "parameters cannot be tuples", t.span);
    }
  }

  /** Checks a value against a declared tensor type in the frame's scope (shape variables bound). */
  private matchTensorType(frame: Frame<TV>, t: A.TensorType, ty: TensorTy): { code: string; message: string } | null {
    const want = t.dtype ?? "f32";
    if (ty.dtype !== want) return { code: "E0302", message: `expected element type ${want}, got ${ty.dtype}` };
    if (t.ellipsis ? ty.shape.length < t.dims.length : t.dims.length !== ty.shape.length) {
      const rank = t.ellipsis ? `rank ≥ ${t.dims.length}` : `rank ${t.dims.length}`;
      return { code: "E0301", message: `expected a tensor of ${rank} ${this.typeText(frame, t)}, got ${formatShape(ty.shape)}` };
    }
    const lead = ty.shape.length - t.dims.length;
    if (t.ellipsis) {
      const leading = ty.shape.slice(0, lead);
      // Bound here when only the result type has `...`.
      frame.leading ??= leading;
      if (frame.leading.length !== lead || !frame.leading.every((d, i) => dimEquals(d, leading[i]!))) {
        return { code: "E0301", message: `expected shape ${this.typeText(frame, t)}, got ${formatShape(ty.shape)} ('...' is ${formatShape(frame.leading)} in this call of ${frame.fn.name.name}, here ${formatShape(leading)})` };
      }
    }
    for (let i = 0; i < t.dims.length; i++) {
      const de = t.dims[i]!;
      const actual = ty.shape[lead + i]!;
      let expected: Dim | null;
      if (de.kind === "Name" && !frame.scope.has(de.name) && !this.isModelName(frame.model, de.name)) {
        // A variable that appears only in the result type: bind it now.
        frame.scope.set(de.name, { k: "dim", d: actual });
        continue;
      }
      const mark = this.diagnostics.length;
      expected = this.asDim(this.eval(frame, de), de.span);
      if (!expected) {
        this.diagnostics.length = mark;
        return { code: "E0301", message: `dim ${lead + i} of ${this.typeText(frame, t)} cannot be evaluated` };
      }
      if (!dimEquals(expected, actual)) {
        return { code: "E0301", message: `expected shape ${this.typeText(frame, t)}, got ${formatShape(ty.shape)} (dim ${lead + i}: ${formatDim(expected)} ≠ ${formatDim(actual)})` };
      }
    }
    return null;
  }

  private checkResult(frame: Frame<TV>, decl: A.FnDecl, result: Value<TV>): Value<TV> {
    const t = decl.ret!;
    if (t.kind === "TensorType") {
      if (result.k !== "tensor") return this.report("E0302", `${decl.name.name} returns ${describe(result)} but declares a tensor`, decl.ret!.span);
      const err = this.matchTensorType(frame, t, result.ty);
      return err ? this.report(err.code, `result of ${decl.name.name}: ${err.message}`, t.span) : result;
    }
    if (t.kind === "TupleType") {
      if (result.k !== "tuple" || result.elems.length !== t.elems.length) {
        return this.report("E0302", `${decl.name.name} declares a tuple of ${t.elems.length} but returns ${describe(result)}`, t.span);
      }
      for (let i = 0; i < t.elems.length; i++) {
        const et = t.elems[i]!;
        const ev = result.elems[i]!;
        if (et.kind === "TensorType" && ev.k === "tensor") {
          const err = this.matchTensorType(frame, et, ev.ty);
          if (err) return this.report(err.code, `result ${i} of ${decl.name.name}: ${err.message}`, et.span);
        }
      }
      return result;
    }
    if (t.kind === "ScalarType") {
      if (result.k !== "scalar") return this.report("E0302", `${decl.name.name} declares ${t.name} but returns ${describe(result)}`, t.span);
      try {
        return { k: "scalar", s: coerceScalar(result.s, t.name) };
      } catch (err) {
        return this.report("E0302", `result of ${decl.name.name}: ${(err as Error).message}`, t.span);
      }
    }
    return result;
  }

  private typeText(frame: Frame<TV>, t: A.TensorType): string {
    const dims = t.dims.map((d) => {
      if (d.kind === "Name") {
        const v = frame.scope.get(d.name);
        if (v?.k === "dim") return formatDim(v.d);
        const c = frame.model?.config.get(d.name)?.value;
        if (c) return `${d.name}=${formatScalar(c)}`;
      }
      return d.kind === "Name" ? d.name : d.kind === "Number" ? d.raw : "…";
    });
    if (t.ellipsis) dims.unshift("...");
    return `[${dims.join(", ")}]${t.dtype && t.dtype !== "f32" ? " " + t.dtype : ""}`;
  }

  // ------------------------------------------------------------------------------------ conversions
  private asDim(v: Value<TV>, span: A.Span): Dim | null {
    if (v.k === "poison") return null;
    if (v.k === "dim") return v.d;
    if (v.k === "scalar" && v.s.type === "int") return constDim(v.s.value as number);
    this.report("E0302", `expected an integer dimension, got ${v.k === "scalar" ? `${v.s.type} ${formatScalar(v.s)}` : describe(v)}`, span);
    return null;
  }

  private intOf(v: Value<TV>, span: A.Span): number | null {
    const d = this.asDim(v, span);
    if (!d) return null;
    const c = constValue(d);
    if (c === null) this.report("E0301", `expected a constant integer, got the symbolic ${formatDim(d)}`, span);
    return c;
  }

  private emit(op: string, inputs: Tensor<TV>[], attrs: Attrs, span: A.Span): Value<TV> {
    let ty: TensorTy;
    try {
      ty = getOp(op).infer(inputs.map((x) => x.ty), attrs);
    } catch (err) {
      if (!(err instanceof TypeRuleError)) throw err;
      return this.report(/element type|dtype|bool|i32|floating/.test(err.message) ? "E0302" : "E0301", err.message, span);
    }
    return { k: "tensor", ty, v: this.domain.op(op, inputs.map((x) => x.v), attrs, ty) };
  }

  private constant(s: Scalar, dtype: DType, span: A.Span): Tensor<TV> | null {
    if (s.type === "str") {
      this.report("E0302", `a string cannot be used as a tensor`, span);
      return null;
    }
    const value = s.type === "bool" ? (s.value ? 1 : 0) : (s.value as number);
    const dt: DType = s.type === "bool" ? "bool" : s.type === "f32" && dtype === "i32" ? "f32" : dtype;
    const v = this.emit("const", [], { value, dtype: dt }, span);
    return v.k === "tensor" ? v : null;
  }

  /** The context built-ins use; shared so all of them convert arguments the same way. */
  private readonly ctx: BuiltinCtx<TV> = {
    emit: (op, inputs, attrs, span) => this.emit(op, inputs, attrs, span),
    tensor: (a, like) => {
      if (a.v.k === "tensor") return a.v;
      if (a.v.k === "poison") return null;
      if (a.v.k === "scalar") return this.constant(a.v.s, like ?? (a.v.s.type === "bool" ? "bool" : "f32"), a.span);
      if (a.v.k === "dim") {
        const c = constValue(a.v.d);
        if (c !== null) return this.constant({ type: "int", value: c }, like ?? "f32", a.span);
        // A polynomial of T and P: a rank-0 tensor each step computes.
        const v = this.emit("dim_value", [], { value: a.v.d, dtype: like === "i32" ? "i32" : "f32" }, a.span);
        return v.k === "tensor" ? v : null;
      }
      this.report("E0302", `expected a tensor, got ${describe(a.v)}`, a.span);
      return null;
    },
    scalar: (a) => {
      if (a.v.k === "scalar") return a.v.s;
      if (a.v.k !== "poison") this.report("E0302", `expected a compile-time scalar, got ${describe(a.v)}`, a.span);
      return null;
    },
    int: (a) => this.intOf(a.v, a.span),
    dim: (a) => this.asDim(a.v, a.span),
    fail: (code, message, span) => this.report(code, message, span),
  };
}

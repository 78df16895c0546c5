// What the word under the cursor names: an import, a function (the program's, a model's, a built-in),
// a config value, a weight, the state, a model, or a local (parameter, binding, loop variable, shape
// variable). Hover and go-to-definition both start here. Lookup follows the checker's rules: locals,
// then the enclosing model's chain (most derived first), then top-level functions and built-ins.

import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type * as A from "../compiler/parse/ast.js";
import { builtins } from "../compiler/check/builtins.js";
import { scalarFunctions } from "../compiler/check/scalar.js";
import { KEY_TRANSFORMS, KNOWN_TRANSFORMS } from "../compiler/check/model.js";
import { bundledModelsDir } from "../paths.js";
import type { Analysis } from "./analysis.js";
import { innermost, pathAt, type Node } from "./locate.js";

export type LocalRole = "parameter" | "binding" | "loop index" | "layer" | "shape variable";

export type Target =
  | { kind: "import"; imp: A.Import; file: string | null }
  | { kind: "fn"; decl: A.FnDecl; model: A.ModelDecl | null }
  | { kind: "builtin"; name: string }
  | { kind: "scalarFn"; name: string }
  | { kind: "transform"; name: string; doc: string }
  | { kind: "config"; decl: A.ConfigParam; model: A.ModelDecl }
  | { kind: "weight"; decl: A.WeightDecl | A.WeightGroup; group: A.WeightGroup | null; model: A.ModelDecl }
  | { kind: "state"; decl: A.StateDecl; model: A.ModelDecl }
  | { kind: "model"; decl: A.ModelDecl }
  | { kind: "local"; role: LocalRole; def: A.Ident | A.Name; fn: A.FnDecl; param: A.Param | null; loop: A.For | null }
  | { kind: "stepDim"; name: "T" | "P" };

/** The target under the cursor and the span of the word it was found from. */
export interface Found {
  target: Target;
  at: A.Span;
}

export function targetAt(an: Analysis, path: string, offset: number): Found | null {
  const mod = an.module(path);
  if (!mod) return null;
  for (const imp of mod.imports) {
    if (imp.pathSpan.start.offset <= offset && offset <= imp.pathSpan.end.offset) {
      return { target: { kind: "import", imp, file: importedFile(path, imp.path) }, at: imp.pathSpan };
    }
  }
  const nodes = pathAt(mod, offset);
  const leaf = nodes[nodes.length - 1]!;
  if (leaf.kind !== "Ident" && leaf.kind !== "Name") return null;
  const name = (leaf as A.Ident | A.Name).name;
  const target = new Scope(an, nodes).resolve(leaf as A.Ident | A.Name, nodes[nodes.length - 2] ?? null, name, offset);
  return target ? { target, at: leaf.span } : null;
}

/** Where `import "p"` leads: next to the importing file, then llmc's bundled models (as the checker looks). */
export function importedFile(fromPath: string, imported: string): string | null {
  const candidates = isAbsolute(imported) ? [imported] : [resolve(dirname(fromPath), imported), resolve(bundledModelsDir(), imported)];
  return candidates.find((c) => existsSync(c)) ?? null;
}

class Scope {
  readonly model: A.ModelDecl | null;
  readonly fn: A.FnDecl | null;
  readonly chain: A.ModelDecl[];

  constructor(
    private readonly an: Analysis,
    private readonly nodes: Node[],
  ) {
    this.model = innermost(nodes, "Model") as A.ModelDecl | null;
    this.fn = innermost(nodes, "Fn") as A.FnDecl | null;
    this.chain = this.model ? an.chain(this.model) : [];
  }

  resolve(leaf: A.Ident | A.Name, parent: Node | null, name: string, offset: number): Target | null {
    const inside = (kind: string) => this.nodes.some((n) => n.kind === kind);
    if (leaf.kind === "Ident" && parent) {
      switch (parent.kind) {
        case "Fn":
          return { kind: "fn", decl: parent as A.FnDecl, model: this.model };
        case "Model": {
          const m = parent as A.ModelDecl;
          if (leaf === m.name) return { kind: "model", decl: m };
          const base = this.an.result.models.get(name)?.decl;
          return base ? { kind: "model", decl: base } : null;
        }
        case "FnDrop":
          return this.modelFn(name, this.chain.slice(1));
        case "ConfigParam":
          return this.config(name);
        case "Weight":
        case "WeightGroup":
        case "WeightDrop":
          return this.weightItem(name, innermost(this.nodes.slice(0, -2), "WeightGroup") as A.WeightGroup | null, parent.kind === "WeightDrop");
        case "State":
          return this.value(name);
        case "Param": {
          const p = parent as A.Param;
          return this.fn ? { kind: "local", role: "parameter", def: p.name, fn: this.fn, param: p, loop: null } : null;
        }
        case "Assign":
          return this.fn ? { kind: "local", role: "binding", def: leaf, fn: this.fn, param: null, loop: null } : null;
        case "For": {
          const f = parent as A.For;
          return this.fn ? { kind: "local", role: leaf === f.index ? "loop index" : "layer", def: leaf, fn: this.fn, param: null, loop: f } : null;
        }
        case "Call":
          if (inside("KeySource")) return transform(name, KEY_TRANSFORMS[name as keyof typeof KEY_TRANSFORMS]?.doc);
          if (inside("TensorName")) return transform(name, KNOWN_TRANSFORMS[name]?.doc);
          return this.callable(name);
        case "MethodCall":
          return this.callable(name);
        case "Member": {
          if (name === "T") return { kind: "builtin", name: "T" };
          const group = this.groupOf((parent as A.Member).target, offset);
          return group ? this.weightItem(name, group, false) : null;
        }
        case "NamedType":
          if (name === "KVCache") return { kind: "builtin", name };
          return this.value(name);
        case "Tie":
          return this.value(name);
        default:
          return null;
      }
    }
    if (this.fn) {
      const local = this.local(name, offset);
      if (local) return local;
    }
    return this.value(name);
  }

  // ------------------------------------------------------------------------------------ functions
  private callable(name: string): Target | null {
    const own = this.modelFn(name, this.chain);
    if (own) return own;
    const top = this.an.result.fns.get(name);
    if (top) return { kind: "fn", decl: top, model: null };
    if (Object.hasOwn(builtins, name) || name === "append") return { kind: "builtin", name };
    if (Object.hasOwn(scalarFunctions, name)) return { kind: "scalarFn", name };
    return null;
  }

  /** The most derived definition along the chain; a `drop fn` stops the search (calls then go to top-level functions). */
  private modelFn(name: string, chain: A.ModelDecl[]): Target | null {
    for (const m of chain) {
      const fn = m.members.find((x): x is A.FnDecl => x.kind === "Fn" && x.name.name === name);
      if (fn) return { kind: "fn", decl: fn, model: m };
      if (m.members.some((x) => x.kind === "FnDrop" && x.name.name === name)) break;
    }
    if (chain !== this.chain) return null;
    const top = this.an.result.fns.get(name);
    return top ? { kind: "fn", decl: top, model: null } : null;
  }

  // ------------------------------------------------------------------------------------ model values
  private value(name: string): Target | null {
    if (!this.model) return null;
    return this.config(name) ?? this.weightItem(name, null, false) ?? this.state(name) ?? stepDim(name, this.fn);
  }

  /** The declaration (with a type) of a config value, wherever along the chain it is. */
  private config(name: string): Target | null {
    if (!this.model) return null;
    let override: A.ConfigParam | null = null;
    for (const m of this.chain) {
      for (const mem of m.members) {
        if (mem.kind !== "Config") continue;
        for (const it of mem.items) {
          if (it.kind !== "ConfigParam" || it.name.name !== name) continue;
          if (it.type) return { kind: "config", decl: it, model: this.model };
          override ??= it;
        }
      }
    }
    return override ? { kind: "config", decl: override, model: this.model } : null;
  }

  /** A weight or group (group null), or an item of a group; `below`: skip the model itself (for `drop`). */
  private weightItem(name: string, group: A.WeightGroup | null, below: boolean): Target | null {
    if (!this.model) return null;
    for (const m of below ? this.chain.slice(1) : this.chain) {
      for (const mem of m.members) {
        if (mem.kind !== "Weights") continue;
        const items = group ? mem.items.filter((g): g is A.WeightGroup => g.kind === "WeightGroup" && g.name.name === group.name.name).flatMap((g) => g.items) : mem.items;
        const g = group ? (mem.items.find((x) => x.kind === "WeightGroup" && x.name.name === group.name.name) as A.WeightGroup | undefined) ?? group : null;
        for (const it of items) {
          if (it.name.name !== name || it.kind === "WeightDrop") continue;
          return { kind: "weight", decl: it, group: g, model: this.model };
        }
      }
    }
    return null;
  }

  private state(name: string): Target | null {
    for (const m of this.chain) {
      const st = m.members.find((x): x is A.StateDecl => x.kind === "State" && x.name.name === name);
      if (st) return { kind: "state", decl: st, model: this.model! };
    }
    return null;
  }

  /** The weight group whose layers a name (`w` of `for l, w in layers`, or `w: layers`) stands for. */
  private groupOf(e: A.Expr, offset: number): A.WeightGroup | null {
    if (e.kind !== "Name" || !this.fn) return null;
    const local = this.local(e.name, offset);
    let groupName: string | null = null;
    if (local?.kind === "local" && local.loop && local.role === "layer" && local.loop.iterable.kind === "Name") groupName = local.loop.iterable.name;
    if (local?.kind === "local" && local.param?.type.kind === "NamedType") groupName = local.param.type.name.name;
    if (!groupName) return null;
    const t = this.weightItem(groupName, null, false);
    return t?.kind === "weight" && t.decl.kind === "WeightGroup" ? t.decl : null;
  }

  // ------------------------------------------------------------------------------------ locals
  /** The binding of a name in the enclosing function that is in effect at the offset (bindings are SSA). */
  private local(name: string, offset: number): Target | null {
    const fn = this.fn!;
    const modelName = (n: string) => this.chain.length > 0 && this.value(n) !== null && this.value(n)?.kind !== "stepDim";
    let best: { at: number; t: Target } | null = null;
    const consider = (at: number, t: Target) => {
      if (at <= offset && (!best || at >= best.at)) best = { at, t };
    };
    // Shape variables: bare-name dims of the signature that are not model values; the first use binds.
    const dims: A.Name[] = [];
    const collectDims = (t: A.TypeExpr | null) => {
      if (t?.kind === "TensorType") for (const d of t.dims) if (d.kind === "Name") dims.push(d);
      if (t?.kind === "TupleType") t.elems.forEach(collectDims);
    };
    for (const p of fn.params) collectDims(p.type);
    collectDims(fn.ret);
    const firstDim = dims.find((d) => d.name === name);
    if (firstDim && !modelName(name) && !(fn.name.name === "forward" && (name === "T" || name === "P"))) {
      consider(fn.span.start.offset, { kind: "local", role: "shape variable", def: firstDim, fn, param: null, loop: null });
    }
    for (const p of fn.params) {
      if (p.name.name === name) consider(p.name.span.start.offset, { kind: "local", role: "parameter", def: p.name, fn, param: p, loop: null });
    }
    const stmts = (body: A.Stmt[]) => {
      for (const st of body) {
        if (st.kind === "Assign") {
          for (const t of st.targets) if (t.name === name) consider(st.span.end.offset, { kind: "local", role: "binding", def: t, fn, param: null, loop: null });
        } else if (st.kind === "For") {
          if (st.index.name === name) consider(st.index.span.start.offset, { kind: "local", role: "loop index", def: st.index, fn, param: null, loop: st });
          if (st.item?.name === name) consider(st.item.span.start.offset, { kind: "local", role: "layer", def: st.item, fn, param: null, loop: st });
          stmts(st.body);
        }
      }
    };
    stmts(fn.body);
    return (best as { t: Target } | null)?.t ?? null;
  }
}

function stepDim(name: string, fn: A.FnDecl | null): Target | null {
  return fn && (name === "T" || name === "P") ? { kind: "stepDim", name } : null;
}

function transform(name: string, doc: string | undefined): Target | null {
  return doc ? { kind: "transform", name, doc } : null;
}

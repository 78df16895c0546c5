// Name resolution over every function body, including functions no model calls (the standard
// library, abstract base models): unknown names, unknown functions and use-before-assignment are
// found here without needing config values. Shapes are checked later by the elaborator.

import type * as A from "../parse/ast.js";
import { error, type Diagnostic } from "../base/diagnostics.js";
import { builtins } from "./builtins.js";
import { scalarFunctions } from "./scalar.js";
import { suggest } from "./suggest.js";

export interface ModelNames {
  values: Set<string>; // config, weights (top-level and groups), state
  groups: Set<string>;
  fns: Set<string>;
}

export function modelNames(chain: A.ModelDecl[]): ModelNames {
  const names: ModelNames = { values: new Set(), groups: new Set(), fns: new Set() };
  const weights = new Set<string>();
  for (const m of chain) {
    for (const mem of m.members) if (mem.kind === "FnDrop") names.fns.delete(mem.name.name);
    for (const mem of m.members) {
      if (mem.kind === "Config") for (const it of mem.items) it.kind === "ConfigParam" && names.values.add(it.name.name);
      else if (mem.kind === "Weights") {
        for (const it of mem.items) {
          if (it.kind === "WeightDrop") {
            weights.delete(it.name.name);
            names.groups.delete(it.name.name);
            continue;
          }
          weights.add(it.name.name);
          if (it.kind === "WeightGroup") names.groups.add(it.name.name);
          else names.groups.delete(it.name.name);
        }
      } else if (mem.kind === "State") names.values.add(mem.name.name);
      else if (mem.kind === "Fn") names.fns.add(mem.name.name);
    }
  }
  for (const w of weights) names.values.add(w);
  return names;
}

export function checkNames(fn: A.FnDecl, topFns: ReadonlySet<string>, model: ModelNames | null, diags: Diagnostic[]): void {
  const scope = new Set<string>();
  const visibleValues = () => [...scope, ...(model?.values ?? [])];
  const callable = (n: string) => model?.fns.has(n) || topFns.has(n) || n in builtins || n in scalarFunctions;
  const allCallables = () => [...(model?.fns ?? []), ...topFns, ...Object.keys(builtins), ...Object.keys(scalarFunctions)];

  // Bare-name dims bind shape variables; compound dims (`D / 2`) must use bound names.
  const bindDims = (t: A.TypeExpr) => {
    if (t.kind === "TensorType") {
      for (const d of t.dims) if (d.kind === "Name" && !model?.values.has(d.name)) scope.add(d.name);
    } else if (t.kind === "TupleType") t.elems.forEach(bindDims);
  };
  const typeNames = (t: A.TypeExpr) => {
    if (t.kind === "TensorType") {
      for (const d of t.dims) if (d.kind !== "Name") expr(d);
    } else if (t.kind === "TupleType") t.elems.forEach(typeNames);
    else if (t.kind === "NamedType") {
      if (!model?.groups.has(t.name.name)) {
        diags.push(error("E0201", `unknown parameter type '${t.name.name}'${suggest(t.name.name, model?.groups ?? [])} (a parameter can be typed as a weight group of the model, e.g. 'w: layers')`, t.name.span));
      }
      t.args.forEach(expr);
    }
  };

  const expr = (e: A.Expr): void => {
    switch (e.kind) {
      case "Name":
        if (e.name !== "<error>" && !scope.has(e.name) && !model?.values.has(e.name)) {
          const where = model ? "" : " (top-level functions see only their parameters; pass the value in)";
          diags.push(error("E0201", `unknown name '${e.name}'${suggest(e.name, visibleValues())}${where}`, e.span));
        }
        return;
      case "Call":
        if (!callable(e.callee.name)) diags.push(error("E0201", `unknown function '${e.callee.name}'${suggest(e.callee.name, allCallables())}`, e.callee.span));
        e.args.forEach((a) => expr(a.value));
        return;
      case "MethodCall":
        expr(e.target);
        if (e.method.name !== "append" && !callable(e.method.name)) {
          diags.push(error("E0201", `unknown function '${e.method.name}'${suggest(e.method.name, allCallables())}`, e.method.span));
        }
        e.args.forEach((a) => expr(a.value));
        return;
      case "Member": return expr(e.target);
      case "Index":
        expr(e.target);
        for (const i of e.indices) {
          if (i.kind === "Slice") {
            if (i.start) expr(i.start);
            if (i.end) expr(i.end);
          } else expr(i);
        }
        return;
      case "Binary": expr(e.left); expr(e.right); return;
      case "Unary": return expr(e.operand);
      case "Conditional": expr(e.cond); expr(e.then); expr(e.else); return;
      case "List": return e.elems.forEach(expr);
      case "Range": expr(e.start); expr(e.end); return;
      default: return;
    }
  };

  const stmts = (body: A.Stmt[]) => {
    for (const st of body) {
      if (st.kind === "Return") expr(st.value);
      else if (st.kind === "Assign") {
        expr(st.value);
        st.targets.forEach((t) => scope.add(t.name));
      } else {
        expr(st.iterable);
        scope.add(st.index.name);
        if (st.item) scope.add(st.item.name);
        stmts(st.body);
      }
    }
  };

  const seenParams = new Set<string>();
  for (const p of fn.params) {
    if (seenParams.has(p.name.name)) diags.push(error("E0202", `parameter '${p.name.name}' is declared twice`, p.name.span));
    seenParams.add(p.name.name);
  }
  // forward's body sees P, the positions cached before this step (elaborate.ts binds it).
  if (model && fn.name.name === "forward") scope.add("P");
  for (const p of fn.params) bindDims(p.type);
  for (const p of fn.params) typeNames(p.type);
  for (const p of fn.params) {
    if (p.default) expr(p.default);
    scope.add(p.name.name);
  }
  if (fn.ret) {
    bindDims(fn.ret);
    typeNames(fn.ret);
  }
  stmts(fn.body);
}

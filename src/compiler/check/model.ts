// Resolves a model declaration: the `extends` chain, its config (declarations, overrides, `--set`,
// evaluation in dependency order, `require`s), its weights (shapes, file names, transforms, ties,
// `when`), its state and its functions (most-derived wins).

import type * as A from "../parse/ast.js";
import { error, type Diagnostic } from "../base/diagnostics.js";
import {
  coerceScalar, formatScalar, parseScalarText, scalarBinary, scalarFunctions, scalarUnary, ScalarError,
  type Scalar, type ScalarType,
} from "./scalar.js";
import { suggest } from "./suggest.js";
import { bindInit, defaultInit, resolveInit, type BoundInit, type WeightInit } from "./init.js";

export type { InitDistribution, WeightInit } from "./init.js";

export type ConfigType = ScalarType | { enum: string[] };

export interface ConfigEntry {
  name: string;
  type: ConfigType;
  value: Scalar | null; // null: required and unbound, or failed to evaluate
  declaredIn: string; // model name
  setBy: "default" | "override" | "file" | "--set";
  decl: A.ConfigParam;
  expr: A.Expr | null; // the effective value expression (null for a file value, --set or unbound)
  /** Where each file format keeps the value: the declaration's clause, or an override's. */
  keys: Partial<Record<A.KeyFormat, A.KeyClause>>;
  /** For a value from a model file: the key it was read from (null: the format's default, its keys absent). */
  source: string | null;
}

/** A config value from a model file (`llmc import`, loading a model), and the key it was read from
 *  (null: the format's value when the file has none of the keys, a clause's `else`). */
export interface FileValue {
  value: Scalar;
  key: string | null;
}

export interface TensorTransform {
  name: string;
  args: Scalar[];
}

export interface FileName {
  pattern: string; // with {i}
  transforms: TensorTransform[];
}

export interface WeightField {
  name: string;
  shape: number[];
  gguf: FileName | null;
  hf: FileName | null;
  optional: boolean;
  tiedTo: string | null; // a top-level weight name
  /** How a fresh model draws it (`init` clause or the default), evaluated for this config. */
  init: WeightInit;
  decl: A.WeightDecl;
}

export interface WeightGroupInfo {
  name: string;
  count: number;
  fields: Map<string, WeightField>;
  decl: A.WeightGroup;
}

export interface StateInfo {
  name: string;
  kind: "KVCache";
  layers: number;
  maxSeqLen: number;
  heads: number;
  headDim: number;
  decl: A.StateDecl;
}

export type AbsentWeight = { when: A.Expr } | { droppedBy: string };

export interface ModelFn {
  decl: A.FnDecl;
  model: string;
}

export interface ResolvedModel {
  name: string;
  file: string;
  decl: A.ModelDecl;
  chain: A.ModelDecl[]; // base first
  config: Map<string, ConfigEntry>;
  /** Top-level weights and groups, in declaration order. Only those that exist for this config. */
  weights: Map<string, WeightField | WeightGroupInfo>;
  /** Weights whose `when` is false for this config or that a model of the chain drops, by path
   *  (`embed`, `layers.bq`), with why (to explain their absence). */
  absentWeights: Map<string, AbsentWeight>;
  state: Map<string, StateInfo>;
  fns: Map<string, ModelFn>;
  /** Config parameters that have no value: shapes cannot be checked until they are set. */
  unbound: string[];
}

/** What a key clause may do to the value it reads (import/config-keys.ts implements them). */
export const KEY_TRANSFORMS = {
  count: { arity: 0, doc: "the length of a list: `\"tokenizer.ggml.tokens\" |> count()`" },
  as: { arity: 1, doc: "the key (or tensor) being there reads as this value: `tensor \"output.weight\" |> as(false)`" },
  replace: { arity: 2, doc: "one value reads as another: `replace(\"default\", \"none\")`" },
  null_as: { arity: 1, doc: "a null reads as this value (otherwise null is a missing key, as transformers reads it)" },
  one_of: { arity: "any", doc: "the values this key may hold: others are refused when read, and not written" },
} as const satisfies Record<string, { arity: number | "any"; doc: string }>;

export type KeyTransformName = keyof typeof KEY_TRANSFORMS;

export const KNOWN_TRANSFORMS: Record<string, { params: ScalarType[]; doc: string }> = {
  rope_permute: { params: ["int"], doc: "reorder Q/K rows from rotate-half RoPE (HF) to adjacent pairs: rope_permute(n_heads)" },
  add: { params: ["f32"], doc: "add a constant to every element on load: add(-1.0) (Gemma's GGUF norms have the +1 baked in)" },
  rows: { params: ["int", "int"], doc: "the weight is rows [start, start + count) of a fused file tensor: rows(start, count), first of the transforms" },
};

export interface ModelDecls {
  models: Map<string, { decl: A.ModelDecl; file: string }>;
}

/** `fileValues` are the config values a model file holds (they rank below `--set`, above the .llm). */
export function resolveModel(
  name: string,
  decls: ModelDecls,
  overrides: ReadonlyMap<string, string>,
  diags: Diagnostic[],
  fileValues: ReadonlyMap<string, FileValue> = new Map(),
): ResolvedModel | null {
  const entry = decls.models.get(name);
  if (!entry) return null;

  // The extends chain, base first.
  const chain: A.ModelDecl[] = [];
  const seen = new Set<string>();
  let cur: A.ModelDecl | undefined = entry.decl;
  while (cur) {
    if (seen.has(cur.name.name)) {
      diags.push(error("E0204", `model '${cur.name.name}' extends itself through its chain (${[...seen, cur.name.name].join(" → ")})`, cur.extends?.span ?? cur.name.span));
      return null;
    }
    seen.add(cur.name.name);
    chain.unshift(cur);
    if (!cur.extends) break;
    const base = decls.models.get(cur.extends.name);
    if (!base) {
      const hint = suggest(cur.extends.name, [...decls.models.keys()]);
      diags.push(error("E0201", `unknown model '${cur.extends.name}' in extends${hint}; import the file that declares it`, cur.extends.span));
      return null;
    }
    cur = base.decl;
  }

  const model: ResolvedModel = {
    name,
    file: entry.file,
    decl: entry.decl,
    chain,
    config: new Map(),
    weights: new Map(),
    absentWeights: new Map(),
    state: new Map(),
    fns: new Map(),
    unbound: [],
  };
  resolveConfig(model, overrides, fileValues, diags);
  resolveWeights(model, diags);
  resolveState(model, diags);
  for (const m of chain) {
    const own = new Set<string>();
    // Drops remove what the models it extends define, wherever they stand among the model's members.
    for (const mem of m.members) {
      if (mem.kind !== "FnDrop") continue;
      if (!model.fns.delete(mem.name.name)) {
        const hint = suggest(mem.name.name, [...model.fns.keys()]);
        diags.push(error("E0201", `model '${m.name.name}' drops function '${mem.name.name}', which no model it extends defines${hint}`, mem.name.span));
      }
    }
    for (const mem of m.members) {
      if (mem.kind !== "Fn") continue;
      if (own.has(mem.name.name)) diags.push(error("E0202", `function '${mem.name.name}' is defined twice in model '${m.name.name}'`, mem.name.span));
      own.add(mem.name.name);
      model.fns.set(mem.name.name, { decl: mem, model: m.name.name });
    }
  }
  if (!model.fns.has("forward")) {
    diags.push(error("E0209", `model '${name}' has no 'fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size]'`, entry.decl.name.span));
  }
  return model;
}

// ---------------------------------------------------------------------------------------------- config

function configType(t: A.TypeExpr, diags: Diagnostic[]): ConfigType | null {
  if (t.kind === "ScalarType") return t.name;
  if (t.kind === "EnumType") {
    if (new Set(t.values).size !== t.values.length) diags.push(error("E0202", "an enum lists the same value twice", t.span));
    return { enum: t.values };
  }
  diags.push(error("E0302", "config parameters are scalars: int, f32, bool, str or an enum of strings", t.span));
  return null;
}

function formatType(t: ConfigType): string {
  return typeof t === "object" ? t.enum.map((e) => JSON.stringify(e)).join(" | ") : t;
}

function resolveConfig(model: ResolvedModel, overrides: ReadonlyMap<string, string>, fileValues: ReadonlyMap<string, FileValue>, diags: Diagnostic[]): void {
  const entries = model.config;
  const requires: { req: A.Require; model: string }[] = [];
  for (const m of model.chain) {
    for (const mem of m.members) {
      if (mem.kind !== "Config") continue;
      for (const item of mem.items) {
        if (item.kind === "Require") {
          requires.push({ req: item, model: m.name.name });
          continue;
        }
        if (item.kind === "KeysWithin" && item.format === "gguf") {
          diags.push(error("E0205", "'within' names objects of a config.json (within hf \"…\"); GGUF metadata keys are not nested", item.span));
        }
        if (item.kind === "IgnoreKeys" || item.kind === "KeysWithin") continue;
        const nm = item.name.name;
        const existing = entries.get(nm);
        if (item.type) {
          if (existing) {
            diags.push(
              error("E0202", `config '${nm}' is already declared${existing.declaredIn !== m.name.name ? ` by model '${existing.declaredIn}'` : ""}; to change its value write '${nm} = …' without a type`, item.name.span, [
                { message: "declared here", span: existing.decl.name.span },
              ]),
            );
            continue;
          }
          const type = configType(item.type, diags);
          if (!type) continue;
          const keys = Object.fromEntries(item.keys.map((k) => [k.format, k]));
          entries.set(nm, { name: nm, type, value: null, declaredIn: m.name.name, setBy: "default", decl: item, expr: item.value, keys, source: null });
        } else {
          if (!existing) {
            const hint = suggest(nm, [...entries.keys()]);
            diags.push(error("E0201", `config '${nm}' is not declared by '${m.name.name}' or a model it extends${hint}; declare it with a type ('${nm}: int = …')`, item.name.span));
            continue;
          }
          if (!item.value && item.keys.length === 0) {
            diags.push(error("E0101", `config override '${nm}' needs a value ('${nm} = …') or keys ('${nm} gguf "…"')`, item.span));
            continue;
          }
          if (item.value) {
            existing.expr = item.value;
            existing.setBy = "override";
          }
          for (const k of item.keys) existing.keys[k.format] = k;
        }
      }
    }
  }
  checkKeyClauses(entries, diags);

  // Values read from the model file win over the .llm; --set overrides win over both.
  const setValues = new Map<string, Scalar>();
  for (const [nm, fv] of fileValues) {
    const e = entries.get(nm);
    if (!e) continue; // the reader only reads declared parameters
    setValues.set(nm, fv.value);
    e.setBy = "file";
    e.source = fv.key;
    e.expr = null;
  }
  for (const [nm, text] of overrides) {
    const e = entries.get(nm);
    if (!e) {
      const hint = suggest(nm, [...entries.keys()]);
      diags.push(error("E0201", `--set ${nm}: model '${model.name}' has no config parameter '${nm}'${hint}`, null));
      continue;
    }
    try {
      setValues.set(nm, parseScalarText(text, e.type));
      e.setBy = "--set";
      e.expr = null;
    } catch (err) {
      diags.push(error("E0401", `--set ${nm}=${text}: ${(err as Error).message} (${nm} is ${formatType(e.type)})`, null));
    }
  }

  // Evaluate in dependency order, memoised, with cycle detection.
  const evaluating = new Set<string>();
  const failed = new Set<string>();
  const evalEntry = (e: ConfigEntry): Scalar | null => {
    if (e.value) return e.value;
    if (failed.has(e.name)) return null;
    const set = setValues.get(e.name);
    if (set) return (e.value = set);
    if (!e.expr) {
      failed.add(e.name);
      return null;
    }
    if (evaluating.has(e.name)) {
      diags.push(error("E0402", `config '${e.name}' depends on itself (${[...evaluating, e.name].join(" → ")})`, e.expr.span));
      failed.add(e.name);
      return null;
    }
    evaluating.add(e.name);
    const v = evalConfigExpr(e.expr, (n, span) => {
      const dep = entries.get(n);
      if (!dep) {
        diags.push(error("E0201", `unknown config value '${n}'${suggest(n, [...entries.keys()])}`, span));
        return undefined;
      }
      return evalEntry(dep) ?? undefined;
    }, diags);
    evaluating.delete(e.name);
    if (!v) {
      failed.add(e.name);
      return null;
    }
    try {
      e.value = coerceScalar(v, e.type);
    } catch (err) {
      diags.push(error("E0302", `config '${e.name}' is ${formatType(e.type)}: ${(err as Error).message}`, e.expr.span));
      failed.add(e.name);
      return null;
    }
    return e.value;
  };
  for (const e of entries.values()) {
    evalEntry(e);
    if (!e.value && !e.expr && !setValues.has(e.name)) model.unbound.push(e.name);
  }
  if (model.unbound.length > 0) return; // requires would only repeat that values are missing

  for (const { req } of requires) {
    for (const cond of req.conds) {
      const v = evalConfigExpr(cond, (n, span) => {
        const dep = entries.get(n);
        if (!dep) diags.push(error("E0201", `unknown config value '${n}'${suggest(n, [...entries.keys()])}`, span));
        return dep?.value ?? undefined;
      }, diags);
      if (!v) continue;
      if (v.type !== "bool") {
        diags.push(error("E0302", `a requirement must be a bool condition, got ${v.type}`, cond.span));
        continue;
      }
      if (!v.value) {
        const names = [...new Set(namesIn(cond))].filter((n) => entries.get(n)?.value);
        const values = names.map((n) => `${n} = ${formatScalar(entries.get(n)!.value!)}`).join(", ");
        diags.push(error("E0403", `requirement failed${req.message ? `: ${req.message}` : ""} (${values || "no config values involved"})`, cond.span, valueNotes(model, names, cond.span.file)));
      }
    }
  }
}

/** Key clauses name config values and key transforms that exist, with the right number of arguments. */
function checkKeyClauses(entries: Map<string, ConfigEntry>, diags: Diagnostic[]): void {
  const names = (e: A.Expr) => {
    for (const n of namesIn(e)) {
      if (!entries.has(n)) diags.push(error("E0201", `unknown config value '${n}'${suggest(n, [...entries.keys()])}`, e.span));
    }
  };
  for (const entry of entries.values()) {
    for (const clause of Object.values(entry.keys)) {
      if (clause.when) names(clause.when);
      if (clause.fallback) names(clause.fallback);
      for (const t of clause.sources.flatMap((s) => s.transforms)) {
        const spec = Object.hasOwn(KEY_TRANSFORMS, t.callee.name) ? KEY_TRANSFORMS[t.callee.name as KeyTransformName] : undefined;
        if (!spec) {
          diags.push(error("E0201", `unknown key transform '${t.callee.name}'${suggest(t.callee.name, Object.keys(KEY_TRANSFORMS))}; key transforms are ${Object.keys(KEY_TRANSFORMS).join(", ")}`, t.callee.span));
          continue;
        }
        if (spec.arity !== "any" && t.args.length !== spec.arity) {
          diags.push(error("E0303", `${t.callee.name} takes ${spec.arity} argument${spec.arity === 1 ? "" : "s"}, got ${t.args.length}: ${spec.doc}`, t.span));
        }
        if (t.args.some((a) => a.name)) diags.push(error("E0303", `${t.callee.name} takes positional arguments only`, t.span));
        for (const a of t.args) names(a.value);
      }
    }
  }
}

/** Notes pointing at where the config values behind an error were set (when not where the error is). */
function valueNotes(model: ResolvedModel, names: string[], errorFile: string): { message: string; span: A.Span | null }[] | undefined {
  const notes: { message: string; span: A.Span | null }[] = [];
  for (const n of new Set(names)) {
    const e = model.config.get(n);
    if (!e?.value || e.setBy === "default") continue;
    if (e.setBy === "--set") notes.push({ message: `${n} = ${formatScalar(e.value)} was given with --set`, span: null });
    else if (e.setBy === "file") {
      const from = e.source === null ? "is the model file format's value when the file does not say" : `was read from the model file's "${e.source}"`;
      notes.push({ message: `${n} = ${formatScalar(e.value)} ${from}`, span: null });
    }
    else if (e.expr && e.expr.span.file !== errorFile) notes.push({ message: `${n} = ${formatScalar(e.value)} is set here`, span: e.expr.span });
  }
  return notes.length ? notes : undefined;
}

/** The names a scalar expression refers to, with where each is written. */
function nameRefs(e: A.Expr): A.Name[] {
  switch (e.kind) {
    case "Name": return e.name === "<error>" ? [] : [e];
    case "Binary": return [...nameRefs(e.left), ...nameRefs(e.right)];
    case "Unary": return nameRefs(e.operand);
    case "Conditional": return [...nameRefs(e.cond), ...nameRefs(e.then), ...nameRefs(e.else)];
    case "Call": return e.args.flatMap((a) => nameRefs(a.value));
    default: return [];
  }
}

export function namesIn(e: A.Expr): string[] {
  switch (e.kind) {
    case "Name": return [e.name];
    case "Binary": return [...namesIn(e.left), ...namesIn(e.right)];
    case "Unary": return namesIn(e.operand);
    case "Conditional": return [...namesIn(e.cond), ...namesIn(e.then), ...namesIn(e.else)];
    case "Call": return e.args.flatMap((a) => namesIn(a.value));
    case "MethodCall": return [...namesIn(e.target), ...e.args.flatMap((a) => namesIn(a.value))];
    case "List": return e.elems.flatMap(namesIn);
    default: return [];
  }
}

/** Evaluates a scalar expression; reports errors and returns null on failure. */
export function evalConfigExpr(
  e: A.Expr,
  lookup: (name: string, span: A.Span) => Scalar | undefined,
  diags: Diagnostic[],
): Scalar | null {
  const go = (x: A.Expr): Scalar | null => {
    switch (x.kind) {
      case "Number": return { type: x.isInt ? "int" : "f32", value: x.value };
      case "String": return { type: "str", value: x.value };
      case "Bool": return { type: "bool", value: x.value };
      case "Name": {
        if (x.name === "<error>") return null;
        return lookup(x.name, x.span) ?? null;
      }
      case "Unary": {
        const a = go(x.operand);
        return a && wrap(() => scalarUnary(x.op, a), x.span);
      }
      case "Binary": {
        // && and || short-circuit so `n > 0 && m / n == 2` is safe.
        const a = go(x.left);
        if (!a) return null;
        if ((x.op === "&&" && a.value === false) || (x.op === "||" && a.value === true)) return a;
        const b = go(x.right);
        return b && wrap(() => scalarBinary(x.op, a, b), x.span);
      }
      case "Conditional": {
        const c = go(x.cond);
        if (!c) return null;
        if (c.type !== "bool") {
          diags.push(error("E0302", `a condition must be bool, got ${c.type}`, x.cond.span));
          return null;
        }
        return go(c.value ? x.then : x.else);
      }
      case "Call": {
        const f = scalarFunctions[x.callee.name];
        if (!f) {
          diags.push(error("E0201", `unknown function '${x.callee.name}' in a config expression${suggest(x.callee.name, Object.keys(scalarFunctions))}; config expressions may call ${Object.keys(scalarFunctions).join(", ")}`, x.callee.span));
          return null;
        }
        if (x.args.some((a) => a.name)) {
          diags.push(error("E0303", `${x.callee.name} takes positional arguments only`, x.span));
          return null;
        }
        const args = x.args.map((a) => go(a.value));
        if (args.some((a) => !a)) return null;
        return wrap(() => f(args as Scalar[]), x.span);
      }
      default:
        diags.push(error("E0302", "only scalar arithmetic is allowed here (numbers, config names, operators, min/max/…)", x.span));
        return null;
    }
  };
  const wrap = (f: () => Scalar, span: A.Span): Scalar | null => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof ScalarError)) throw err;
      diags.push(error("E0302", err.message, span));
      return null;
    }
  };
  return go(e);
}

// ---------------------------------------------------------------------------------------------- weights

function configLookup(model: ResolvedModel, diags: Diagnostic[]) {
  return (n: string, span: A.Span): Scalar | undefined => {
    const e = model.config.get(n);
    if (!e) {
      diags.push(error("E0201", `unknown config value '${n}'${suggest(n, [...model.config.keys()])}`, span));
      return undefined;
    }
    return e.value ?? undefined;
  };
}

/** A dimension: a config expression that must be a positive integer. */
export function evalDimExpr(model: ResolvedModel, e: A.Expr, what: string, diags: Diagnostic[]): number | null {
  const v = evalConfigExpr(e, configLookup(model, diags), diags);
  if (!v) return null;
  if (v.type !== "int") {
    diags.push(error("E0302", `${what} must be an integer, got ${v.type} ${formatScalar(v)}`, e.span));
    return null;
  }
  if ((v.value as number) <= 0) {
    diags.push(error("E0404", `${what} must be positive, got ${v.value}`, e.span, valueNotes(model, namesIn(e), e.span.file)));
    return null;
  }
  return v.value as number;
}

/** A weight group after merging along the extends chain: its items with every `drop` applied. */
interface MergedGroup extends A.WeightGroup {
  items: (A.WeightDecl | A.WeightGroup)[];
}

function resolveWeights(model: ResolvedModel, diags: Diagnostic[]): void {
  // Merge items by name across the chain: a derived model's item replaces the base's (groups merge),
  // and `drop name` removes what the chain so far declares.
  const merged = new Map<string, A.WeightDecl | MergedGroup>();
  const dropped = new Map<string, string>(); // path → the model that dropped it
  const drop = <T>(target: Map<string, T>, d: A.WeightDrop, path: string, by: string) => {
    if (!target.delete(d.name.name)) {
      const hint = suggest(d.name.name, [...target.keys()]);
      diags.push(error("E0201", `model '${by}' drops weight '${path}', which no model it extends declares${hint}`, d.name.span));
      return;
    }
    for (const p of dropped.keys()) if (p.startsWith(`${path}.`)) dropped.delete(p);
    dropped.set(path, by);
  };
  const mergeGroupItems = (group: string, base: (A.WeightDecl | A.WeightGroup)[], derived: A.WeightItem[], by: string) => {
    const m = new Map(base.map((b) => [b.name.name, b]));
    const seen = new Set<string>();
    for (const d of derived) {
      if (seen.has(d.name.name)) diags.push(error("E0202", `weight '${d.name.name}' is declared twice`, d.name.span));
      seen.add(d.name.name);
      const path = `${group}.${d.name.name}`;
      if (d.kind === "WeightDrop") drop(m, d, path, by);
      else {
        m.set(d.name.name, d);
        dropped.delete(path);
      }
    }
    return [...m.values()];
  };
  for (const m of model.chain) {
    const seenHere = new Set<string>();
    for (const mem of m.members) {
      if (mem.kind !== "Weights") continue;
      for (const it of mem.items) {
        const nm = it.name.name;
        if (seenHere.has(nm)) {
          diags.push(error("E0202", `weight '${nm}' is declared twice`, it.name.span));
          continue;
        }
        seenHere.add(nm);
        if (it.kind === "WeightDrop") {
          drop(merged, it, nm, m.name.name);
          continue;
        }
        dropped.delete(nm);
        const prev = merged.get(nm);
        if (it.kind === "WeightGroup") {
          merged.set(nm, { ...it, items: mergeGroupItems(nm, prev?.kind === "WeightGroup" ? prev.items : [], it.items, m.name.name) });
        } else merged.set(nm, it);
      }
    }
  }
  for (const [path, by] of dropped) model.absentWeights.set(path, { droppedBy: by });
  const inits = bindInits(model, merged, diags);
  if (model.unbound.length > 0) return; // shapes need values

  const lookup = configLookup(model, diags);
  const exists = (d: A.WeightDecl): boolean => {
    if (!d.when) return true;
    const v = evalConfigExpr(d.when, lookup, diags);
    if (v && v.type !== "bool") diags.push(error("E0302", `'when' needs a bool condition, got ${v.type}`, d.when.span));
    return v?.value === true;
  };
  const fileName = (t: A.TensorName | null, inGroup: boolean): FileName | null => {
    if (!t) return null;
    const hasIndex = t.pattern.includes("{i}");
    const otherBraces = t.pattern.replace(/\{i\}/g, "").match(/[{}]/);
    if (otherBraces) diags.push(error("E0205", `tensor name "${t.pattern}" has a '${otherBraces[0]}' that is not part of '{i}'`, t.patternSpan));
    if (inGroup && !hasIndex) diags.push(error("E0205", `tensor name "${t.pattern}" is inside a layer group but has no '{i}' for the layer index`, t.patternSpan));
    if (!inGroup && hasIndex) diags.push(error("E0205", `tensor name "${t.pattern}" uses '{i}' outside a layer group`, t.patternSpan));
    if (t.pattern.length === 0) diags.push(error("E0205", "tensor name is empty", t.patternSpan));
    const transforms: TensorTransform[] = [];
    for (const c of t.transforms) {
      const known = KNOWN_TRANSFORMS[c.callee.name];
      if (!known) {
        diags.push(error("E0201", `unknown weight transform '${c.callee.name}'${suggest(c.callee.name, Object.keys(KNOWN_TRANSFORMS))}; known: ${Object.keys(KNOWN_TRANSFORMS).join(", ")}`, c.callee.span));
        continue;
      }
      if (c.args.length !== known.params.length || c.args.some((a) => a.name)) {
        diags.push(error("E0303", `${c.callee.name} takes ${known.params.length} positional argument(s): ${known.doc}`, c.span));
        continue;
      }
      const args = c.args.map((a) => evalConfigExpr(a.value, lookup, diags));
      if (!args.every((a) => a)) continue;
      if (c.callee.name === "rows") {
        // rows picks the weight's part of the file tensor; the other transforms act on that part.
        if (c !== t.transforms[0]) diags.push(error("E0303", "rows(start, count) must come first: it picks the weight's rows of the file tensor before other transforms apply", c.span));
        const [start, count] = args.map((a) => a!.value as number);
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start! < 0 || count! <= 0) {
          diags.push(error("E0302", `rows(${start}, ${count}) needs integers start >= 0 and count > 0`, c.span));
        }
      }
      transforms.push({ name: c.callee.name, args: args as Scalar[] });
    }
    return { pattern: t.pattern, transforms };
  };
  const field = (d: A.WeightDecl, inGroup: boolean): WeightField | null => {
    const shape = d.shape.map((e, i) => evalDimExpr(model, e, `dim ${i} of weight '${d.name.name}'`, diags));
    if (d.shape.length === 0) diags.push(error("E0302", `weight '${d.name.name}' needs at least one dim`, d.span));
    let tiedTo: string | null = null;
    if (d.tie) {
      const cond = d.tie.cond ? evalConfigExpr(d.tie.cond, lookup, diags) : { type: "bool" as const, value: true };
      if (cond && cond.type !== "bool") diags.push(error("E0302", `a tie condition must be bool, got ${cond.type}`, d.tie.cond!.span));
      if (cond?.value === true) tiedTo = d.tie.target.name;
    }
    if (!d.gguf && !d.hf && !d.tie) {
      diags.push(error("E0205", `weight '${d.name.name}' has no file name: add gguf "…" and/or hf "…"`, d.name.span));
    }
    if (shape.some((s) => s === null)) return null;
    // A faulty clause has been reported; the default keeps the weight, so nothing else cascades.
    const init = resolveInit(d.name.name, shape as number[], inits.get(d), (e) => evalConfigExpr(e, lookup, diags), diags) ?? defaultInit(shape as number[]);
    return {
      name: d.name.name,
      shape: shape as number[],
      gguf: fileName(d.gguf, inGroup),
      hf: fileName(d.hf, inGroup),
      optional: d.optional,
      tiedTo,
      init,
      decl: d,
    };
  };

  for (const it of merged.values()) {
    if (it.kind === "Weight") {
      if (!exists(it)) {
        model.absentWeights.set(it.name.name, { when: it.when! });
        continue;
      }
      const f = field(it, false);
      if (f) model.weights.set(it.name.name, f);
      continue;
    }
    const count = evalDimExpr(model, it.count, `the size of weight group '${it.name.name}'`, diags);
    const fields = new Map<string, WeightField>();
    for (const sub of it.items) {
      if (sub.kind === "WeightGroup") {
        diags.push(error("E0208", `weight groups do not nest: move '${sub.name.name}' out of '${it.name.name}'`, sub.name.span));
        continue;
      }
      if (!exists(sub)) {
        model.absentWeights.set(`${it.name.name}.${sub.name.name}`, { when: sub.when! });
        continue;
      }
      if (sub.tie) diags.push(error("E0206", `ties inside a layer group are not supported ('${sub.name.name}')`, sub.tie.span));
      const f = field(sub, true);
      if (f) fields.set(sub.name.name, f);
    }
    if (count !== null) model.weights.set(it.name.name, { name: it.name.name, count, fields, decl: it });
  }

  // Ties: the target must be a top-level weight of the same shape.
  for (const w of model.weights.values()) {
    if (!("tiedTo" in w) || !w.tiedTo) continue;
    const target = model.weights.get(w.tiedTo);
    if (!target || !("shape" in target)) {
      diags.push(error("E0201", `weight '${w.name}' is tied to '${w.tiedTo}', which is not a top-level weight${suggest(w.tiedTo, [...model.weights.keys()])}`, w.decl.tie!.target.span));
      w.tiedTo = null;
    } else if (target.tiedTo) {
      diags.push(error("E0206", `weight '${w.name}' is tied to '${w.tiedTo}', which is itself tied; tie to the original`, w.decl.tie!.target.span));
    } else if (target.shape.join(",") !== w.shape.join(",")) {
      diags.push(error("E0301", `weight '${w.name}' [${w.shape.join(", ")}] is tied to '${w.tiedTo}' of a different shape [${target.shape.join(", ")}]`, w.decl.tie!.span));
    }
  }
}

/**
 * The `init` clauses of the merged weights, checked as far as they can be without config values
 * (so `llmc check` of an abstract model reports them too): by declaration, null where faulty.
 */
function bindInits(model: ResolvedModel, merged: Map<string, A.WeightDecl | MergedGroup>, diags: Diagnostic[]): Map<A.WeightDecl, BoundInit | null> {
  const out = new Map<A.WeightDecl, BoundInit | null>();
  const decls = [...merged.values()].flatMap((it) => (it.kind === "Weight" ? [it] : it.items.filter((s): s is A.WeightDecl => s.kind === "Weight")));
  for (const d of decls) {
    if (!d.init) continue;
    if (d.tie && !d.tie.cond) {
      diags.push(error("E0206", `weight '${d.name.name}' is always '${d.tie.target.name}', so it is initialised as that weight; remove its init clause`, d.init.span));
      out.set(d, null);
      continue;
    }
    const bound = bindInit(d.name.name, d.init, diags);
    out.set(d, bound);
    if (!bound || model.unbound.length === 0) continue;
    // Without values the arguments cannot be evaluated; their names can still be checked (where
    // evaluation would report them).
    for (const n of [...bound.args.values()].flatMap(nameRefs)) {
      if (!model.config.has(n.name)) diags.push(error("E0201", `unknown config value '${n.name}'${suggest(n.name, [...model.config.keys()])}`, n.span));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- state

function resolveState(model: ResolvedModel, diags: Diagnostic[]): void {
  for (const m of model.chain) {
    for (const mem of m.members) {
      if (mem.kind !== "State") continue;
      const t = mem.type;
      if (t.kind !== "NamedType" || t.name.name !== "KVCache") {
        diags.push(error("E0302", "state has one kind: KVCache[n_layers, max_seq_len, n_kv_heads, head_dim]", t.span));
        continue;
      }
      if (t.args.length !== 4) {
        diags.push(error("E0303", `KVCache takes 4 dims [n_layers, max_seq_len, n_kv_heads, head_dim], got ${t.args.length}`, t.span));
        continue;
      }
      if (model.unbound.length > 0) continue;
      const what = ["n_layers", "max_seq_len", "n_kv_heads", "head_dim"];
      const dims = t.args.map((a, i) => evalDimExpr(model, a, `KVCache ${what[i]}`, diags));
      if (dims.some((d) => d === null)) continue;
      const [layers, maxSeqLen, heads, headDim] = dims as number[];
      model.state.set(mem.name.name, { name: mem.name.name, kind: "KVCache", layers: layers!, maxSeqLen: maxSeqLen!, heads: heads!, headDim: headDim!, decl: mem });
    }
  }
}

/** Total parameter count: every weight once (tied weights share storage). */
export function parameterCount(model: ResolvedModel): number {
  let total = 0;
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  for (const w of model.weights.values()) {
    if ("count" in w) for (const f of w.fields.values()) total += w.count * size(f.shape);
    else if (!w.tiedTo) total += size(w.shape);
  }
  return total;
}


// A model file's config values, read by the keys its .llm declares (docs/language.md, "Config
// keys"). One reader serves GGUF metadata and Hugging Face config.json, which differ only in how a
// key is looked up. Reading a file gives the values it holds, warns about the keys the .llm does not
// declare, and checks the values against the .llm's requirements and the file's tensor shapes before
// anything is compiled. `llmc init-weights` writes the GGUF keys back with ggufKeyValues.

import type * as A from "../parse/ast.js";
import type { Diagnostic, Span } from "../base/diagnostics.js";
import {
  evalConfigExpr, resolveModel, type ConfigEntry, type FileValue, type KeyTransformName, type ResolvedModel,
} from "../check/model.js";
import { coerceScalar, formatScalar, ScalarError, type Scalar } from "../check/scalar.js";
import type { Architecture } from "./architectures.js";
import { checkConfigAgainstTensors, type TensorShapes } from "./tensor-check.js";
import { ImportError, type ConfigBinding, type ConfigValue } from "./write-llm.js";

/** A model file as the reader sees it. */
export interface FileView {
  format: A.KeyFormat;
  /** The file's name in messages. */
  file: string;
  /** What `{arch}` stands for in key names: the file's architecture name. */
  arch: string;
  /** A key's value, undefined when the file lacks it. */
  get(key: string): unknown;
  /** The keys a .llm must declare or ignore: GGUF's `{arch}.*`, HF's top-level keys less the format's own. */
  modelKeys: readonly string[];
  /** The tensors: their names, their shapes where known, and where they are (for messages). */
  tensors: { names: ReadonlySet<string>; shapes?: TensorShapes; weights: string };
}

export interface ReadConfig {
  /** What the file holds (or its format's default), in the .llm's declaration order. */
  bindings: ConfigBinding[];
  warnings: string[];
}

/**
 * Reads every config value the model declares a key for. Throws ImportError for a missing required
 * key, a value of the wrong kind or one the .llm does not take, a failed requirement, or sizes the
 * file's tensors contradict.
 */
export function readConfig(arch: Architecture, view: FileView): ReadConfig {
  const reader = new KeyReader(view);
  const values = new Map<string, FileValue>();
  const bindings: ConfigBinding[] = [];
  for (const e of arch.model.config.values()) {
    const fv = reader.fileValue(arch.model, e);
    if (!fv) continue;
    values.set(e.name, fv);
    bindings.push({ name: e.name, value: configValue(fv.value, typeof e.type === "object") });
  }
  checkValues(arch, view, values);
  return { bindings, warnings: undeclaredKeys(arch.model, view) };
}

function configValue(s: Scalar, isEnum: boolean): ConfigValue {
  switch (s.type) {
    case "int":
    case "f32":
      return { type: s.type, value: s.value as number };
    case "bool":
      return { type: "bool", value: s.value as boolean };
    case "str":
      return { type: isEnum ? "enum" : "str", value: s.value as string };
  }
}

/** Where a clause is, for messages: `config 'norm_eps' (models/llama.llm:17)`. */
function where(e: ConfigEntry, span: Span): string {
  return `config '${e.name}' (${span.file}:${span.start.line})`;
}

const show = (v: unknown) => (typeof v === "bigint" ? v.toString() : JSON.stringify(v));

/** A file value the transforms or the type cannot take; the reader adds the file, the key and the parameter. */
class KeyValueError extends Error {}

type Value = Scalar["value"];

/** Returned by a transform's `write` when the value cannot be written through that key. */
const NOT_WRITTEN = Symbol("not written");

/** How each key transform (check/model.ts KEY_TRANSFORMS) reads a file value, and writes one back. */
const TRANSFORMS: { [K in KeyTransformName]: { read(raw: unknown, args: Value[]): unknown; write(v: Value, args: Value[]): Value | typeof NOT_WRITTEN } } = {
  count: {
    read: (raw) => {
      if (raw === null) return null;
      if (!Array.isArray(raw)) throw new KeyValueError(`must be a list, got ${show(raw)}`);
      return raw.length;
    },
    write: () => NOT_WRITTEN,
  },
  // What the presence of a key or tensor says is written by the tensor (or not at all).
  as: { read: (raw, [v]) => (raw === null ? null : v), write: () => NOT_WRITTEN },
  replace: {
    read: (raw, [from, to]) => (raw === from ? to : raw),
    write: (v, [from, to]) => (v === to ? from! : v === from ? NOT_WRITTEN : v),
  },
  null_as: { read: (raw, [v]) => (raw === null ? v : raw), write: (v) => v },
  one_of: {
    read: (raw, values) => {
      if (raw !== null && !values.includes(raw as Value)) throw new KeyValueError(`= ${show(raw)} is not supported: it may be ${values.map(show).join(", ")}`);
      return raw;
    },
    write: (v, values) => (values.includes(v) ? v : NOT_WRITTEN),
  },
};

/**
 * Reads config values from a file, each at most once. `when` and `else` may name other values, so a
 * value is found on demand: the file's, else the .llm's own expression over the others.
 */
class KeyReader {
  private readonly read = new Map<string, FileValue | null>();
  private readonly resolved = new Map<string, Scalar | null>();
  private readonly stack: string[] = [];

  constructor(private readonly view: FileView) {}

  fileValue(model: ResolvedModel, e: ConfigEntry): FileValue | null {
    if (this.read.has(e.name)) return this.read.get(e.name)!;
    this.enter(e.name);
    const v = this.readEntry(model, e);
    this.stack.pop();
    this.read.set(e.name, v);
    return v;
  }

  private readEntry(model: ResolvedModel, e: ConfigEntry): FileValue | null {
    const clause = e.keys[this.view.format];
    if (!clause) return null;
    if (clause.when && !this.condition(model, clause.when)) return null;
    for (const src of clause.sources) {
      const v = this.readSource(model, e, clause, src);
      if (v) return v;
    }
    if (clause.fallback) return { value: this.coerce(e, this.evaluate(model, clause.fallback), clause.fallback.span), key: null };
    if (clause.required || !e.expr) {
      const keys = clause.sources.map((s) => `${s.tensor ? "tensor " : ""}"${this.key(s)}"`);
      const others = keys.length > 1 ? ` (or ${keys.slice(1).join(", ")})` : "";
      throw new ImportError(`${this.view.file}: missing required key ${keys[0]}${others} for ${where(e, clause.span)}`);
    }
    return null;
  }

  private key(src: A.KeySource): string {
    return src.pattern.replaceAll("{arch}", this.view.arch);
  }

  private readSource(model: ResolvedModel, e: ConfigEntry, clause: A.KeyClause, src: A.KeySource): FileValue | null {
    const key = this.key(src);
    const shown = src.tensor ? `tensor "${key}"` : `"${key}"`;
    let raw: unknown;
    if (src.tensor) raw = this.view.tensors.names.has(key) ? true : undefined;
    else raw = this.view.get(key);
    if (raw === undefined) return null;
    try {
      for (const t of src.transforms) {
        const args = t.args.map((a) => this.evaluate(model, a.value).value);
        raw = TRANSFORMS[t.callee.name as KeyTransformName].read(raw, args);
      }
      // transformers reads a null as "use the default", so a null key is a missing one.
      if (raw === null) return null;
      return { value: this.fromFile(e, raw), key: src.tensor ? `tensor ${key}` : key };
    } catch (err) {
      if (!(err instanceof KeyValueError)) throw err;
      throw new ImportError(`${this.view.file}: ${shown} ${err.message} (for ${where(e, clause.span)})`);
    }
  }

  /** A file value as the parameter's type; per-layer lists must hold one value. */
  private fromFile(e: ConfigEntry, raw: unknown): Scalar {
    if (Array.isArray(raw)) {
      if (raw.length === 0) throw new KeyValueError("is an empty list");
      const values = raw.map((x) => this.fromFile(e, x));
      if (values.some((v) => v.value !== values[0]!.value)) throw new KeyValueError("differs between layers, which is not supported");
      return values[0]!;
    }
    const n = typeof raw === "bigint" ? Number(raw) : raw;
    const t = e.type;
    if (typeof t === "object") {
      if (typeof n !== "string") throw new KeyValueError(`must be a string, got ${show(raw)}`);
      if (!t.enum.includes(n)) throw new KeyValueError(`= ${show(n)} is not supported: the .llm takes ${t.enum.map(show).join(", ")}`);
      return { type: "str", value: n };
    }
    switch (t) {
      case "int":
        if (typeof n !== "number" || !Number.isSafeInteger(n)) throw new KeyValueError(`must be an integer, got ${show(raw)}`);
        return { type: "int", value: n };
      case "f32":
        if (typeof n !== "number" || !Number.isFinite(n)) throw new KeyValueError(`must be a number, got ${show(raw)}`);
        return { type: "f32", value: this.view.format === "gguf" ? shortestF32(n) : n };
      case "bool":
        if (typeof n !== "boolean") throw new KeyValueError(`must be true or false, got ${show(raw)}`);
        return { type: "bool", value: n };
      case "str":
        if (typeof n !== "string") throw new KeyValueError(`must be a string, got ${show(raw)}`);
        return { type: "str", value: n };
    }
  }

  /** A config value for `when`, `else` and transform arguments: the file's, else the .llm's. */
  private value(model: ResolvedModel, name: string): Scalar | undefined {
    if (this.resolved.has(name)) return this.resolved.get(name) ?? undefined;
    const e = model.config.get(name);
    if (!e) return undefined;
    let v = this.fileValue(model, e)?.value ?? null;
    if (!v && e.expr) {
      this.enter(name);
      v = this.coerce(e, this.evaluate(model, e.expr), e.expr.span);
      this.stack.pop();
    }
    this.resolved.set(name, v);
    return v ?? undefined;
  }

  private enter(name: string): void {
    if (this.stack.includes(name)) {
      throw new ImportError(`${this.view.file}: the keys of config values depend on each other (${[...this.stack.slice(this.stack.indexOf(name)), name].join(" → ")})`);
    }
    this.stack.push(name);
  }

  private evaluate(model: ResolvedModel, e: A.Expr): Scalar {
    const diags: Diagnostic[] = [];
    const v = evalConfigExpr(e, (n) => this.value(model, n), diags);
    if (v) return v;
    const at = `${e.span.file}:${e.span.start.line}`;
    throw new ImportError(`${this.view.file}: ${at}: ${diags[0]?.message ?? `a config value of ${at} has no value`}`);
  }

  private condition(model: ResolvedModel, e: A.Expr): boolean {
    const v = this.evaluate(model, e);
    if (v.type !== "bool") throw new ImportError(`${this.view.file}: ${e.span.file}:${e.span.start.line}: a key's 'when' must be a bool condition, got ${formatScalar(v)}`);
    return v.value as boolean;
  }

  private coerce(e: ConfigEntry, v: Scalar, span: Span): Scalar {
    try {
      return coerceScalar(v, e.type);
    } catch (err) {
      if (!(err instanceof ScalarError)) throw err;
      throw new ImportError(`${this.view.file}: ${where(e, span)}: ${err.message}`);
    }
  }
}

/**
 * GGUF stores most floats as f32, so 1e-5 arrives as 9.99999974e-6. When a value is exactly an f32,
 * take the shortest decimal that rounds to the same f32, which is what the model's author wrote.
 */
function shortestF32(x: number): number {
  if (Math.fround(x) !== x) return x;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

/** The model resolved with the file's values: its requirements hold and its weights fit the file's tensors. */
function checkValues(arch: Architecture, view: FileView, values: ReadonlyMap<string, FileValue>): void {
  const diags: Diagnostic[] = [];
  const model = resolveModel(arch.model.name, arch.decls, new Map(), diags, values);
  if (!model || model.unbound.length > 0) return; // compiling says what has no value
  checkConfigAgainstTensors(model, view.tensors, {
    scheme: view.format,
    file: view.file,
    keyOf: (config) => values.get(config)?.key ?? config,
  });
  const err = diags.find((d) => d.severity === "error");
  if (!err) return;
  const at = err.span ? ` (${err.span.file}:${err.span.start.line})` : "";
  const notes = (err.notes ?? []).map((n) => `; ${n.message}`).join("");
  throw new ImportError(`${view.file}: ${err.message}${at}${notes}`);
}

/** One warning naming the file's keys that the model neither declares nor ignores. */
function undeclaredKeys(model: ResolvedModel, view: FileView): string[] {
  const known = new Set<string>();
  // HF clauses name paths into config.json; its top-level key is what the file must declare.
  const add = (key: string) => known.add(view.format === "hf" ? key.split(".")[0]! : key);
  for (const e of model.config.values()) {
    for (const s of e.keys[view.format]?.sources ?? []) if (!s.tensor) add(s.pattern.replaceAll("{arch}", view.arch));
  }
  for (const m of model.chain) {
    for (const mem of m.members) {
      if (mem.kind !== "Config") continue;
      for (const it of mem.items) if (it.kind === "IgnoreKeys" && it.format === view.format) for (const k of it.keys) add(k.replaceAll("{arch}", view.arch));
    }
  }
  const unknown = view.modelKeys.filter((k) => !known.has(k));
  if (unknown.length === 0) return [];
  const one = unknown.length === 1;
  return [
    `${view.file}: ${one ? "key" : "keys"} ${unknown.map((k) => `"${k}"`).join(", ")} ${one ? "is" : "are"} not declared by model '${model.name}' (${model.file}), ` +
      `so ${one ? "it has" : "they have"} no effect; declare ${one ? "it" : "them"} in its config, or list ${one ? "it" : "them"} in 'ignore ${view.format} …' if ${one ? "it does" : "they do"} not change the model`,
  ];
}

/**
 * The GGUF metadata of a resolved model's config: each value under the first key its gguf clause can
 * write it to, in declaration order. Nothing is written for a value the clause's `else` gives anyway,
 * nor for one a tensor of the file says (`tensor "output.weight" |> as(false)`); `tensors` are the
 * names the file will hold.
 */
export function ggufKeyValues(model: ResolvedModel, arch: string, tensors: ReadonlySet<string>): { key: string; value: Scalar }[] {
  const out: { key: string; value: Scalar }[] = [];
  const lookup = (n: string) => model.config.get(n)?.value ?? undefined;
  const evaluate = (e: A.Expr) => evalConfigExpr(e, lookup, []);
  for (const e of model.config.values()) {
    const clause = e.keys.gguf;
    const v = e.value;
    if (!clause || !v) continue;
    if (clause.when && evaluate(clause.when)?.value !== true) continue;
    const fallback = clause.fallback && evaluate(clause.fallback);
    if (fallback && fallback.value === v.value) continue;
    for (const src of clause.sources) {
      const key = src.pattern.replaceAll("{arch}", arch);
      const args = (t: A.Call) => t.args.map((a) => evaluate(a.value)?.value as Value);
      if (src.tensor) {
        const says = src.transforms.reduce<unknown>((raw, t) => TRANSFORMS[t.callee.name as KeyTransformName].read(raw, args(t)), true);
        if (tensors.has(key) && says === v.value) break;
        continue;
      }
      let raw: Value | typeof NOT_WRITTEN = v.value;
      for (const t of [...src.transforms].reverse()) if (raw !== NOT_WRITTEN) raw = TRANSFORMS[t.callee.name as KeyTransformName].write(raw, args(t));
      if (raw === NOT_WRITTEN) continue;
      out.push({ key, value: { type: v.type, value: raw } });
      break;
    }
  }
  return out;
}

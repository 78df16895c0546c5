// Weight initialisers: the table of what `init name(args)` may name, the checks of a clause, and
// its resolution for one weight to the distribution each element is drawn from (the runtime's
// weights/init.ts samples it). A weight without a clause takes the language default.

import type * as A from "../parse/ast.js";
import { error, type Diagnostic } from "../base/diagnostics.js";
import { formatScalar, type Scalar } from "./scalar.js";
import { suggest } from "./suggest.js";

/** What every element of a weight is drawn from, independently. */
export type InitDistribution =
  | { kind: "normal"; mean: number; std: number }
  | { kind: "uniform"; low: number; high: number }
  | { kind: "constant"; value: number };

/** A weight's initialiser, resolved for its shape and config. */
export interface WeightInit {
  /** The initialiser, as declared or by default: "normal", "xavier_uniform", … */
  name: InitialiserName;
  /** Its evaluated arguments by parameter name, defaults filled in. */
  args: Record<string, number>;
  distribution: InitDistribution;
  /** False when the weight has no `init` clause and takes the default. */
  declared: boolean;
}

interface InitParam {
  name: string;
  /** Absent: the argument is required. */
  default?: number;
  /** The argument may not be below zero (a spread or a gain). */
  nonNegative?: boolean;
}

/** Fan-in and fan-out of an [out, in, …] weight, as PyTorch counts them (trailing dims multiply both). */
export interface Fans {
  fanIn: number;
  fanOut: number;
}

interface Initialiser {
  params: InitParam[];
  /** Written in docs/language.md's words; shown with argument errors. */
  doc: string;
  /** Needs fan-in and fan-out, so a weight of at least two dims. */
  usesFans?: boolean;
  distribution: (args: Record<string, number>, fans: Fans | null) => InitDistribution;
}

export const INITIALISERS = {
  normal: {
    params: [{ name: "mean" }, { name: "std", nonNegative: true }],
    doc: "normal(mean, std): N(mean, std²)",
    distribution: (a) => ({ kind: "normal", mean: a["mean"]!, std: a["std"]! }),
  },
  uniform: {
    params: [{ name: "low" }, { name: "high" }],
    doc: "uniform(low, high): U(low, high)",
    distribution: (a) => ({ kind: "uniform", low: a["low"]!, high: a["high"]! }),
  },
  xavier_uniform: {
    params: [{ name: "gain", default: 1, nonNegative: true }],
    doc: "xavier_uniform or xavier_uniform(gain): U(-a, a), a = gain·sqrt(6 / (fan_in + fan_out))",
    usesFans: true,
    distribution: (a, f) => {
      const bound = a["gain"]! * Math.sqrt(6 / (f!.fanIn + f!.fanOut));
      return { kind: "uniform", low: -bound, high: bound };
    },
  },
  xavier_normal: {
    params: [{ name: "gain", default: 1, nonNegative: true }],
    doc: "xavier_normal or xavier_normal(gain): N(0, std²), std = gain·sqrt(2 / (fan_in + fan_out))",
    usesFans: true,
    distribution: (a, f) => ({ kind: "normal", mean: 0, std: a["gain"]! * Math.sqrt(2 / (f!.fanIn + f!.fanOut)) }),
  },
  zeros: { params: [], doc: "zeros: every element 0", distribution: () => ({ kind: "constant", value: 0 }) },
  ones: { params: [], doc: "ones: every element 1", distribution: () => ({ kind: "constant", value: 1 }) },
} as const satisfies Record<string, Initialiser>;

export type InitialiserName = keyof typeof INITIALISERS;

/** GPT-2's and LLaMA's: matrices (and embeddings) N(0, 0.02²); vectors (norm gains) ones. */
export const DEFAULT_STD = 0.02;

export function defaultInit(shape: readonly number[]): WeightInit {
  return shape.length >= 2
    ? { name: "normal", args: { mean: 0, std: DEFAULT_STD }, distribution: { kind: "normal", mean: 0, std: DEFAULT_STD }, declared: false }
    : { name: "ones", args: {}, distribution: { kind: "constant", value: 1 }, declared: false };
}

export function fansOf(shape: readonly number[]): Fans | null {
  if (shape.length < 2) return null;
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** A clause whose initialiser is known and whose arguments bind to its parameters (not yet evaluated). */
export interface BoundInit {
  clause: A.InitClause;
  name: InitialiserName;
  args: Map<string, A.Expr>;
}

const spec = (name: InitialiserName): Initialiser => INITIALISERS[name];

/**
 * Checks what needs no config value: the initialiser exists, and its arguments (positional, then
 * named) match its parameters. Null, with the faults reported, when they do not.
 */
export function bindInit(weight: string, clause: A.InitClause, diags: Diagnostic[]): BoundInit | null {
  const name = clause.name.name;
  if (name === "<error>") return null; // a syntax error, already reported
  if (!Object.hasOwn(INITIALISERS, name)) {
    const known = Object.keys(INITIALISERS);
    diags.push(error("E0201", `unknown initialiser '${name}' for weight '${weight}'${suggest(name, known)}; initialisers are ${known.join(", ")}`, clause.name.span));
    return null;
  }
  const init = spec(name as InitialiserName);
  const usage = init.doc;
  const args = new Map<string, A.Expr>();
  let ok = true;
  let named = false;
  clause.args.forEach((a, i) => {
    if (a.name) {
      named = true;
      const p = init.params.find((q) => q.name === a.name!.name);
      if (!p) {
        const names = init.params.map((q) => q.name);
        const takes = names.length ? `its parameters are ${names.join(", ")}` : "it takes no arguments";
        diags.push(error("E0303", `${name} has no parameter '${a.name.name}'${suggest(a.name.name, names)}; ${takes}: ${usage}`, a.name.span));
        ok = false;
      } else if (args.has(p.name)) {
        diags.push(error("E0303", `${name}'s '${p.name}' is given twice`, a.span));
        ok = false;
      } else args.set(p.name, a.value);
      return;
    }
    if (named) {
      diags.push(error("E0303", `a positional argument of ${name} follows a named one`, a.span));
      ok = false;
      return;
    }
    const p = init.params[i];
    if (p) args.set(p.name, a.value);
  });
  const positional = clause.args.filter((a) => !a.name).length;
  if (positional > init.params.length) {
    const n = init.params.length;
    diags.push(error("E0303", `${name} takes ${n === 0 ? "no arguments" : `at most ${n} argument${n === 1 ? "" : "s"}`}, got ${positional}: ${usage}`, clause.span));
    ok = false;
  }
  const missing = init.params.filter((p) => p.default === undefined && !args.has(p.name)).map((p) => p.name);
  if (ok && missing.length > 0) {
    diags.push(error("E0303", `${name} needs ${missing.map((m) => `'${m}'`).join(" and ")}: ${usage}`, clause.span));
    ok = false;
  }
  return ok ? { clause, name: name as InitialiserName, args } : null;
}

/**
 * The initialiser of one weight for its shape: the bound clause's arguments evaluated (by `evaluate`,
 * which reports its own faults) and checked, or the default when the weight has no clause. Null
 * when a fault was reported.
 */
export function resolveInit(
  weight: string,
  shape: readonly number[],
  bound: BoundInit | null | undefined,
  evaluate: (e: A.Expr) => Scalar | null,
  diags: Diagnostic[],
): WeightInit | null {
  if (bound === undefined) return defaultInit(shape);
  if (bound === null) return null;
  const { name, clause } = bound;
  const init = spec(name);
  const values: Record<string, number> = {};
  let ok = true;
  for (const p of init.params) {
    const e = bound.args.get(p.name);
    if (!e) {
      values[p.name] = p.default!;
      continue;
    }
    const v = evaluate(e);
    if (!v) {
      ok = false;
      continue;
    }
    if (v.type !== "int" && v.type !== "f32") {
      diags.push(error("E0302", `${name}'s '${p.name}' must be a number, got ${v.type} ${formatScalar(v)}: ${init.doc}`, e.span));
      ok = false;
      continue;
    }
    const x = v.value as number;
    if (p.nonNegative && x < 0) {
      diags.push(error("E0404", `${name}'s '${p.name}' of weight '${weight}' must not be negative, got ${x}; write ${name === "normal" ? "a positive spread" : "a positive gain"} (${init.doc})`, e.span));
      ok = false;
      continue;
    }
    values[p.name] = x;
  }
  if (!ok) return null;
  if (name === "uniform" && values["low"]! > values["high"]!) {
    diags.push(error("E0404", `uniform's low ${values["low"]} is above its high ${values["high"]} for weight '${weight}'; write uniform(low, high) with low ≤ high`, clause.span));
    return null;
  }
  const fans = fansOf(shape);
  if (init.usesFans && !fans) {
    diags.push(
      error("E0301", `${name} needs fan_in and fan_out, which a 1-D weight does not have ('${weight}' is [${shape.join(", ")}]); use normal(mean, std), uniform(low, high), zeros or ones`, clause.span),
    );
    return null;
  }
  return { name, args: values, distribution: init.distribution(values, fans), declared: true };
}

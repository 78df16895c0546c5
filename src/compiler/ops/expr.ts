// Expression programs: the body of a fused kernel. A small DAG over the kernel's inputs (broadcast to
// the kernel's index space), constants, elementwise ops of the op table, and row reductions (over
// the last axis, broadcast back along the row). Fusion builds them; the CPU reference evaluates them;
// the WGSL and CUDA emitters render them with one shared renderer.

import { evalDim, formatDim, type Dim } from "../base/symbolic.js";
import type { DType } from "./table.js";
import { getOp } from "./table.js";

export type ExprNode =
  | { kind: "input"; index: number }
  | { kind: "const"; value: number; dtype: DType }
  /** A dimension's value this step (a polynomial of P once T is known), as a value of `dtype`. */
  | { kind: "dim"; value: Dim; dtype: DType }
  | { kind: "op"; op: string; args: number[]; dtype?: DType /* cast's target */ }
  | { kind: "reduce"; op: "sum" | "mean" | "amax"; arg: number };

export interface ExprProgram {
  nodes: ExprNode[];
  outputs: number[];
}

/** Element types of every node, given the kernel inputs' element types. */
export function programTypes(p: ExprProgram, inputTypes: readonly DType[]): DType[] {
  const types: DType[] = [];
  for (const n of p.nodes) {
    switch (n.kind) {
      case "input": types.push(inputTypes[n.index]!); break;
      case "const": case "dim": types.push(n.dtype); break;
      case "reduce": types.push(types[n.arg]!); break;
      case "op": {
        const ty = getOp(n.op).infer(n.args.map((a) => ({ shape: [], dtype: types[a]! })), n.op === "cast" ? { dtype: n.dtype ?? "f32" } : {});
        types.push(ty.dtype);
      }
    }
  }
  return types;
}

// ------------------------------------------------------------------------------------------ text form
// `in0; in1; 1e-05:f32; mul(0, 0); mean(3); add(4, 2); rsqrt(5); mul(0, 6) -> 7`; a dim is `[P + 3]:i32`.

export function formatProgram(p: ExprProgram): string {
  const parts = p.nodes.map((n) => {
    switch (n.kind) {
      case "input": return `in${n.index}`;
      case "const": return `${n.value}:${n.dtype}`;
      case "dim": return `[${formatDim(n.value)}]:${n.dtype}`;
      case "reduce": return `${n.op}(${n.arg})`;
      case "op": return `${n.op}${n.op === "cast" ? "." + (n.dtype ?? "f32") : ""}(${n.args.join(", ")})`;
    }
  });
  return `${parts.join("; ")} -> ${p.outputs.join(", ")}`;
}

export function parseProgram(text: string): ExprProgram {
  const arrow = text.lastIndexOf("->");
  if (arrow < 0) throw new Error(`expression program without '->': ${text}`);
  const outputs = text.slice(arrow + 2).split(",").map((s) => Number(s.trim()));
  const nodes: ExprNode[] = text
    .slice(0, arrow)
    .split(";")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s): ExprNode => {
      let m = /^in(\d+)$/.exec(s);
      if (m) return { kind: "input", index: Number(m[1]) };
      m = /^(-?[\d.e+-]+|-?Infinity|NaN):([a-z0-9]+)$/.exec(s);
      if (m) return { kind: "const", value: Number(m[1]), dtype: m[2] as DType };
      m = /^\[(.*)\]:([a-z0-9]+)$/.exec(s);
      if (m) return { kind: "dim", value: parseDimTerms(m[1]!), dtype: m[2] as DType };
      m = /^([a-z_0-9]+)(?:\.([a-z0-9]+))?\(([\d,\s]*)\)$/.exec(s);
      if (!m) throw new Error(`bad expression node '${s}'`);
      const args = m[3]!.split(",").map((x) => x.trim()).filter(Boolean).map(Number);
      if (m[1] === "sum" || m[1] === "mean" || m[1] === "amax") return { kind: "reduce", op: m[1], arg: args[0]! };
      return m[2] ? { kind: "op", op: m[1]!, args, dtype: m[2] as DType } : { kind: "op", op: m[1]!, args };
    });
  for (const o of outputs) if (!Number.isInteger(o) || o < 0 || o >= nodes.length) throw new Error(`bad program output ${o}`);
  return { nodes, outputs };
}

/** `2*P - 3`, `P*P + P`: what formatDim writes. */
function parseDimTerms(text: string): Dim {
  const d = new Map<string, number>();
  for (const m of text.replace(/\s+/g, "").matchAll(/([+-]?)([^+-]+)/g)) {
    const sign = m[1] === "-" ? -1 : 1;
    const f = /^(\d+)(?:\*(.+))?$/.exec(m[2]!);
    const [c, key] = f ? [Number(f[1]), f[2] ?? ""] : [1, m[2]!];
    d.set(key, (d.get(key) ?? 0) + sign * c);
  }
  return d;
}

// ------------------------------------------------------------------------------------------ evaluation

const unaryFns: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
  abs: Math.abs,
  recip: (x) => 1 / x,
  not: (x) => (x ? 0 : 1),
};

const binaryFns: Record<string, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  max: Math.max,
  min: Math.min,
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  and: (a, b) => +(a !== 0 && b !== 0),
  or: (a, b) => +(a !== 0 || b !== 0),
};

/** erf by Abramowitz–Stegun 7.1.26 refined; matches the reference to ~1e-7. */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.5 * a);
  const y = 1 - t * Math.exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return s * y;
}

/**
 * Evaluates a program over rows: `row(i)` gives input i's values for one row of length `width`
 * (already broadcast). Returns each output's row. Reductions see the whole row; results are rounded
 * to f32 where the op's type is f32, as a kernel would. Dims take their values from `env` (P).
 */
export function evalProgramRow(p: ExprProgram, width: number, row: (input: number) => Float64Array, types: readonly DType[], env: ReadonlyMap<string, number> = new Map()): Float64Array[] {
  const vals: Float64Array[] = [];
  const round = (dtype: DType, v: Float64Array) => {
    if (dtype === "f32") for (let i = 0; i < v.length; i++) v[i] = Math.fround(v[i]!);
    else if (dtype === "i32") for (let i = 0; i < v.length; i++) v[i] = v[i]! | 0;
    return v;
  };
  p.nodes.forEach((n, idx) => {
    let out: Float64Array;
    switch (n.kind) {
      case "input": out = row(n.index); break;
      case "const": out = new Float64Array(width).fill(n.value); break;
      case "dim": out = new Float64Array(width).fill(evalDim(n.value, env)); break;
      case "reduce": {
        const src = vals[n.arg]!;
        let acc = n.op === "amax" ? -Infinity : 0;
        for (let i = 0; i < width; i++) acc = n.op === "amax" ? Math.max(acc, src[i]!) : acc + src[i]!;
        if (n.op === "mean") acc /= width;
        out = new Float64Array(width).fill(acc);
        break;
      }
      case "op": {
        const a = vals[n.args[0]!]!;
        out = new Float64Array(width);
        if (n.op === "where") {
          const b = vals[n.args[1]!]!;
          const c = vals[n.args[2]!]!;
          for (let i = 0; i < width; i++) out[i] = a[i] ? b[i]! : c[i]!;
        } else if (n.op === "cast") {
          for (let i = 0; i < width; i++) out[i] = a[i]!;
        } else if (n.op === "erf") {
          for (let i = 0; i < width; i++) out[i] = erf(a[i]!);
        } else if (n.args.length === 1) {
          const f = unaryFns[n.op];
          if (!f) throw new Error(`no evaluation for '${n.op}'`);
          for (let i = 0; i < width; i++) out[i] = f(a[i]!);
        } else {
          const f = binaryFns[n.op];
          if (!f) throw new Error(`no evaluation for '${n.op}'`);
          const b = vals[n.args[1]!]!;
          for (let i = 0; i < width; i++) out[i] = f(a[i]!, b[i]!);
        }
      }
    }
    vals.push(round(types[idx]!, out!));
  });
  return p.outputs.map((o) => vals[o]!);
}

// ------------------------------------------------------------------------------------------ structure

const refsOf = (n: ExprNode): number[] => (n.kind === "op" ? n.args : n.kind === "reduce" ? [n.arg] : []);

/** The identity program over one input. */
export const IDENTITY_PROGRAM: ExprProgram = { nodes: [{ kind: "input", index: 0 }], outputs: [0] };

export function isIdentityProgram(p: ExprProgram): boolean {
  return p.outputs.length === 1 && p.nodes[p.outputs[0]!]?.kind === "input" && (p.nodes[p.outputs[0]!] as { index: number }).index === 0;
}

/**
 * The sub-program computing `roots` (in order, as its outputs), with nodes copied in program order.
 * `replace(i)` may substitute a node by a fresh input (e.g. a reduction by its value).
 */
export function subProgram(p: ExprProgram, roots: readonly number[], replace: (i: number) => ExprNode | null = () => null): ExprProgram {
  const need = new Set<number>();
  const visit = (i: number): void => {
    if (need.has(i)) return;
    need.add(i);
    if (!replace(i)) refsOf(p.nodes[i]!).forEach(visit);
  };
  roots.forEach(visit);
  const map = new Map<number, number>();
  const nodes: ExprNode[] = [];
  for (const i of [...need].sort((a, b) => a - b)) {
    const r = replace(i);
    const n = p.nodes[i]!;
    const copy: ExprNode = r ?? (n.kind === "op" ? { ...n, args: n.args.map((a) => map.get(a)!) } : n.kind === "reduce" ? { ...n, arg: map.get(n.arg)! } : n);
    map.set(i, nodes.push(copy) - 1);
  }
  return { nodes, outputs: roots.map((r) => map.get(r)!) };
}

/** Appends `extra`'s nodes to `base` with its inputs renumbered by `inputMap`; returns the slot of
 *  each of `extra`'s outputs in the combined node list. */
export function appendProgram(base: ExprNode[], extra: ExprProgram, inputMap: (i: number) => number): number[] {
  const map = new Map<number, number>();
  extra.nodes.forEach((n, i) => {
    const copy: ExprNode =
      n.kind === "input" ? { kind: "input", index: inputMap(n.index) }
      : n.kind === "op" ? { ...n, args: n.args.map((a) => map.get(a)!) }
      : n.kind === "reduce" ? { ...n, arg: map.get(n.arg)! }
      : n;
    map.set(i, base.push(copy) - 1);
  });
  return extra.outputs.map((o) => map.get(o)!);
}

/**
 * A row program factored as (row scale) × (elementwise function of its inputs): the shape of
 * RMSNorm `x · rsqrt(mean(x²) + ε) · g`, Gemma's `… · (1 + g)`, or `x / amax(|x|)`. Such a program
 * can run inside a matrix product over its rows: Σₖ W[n,k]·s·e(k) = s·Σₖ W[n,k]·e(k), with the
 * reductions accumulated in the same pass over the row.
 */
export interface RowScaleFactoring {
  /** e: the elementwise factor, over the program's inputs (no reductions). */
  elementwise: ExprProgram;
  /** The program nodes whose product is e (each with no reduction below it). */
  elementwiseFactors: number[];
  /** The program nodes whose product, divided by that of `denominators`, is s. */
  uniformFactors: number[];
  denominators: number[];
  /** The reductions s needs: their op and operand (an elementwise program over the inputs). */
  reductions: { op: "sum" | "mean" | "amax"; arg: ExprProgram }[];
  /** s: the row scale, a program over the reduction values (input j is reduction j). */
  scale: ExprProgram;
}

/**
 * Factors a program whose output is a product (`mul`, or `div` by a row-uniform value) of factors
 * that are each either elementwise (no reduction below them) or row-uniform (inputs reached only
 * through reductions), with single-stage reductions (operands without reductions). Null for any
 * other program, and for one without reductions.
 */
export function factorRowScale(p: ExprProgram): RowScaleFactoring | null {
  if (p.outputs.length !== 1) return null;
  const { nodes } = p;
  const varies: boolean[] = [];
  const reduces: boolean[] = [];
  nodes.forEach((n, i) => {
    varies[i] = n.kind === "input" || (n.kind === "op" && n.args.some((a) => varies[a]));
    reduces[i] = n.kind === "reduce" || refsOf(n).some((a) => reduces[a]);
  });
  const numer: number[] = [];
  const denom: number[] = [];
  const flatten = (i: number, into: number[], other: number[]): boolean => {
    const n = nodes[i]!;
    if (n.kind === "op" && n.op === "mul") return flatten(n.args[0]!, into, other) && flatten(n.args[1]!, into, other);
    if (n.kind === "op" && n.op === "div" && !varies[n.args[1]!]) return flatten(n.args[0]!, into, other) && flatten(n.args[1]!, other, into);
    into.push(i);
    return true;
  };
  flatten(p.outputs[0]!, numer, denom);
  const elementwise = numer.filter((i) => !reduces[i]);
  const uniform = numer.filter((i) => reduces[i]);
  if (uniform.some((i) => varies[i]) || denom.some((i) => varies[i])) return null;
  const reached = new Set<number>();
  const reach = (i: number): void => {
    if (reached.has(i)) return;
    reached.add(i);
    if (nodes[i]!.kind !== "reduce") refsOf(nodes[i]!).forEach(reach);
  };
  [...uniform, ...denom].forEach(reach);
  const reductionIds = [...reached].filter((i) => nodes[i]!.kind === "reduce").sort((a, b) => a - b);
  if (reductionIds.length === 0) return null;
  for (const r of reductionIds) if (reduces[(nodes[r] as { arg: number }).arg]) return null; // a second stage
  // A reduction whose operand does not vary would be a constant times the row length: let the
  // ordinary row kernel have it.
  if (reductionIds.some((r) => !varies[(nodes[r] as { arg: number }).arg])) return null;

  const product = (factors: number[], replace: (i: number) => ExprNode | null): ExprProgram => {
    if (factors.length === 0) return { nodes: [{ kind: "const", value: 1, dtype: "f32" }], outputs: [0] };
    const sub = subProgram(p, factors, replace);
    let acc = sub.outputs[0]!;
    for (const o of sub.outputs.slice(1)) acc = sub.nodes.push({ kind: "op", op: "mul", args: [acc, o] }) - 1;
    return { nodes: sub.nodes, outputs: [acc] };
  };
  const asInput = (i: number): ExprNode | null => {
    const j = reductionIds.indexOf(i);
    return j >= 0 ? { kind: "input", index: j } : null;
  };
  const num = product(uniform, asInput);
  let scale = num;
  if (denom.length) {
    const den = product(denom, asInput);
    const nodesAll = [...num.nodes];
    const [d] = appendProgram(nodesAll, den, (i) => i);
    // appendProgram renumbered den's inputs identically; den's input nodes are duplicates, harmless.
    scale = { nodes: [...nodesAll, { kind: "op", op: "div", args: [num.outputs[0]!, d!] }], outputs: [nodesAll.length] };
  }
  return {
    elementwise: product(elementwise, () => null),
    elementwiseFactors: elementwise,
    uniformFactors: uniform,
    denominators: denom,
    reductions: reductionIds.map((r) => {
      const n = nodes[r] as Extract<ExprNode, { kind: "reduce" }>;
      return { op: n.op, arg: subProgram(p, [n.arg]) };
    }),
    scale,
  };
}

/** The input indices a program reads (from its outputs). */
export function programInputs(p: ExprProgram): number[] {
  const seen = new Set<number>();
  const used = new Set<number>();
  const visit = (i: number): void => {
    if (seen.has(i)) return;
    seen.add(i);
    const n = p.nodes[i]!;
    if (n.kind === "input") used.add(n.index);
    refsOf(n).forEach(visit);
  };
  p.outputs.forEach(visit);
  return [...used].sort((a, b) => a - b);
}

/** The program with its inputs renumbered by `map` (old index → new index). */
export function renumberInputs(p: ExprProgram, map: (i: number) => number): ExprProgram {
  return { nodes: p.nodes.map((n) => (n.kind === "input" ? { kind: "input", index: map(n.index) } : n)), outputs: p.outputs };
}

/** The product (then quotient) of some of `p`'s nodes as a program of its own. */
export function productProgram(p: ExprProgram, factors: readonly number[], denominators: readonly number[] = []): ExprProgram {
  const roots = [...factors, ...denominators];
  if (roots.length === 0) return { nodes: [{ kind: "const", value: 1, dtype: "f32" }], outputs: [0] };
  const sub = subProgram(p, roots);
  const outs = sub.outputs;
  const nodes = [...sub.nodes];
  let acc = factors.length ? outs[0]! : nodes.push({ kind: "const", value: 1, dtype: "f32" }) - 1;
  for (const o of outs.slice(1, factors.length)) acc = nodes.push({ kind: "op", op: "mul", args: [acc, o] }) - 1;
  for (const o of outs.slice(factors.length)) acc = nodes.push({ kind: "op", op: "div", args: [acc, o] }) - 1;
  return { nodes, outputs: [acc] };
}

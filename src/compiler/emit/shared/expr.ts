// One expression renderer for every target (C-style languages: WGSL and CUDA). A target supplies a
// small table — type names, literals, one string function per elementwise op, casts,
// declarations, a loop — and gets the body of a fused elementwise or row-reduction kernel.
//
// A program is rendered in two parts:
//   pre   statements run once per row: one loop over the row per reduction stage (all reductions
//         whose operands are ready share a loop), then the row-uniform values that depend on them;
//   body  statements run per element (the row's output loop, or the one element of an elementwise
//         kernel), computing everything that varies along the row;
// and `outputs`, one expression per program output, valid after `body`.
// Names are generated (`v3`, `acc3`); nothing from the model's source ever reaches the code.

import { programTypes, type ExprNode, type ExprProgram } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import { dimExprWith } from "./context.js";

export type { ExprNode, ExprProgram };

export interface OpTypes {
  out: DType;
  args: DType[];
}

export interface ExprLang {
  name: string;
  /** The language's type for a value of this element type. */
  type(dtype: DType): string;
  literal(value: number, dtype: DType): string;
  /** One entry per elementwise op of the op table (except `cast`): operands are plain names or literals. */
  ops: Readonly<Record<string, (args: string[], types: OpTypes) => string>>;
  cast(value: string, from: DType, to: DType): string;
  /** `let v3: f32 = …;` — an immutable local. */
  let(name: string, dtype: DType, value: string): string;
  /** `var acc3: f32 = …;` — a mutable local. */
  var(name: string, dtype: DType, value: string): string;
  assign(name: string, value: string): string;
  /** Opens a loop `index` = 0 … length-1 (a closing "}" ends it). */
  loopOpen(index: string, length: string): string;
  /** An index expression (the row length, P) as a value of `dtype`: a float for `mean`, f32 or i32
   *  for a dim. */
  lengthAs(length: string, dtype: DType): string;
  /** Accumulator step of a reduction. */
  reduceStep(op: "sum" | "mean" | "amax", acc: string, x: string, dtype: DType): string;
  /** After a row loop: combines the accumulators of the threads that share the row (absent where a
   *  row is one thread's). */
  rowCombine?(op: "sum" | "mean" | "amax", acc: string, dtype: DType): string;
  /** Module-scope helper functions, included when the rendered code calls them by name. */
  helpers: Readonly<Record<string, string>>;
}

export interface RowOptions {
  /** The loop index that input accessors use (`inputName` may mention it). */
  index: string;
  /** Row length, an unsigned integer expression of the language. */
  length: string;
}

export interface RenderedExpr {
  /** Module-scope helper functions the code needs. */
  helpers: string[];
  /** Once per row: reduction loops and row-uniform values (empty-ish for elementwise programs). */
  pre: string[];
  /** Per element: the values that vary along the row. */
  body: string[];
  /** One expression per program output. */
  outputs: string[];
  /** Element type of each output. */
  outputTypes: DType[];
  /** Whether each output varies along the row (false: valid already after `pre`). */
  outputVaries: boolean[];
}

const refs = (n: ExprNode): number[] => (n.kind === "op" ? n.args : n.kind === "reduce" ? [n.arg] : []);

/**
 * Renders `program` in `lang`. `inputName(i)` is the expression that loads kernel input i at the
 * current element (for row programs, at element `row.index` of the row). `inputTypes` are the
 * kernel inputs' element types (default f32). A program with reductions needs `row`; one with dims
 * needs `past`, the step's P as an index expression (it may bind the step parameters).
 */
export function renderExpr(
  program: ExprProgram,
  lang: ExprLang,
  inputName: (i: number) => string,
  row?: RowOptions,
  inputTypes?: readonly DType[],
  past?: () => string,
): RenderedExpr {
  const { nodes } = program;
  const nInputs = nodes.reduce((m, n) => (n.kind === "input" ? Math.max(m, n.index + 1) : m), 0);
  const types = programTypes(program, inputTypes ?? Array<DType>(nInputs).fill("f32"));
  nodes.forEach((n, i) => {
    if (refs(n).some((r) => r < 0 || r >= i)) throw new Error(`internal: expression node ${i} refers forward`);
  });

  // A node varies along the row when it reads an input other than through a reduction.
  const varies = nodes.map(() => false);
  const level = nodes.map(() => 0); // reduction stage after which the value is available
  nodes.forEach((n, i) => {
    if (n.kind === "input") varies[i] = true;
    else if (n.kind === "op") {
      varies[i] = n.args.some((a) => varies[a]);
      level[i] = Math.max(0, ...n.args.map((a) => level[a]!));
    } else if (n.kind === "reduce") level[i] = level[n.arg]! + 1;
  });
  const hasReduce = nodes.some((n) => n.kind === "reduce");
  if (hasReduce && !row) throw new Error("internal: a program with reductions needs row options");

  const name = (i: number): string => {
    const n = nodes[i]!;
    return n.kind === "const" ? lang.literal(n.value, n.dtype) : `v${i}`;
  };
  const valueOf = (i: number): string => {
    const n = nodes[i]!;
    switch (n.kind) {
      case "input": return inputName(n.index);
      case "const": return lang.literal(n.value, n.dtype);
      case "dim": {
        // Computed in the node's type, so a negative constant term never wraps an unsigned index.
        if (!past) throw new Error("internal: a program with dims needs the step's P");
        const dtype = n.dtype;
        return dimExprWith(n.value, () => lang.lengthAs(past(), dtype), (v) => lang.literal(v, dtype));
      }
      case "reduce": throw new Error("internal: reductions are not values");
      case "op": {
        const argTypes = n.args.map((a) => types[a]!);
        if (n.op === "cast") return lang.cast(name(n.args[0]!), argTypes[0]!, types[i]!);
        const f = lang.ops[n.op];
        if (!f) throw new Error(`the ${lang.name} renderer has no rendering for op '${n.op}'`);
        return f(n.args.map(name), { out: types[i]!, args: argTypes });
      }
    }
  };

  const pre: string[] = [];
  const uniformDone = new Set<number>();
  /** Emits (once, into `pre`) a row-uniform value and the uniform values it needs. */
  const emitUniform = (i: number): void => {
    if (uniformDone.has(i) || nodes[i]!.kind === "const" || nodes[i]!.kind === "reduce") return;
    for (const a of refs(nodes[i]!)) emitUniform(a);
    uniformDone.add(i);
    pre.push(lang.let(`v${i}`, types[i]!, valueOf(i)));
  };
  /** Lines computing the varying nodes that `roots` need, in program order. */
  const varyingLines = (roots: number[], indent: string): string[] => {
    const need = new Set<number>();
    const visit = (i: number): void => {
      if (need.has(i)) return;
      const n = nodes[i]!;
      if (n.kind === "reduce" || n.kind === "const") return;
      if (!varies[i]) return void emitUniform(i);
      need.add(i);
      for (const a of refs(n)) visit(a);
    };
    roots.forEach(visit);
    return [...need].sort((a, b) => a - b).map((i) => indent + lang.let(`v${i}`, types[i]!, valueOf(i)));
  };

  // Reduction stages: stage s reduces operands available after stage s.
  const stages = new Map<number, number[]>();
  nodes.forEach((n, i) => {
    if (n.kind === "reduce") stages.set(level[n.arg]!, [...(stages.get(level[n.arg]!) ?? []), i]);
  });
  for (const s of [...stages.keys()].sort((a, b) => a - b)) {
    const reds = stages.get(s)!;
    for (const r of reds) {
      const n = nodes[r] as Extract<ExprNode, { kind: "reduce" }>;
      const init = n.op === "amax" ? lang.literal(-Infinity, types[r]!) : lang.literal(0, types[r]!);
      pre.push(lang.var(`v${r}`, types[r]!, init));
    }
    const args = reds.map((r) => (nodes[r] as Extract<ExprNode, { kind: "reduce" }>).arg);
    // Operands that do not vary along the row are hoisted by varyingLines (emitUniform).
    const inner = varyingLines(args, "  ");
    pre.push(lang.loopOpen(row!.index, row!.length));
    pre.push(...inner);
    for (const r of reds) {
      const n = nodes[r] as Extract<ExprNode, { kind: "reduce" }>;
      pre.push("  " + lang.reduceStep(n.op, `v${r}`, name(n.arg), types[r]!));
    }
    pre.push("}");
    for (const r of reds) {
      const n = nodes[r] as Extract<ExprNode, { kind: "reduce" }>;
      if (lang.rowCombine) pre.push(lang.rowCombine(n.op, `v${r}`, types[r]!));
      if (n.op === "mean") pre.push(lang.assign(`v${r}`, lang.ops["div"]!([`v${r}`, lang.lengthAs(row!.length, types[r]!)], { out: types[r]!, args: [types[r]!, types[r]!] })));
    }
  }

  const body = varyingLines(program.outputs, "");
  const outputs = program.outputs.map((o) => {
    if (!varies[o]) emitUniform(o);
    return name(o);
  });

  return {
    helpers: helpersFor([...pre, ...body, ...outputs].join("\n"), lang),
    pre,
    body,
    outputs,
    outputTypes: program.outputs.map((o) => types[o]!),
    outputVaries: program.outputs.map((o) => varies[o]!),
  };
}

/** The helper functions `code` calls, directly or through other helpers, in the table's order. */
export function helpersFor(code: string, lang: ExprLang): string[] {
  const need = new Set<string>();
  const scan = (text: string): void => {
    for (const [h, src] of Object.entries(lang.helpers)) {
      if (!need.has(h) && new RegExp(`\\b${h}\\(`).test(text)) {
        need.add(h);
        scan(src);
      }
    }
  };
  scan(code);
  return Object.entries(lang.helpers).filter(([h]) => need.has(h)).map(([, src]) => src);
}

// What every target's linear kernels read the same way: the dispatch's LinearKernel, the input x
// (its sources broadcast together, and how the prologue factors), and an elementwise program
// rendered as a block of statements.

import { factorRowScale, isIdentityProgram, type ExprProgram, type RowScaleFactoring } from "../../ops/expr.js";
import type { DType } from "../../ops/table.js";
import type { Dispatch, LinearKernel } from "../../plan/plan.js";
import type { PlanContext } from "./context.js";
import { renderExpr, type ExprLang } from "./expr.js";
import { broadcastStrides, product } from "./indexing.js";

/** The dispatch's linear kernel (every linear and fused_linear dispatch of a plan has one). */
export function linearOf(d: Dispatch): LinearKernel {
  if (!d.linear) throw new Error(`internal: the ${d.kernel} dispatch #${d.index} has no linear kernel`);
  return d.linear;
}

export interface LinearSource {
  id: number;
  type: DType;
  /** Element stride along K (1, or 0 when broadcast). */
  along: number;
  rowStrides: number[];
}

/** x [.., M, K] of a linear: its sources broadcast together, then the prologue. */
export interface LinearX {
  M: number;
  K: number;
  rowShape: number[];
  /** x is its one source as it is. */
  identity: boolean;
  /** Otherwise the prologue as s(row) × e(sources). */
  factoring: RowScaleFactoring | null;
  sources: LinearSource[];
}

export function linearX(ctx: PlanContext, k: LinearKernel): LinearX {
  const shapes = k.sources.map((id) => ctx.shape(id));
  const xShape = shapes.reduce((acc, sh) => {
    const n = Math.max(acc.length, sh.length);
    return Array.from({ length: n }, (_, i) => Math.max(acc[acc.length - n + i] ?? 1, sh[sh.length - n + i] ?? 1));
  }, [] as number[]);
  const K = xShape[xShape.length - 1]!;
  const rowShape = xShape.slice(0, -1);
  const identity = k.sources.length === 1 && isIdentityProgram(k.prologue);
  const factoring = identity ? null : factorRowScale(k.prologue);
  if (!identity && !factoring) throw new Error(`internal: ${ctx.label()}: a linear prologue must factor as a row scale times an elementwise function`);
  const sources = k.sources.map((id, i): LinearSource => {
    const strides = broadcastStrides(shapes[i]!, xShape);
    return { id, type: ctx.node(id).ty.dtype, along: strides[strides.length - 1]!, rowStrides: strides.slice(0, -1) };
  });
  return { M: product(rowShape), K, rowShape, identity, factoring, sources };
}

/** Statements evaluating an elementwise `program` in a block, assigning its outputs to `targets`. */
export function statementBlock(lang: ExprLang, program: ExprProgram, input: (i: number) => string, types: readonly DType[], targets: string[], helpers: Set<string>): string[] {
  const r = renderExpr(program, lang, input, undefined, types);
  r.helpers.forEach((h) => helpers.add(h));
  return ["{", ...[...r.pre, ...r.body].map((l) => "  " + l), ...r.outputs.map((o, i) => `  ${targets[i]} = ${o};`), "}"];
}

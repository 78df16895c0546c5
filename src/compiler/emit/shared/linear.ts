// What every target's linear kernels do the same way: read the dispatch's LinearKernel and the input
// x (its sources broadcast together, and how the prologue factors); take one element of x through
// the prologue and finish its row scale; and, per segment, the epilogue, the rotation and the stores.
// Each target writes the loops around them (tiles, k steps, threads) and calls these inside.

import { constDim, type Dim } from "../../base/symbolic.js";
import { factorRowScale, isIdentityProgram, programInputs, type ExprProgram, type RowScaleFactoring } from "../../ops/expr.js";
import { broadcastShapes, type DType } from "../../ops/table.js";
import type { Dispatch, LinearKernel, LinearSegment } from "../../plan/plan.js";
import { constOf, type PlanContext } from "./context.js";
import { renderExpr, type ExprLang } from "./expr.js";
import { broadcastStrides, dimProduct, offsetExpr } from "./indexing.js";
import type { KernelLang } from "./lang.js";
import type { KernelParams, TensorOutput } from "./params.js";

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
  rowStrides: Dim[];
}

/** x [.., M, K] of a linear: its sources broadcast together, then the prologue. Its rows may
 *  depend on P (K never does: it is the weights'). */
export interface LinearX {
  /** Rows at the largest P: what tiles and launches are sized for. */
  M: number;
  /** Rows in the step: M itself, or a polynomial of P the kernel bounds its rows by. */
  rows: Dim;
  K: number;
  rowShape: Dim[];
  /** x is its one source as it is. */
  identity: boolean;
  /** Otherwise the prologue as s(row) × e(sources). */
  factoring: RowScaleFactoring | null;
  sources: LinearSource[];
}

export function linearX(ctx: PlanContext, k: LinearKernel): LinearX {
  const shapes = k.sources.map((id) => ctx.dims(id));
  const xShape = shapes.reduce((acc, sh) => broadcastShapes(acc, sh));
  const K = constOf(xShape[xShape.length - 1]!);
  if (K === null) throw new Error(`internal: ${ctx.label()}: the inner dimension of a linear depends on P`);
  const rowShape = xShape.slice(0, -1);
  const identity = k.sources.length === 1 && isIdentityProgram(k.prologue);
  const factoring = identity ? null : factorRowScale(k.prologue);
  if (!identity && !factoring) throw new Error(`internal: ${ctx.label()}: a linear prologue must factor as a row scale times an elementwise function`);
  const sources = k.sources.map((id, i): LinearSource => {
    const strides = broadcastStrides(shapes[i]!, xShape);
    return { id, type: ctx.node(id).ty.dtype, along: constOf(strides[strides.length - 1]!)!, rowStrides: strides.slice(0, -1) };
  });
  const rows = dimProduct(rowShape);
  return { M: ctx.atMax(rows), rows, K, rowShape, identity, factoring, sources };
}

/** Statements evaluating an elementwise `program`, then `use(outputs)`. */
function programLines(lang: ExprLang, program: ExprProgram, input: (i: number) => string, types: readonly DType[], use: (outputs: string[]) => string[], helpers: Set<string>): string[] {
  const r = renderExpr(program, lang, input, undefined, types);
  r.helpers.forEach((h) => helpers.add(h));
  return [...r.pre, ...r.body, ...use(r.outputs)];
}

/** The same in a block of its own (its locals stay inside). */
export function programBlock(lang: ExprLang, program: ExprProgram, input: (i: number) => string, types: readonly DType[], use: (outputs: string[]) => string[], helpers: Set<string>): string[] {
  return ["{", ...programLines(lang, program, input, types, use, helpers).map((l) => "  " + l), "}"];
}

/** A block evaluating an elementwise `program` and assigning its outputs to `targets`. */
function statementBlock(lang: ExprLang, program: ExprProgram, input: (i: number) => string, types: readonly DType[], targets: string[], helpers: Set<string>): string[] {
  return programBlock(lang, program, input, types, (outputs) => outputs.map((o, i) => lang.assign(targets[i]!, o)), helpers);
}

// ------------------------------------------------------------------------------------------ prologue

/** Where a reduction's accumulator starts: −∞ for amax, else 0. */
export function reductionStart(lang: ExprLang, op: string): string {
  return lang.literal(op === "amax" ? -Infinity : 0, "f32");
}

/**
 * One element of x through the prologue, source i being `at(i)`: x's value into `target` (unless
 * null) and one step of each reduction of the row scale into `red(j)` (unless null).
 */
export function prologueElement(lang: ExprLang, x: LinearX, at: (i: number) => string, target: string | null, red: ((j: number) => string) | null, helpers: Set<string>): string[] {
  const types = x.sources.map((s) => s.type);
  const lines: string[] = [];
  if (target !== null) lines.push(...(x.identity ? [lang.assign(target, at(0))] : statementBlock(lang, x.factoring!.elementwise, at, types, [target], helpers)));
  if (red !== null) {
    x.factoring?.reductions.forEach((rd, j) => {
      lines.push(...programBlock(lang, rd.arg, at, types, ([v]) => [lang.reduceStep(rd.op, red(j), v!, "f32")], helpers));
    });
  }
  return lines;
}

/** The sources `prologueElement` reads for x's value (`value`) and for the reductions (`reductions`). */
export function prologueSources(x: LinearX, value: boolean, reductions: boolean): Set<number> {
  const programs = [...(value && !x.identity ? [x.factoring!.elementwise] : []), ...(reductions ? (x.factoring?.reductions ?? []).map((r) => r.arg) : [])];
  return new Set([...(value && x.identity ? [0] : []), ...programs.flatMap(programInputs)]);
}

/** Once the reductions are complete in `red(j)`: the row scale, into a new local `target`. */
export function rowScale(lang: KernelLang, x: LinearX, red: (j: number) => string, target: string, helpers: Set<string>): string[] {
  const f = x.factoring!;
  return [
    ...f.reductions.flatMap((rd, j) => (rd.op === "mean" ? [lang.assign(red(j), `${red(j)} / ${lang.literal(x.K, "f32")}`)] : [])),
    lang.declare(target, "f32"),
    ...statementBlock(lang, f.scale, red, f.reductions.map(() => "f32"), [target], helpers),
  ];
}

// ------------------------------------------------------------------------------------------ outputs

/** A segment's output side: the epilogue over its accumulators and extra inputs, the rotation and
 *  the stores, for output element (row, col) of [M, N]. Row and col are index expressions, in
 *  parentheses unless a name or a constant. */
export interface SegmentOutput {
  /** Output (row, col): the epilogue of the accumulators `acc(w)`, stored. */
  store(row: string, col: string, acc: (w: number) => string, helpers: Set<string>): string[];
  /** Outputs (row, col) and (row, col + 1) of a rotated segment, col even: both epilogues (of
   *  `acc0(w)`, `acc1(w)`), then the pair rotated and stored. */
  storePair(row: string, col: string, acc0: (w: number) => string, acc1: (w: number) => string, helpers: Set<string>): string[];
}

export function segmentOutput(params: KernelParams, seg: LinearSegment, rowShape: readonly Dim[]): SegmentOutput {
  const { ctx, lang } = params;
  const lit = lang.indexLiteral;
  const N = ctx.shape(seg.weights[0]!)[0]!;
  const W = seg.weights.length;
  const outShape = [...rowShape, constDim(N)];
  const extras = seg.extras.map((id) => {
    const read = params.read(id);
    const strides = broadcastStrides(ctx.dims(id), outShape);
    return (o: string) => read(offsetExpr(o, outShape, strides, params.dim));
  });
  const types = [...seg.weights.map(() => "f32" as const), ...seg.extras.map((id) => ctx.node(id).ty.dtype)];
  const out = params.output(seg.node);
  const rotate = seg.rotation ? rotation(params, seg, rowShape, out) : null;
  const input = (acc: (w: number) => string, o: string) => (i: number) => (i < W ? acc(i) : extras[i - W]!(o));
  const index = (row: string, col: string) => lang.letIndex("o", `${row} * ${lit(N)} + ${col}`);
  return {
    store: (row, col, acc, helpers) => [index(row, col), ...programLines(lang, seg.epilogue, input(acc, "o"), types, ([v]) => [out.store("o", v!)], helpers)],
    storePair: (row, col, acc0, acc1, helpers) => [
      index(row, col),
      lang.letIndex("o1", `o + ${lit(1)}`),
      lang.declare("y0", "f32"),
      lang.declare("y1", "f32"),
      ...statementBlock(lang, seg.epilogue, input(acc0, "o"), types, ["y0"], helpers),
      ...statementBlock(lang, seg.epilogue, input(acc1, "o1"), types, ["y1"], helpers),
      ...rotate!(row, col, helpers),
    ],
  };
}

/** The pair (y0, y1) at outputs o, o1 = (row, col), (row, col + 1) rotated by the (cos, sin) of the
 *  segment's rotation program, and stored. */
function rotation(params: KernelParams, seg: LinearSegment, rowShape: readonly Dim[], out: TensorOutput) {
  const { ctx, lang } = params;
  const lit = lang.indexLiteral;
  const rot = seg.rotation!;
  const half = rot.headDim / 2;
  const angleShape = [...rowShape, constDim(half)];
  const angles = rot.inputs.map((id) => {
    const read = params.read(id);
    return read(offsetExpr("ri", angleShape, broadcastStrides(ctx.dims(id), angleShape), params.dim));
  });
  const types = rot.inputs.map((id) => ctx.node(id).ty.dtype);
  return (row: string, col: string, helpers: Set<string>): string[] => [
    lang.letIndex("ri", `${row} * ${lit(half)} + (${col} % ${lit(rot.headDim)}) / ${lit(2)}`),
    lang.declare("cs", "f32"),
    lang.declare("sn", "f32"),
    ...statementBlock(lang, rot.program, (i) => angles[i]!, types, ["cs", "sn"], helpers),
    out.store("o", "y0 * cs - y1 * sn"),
    out.store("o1", "y0 * sn + y1 * cs"),
  ];
}

/** A segment's stored output rotated in place (after a kernel that stored it unrotated): the pair at
 *  (row, col), (row, col + 1), col even. Binds only the output and the rotation's inputs. */
export function rotateStored(params: KernelParams, seg: LinearSegment, rowShape: readonly Dim[], row: string, col: string, helpers: Set<string>): string[] {
  const { ctx, lang } = params;
  const lit = lang.indexLiteral;
  const N = ctx.shape(seg.weights[0]!)[0]!;
  const out = params.output(seg.node);
  return [
    lang.letIndex("o", `${row} * ${lit(N)} + ${col}`),
    lang.letIndex("o1", `o + ${lit(1)}`),
    lang.let("y0", "f32", out.load("o")),
    lang.let("y1", "f32", out.load("o1")),
    ...rotation(params, seg, rowShape, out)(row, col, helpers),
  ];
}

// Target-independent geometry of the layout and matmul kernels: what the WGSL and CUDA emitters
// compute the same way before each writes its own bindings and syntax. Sizes are dims (constants or
// polynomials of P).

import { mulDim, type Dim } from "../../base/symbolic.js";
import type { PlanContext } from "./context.js";
import { broadcastStrides, dimProduct, offsetExpr } from "./indexing.js";
import type { Extent, KernelParams } from "./params.js";

/** A possibly negative axis attribute as an index into a shape of `rank` dims. */
export const axisOf = (attr: unknown, rank: number) => ((attr as number) < 0 ? (attr as number) + rank : (attr as number));

/** a [.., M, K] @ b [.., K, N] with broadcast batch dims: sizes, batch shape and per-batch strides.
 *  An operand the plan reads transposed (Dispatch.transposed) is stored [.., K, M] (a) or [.., N, K] (b). */
export function matmulGeometry(ctx: PlanContext) {
  const d = ctx.dispatch;
  const [a, b] = d.inputs as [number, number];
  const [ta, tb] = [d.transposed?.a ?? false, d.transposed?.b ?? false];
  const as = ctx.dims(a);
  const bs = ctx.dims(b);
  const outShape = ctx.dims(d.node);
  const M = as[as.length - (ta ? 1 : 2)]!;
  const K = as[as.length - (ta ? 2 : 1)]!;
  const N = bs[bs.length - (tb ? 2 : 1)]!;
  const batch = outShape.slice(0, -2);
  return {
    a, b, ta, tb, as, bs, outShape, M, K, N, batch,
    aStrides: broadcastStrides(as.slice(0, -2), batch).map((s) => mulDim(s, mulDim(M, K))),
    bStrides: broadcastStrides(bs.slice(0, -2), batch).map((s) => mulDim(s, mulDim(K, N))),
    count: dimProduct(outShape),
  };
}

/** The batched product as a body run for each output element `i` below `count` (a [.., M, K] row
 *  times b [.., K, N] column, f32 accumulation in k order). */
export function matmulOf(params: KernelParams): { what: string; count: Extent; body: string[] } {
  const { ctx, lang } = params;
  const g = matmulGeometry(ctx);
  const { a, b, ta, tb, M, K, N, batch, aStrides, bStrides, count } = g;
  const u = params.dim;
  const [ra, rb] = [params.read(a), params.read(b)];
  const body = [
    lang.letIndex("col", `i % ${u(N)}`),
    lang.letIndex("row", `(i / ${u(N)}) % ${u(M)}`),
    lang.letIndex("batch", `i / ${u(mulDim(M, N))}`),
    lang.letIndex("ab", `${offsetExpr("batch", batch, aStrides, u)} + ${ta ? "row" : `row * ${u(K)}`}`),
    lang.letIndex("bb", `${offsetExpr("batch", batch, bStrides, u)} + ${tb ? `col * ${u(K)}` : "col"}`),
    lang.var("acc", "f32", lang.literal(0, "f32")),
    lang.loopOpen("kk", u(K)),
    `  ${lang.assign("acc", `acc + ${ra(ta ? `ab + kk * ${u(M)}` : "ab + kk")} * ${rb(tb ? "bb + kk" : `bb + kk * ${u(N)}`)}`)}`,
    "}",
    params.output(ctx.dispatch.node).store("i", "acc"),
  ];
  return { what: matmulWhat(g, u), count: params.extent(count), body };
}

/** A matmul kernel's one-line description (its comment): the product and which operands are
 *  stored transposed; `u` renders a dim in the kernel's language. */
export function matmulWhat(g: Pick<ReturnType<typeof matmulGeometry>, "M" | "K" | "N" | "ta" | "tb">, u: (d: Dim) => string): string {
  const stored = (t: boolean) => (t ? " (stored transposed)" : "");
  return `batched a [.., ${u(g.M)}, ${u(g.K)}]${stored(g.ta)} @ b [.., ${u(g.K)}, ${u(g.N)}]${stored(g.tb)}`;
}

/** cross_entropy_rows(logits [T, V], targets) and its gradient (… , dy): which one, the operands, the
 *  row dim and the vocabulary (a constant). `target` names the backend in the error for other dtypes. */
export function crossEntropyGeometry(ctx: PlanContext, target: string) {
  const n = ctx.outputNode;
  const grad = n.op === "cross_entropy_rows_grad";
  if (!grad && n.op !== "cross_entropy_rows") throw new Error(`internal: ${ctx.label()}: ${n.op} is not a cross-entropy op`);
  const [logits, targets, dy] = ctx.dispatch.inputs as [number, number, number?];
  const dtype = ctx.node(logits).ty.dtype;
  if (dtype !== "f32") throw new Error(`${ctx.label()}: the ${target} cross-entropy kernels take f32 logits, got ${dtype}`);
  const [tDim, vDim] = ctx.dims(logits) as [Dim, Dim];
  return { n, grad, logits, targets, dy, tDim, V: ctx.constant(vDim) };
}

/** concat(a, c) along an axis: element i of the output is at (outer o, index along axis, inner j). */
export function concatGeometry(ctx: PlanContext) {
  const [a, c] = ctx.dispatch.inputs as [number, number];
  const as = ctx.dims(a);
  const cs = ctx.dims(c);
  const axis = axisOf(ctx.outputNode.attrs["axis"], as.length);
  const na: Dim = as[axis]!;
  const nc: Dim = cs[axis]!;
  return { a, c, axis, inner: dimProduct(as.slice(axis + 1)), na, nc };
}

// Target-independent geometry of the layout and matmul kernels: what the WGSL and CUDA emitters
// compute the same way before each writes its own bindings and syntax.

import type { PlanContext } from "./context.js";
import { broadcastStrides, product } from "./indexing.js";

/** A possibly negative axis attribute as an index into a shape of `rank` dims. */
export const axisOf = (attr: unknown, rank: number) => ((attr as number) < 0 ? (attr as number) + rank : (attr as number));

/** a [.., M, K] @ b [.., K, N] with broadcast batch dims: sizes, batch shape and per-batch strides. */
export function matmulGeometry(ctx: PlanContext) {
  const d = ctx.dispatch;
  const [a, b] = d.inputs as [number, number];
  const as = ctx.shape(a);
  const bs = ctx.shape(b);
  const outShape = ctx.shape(d.node);
  const M = as[as.length - 2]!;
  const K = as[as.length - 1]!;
  const N = bs[bs.length - 1]!;
  const batch = outShape.slice(0, -2);
  return {
    a, b, as, bs, outShape, M, K, N, batch,
    aStrides: broadcastStrides(as.slice(0, -2), batch).map((s) => s * M * K),
    bStrides: broadcastStrides(bs.slice(0, -2), batch).map((s) => s * K * N),
    count: product(outShape),
  };
}

/** concat(a, c) along an axis: element i of the output is at (outer o, index along axis, inner j). */
export function concatGeometry(ctx: PlanContext) {
  const [a, c] = ctx.dispatch.inputs as [number, number];
  const as = ctx.shape(a);
  const cs = ctx.shape(c);
  const axis = axisOf(ctx.outputNode.attrs["axis"], as.length);
  const na = as[axis]!;
  const nc = cs[axis]!;
  return { a, c, axis, inner: product(as.slice(axis + 1)), na, nc, len: na + nc };
}

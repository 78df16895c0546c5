// The bodies of elementwise kernels, for every target: the dispatch's program over its inputs
// broadcast to the output, at output element `i`, and rotary embedding at pair `i` (the target's
// template runs a body for each `i` below `count`).

import { constDim, mulDim, type Dim } from "../../base/symbolic.js";
import { constOf } from "./context.js";
import { renderExpr } from "./expr.js";
import { broadcastStrides, dimProduct, offsetExpr } from "./indexing.js";
import type { Extent, KernelParams } from "./params.js";

export function elementwiseBody(params: KernelParams): { count: Extent; helpers: string[]; body: string[] } {
  const { ctx } = params;
  const d = ctx.dispatch;
  const outShape = ctx.dims(d.node);
  const access = d.inputs.map((id) => params.read(id)(offsetExpr("i", outShape, broadcastStrides(ctx.dims(id), outShape), params.dim)));
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const r = renderExpr(d.program!, params.lang, (i) => access[i]!, undefined, types, () => params.past());
  return { count: params.extent(dimProduct(outShape)), helpers: r.helpers, body: [...r.pre, ...r.body, params.output(d.node).store("i", r.outputs[0]!)] };
}

/** rotary(x [T, H, D], cos, sin [T, D/2]): pair `i` of x (elements 2i, 2i + 1) rotated by the
 *  angle of its token and index in the head. T and H may depend on P. */
export function rotaryBody(params: KernelParams): { what: string; count: Extent; body: string[] } {
  const { ctx, lang } = params;
  const d = ctx.dispatch;
  const [x, cos, sin] = d.inputs as [number, number, number];
  const [T, H, D] = ctx.dims(x) as [Dim, Dim, Dim];
  const half = constDim(constOf(D)! / 2);
  const u = params.dim;
  const rx = params.read(x);
  const out = params.output(d.node);
  const [even, odd] = [`${lang.indexLiteral(2)} * i`, `${lang.indexLiteral(2)} * i + ${lang.indexLiteral(1)}`];
  const body = [
    lang.letIndex("j", `i % ${u(half)}`),
    lang.letIndex("t", `i / ${u(mulDim(half, H))}`),
    lang.let("c", "f32", params.read(cos)(`t * ${u(half)} + j`)),
    lang.let("s", "f32", params.read(sin)(`t * ${u(half)} + j`)),
    lang.let("x0", "f32", rx(even)),
    lang.let("x1", "f32", rx(odd)),
    out.store(even, "x0 * c - x1 * s"),
    out.store(odd, "x0 * s + x1 * c"),
  ];
  return { what: `rotate adjacent pairs of x [${u(T)}, ${u(H)}, ${u(D)}] by the angles of cos/sin [${u(T)}, ${u(half)}]`, count: params.extent(dimProduct([T, H, half])), body };
}

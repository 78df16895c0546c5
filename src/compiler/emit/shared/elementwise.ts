// The body of an elementwise kernel, for every target: the dispatch's program over its inputs
// broadcast to the output, at output element `i` (the target's template runs it for each `i`).

import { renderExpr } from "./expr.js";
import { broadcastStrides, offsetExpr, product } from "./indexing.js";
import type { KernelParams } from "./params.js";

export function elementwiseBody(params: KernelParams): { count: number; helpers: string[]; body: string[] } {
  const { ctx, lang } = params;
  const d = ctx.dispatch;
  const outShape = ctx.shape(d.node);
  const access = d.inputs.map((id) => params.read(id)(offsetExpr("i", outShape, broadcastStrides(ctx.shape(id), outShape), lang.indexLiteral)));
  const types = d.inputs.map((id) => ctx.node(id).ty.dtype);
  const r = renderExpr(d.program!, lang, (i) => access[i]!, undefined, types);
  return { count: product(outShape), helpers: r.helpers, body: [...r.pre, ...r.body, params.output(d.node).store("i", r.outputs[0]!)] };
}

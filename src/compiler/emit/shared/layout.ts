// The layout ops the plan could not turn into views, as copies, for every target: output element `i`
// from wherever it is in the input(s) (the target's template runs the body for each `i` below
// `count`). Sizes, strides and slice starts may depend on P.

import { addDim, mulDim, type Dim } from "../../base/symbolic.js";
import { axisOf, concatGeometry } from "./geometry.js";
import { dimProduct, offsetExpr, stridesOf } from "./indexing.js";
import type { Extent, KernelParams } from "./params.js";

export interface Copy {
  /** What it copies, for the kernel's comment. */
  what: string;
  count: Extent;
  body: string[];
}

export function copyOf(params: KernelParams): Copy {
  const { ctx } = params;
  switch (ctx.dispatch.kernel) {
    case "transpose": return transpose(params);
    case "slice": return slice(params);
    case "concat": return concat(params);
    default: throw new Error(`internal: ${ctx.label()} is not a copy`);
  }
}

function transpose(params: KernelParams): Copy {
  const { ctx } = params;
  const x = ctx.dispatch.inputs[0]!;
  const perm = ctx.outputNode.attrs["perm"] as number[];
  const s = stridesOf(ctx.dims(x));
  const outShape = ctx.dims(ctx.dispatch.node);
  const from = params.read(x)(offsetExpr("i", outShape, perm.map((p) => s[p]!), params.dim));
  return { what: `transpose [${perm.join(", ")}]`, count: params.extent(dimProduct(outShape)), body: [params.output(ctx.dispatch.node).store("i", from)] };
}

function slice(params: KernelParams): Copy {
  const { ctx } = params;
  const x = ctx.dispatch.inputs[0]!;
  const shape = ctx.dims(x);
  const axis = axisOf(ctx.outputNode.attrs["axis"], shape.length);
  const start = ctx.outputNode.attrs["start"] as Dim;
  const s = stridesOf(shape);
  const outShape = ctx.dims(ctx.dispatch.node);
  const from = params.read(x)(offsetExpr("i", outShape, s, params.dim, mulDim(start, s[axis]!)));
  return { what: `slice of axis ${axis}`, count: params.extent(dimProduct(outShape)), body: [params.output(ctx.dispatch.node).store("i", from)] };
}

function concat(params: KernelParams): Copy {
  const { ctx, lang } = params;
  const { a, c, axis, inner, na, nc } = concatGeometry(ctx);
  const len = addDim(na, nc);
  const u = params.dim;
  const [ra, rc] = [params.read(a), params.read(c)];
  const out = params.output(ctx.dispatch.node);
  const body = [
    lang.letIndex("o", `i / ${u(mulDim(len, inner))}`),
    lang.letIndex("a", `(i / ${u(inner)}) % ${u(len)}`),
    lang.letIndex("j", `i % ${u(inner)}`),
    `if (a < ${u(na)}) {`,
    `  ${out.store("i", ra(`o * ${u(mulDim(na, inner))} + a * ${u(inner)} + j`))}`,
    "} else {",
    `  ${out.store("i", rc(`o * ${u(mulDim(nc, inner))} + (a - ${u(na)}) * ${u(inner)} + j`))}`,
    "}",
  ];
  return { what: `concat along axis ${axis}`, count: params.extent(dimProduct(ctx.dims(ctx.dispatch.node))), body };
}

// The layout ops the plan could not turn into views, as copies, for every target: output element `i`
// from wherever it is in the input(s) (the target's template runs the body for each `i`).

import type { Dim } from "../../base/symbolic.js";
import { constOf } from "./context.js";
import { axisOf, concatGeometry } from "./geometry.js";
import { offsetExpr, product, stridesOf } from "./indexing.js";
import type { KernelParams } from "./params.js";

export interface Copy {
  /** What it copies, for the kernel's comment. */
  what: string;
  count: number;
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
  const { ctx, lang } = params;
  const x = ctx.dispatch.inputs[0]!;
  const perm = ctx.outputNode.attrs["perm"] as number[];
  const s = stridesOf(ctx.shape(x));
  const outShape = ctx.shape(ctx.dispatch.node);
  const from = params.read(x)(offsetExpr("i", outShape, perm.map((p) => s[p]!), lang.indexLiteral));
  return { what: `transpose [${perm.join(", ")}]`, count: product(outShape), body: [params.output(ctx.dispatch.node).store("i", from)] };
}

function slice(params: KernelParams): Copy {
  const { ctx, lang } = params;
  const x = ctx.dispatch.inputs[0]!;
  const shape = ctx.shape(x);
  const axis = axisOf(ctx.outputNode.attrs["axis"], shape.length);
  const start = constOf(ctx.outputNode.attrs["start"] as Dim);
  if (start === null) throw new Error(`internal: ${ctx.label()}: slice start depends on P`);
  const s = stridesOf(shape);
  const outShape = ctx.shape(ctx.dispatch.node);
  const from = params.read(x)(offsetExpr("i", outShape, s, lang.indexLiteral, start * s[axis]!));
  return { what: `slice of axis ${axis}`, count: product(outShape), body: [params.output(ctx.dispatch.node).store("i", from)] };
}

function concat(params: KernelParams): Copy {
  const { ctx, lang } = params;
  const { a, c, axis, inner, na, nc, len } = concatGeometry(ctx);
  const u = lang.indexLiteral;
  const [ra, rc] = [params.read(a), params.read(c)];
  const out = params.output(ctx.dispatch.node);
  const body = [
    lang.letIndex("o", `i / ${u(len * inner)}`),
    lang.letIndex("a", `(i / ${u(inner)}) % ${u(len)}`),
    lang.letIndex("j", `i % ${u(inner)}`),
    `if (a < ${u(na)}) {`,
    `  ${out.store("i", ra(`o * ${u(na * inner)} + a * ${u(inner)} + j`))}`,
    "} else {",
    `  ${out.store("i", rc(`o * ${u(nc * inner)} + (a - ${u(na)}) * ${u(inner)} + j`))}`,
    "}",
  ];
  return { what: `concat along axis ${axis}`, count: product(ctx.shape(ctx.dispatch.node)), body };
}

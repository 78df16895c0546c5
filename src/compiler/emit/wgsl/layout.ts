// Data movement: gather (embedding lookup) and the layout ops the plan could not turn into views —
// transposes, slices that are not contiguous, concatenation — as strided copies.

import type { DispatchContext } from "./context.js";
import { axisOf, concatGeometry } from "../shared/geometry.js";
import type { Dim } from "../../base/symbolic.js";
import { constOf, plus, product } from "./context.js";
import { BindingSet, grid, headerContext, offsetExpr, renderTemplate, stridesOf, type WgslKernel } from "./kernel.js";
import { storageType, u32Literal } from "./lang.js";
import { packedReader } from "./packed.js";
import type { WgslTuning } from "./tuning.js";

export function emitGather(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const [table, ids] = d.inputs as [number, number];
  const [V, D] = ctx.shape(table) as [number, number];
  const nIds = product(ctx.shape(ids));
  const [tp, ip, op] = [ctx.placement(table), ctx.placement(ids), ctx.placement(d.node)];
  const dtype = ctx.node(table).ty.dtype;
  const vec = dtype === "f32" && D % 4 === 0 && tp.offset % 4 === 0 && op.offset % 4 === 0 ? 4 : 1;
  const elem = vec === 4 ? "vec4<f32>" : storageType(dtype);
  const b = new BindingSet();
  // A packed table (an embedding stored as f16 or q8_0/q4_0 blocks; packed.ts) is dequantized per element.
  const format = ctx.plan.buffers[tp.buffer]?.format;
  const helpers = new Set<string>();
  const width = D / vec;
  let load: string;
  let tb: string;
  if (format) {
    if (tp.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed table must start its buffer`);
    tb = b.storage(tp, "read", "u32");
    load = packedReader(format, tb, V, D, vec, helpers).load(`id * ${u32Literal(D)}`, "c");
  } else {
    tb = b.storage(tp, "read", elem);
    load = `${tb}[${plus(tp.offset / vec)}id * ${u32Literal(width)} + c]`;
  }
  const ib = b.storage(ip, "read", "i32");
  const out = b.storage(op, "read_write", elem);
  const count = nIds * width;
  const g = grid(count, tuning.workgroupSize);
  const code = renderTemplate("gather", {
    ...headerContext("gather", b, [...helpers]),
    load,
    rows: V,
    width,
    vec,
    ids: nIds,
    count,
    maxId: V - 1,
    idBuf: ib,
    table: tb,
    out,
    idOffset: plus(ip.offset),
    tableOffset: plus(tp.offset / vec),
    outOffset: plus(op.offset / vec),
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

function copyKernel(ctx: DispatchContext, tuning: WgslTuning, b: BindingSet, what: string, count: number, body: string[]): WgslKernel {
  const g = grid(count, tuning.workgroupSize);
  const code = renderTemplate("copy", {
    ...headerContext(ctx.dispatch.kernel, b),
    what,
    count,
    body,
    workgroupSize: tuning.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}


export function emitTranspose(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const perm = ctx.outputNode.attrs["perm"] as number[];
  const s = stridesOf(ctx.shape(x));
  const outShape = ctx.shape(d.node);
  const elem = storageType(ctx.outputNode.ty.dtype);
  const b = new BindingSet();
  const xp = ctx.placement(x);
  const src = b.storage(xp, "read", elem);
  const out = b.storage(ctx.placement(d.node), "read_write", elem);
  const from = offsetExpr("i", outShape, perm.map((p) => s[p]!), xp.offset);
  return copyKernel(ctx, tuning, b, `transpose [${perm.join(", ")}]`, product(outShape), [`${out}[${plus(ctx.placement(d.node).offset)}i] = ${src}[${from}];`]);
}

export function emitSlice(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const shape = ctx.shape(x);
  const axis = axisOf(ctx.outputNode.attrs["axis"], shape.length);
  const startValue = constOf(ctx.outputNode.attrs["start"] as Dim);
  if (startValue === null) throw new Error(`internal: ${ctx.label()}: slice start depends on P`);
  const s = stridesOf(shape);
  const outShape = ctx.shape(d.node);
  const elem = storageType(ctx.outputNode.ty.dtype);
  const b = new BindingSet();
  const xp = ctx.placement(x);
  const src = b.storage(xp, "read", elem);
  const out = b.storage(ctx.placement(d.node), "read_write", elem);
  const from = offsetExpr("i", outShape, s, xp.offset + startValue * s[axis]!);
  return copyKernel(ctx, tuning, b, `slice of axis ${axis}`, product(outShape), [`${out}[${plus(ctx.placement(d.node).offset)}i] = ${src}[${from}];`]);
}

export function emitConcat(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const { a, c, axis, inner, na, nc, len } = concatGeometry(ctx);
  const elem = storageType(ctx.outputNode.ty.dtype);
  const b = new BindingSet();
  const [ap, cp, op] = [ctx.placement(a), ctx.placement(c), ctx.placement(d.node)];
  const an = b.storage(ap, "read", elem);
  const cn = b.storage(cp, "read", elem);
  const out = b.storage(op, "read_write", elem);
  const u = u32Literal;
  const body = [
    `let o = i / ${u(len * inner)};`,
    `let a = (i / ${u(inner)}) % ${u(len)};`,
    `let j = i % ${u(inner)};`,
    `if (a < ${u(na)}) {`,
    `  ${out}[${plus(op.offset)}i] = ${an}[${plus(ap.offset)}o * ${u(na * inner)} + a * ${u(inner)} + j];`,
    `} else {`,
    `  ${out}[${plus(op.offset)}i] = ${cn}[${plus(cp.offset)}o * ${u(nc * inner)} + (a - ${u(na)}) * ${u(inner)} + j];`,
    `}`,
  ];
  return copyKernel(ctx, tuning, b, `concat along axis ${axis}`, product(ctx.shape(d.node)), body);
}

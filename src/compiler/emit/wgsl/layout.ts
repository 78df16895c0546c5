// Data movement: gather (embedding lookup) and the layout ops the plan could not turn into views —
// transposes, slices that are not contiguous, concatenation — as strided copies; and the batched
// matmul and rotary embedding, which also run a shared body per output element (or pair).

import { constDim, mulDim } from "../../base/symbolic.js";
import { rotaryBody } from "../shared/elementwise.js";
import { matmulOf } from "../shared/geometry.js";
import { dimProduct } from "../shared/indexing.js";
import { copyOf } from "../shared/layout.js";
import type { Extent } from "../shared/params.js";
import type { DispatchContext } from "./context.js";
import { plus } from "./context.js";
import { BindingSet, grid, headerContext, renderTemplate, type WgslKernel } from "./kernel.js";
import { storageType, u32Literal } from "./lang.js";
import { packedReader } from "./packed.js";
import type { WgslTuning } from "./tuning.js";

export function emitGather(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const [table, ids] = d.inputs as [number, number];
  const [V, D] = ctx.shape(table) as [number, number];
  const nIds = dimProduct(ctx.dims(ids));
  const [tp, ip, op] = [ctx.placement(table), ctx.placement(ids), ctx.placement(d.node)];
  const dtype = ctx.node(table).ty.dtype;
  const vec = dtype === "f32" && D % 4 === 0 && tp.offset % 4 === 0 && op.offset % 4 === 0 ? 4 : 1;
  const elem = vec === 4 ? "vec4<f32>" : storageType(dtype);
  const b = new BindingSet(ctx);
  // A packed table (an embedding stored as f16 or q8_0/q4_0 blocks; packed.ts) is dequantized per element.
  const format = ctx.plan.buffers[tp.buffer]?.format;
  const helpers = new Set<string>();
  const width = D / vec;
  let load: string;
  let tb: string;
  if (format && format !== "f32") {
    if (tp.offset !== 0) throw new Error(`internal: ${ctx.label()}: a packed table must start its buffer`);
    tb = b.storage(tp, "read", "u32");
    load = packedReader(format, tb, V, D, vec, helpers).load(`id * ${u32Literal(D)}`, "c");
  } else {
    tb = b.storage(tp, "read", elem);
    load = `${tb}[${plus(tp.offset / vec)}id * ${u32Literal(width)} + c]`;
  }
  const ib = b.storage(ip, "read", "i32");
  const out = b.storage(op, "write", elem);
  const count = b.extent(mulDim(nIds, constDim(width)));
  const g = grid(count.max, tuning.workgroupSize);
  const code = renderTemplate("gather", {
    ...headerContext("gather", b, [...helpers]),
    load,
    rows: V,
    width,
    vec,
    ids: b.dim(nIds),
    count: count.code,
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

/** transpose, slice and concat: a copy (emit/shared/layout.ts), one element per invocation. */
export function emitCopy(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return perElement(ctx, copyOf, tuning.workgroupSize);
}

/** The batched matmul (emit/shared/geometry.ts), one output element per invocation. */
export function emitMatmul(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return perElement(ctx, matmulOf, tuning.matmul.workgroupSize);
}

/** Rotary embedding (emit/shared/elementwise.ts), one pair per invocation. */
export function emitRotary(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  return perElement(ctx, rotaryBody, tuning.workgroupSize);
}

/** A kernel running a shared body for each element `i` below its count, one per invocation
 *  (codegen-templates/wgsl/element.hbs). */
function perElement(ctx: DispatchContext, of: (b: BindingSet) => { what: string; count: Extent; body: string[] }, workgroupSize: number): WgslKernel {
  const b = new BindingSet(ctx);
  const { what, count, body } = of(b);
  const g = grid(count.max, workgroupSize);
  const code = renderTemplate("element", {
    ...headerContext(ctx.dispatch.kernel, b),
    what,
    count: count.code,
    body,
    workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

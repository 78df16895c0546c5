// Data movement: gather (embedding lookup, dequantising the table's storage format), rotary
// embedding, appending to the KV cache, and the layout ops the plan could not turn into views —
// transposes, slices that are not contiguous, concatenation — as strided copies.

import type { Dim } from "../../base/symbolic.js";
import type { DispatchContext } from "./context.js";
import { axisOf, concatGeometry } from "../shared/geometry.js";
import { constOf } from "./context.js";
import type { Emitted } from "./elementwise.js";
import { single } from "./elementwise.js";
import { checkIndexRange, makeKernel, offsetExpr, ParamSet, product, strideGrid, stridesOf } from "./kernel.js";
import { intLiteral, storageType } from "./lang.js";
import { deviceLayout } from "../../target/storage.js";

function grid(ctx: DispatchContext, count: number): [number, number, number] {
  const t = ctx.tuning.elementwise;
  checkIndexRange(count + t.block * t.maxBlocks, ctx.label());
  return strideGrid(count, t.block, t.maxBlocks);
}

export function emitGather(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const [table, ids] = d.inputs as [number, number];
  const [V, D] = ctx.shape(table) as [number, number];
  const nIds = product(ctx.shape(ids));
  const count = nIds * D;
  checkIndexRange(V * D, `${ctx.label()}'s table`);
  const format = ctx.format(table);
  const params = new ParamSet();
  const ta = ctx.arg(table);
  const ia = ctx.arg(ids);
  const idBuf = params.pointer(ia.buffer, ia.offsetBytes, "int", "read");
  const dtype = ctx.node(table).ty.dtype;
  const load: string[] = [];
  let out: string;
  const outArg = () => {
    const oa = ctx.arg(d.node);
    return params.pointer(oa.buffer, oa.offsetBytes, storageType(dtype), "write");
  };
  switch (format) {
    case "f32": {
      const tb = params.pointer(ta.buffer, ta.offsetBytes, storageType(dtype), "read");
      out = outArg();
      load.push(`${out}[i] = ${tb}[id * ${D} + c];`);
      break;
    }
    case "f16":
    case "bf16": {
      const tb = params.pointer(ta.buffer, 0, "unsigned short", "read");
      out = outArg();
      load.push(`${out}[i] = ${format === "f16" ? "llmc_f16" : "llmc_bf16"}(${tb}[id * ${D} + c]);`);
      break;
    }
    case "q8_0":
    case "q4_0": {
      const layout = deviceLayout(format, [V, D]);
      const q = params.pointer(ta.buffer, 0, format === "q8_0" ? "signed char" : "unsigned char", "read");
      const s = params.pointer(ta.buffer, layout.scaleOffset, "unsigned short", "read");
      out = outArg();
      load.push(`const float d = llmc_f16(${s}[id * ${D / 32} + (c >> 5)]);`);
      if (format === "q8_0") load.push(`${out}[i] = (float)${q}[id * ${D} + c] * d;`);
      else load.push(`${out}[i] = (float)((int)((${q}[id * ${D / 2} + (c >> 5) * 16 + (c & 15)] >> ((c & 16) >> 2)) & 15u) - 8) * d;`);
      break;
    }
  }
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel("gather", "gather", params, [], {
    rows: V, width: D, format, ids: nIds, count: intLiteral(count), maxId: V - 1, idBuf, load, block: t.block,
  });
  return single(ctx, kernel, params, grid(ctx, count), t.block);
}

function copyKernel(ctx: DispatchContext, params: ParamSet, what: string, count: number, body: string[]): Emitted {
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel(ctx.dispatch.kernel, "copy", params, [], { what, count: intLiteral(count), body, block: t.block });
  return single(ctx, kernel, params, grid(ctx, count), t.block);
}


function io(ctx: DispatchContext, params: ParamSet, src: number): { from: string; to: string } {
  const elem = storageType(ctx.outputNode.ty.dtype);
  const a = ctx.arg(src);
  const from = params.pointer(a.buffer, a.offsetBytes, elem, "read");
  const o = ctx.arg(ctx.dispatch.node);
  return { from, to: params.pointer(o.buffer, o.offsetBytes, elem, "write") };
}

export function emitTranspose(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const perm = ctx.outputNode.attrs["perm"] as number[];
  const s = stridesOf(ctx.shape(x));
  const outShape = ctx.shape(d.node);
  const params = new ParamSet();
  const { from, to } = io(ctx, params, x);
  return copyKernel(ctx, params, `transpose [${perm.join(", ")}]`, product(outShape), [`${to}[i] = ${from}[${offsetExpr("i", outShape, perm.map((p) => s[p]!))}];`]);
}

export function emitSlice(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const shape = ctx.shape(x);
  const axis = axisOf(ctx.outputNode.attrs["axis"], shape.length);
  const start = constOf(ctx.outputNode.attrs["start"] as Dim);
  if (start === null) throw new Error(`internal: ${ctx.label()}: slice start depends on P`);
  const s = stridesOf(shape);
  const outShape = ctx.shape(d.node);
  const params = new ParamSet();
  const { from, to } = io(ctx, params, x);
  const base = start * s[axis]!;
  const off = offsetExpr("i", outShape, s);
  return copyKernel(ctx, params, `slice of axis ${axis}`, product(outShape), [`${to}[i] = ${from}[${base === 0 ? off : `${intLiteral(base)} + ${off}`}];`]);
}

export function emitConcat(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const { a, c, axis, inner, na, nc, len } = concatGeometry(ctx);
  const params = new ParamSet();
  const elem = storageType(ctx.outputNode.ty.dtype);
  const aa = ctx.arg(a);
  const ca = ctx.arg(c);
  const an = params.pointer(aa.buffer, aa.offsetBytes, elem, "read");
  const cn = params.pointer(ca.buffer, ca.offsetBytes, elem, "read");
  const oa = ctx.arg(d.node);
  const out = params.pointer(oa.buffer, oa.offsetBytes, elem, "write");
  const u = intLiteral;
  const body = [
    `const int o = i / ${u(len * inner)};`,
    `const int a = (i / ${u(inner)}) % ${u(len)};`,
    `const int j = i % ${u(inner)};`,
    `${out}[i] = a < ${u(na)} ? ${an}[o * ${u(na * inner)} + a * ${u(inner)} + j] : ${cn}[o * ${u(nc * inner)} + (a - ${u(na)}) * ${u(inner)} + j];`,
  ];
  return copyKernel(ctx, params, `concat along axis ${axis}`, product(ctx.shape(d.node)), body);
}

export function emitRotary(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const [x, cos, sin] = d.inputs as [number, number, number];
  const [T, H, D] = ctx.shape(x) as [number, number, number];
  const half = D / 2;
  const params = new ParamSet();
  const ptr = (id: number, access: "read" | "write") => {
    const a = ctx.arg(id);
    return params.pointer(a.buffer, a.offsetBytes, "float", access);
  };
  const xb = ptr(x, "read");
  const cb = ptr(cos, "read");
  const sb = ptr(sin, "read");
  const out = ptr(d.node, "write");
  const pairs = T * H * half;
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel("rotary", "rotary", params, [], { t: T, heads: H, dim: D, half, pairs: intLiteral(pairs), x: xb, cos: cb, sin: sb, out, block: t.block });
  return single(ctx, kernel, params, grid(ctx, pairs), t.block);
}

export function emitKvAppend(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const [T, H, D] = ctx.shape(x) as [number, number, number];
  const row = H * D;
  const params = new ParamSet();
  const xa = ctx.arg(x);
  const xb = params.pointer(xa.buffer, xa.offsetBytes, "float", "read");
  const ca = ctx.arg(d.node);
  const cache = params.pointer(ca.buffer, ca.offsetBytes, "float", "write");
  const step = params.pointer(ctx.env.paramsBuffer, 0, "int", "read");
  const count = T * row;
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel("kv_append", "kv_append", params, [], { t: T, row, count: intLiteral(count), x: xb, cache, step, block: t.block });
  return single(ctx, kernel, params, grid(ctx, count), t.block);
}

// Data movement: gather (embedding lookup, dequantising the table's storage format), rotary
// embedding, appending to the KV cache, and the layout ops the plan could not turn into views —
// transposes, slices that are not contiguous, concatenation — as strided copies; and the batched
// matmul, which like the copies and rotary runs a shared body per output element.

import { constDim, mulDim } from "../../base/symbolic.js";
import { rotaryBody } from "../shared/elementwise.js";
import { matmulGeometry, matmulOf, matmulWhat } from "../shared/geometry.js";
import { dimProduct, offsetExpr } from "../shared/indexing.js";
import { copyOf } from "../shared/layout.js";
import type { DispatchContext } from "./context.js";
import { perElement, single, type Emitted } from "./elementwise.js";
import { checkIndexRange, makeKernel, ParamSet, strideGrid } from "./kernel.js";
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
  checkIndexRange(V * D, `${ctx.label()}'s table`);
  const format = ctx.format(table);
  const params = new ParamSet(ctx);
  const nIds = dimProduct(ctx.dims(ids));
  const count = params.extent(mulDim(nIds, constDim(D)));
  const ta = ctx.arg(table);
  const ia = ctx.arg(ids);
  const idBuf = params.buffer(ia.buffer, ia.offsetBytes, "int", "read");
  const dtype = ctx.node(table).ty.dtype;
  const load: string[] = [];
  let out: string;
  const outArg = () => {
    const oa = ctx.arg(d.node);
    return params.buffer(oa.buffer, oa.offsetBytes, storageType(dtype), "write");
  };
  switch (format) {
    case "f32": {
      const tb = params.buffer(ta.buffer, ta.offsetBytes, storageType(dtype), "read");
      out = outArg();
      load.push(`${out}[i] = ${tb}[id * ${D} + c];`);
      break;
    }
    case "f16":
    case "bf16": {
      const tb = params.buffer(ta.buffer, 0, "unsigned short", "read");
      out = outArg();
      load.push(`${out}[i] = ${format === "f16" ? "llmc_f16" : "llmc_bf16"}(${tb}[id * ${D} + c]);`);
      break;
    }
    case "q8_0":
    case "q4_0": {
      const layout = deviceLayout(format, [V, D]);
      const q = params.buffer(ta.buffer, 0, format === "q8_0" ? "signed char" : "unsigned char", "read");
      const s = params.buffer(ta.buffer, layout.scaleOffset, "unsigned short", "read");
      out = outArg();
      load.push(`const float d = llmc_f16(${s}[id * ${D / 32} + (c >> 5)]);`);
      if (format === "q8_0") load.push(`${out}[i] = (float)${q}[id * ${D} + c] * d;`);
      else load.push(`${out}[i] = (float)((int)((${q}[id * ${D / 2} + (c >> 5) * 16 + (c & 15)] >> ((c & 16) >> 2)) & 15u) - 8) * d;`);
      break;
    }
  }
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel("gather", "gather", params, [], {
    rows: V, width: D, format, ids: params.dim(nIds), count: count.code, maxId: V - 1, idBuf, load, block: t.block,
  });
  return single(ctx, kernel, params, grid(ctx, count.max), t.block);
}

/** transpose, slice and concat: a copy (emit/shared/layout.ts), one element per thread of a grid-stride loop. */
export function emitCopy(ctx: DispatchContext): Emitted {
  return perElement(ctx, copyOf);
}

/** The batched matmul (emit/shared/geometry.ts): shared-memory tiles on the SIMT cores in f32
 *  (codegen-templates/cuda/matmul_simt.hbs, the simt tile of the tuning profile), one block per
 *  output tile and batch; operands the plan reads transposed are loaded along their stored rows.
 *  One output element per thread where the batches or column tiles exceed a grid dimension. */
export function emitMatmul(ctx: DispatchContext): Emitted {
  const g = matmulGeometry(ctx);
  const t = ctx.tuning.simt;
  const [bm, bn] = [t.threadsM * t.tm, t.threadsN * t.tn];
  const grid: [number, number, number] = [Math.ceil(ctx.atMax(g.M) / bm), Math.ceil(ctx.atMax(g.N) / bn), ctx.atMax(dimProduct(g.batch))];
  if (grid[1] > MAX_GRID_YZ || grid[2] > MAX_GRID_YZ || grid.some((x) => x === 0)) return perElement(ctx, matmulOf);
  for (const id of [g.a, g.b, ctx.dispatch.node]) checkIndexRange(ctx.atMax(dimProduct(ctx.dims(id))), `${ctx.label()}'s tensor %${id}`);
  const params = new ParamSet(ctx);
  const u = params.dim;
  const [ra, rb] = [params.read(g.a), params.read(g.b)];
  const out = params.output(ctx.dispatch.node);
  const block = t.threadsM * t.threadsN;
  const kernel = makeKernel("matmul", "matmul_simt", params, [], {
    what: matmulWhat(g, u),
    m: u(g.M),
    n: u(g.N),
    k: u(g.K),
    batches: u(dimProduct(g.batch)),
    aBatch: offsetExpr("batch", g.batch, g.aStrides, u),
    bBatch: offsetExpr("batch", g.batch, g.bStrides, u),
    aT: g.ta,
    bT: g.tb,
    aLoad: ra(g.ta ? "ab + (long long)gk * M + gm" : "ab + (long long)gm * K + gk"),
    bLoad: rb(g.tb ? "bb + (long long)gn * K + gk" : "bb + (long long)gk * N + gn"),
    store: out.store("(long long)batch * M * N + (long long)gm * N + gn", "acc[i][j]"),
    ...t,
    bm,
    bn,
    block,
  });
  return single(ctx, kernel, params, grid, block);
}

/** CUDA's limit on gridDim.y and gridDim.z. */
const MAX_GRID_YZ = 65535;

/** Rotary embedding (emit/shared/elementwise.ts), one pair per thread. */
export function emitRotary(ctx: DispatchContext): Emitted {
  return perElement(ctx, rotaryBody);
}

export function emitKvAppend(ctx: DispatchContext): Emitted {
  const d = ctx.dispatch;
  const x = d.inputs[0]!;
  const [T, H, D] = ctx.shape(x) as [number, number, number];
  const row = H * D;
  const params = new ParamSet(ctx);
  const xa = ctx.arg(x);
  const xb = params.buffer(xa.buffer, xa.offsetBytes, "float", "read");
  const ca = ctx.arg(d.node);
  const cache = params.buffer(ca.buffer, ca.offsetBytes, "float", "write");
  params.past();
  const count = T * row;
  const t = ctx.tuning.elementwise;
  const kernel = makeKernel("kv_append", "kv_append", params, [], { t: T, row, count: intLiteral(count), x: xb, cache, block: t.block });
  return single(ctx, kernel, params, grid(ctx, count), t.block);
}

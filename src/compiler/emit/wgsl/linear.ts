// Matrix products. `linear` is the hot path of every layer: x [.., M, K] times weights W [N, K]
// (PyTorch/GGUF layout, so each output reads one contiguous weight row), several weights at once
// (gate and up), then an epilogue program (bias, activation, residual). Decode (M = 1) is a
// matrix-vector product: each invocation computes `rowsPerInvocation` outputs with vec4 loads.
// Prefill tiles M as well, in registers (no workgroup barriers, which CPU adapters pay dearly for).
// `matmul` is the general batched product for everything else.

import { renderExpr } from "../shared/expr.js";
import type { DispatchContext } from "./context.js";
import { plus, product } from "./context.js";
import { BindingSet, broadcastStrides, grid, headerContext, offsetExpr, renderTemplate, type WgslKernel } from "./kernel.js";
import { loadAs, storageType, storeAs, u32Literal, wgsl } from "./lang.js";
import type { WgslTuning } from "./tuning.js";

export function emitLinear(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const w = d.weights ?? 1;
  const program = d.program!;
  if (program.nodes.some((n) => n.kind === "reduce")) throw new Error(`internal: ${ctx.label()}: a linear epilogue cannot reduce`);
  const [x, ...rest] = d.inputs;
  const weights = rest.slice(0, w);
  const extras = rest.slice(w);
  const xShape = ctx.shape(x!);
  const K = xShape[xShape.length - 1]!;
  const M = product(xShape) / K;
  const N = ctx.shape(weights[0]!)[0]!;
  const outShape = ctx.shape(d.node);
  const xp = ctx.placement(x!);
  const wps = weights.map((id) => ctx.placement(id));
  const vec = K % 4 === 0 && xp.offset % 4 === 0 && wps.every((p) => p.offset % 4 === 0) ? 4 : 1;
  const elem = vec === 4 ? "vec4<f32>" : "f32";
  const kSteps = K / vec;
  const R = Math.max(1, Math.min(tuning.linear.rowsPerInvocation, N));
  const C = M > 1 ? Math.max(1, Math.min(tuning.linear.tileM, M)) : 1;
  const nTiles = Math.ceil(N / R);
  const tiles = nTiles * Math.ceil(M / C);

  const b = new BindingSet();
  const xb = b.storage(xp, "read", elem);
  const wbs = wps.map((p) => b.storage(p, "read", elem));
  const extraTypes = extras.map((id) => ctx.node(id).ty.dtype);
  const extraAccess = extras.map((id, i) => {
    const p = ctx.placement(id);
    const name = b.storage(p, "read", storageType(extraTypes[i]!));
    return (o: string) => loadAs(extraTypes[i]!, `${name}[${offsetExpr(o, outShape, broadcastStrides(ctx.shape(id), outShape), p.offset)}]`);
  });
  const outType = ctx.output.ty.dtype;
  const out = b.storage(ctx.placement(d.node), "read_write", storageType(outType));
  const outBase = ctx.placement(d.node).offset;

  const dot = (a: string, c: string) => (vec === 4 ? `dot(${a}, ${c})` : `${a} * ${c}`);
  const declare: string[] = [];
  const loop: string[] = [];
  const store: string[] = [];
  const helpers = new Set<string>();
  for (let c = 0; c < C; c++) declare.push(`let xr${c} = ${plus(xp.offset / vec)}min(m0 + ${c}u, ${u32Literal(M - 1)}) * ${u32Literal(kSteps)};`);
  weights.forEach((_, wi) => {
    for (let r = 0; r < R; r++) declare.push(`let wr${wi}_${r} = ${plus(wps[wi]!.offset / vec)}min(n0 + ${r}u, ${u32Literal(N - 1)}) * ${u32Literal(kSteps)};`);
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) declare.push(`var acc${wi}_${c}_${r}: f32 = 0.0f;`);
  });
  for (let c = 0; c < C; c++) loop.push(`let x${c} = ${xb}[xr${c} + k];`);
  weights.forEach((_, wi) => {
    for (let r = 0; r < R; r++) {
      loop.push(`let w${wi}_${r} = ${wbs[wi]}[wr${wi}_${r} + k];`);
      for (let c = 0; c < C; c++) loop.push(`acc${wi}_${c}_${r} = acc${wi}_${c}_${r} + ${dot(`x${c}`, `w${wi}_${r}`)};`);
    }
  });
  const types = [...weights.map(() => "f32" as const), ...extraTypes];
  for (let c = 0; c < C; c++) {
    for (let r = 0; r < R; r++) {
      const e = renderExpr(program, wgsl, (i) => (i < w ? `acc${i}_${c}_${r}` : extraAccess[i - w]!("o")), undefined, types);
      e.helpers.forEach((h) => helpers.add(h));
      // Tiles past the end of M or N (when they do not divide evenly) compute clamped rows: skip their stores.
      const guard = [M % C ? `m0 + ${c}u < ${u32Literal(M)}` : "", N % R ? `n0 + ${r}u < ${u32Literal(N)}` : ""].filter(Boolean).join(" && ");
      store.push(guard ? `if (${guard}) {` : "{");
      store.push(`  let o = (m0 + ${c}u) * ${u32Literal(N)} + n0 + ${r}u;`);
      for (const l of [...e.pre, ...e.body]) store.push("  " + l);
      store.push(`  ${out}[${plus(outBase)}o] = ${storeAs(outType, e.outputs[0]!)};`);
      store.push("}");
    }
  }
  const g = grid(tiles, tuning.linear.workgroupSize);
  const code = renderTemplate("linear", {
    ...headerContext("linear", b, [...helpers]),
    m: M,
    n: N,
    k: K,
    weights: w,
    vec,
    rows: R,
    cols: C,
    tiles,
    nTiles,
    kSteps,
    workgroupSize: tuning.linear.workgroupSize,
    rowStride: g.rowStride,
    declare,
    loop,
    store,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

/** a [.., M, K] @ b [.., K, N] with broadcast batch dims. */
export function emitMatmul(ctx: DispatchContext, tuning: WgslTuning): WgslKernel {
  const d = ctx.dispatch;
  const [a, bm] = d.inputs as [number, number];
  const as = ctx.shape(a);
  const bs = ctx.shape(bm);
  const outShape = ctx.shape(d.node);
  const M = as[as.length - 2]!;
  const K = as[as.length - 1]!;
  const N = bs[bs.length - 1]!;
  const batch = outShape.slice(0, -2);
  const aStrides = broadcastStrides(as.slice(0, -2), batch).map((s) => s * M * K);
  const bStrides = broadcastStrides(bs.slice(0, -2), batch).map((s) => s * K * N);
  const b = new BindingSet();
  const ap = ctx.placement(a);
  const bp = ctx.placement(bm);
  const an = b.storage(ap, "read", "f32");
  const bn = b.storage(bp, "read", "f32");
  const out = b.storage(ctx.placement(d.node), "read_write", "f32");
  const count = product(outShape);
  const g = grid(count, tuning.matmul.workgroupSize);
  const code = renderTemplate("matmul", {
    ...headerContext("matmul", b),
    m: M,
    n: N,
    k: K,
    mn: M * N,
    count,
    a: an,
    b: bn,
    out,
    aBase: offsetExpr("batch", batch, aStrides, ap.offset),
    bBase: offsetExpr("batch", batch, bStrides, bp.offset),
    outOffset: plus(ctx.placement(d.node).offset),
    workgroupSize: tuning.matmul.workgroupSize,
    rowStride: g.rowStride,
  });
  return { label: ctx.label(), code, bindings: b.bindings(), workgroups: g.workgroups };
}

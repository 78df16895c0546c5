// CUDA emission: the step plans of a decode step (T = 1) and of a prefill chunk → one CUDA module
// (kernels.cu) and, per tuning profile, the launch schedule of each step. The target layer
// (target/cuda.ts) decides the plans, the weights' dtypes and the KV rows; each dispatch becomes
// one or two launches of kernels rendered from codegen-templates/cuda.

import { dimSymbols, type Dim } from "../../base/symbolic.js";
import { nodeMap, type Graph } from "../../ir/graph.js";
import { dispatchOutputs, type KernelKind, type PlanBuffer, type StepPlan } from "../../plan/plan.js";
import type { DType } from "../../ops/table.js";
import { kernelFamilies } from "../shared/families.js";
import { checkGenerated, renderTemplate, type BufferArg, type CudaKernel, type CudaLaunch } from "./kernel.js";
import { emitAttention } from "./attention.js";
import { emitAttentionGrad } from "./attention-grad.js";
import { emitGatherGrad } from "./gather-grad.js";
import { emitCrossEntropy } from "./cross-entropy.js";
import type { DeviceWeight } from "../../target/program.js";
import type { StorageDType } from "../../target/storage.js";
import { DispatchContext, ELEMENT_BYTES, type EmitEnv } from "./context.js";
import { emitElementwise, emitReduce, type Emitted } from "./elementwise.js";
import { emitCopy, emitGather, emitKvAppend, emitMatmul, emitRotary } from "./layout.js";
import { emitLinear } from "./linear.js";
import { archName, tuningFor, type ComputeCapability, type CudaTuning } from "./tuning.js";

export type { CudaKernel, CudaLaunch, BufferArg } from "./kernel.js";
export { CUDA_PROFILES, archName, parseArch, tuningFor, type ComputeCapability, type CudaTuning } from "./tuning.js";

const families = kernelFamilies<(ctx: DispatchContext) => Emitted>({
  elementwise: emitElementwise,
  reduce: emitReduce,
  linear: emitLinear,
  matmul: emitMatmul,
  gather: emitGather,
  rotary: emitRotary,
  attention: emitAttention,
  attention_grad: emitAttentionGrad,
  gather_grad: emitGatherGrad,
  cross_entropy: emitCrossEntropy,
  kv_append: emitKvAppend,
  copy: emitCopy,
});

/** A buffer of a CUDA step: the plan's buffers plus the step parameters and scratch space. */
export interface CudaBuffer {
  id: number;
  kind: PlanBuffer["kind"] | "params" | "scratch";
  bytes: number;
  holds: string;
  /** literal: contents. */
  data?: PlanBuffer["data"];
  kv?: PlanBuffer["kv"];
  /** weight: its device dtype and the tensor's shape. */
  format?: StorageDType;
  shape?: number[];
}

export interface CudaStepPlan {
  profile: string;
  /** Tokens per step. */
  T: number;
  plan: StepPlan;
  buffers: CudaBuffer[];
  /** The int32 [P] parameter block every P-dependent kernel reads. */
  paramsBuffer: number;
  launches: CudaLaunch[];
  /** Where the graph's outputs are (the first is the logits), their shapes (P symbolic) and types;
   *  `perToken`: the leading dim counts this step's tokens. */
  outputs: CudaOutput[];
}

export interface CudaOutput {
  node: number;
  buffer: number;
  offsetBytes: number;
  shape: Dim[];
  dtype: DType;
  perToken: boolean;
}

export interface CudaModule {
  /** kernels.cu */
  source: string;
  kernels: CudaKernel[];
  profiles: { arch: string; profile: string; tuning: CudaTuning }[];
  weights: DeviceWeight[];
  prefillChunk: number;
  /** Short prompt tails may be padded to a whole chunk (see above). */
  paddingSafe: boolean;
  /** KV cache rows allocated per layer (max_seq_len + chunk − 1). */
  kvRows: number;
  maxSeqLen: number;
  steps: CudaStepPlan[];
}

export interface CudaEmitOptions {
  /** Target GPUs; each gets the tuning profile of its compute capability. */
  archs: ComputeCapability[];
  /** The decode plan, then the prefill chunk's plan (when chunks are longer than one token). */
  plans: StepPlan[];
  weights: DeviceWeight[];
  maxSeqLen: number;
  /** KV cache rows allocated per layer (max_seq_len + chunk − 1). */
  kvRows: number;
  /** Run f32-weight prefill on tensor cores (f16-rounded operands) instead of exact f32. */
  f32TensorCores: boolean;
}

export class CudaEmitError extends Error {
  override name = "CudaEmitError";
}

/** Kernels whose semantics never mix tokens, so padded tokens cannot reach real ones. */
const TOKEN_LOCAL: ReadonlySet<KernelKind> = new Set(["elementwise", "fused", "linear", "fused_linear", "gather", "rotary", "attention", "kv_append"]);

function isPaddingSafe(graph: Graph, plan: StepPlan): boolean {
  const generic = nodeMap(graph);
  for (const n of graph.nodes) {
    // T (this step's tokens) may only be the leading dim.
    if (n.ty.shape.slice(1).some((d) => dimSymbols(d).includes("T"))) return false;
    if (n.op === "attention" && n.attrs["causal"] !== true) return false;
    // A padded step's T is the chunk's, not the real token count.
    if (n.op === "dim_value" && dimSymbols(n.attrs["value"] as Dim).includes("T")) return false;
  }
  const specialised = nodeMap(plan.graph);
  const overPast = (id: number) => specialised.get(id)!.ty.shape.some((dim) => dimSymbols(dim).includes("P"));
  for (const d of plan.dispatches) {
    const g = generic.get(d.node);
    const tDependent = g ? g.ty.shape.some((dim) => dimSymbols(dim).length > 0) : true;
    if (!TOKEN_LOCAL.has(d.kernel) && tDependent) return false;
    // Beyond the cache's own kernels, a kernel over the positions so far would read the padded
    // tokens' rows, and its buffers are sized for P + chunk ≤ max_seq_len, which padding passes.
    if (d.kernel !== "attention" && d.kernel !== "kv_append" && [...d.inputs, ...dispatchOutputs(d)].some(overPast)) return false;
  }
  return true;
}

function emitStep(graph: Graph, plan: StepPlan, tuning: CudaTuning, weights: ReadonlyMap<string, DeviceWeight>, kvRows: number, f32TensorCores: boolean): { step: CudaStepPlan; kernels: CudaKernel[] } {
  const buffers: CudaBuffer[] = plan.buffers.map((b) => {
    const out: CudaBuffer = { id: b.id, kind: b.kind, bytes: b.bytes, holds: b.holds };
    if (b.data) out.data = b.data;
    if (b.kv) out.kv = b.kv;
    if (b.kind === "weight") {
      const w = weights.get(b.holds);
      if (!w) throw new Error(`internal: no format for weight '${b.holds}'`);
      Object.assign(out, { format: w.dtype, shape: w.shape, bytes: w.layout.bytes });
    }
    if (b.kind === "kv") {
      const spec = graph.states.get(b.kv!.state)!;
      out.bytes = kvRows * spec.heads * spec.headDim * ELEMENT_BYTES;
    }
    return out;
  });
  const paramsBuffer = buffers.length;
  buffers.push({ id: paramsBuffer, kind: "params", bytes: 16, holds: "step parameters" });
  const scratchBuffer = buffers.length;
  buffers.push({ id: scratchBuffer, kind: "scratch", bytes: 16, holds: "scratch" });
  const env: EmitEnv = {
    plan,
    tuning,
    weightFormat: (id) => buffers[id]!.format ?? "f32",
    paramsBuffer,
    scratch(bytes) {
      const b = buffers[scratchBuffer]!;
      b.bytes = Math.max(b.bytes, Math.ceil(bytes / 256) * 256);
      return { buffer: scratchBuffer, offsetBytes: 0 };
    },
    f32TensorCores,
  };
  const kernels: CudaKernel[] = [];
  const launches: CudaLaunch[] = [];
  for (const d of plan.dispatches) {
    let e: Emitted;
    try {
      e = families[d.kernel](new DispatchContext(env, d));
    } catch (err) {
      throw new CudaEmitError(`the ${d.kernel} kernel of %${d.node} (${plan.graph.nodes.find((n) => n.id === d.node)?.op}, T = ${plan.T}): ${(err as Error).message}`);
    }
    kernels.push(...e.kernels);
    launches.push(...e.launches);
  }
  const generic = nodeMap(graph);
  const specialised = nodeMap(plan.graph);
  const outputs = plan.outputs.map((id): CudaOutput => {
    const n = specialised.get(id)!;
    const p = plan.placement.get(id)!;
    const lead = generic.get(id)?.ty.shape[0];
    return { node: id, buffer: p.buffer, offsetBytes: p.offset * ELEMENT_BYTES, shape: n.ty.shape, dtype: n.ty.dtype, perToken: lead !== undefined && dimSymbols(lead).includes("T") };
  });
  return {
    step: { profile: tuning.profile, T: plan.T, plan, buffers, paramsBuffer, launches, outputs },
    kernels,
  };
}

/** The module source: the prelude, then each helper and kernel once. */
export function moduleSource(kernels: readonly CudaKernel[], profiles: readonly string[]): string {
  const helpers: string[] = [];
  for (const k of kernels) for (const h of k.helpers) if (!helpers.includes(h)) helpers.push(h);
  const prelude = renderTemplate("_prelude", { profiles: profiles.join(", ") });
  checkGenerated(prelude, "prelude");
  return [prelude.trimEnd(), ...helpers, ...kernels.map((k) => k.code.trimEnd())].join("\n\n") + "\n";
}

export function emitCudaModule(graph: Graph, opts: CudaEmitOptions): CudaModule {
  if (opts.archs.length === 0) throw new CudaEmitError("no CUDA architecture to compile for");
  const [, prefillPlan] = opts.plans;
  const byName = new Map(opts.weights.map((w) => [w.name, w]));
  const profiles: CudaModule["profiles"] = [];
  const seen = new Set<string>();
  const kernels = new Map<string, CudaKernel>();
  const steps: CudaStepPlan[] = [];
  for (const arch of opts.archs) {
    const tuning = tuningFor(arch);
    profiles.push({ arch: archName(arch), profile: tuning.profile, tuning });
    if (seen.has(tuning.profile)) continue;
    seen.add(tuning.profile);
    for (const plan of opts.plans) {
      const e = emitStep(graph, plan, tuning, byName, opts.kvRows, opts.f32TensorCores);
      steps.push(e.step);
      for (const k of e.kernels) if (!kernels.has(k.name)) kernels.set(k.name, k);
    }
  }
  const list = [...kernels.values()];
  return {
    source: moduleSource(list, [...seen]),
    kernels: list,
    profiles,
    weights: opts.weights,
    prefillChunk: prefillPlan?.T ?? 1,
    paddingSafe: prefillPlan ? isPaddingSafe(graph, prefillPlan) : false,
    kvRows: opts.kvRows,
    maxSeqLen: opts.maxSeqLen,
    steps,
  };
}

/** The module restricted to one profile's kernels (what a runtime on one GPU needs). */
export function stepsFor(module: CudaModule, profile: string): { decode: CudaStepPlan; prefill: CudaStepPlan | null } {
  const mine = module.steps.filter((s) => s.profile === profile);
  const decode = mine.find((s) => s.T === 1);
  if (!decode) throw new CudaEmitError(`the module has no kernels for tuning profile ${profile} (it has ${[...new Set(module.steps.map((s) => s.profile))].join(", ")})`);
  return { decode, prefill: mine.find((s) => s.T > 1) ?? null };
}

// The WGSL target: a graph, the adapter's profile (kernel shapes and limits) and the weights' policy
// → the program a WebGPU runtime executes: the weights on the device, and per step shape (T) the
// plan, its kernels (source, bindings, workgroups) in launch order, and what the runtime checks;
// and how many tokens one step may take on this adapter (`prefillChunk`: a longer prompt runs as
// steps of that many, since activations such as the logits grow with T and must each fit one binding).
// `llmc compile --target wgsl` writes exactly this (wgslProgramFiles); the WebGPU executor runs it.

import type { Graph } from "../ir/graph.js";
import { maxSeqLenOf } from "../ir/graph.js";
import { emitPlan, CPU_TUNING, GPU_TUNING, NO_FEATURES, type WgslFeatures, type WgslKernel, type WgslTuning } from "../emit/wgsl/index.js";
import { ARGMAX_OUTPUT, greedyOutput, withArgmaxOutput } from "../passes/argmax.js";
import { buildStepPlan } from "../plan/build.js";
import { planToJson } from "../plan/json.js";
import type { PlanBuffer, StepPlan } from "../plan/plan.js";
import {
  checkPackedReads, deviceWeights, onlyForOutput, onlyForOutputs, packedWeights, splitWeights, TargetError, tokenTables,
  type DeviceWeight, type WeightPolicy,
} from "./program.js";

export { NO_FEATURES, PARAMS_BYTES, type KernelBinding, type WgslFeatures, type WgslKernel, type WgslTuning } from "../emit/wgsl/index.js";

/** The device limits a WGSL program is planned for (WebGPU's names). */
export interface WgslLimits {
  maxStorageBuffersPerShaderStage: number;
  maxStorageBufferBindingSize?: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeInvocationsPerWorkgroup: number;
}

/** Kernel shapes and limits of one adapter. */
export interface WgslProfile {
  /** "llvmpipe" (any CPU rasteriser) or "gpu". */
  name: "llvmpipe" | "gpu";
  tuning: WgslTuning;
  /** Storage buffers one kernel may bind (merged linears stay within it). */
  maxStorageBuffers: number;
  /** The largest buffer a kernel may bind; absent when planning for no device in particular
   *  (`llmc compile`), where nothing is refused for its size. Weights larger than this are split
   *  into row ranges, one binding each. */
  maxStorageBufferBindingSize?: number;
  /** Optional features the device was created with (subgroups, shader-f16). */
  features: WgslFeatures;
}

/** The limits `llmc compile --target wgsl --tuning NAME` plans for: llvmpipe's (16 storage buffers per
 *  stage) and WebGPU's defaults, which every GPU adapter supports. */
export const NOMINAL_LIMITS: Record<WgslProfile["name"], WgslLimits> = {
  llvmpipe: { maxStorageBuffersPerShaderStage: 16, maxComputeWorkgroupSizeX: 1024, maxComputeInvocationsPerWorkgroup: 1024 },
  gpu: { maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupSizeX: 256, maxComputeInvocationsPerWorkgroup: 256 },
};

/** The profile of an adapter: CPU rasterisers get CPU kernel shapes (several rows per invocation,
 *  small workgroups, no barriers), GPUs GPU shapes, with workgroups clamped to the limits; a tuning
 *  given explicitly is used as it is. On a GPU whose subgroups are never smaller than 32 lanes
 *  (NVIDIA's warps), a linear tile takes one subgroup, so one subgroupAdd replaces the tree. */
export function wgslProfile(software: boolean, limits: WgslLimits, opts: { maxStorageBuffers?: number; tuning?: WgslTuning; features?: WgslFeatures } = {}): WgslProfile {
  const base = software ? CPU_TUNING : GPU_TUNING;
  const features = opts.features ?? NO_FEATURES;
  const cap = (n: number) => Math.max(1, Math.min(n, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup));
  const pow2 = (n: number) => 2 ** Math.floor(Math.log2(n));
  let lanes = base.linear.lanes > 1 ? pow2(cap(base.linear.lanes)) : 1;
  if (lanes > 1 && features.subgroups && features.subgroupMinSize >= 32) lanes = pow2(Math.min(lanes, features.subgroupMinSize));
  const tuning: WgslTuning = opts.tuning ?? {
    ...base,
    workgroupSize: cap(base.workgroupSize),
    reduceWorkgroupSize: cap(base.reduceWorkgroupSize),
    linear: { ...base.linear, workgroupSize: lanes > 1 ? lanes : cap(base.linear.workgroupSize), lanes },
    matmul: { ...base.matmul, workgroupSize: cap(base.matmul.workgroupSize) },
    attention: { ...base.attention, workgroupSize: cap(base.attention.workgroupSize), decodeLanes: cap(base.attention.decodeLanes) },
  };
  return {
    name: software ? "llvmpipe" : "gpu",
    tuning,
    maxStorageBuffers: Math.min(opts.maxStorageBuffers ?? Infinity, limits.maxStorageBuffersPerShaderStage),
    ...(limits.maxStorageBufferBindingSize !== undefined ? { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize } : {}),
    features,
  };
}

/** One step shape of a WGSL program. */
export interface WgslStep {
  T: number;
  plan: StepPlan;
  /** One per dispatch of the plan, in launch order. */
  kernels: WgslKernel[];
  /** Kernels only the greedy token needs: launched only when the step reads it. */
  greedyOnly: boolean[];
  /** Kernels that only compute outputs: a step that reads nothing back (a prefill chunk before the
   *  last) skips them. */
  outputsOnly: boolean[];
}

export interface WgslProgram {
  readonly target: "wgsl";
  /** The graph run: the one given, with the greedy token (passes/argmax.ts) as an output where the
   *  graph's output is logits. */
  readonly graph: Graph;
  /** Output index of the greedy token; null when the graph's output is not logits. */
  readonly greedy: number | null;
  readonly maxSeqLen: number;
  readonly profile: WgslProfile;
  readonly weights: readonly DeviceWeight[];
  /** Vocabulary sizes of the gathers indexed by token ids. */
  readonly tokenTables: readonly number[];
  /** The most tokens one step takes: the largest T up to the cap asked for (default
   *  DEFAULT_PREFILL_CHUNK) whose buffers each fit the profile's maxStorageBufferBindingSize; at
   *  least 1 (decided on first use). */
  readonly prefillChunk: number;
  /** The step of T tokens (compiled on first use, then the same object). */
  step(T: number): WgslStep;
}

/** Literals of up to this many elements are WGSL constants in the kernels that read them, not
 *  bindings (RoPE's frequency table: at most 128 for head_dim 256). */
const INLINE_LITERALS = 256;

/** Tokens per prefill step where the device allows them. */
export const DEFAULT_PREFILL_CHUNK = 256;

export interface WgslTargetOptions extends WeightPolicy {
  profile: WgslProfile;
  /** The most tokens one step takes (default DEFAULT_PREFILL_CHUNK); fewer where buffers would not fit. */
  prefillChunk?: number;
  /** The graph inputs the runtime provides (default: tokens and pos; a training step adds targets). */
  inputs?: readonly string[];
  /** Upload weights scaled by the norm gains that multiply them (default true). A training graph
   *  needs each weight as it is: its gradient is of the weight, and the weights change every step. */
  foldGains?: boolean;
  /** Split matrices larger than the profile's maxStorageBufferBindingSize into row ranges
   *  (`DeviceWeight.parts`; default false): only for a runtime that uploads each part as a buffer. */
  splitWeights?: boolean;
}

const INFERENCE_INPUTS = ["tokens", "pos"] as const;

/** A buffer of a step is larger than the device can bind: the model, its context or the step is too
 *  large for this adapter (the runtime says what to do). */
export class BindingSizeError extends TargetError {
  override name = "BindingSizeError";

  constructor(
    readonly buffer: PlanBuffer,
    readonly limit: number,
  ) {
    super(`${describeBuffer(buffer)} takes ${buffer.bytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes`);
  }
}

export function compileWgsl(graph: Graph, opts: WgslTargetOptions): WgslProgram {
  const g = withArgmaxOutput(graph);
  const greedy = greedyOutput(g);
  const profile = opts.profile;
  const foldGains = opts.foldGains ?? true;
  const inputs = opts.inputs ?? INFERENCE_INPUTS;
  const weights = deviceWeights(g, opts, { foldGains });
  const limit = profile.maxStorageBufferBindingSize ?? Infinity;
  if (opts.splitWeights) splitWeights(g, weights, limit);
  const weightFormats = packedWeights(weights);
  const weightParts = new Map(weights.filter((w) => w.parts).map((w) => [w.name, w.parts!]));
  const steps = new Map<number, WgslStep>();
  const planStep = (T: number) => buildStepPlan(g, { T, maxStorageBuffers: profile.maxStorageBuffers, mergeLinears: profile.tuning.linear.merge, foldGains, weightFormats, weightParts, inlineLiterals: INLINE_LITERALS, transposedMatmul: profile.tuning.matmul.readTransposed });
  const compileStep = (T: number): WgslStep => {
    const plan = planStep(T);
    checkPackedReads(plan);
    for (const i of plan.inputs) {
      if (!inputs.includes(i.name)) throw new TargetError(`the graph has an input '${i.name}' that the runtime does not provide (it provides ${inputs.join(", ")})`);
    }
    for (const b of plan.buffers) {
      if (b.bytes > limit && !b.parts) throw new BindingSizeError(b, limit);
    }
    const kernels = emitPlan(plan, profile.tuning, profile.features);
    for (const k of kernels) {
      const n = k.bindings.filter((b) => b.access !== "uniform").length;
      if (n > profile.maxStorageBuffers) throw new TargetError(`the ${k.label} kernel reads and writes ${n} buffers, more than this device's maxStorageBuffersPerShaderStage of ${profile.maxStorageBuffers}`);
    }
    const greedyOnly = greedy === null ? plan.dispatches.map(() => false) : onlyForOutput(plan, greedy);
    return { T, plan, kernels, greedyOnly, outputsOnly: onlyForOutputs(plan) };
  };
  const maxSeqLen = maxSeqLenOf(g);
  const cap = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  if (!Number.isInteger(cap) || cap < 1) throw new TargetError(`the prefill chunk must be a positive number of tokens, got ${cap}`);
  let prefillChunk: number | undefined;
  /** Activations and inputs grow with T, about linearly: shrink T in proportion until the largest fits. */
  const largestChunk = (): number => {
    if (limit === Infinity) return Math.min(cap, maxSeqLen);
    for (let T = Math.min(cap, maxSeqLen); ; ) {
      const largest = Math.max(...planStep(T).buffers.filter((b) => b.kind === "activation" || b.kind === "input").map((b) => b.bytes));
      if (largest <= limit || T === 1) return T;
      T = Math.max(1, Math.min(T - 1, Math.floor((T * limit) / largest)));
    }
  };
  return {
    target: "wgsl",
    graph: g,
    greedy,
    maxSeqLen,
    profile,
    weights,
    tokenTables: tokenTables(g),
    get prefillChunk() {
      return (prefillChunk ??= largestChunk());
    },
    step(T) {
      let s = steps.get(T);
      if (!s) steps.set(T, (s = compileStep(T)));
      return s;
    },
  };
}

export { ARGMAX_OUTPUT };

/** What a buffer holds, for messages. */
export function describeBuffer(b: PlanBuffer): string {
  if (b.kind === "weight") return `weight '${b.holds}'${b.format ? ` (${b.format})` : ""}`;
  switch (b.kind) {
    case "kv": return `the KV cache '${b.holds}' (max_seq_len × kv heads × head_dim × 4 bytes)`;
    case "activation": return `activation buffer ${b.holds}`;
    case "literal": return `constant ${b.holds}`;
    case "input": return `input '${b.holds}'`;
  }
}

/** The files `llmc compile --target wgsl -o DIR` writes for the named steps: each kernel as
 *  `<step>-NNN.wgsl` and plan.json with every step's plan and the weights' device dtypes. */
export function wgslProgramFiles(program: WgslProgram, steps: readonly (readonly [string, number])[]): Map<string, string> {
  const files = new Map<string, string>();
  const plans: string[] = [];
  for (const [name, T] of steps) {
    const s = program.step(T);
    s.kernels.forEach((k, i) => {
      const header = `// ${name} dispatch ${i}: ${k.label}; workgroups [${k.workgroups.join(", ")}]${s.greedyOnly[i] ? "; greedy decoding only" : ""}\n`;
      files.set(`${name}-${String(i).padStart(3, "0")}.wgsl`, header + k.code);
    });
    plans.push(`"${name}": ${planToJson(s.plan).trim()}`);
  }
  const weights = program.weights.map((w) => "    " + JSON.stringify({ name: w.name, shape: w.shape, dtype: w.dtype, bytes: w.layout.bytes, ...(w.parts ? { rows_per_binding: w.parts } : {}), ...(w.scale ? { scaled_by: w.scale.inputs } : {}), ...(w.demoted ? { kept_f32_because: w.demoted } : {}) }));
  const head = { format: "llmc-wgsl-program/1", profile: program.profile.name, tuning: program.profile.tuning, features: program.profile.features, max_storage_buffers: program.profile.maxStorageBuffers, max_seq_len: program.maxSeqLen };
  files.set("plan.json", `{\n${Object.entries(head).map(([k, v]) => `"${k}": ${JSON.stringify(v)},`).join("\n")}\n"weights": [\n${weights.join(",\n")}\n],\n${plans.join(",\n")}\n}\n`);
  return files;
}

// The step plan: for a graph specialised to one step shape (T known, P a runtime parameter), where
// every tensor lives (buffer + element offset) and which kernels run in which order. It is target
// neutral: the WGSL emitter (and later CUDA) turns each dispatch into a kernel; the runtime creates
// the buffers once and replays the dispatch list every step of that shape.

import type { Graph } from "../ir/graph.js";
import type { ExprProgram } from "../ops/expr.js";
import type { StorageDType } from "../target/storage.js";
import type { WeightScale } from "./fold.js";

/**
 * input       written by the runtime every step (`tokens`, `pos`)
 * weight      uploaded once, shared by every step shape
 * kv          the KV cache of one layer's keys or values, persistent across steps
 * literal     folded constants and host-evaluated sources, uploaded once per step shape
 * activation  intermediate values; reused by tensors whose lifetimes do not overlap
 */
export type BufferKind = "input" | "weight" | "kv" | "literal" | "activation";

export interface PlanBuffer {
  id: number;
  kind: BufferKind;
  /** Capacity in bytes (P-dependent tensors at the largest P), a multiple of 16. */
  bytes: number;
  /** What it holds: the input or weight name, `state.layer.k|v`, the literal's node, or `slot N`. */
  holds: string;
  /** kv: which cache. */
  kv?: { state: string; layer: number; which: "k" | "v" };
  /** literal: the contents, in storage form (bool as 0/1 u32). */
  data?: Float32Array | Int32Array | Uint32Array;
  /** literal: small enough that kernels of a target that can (WGSL) write it into their code as a
   *  constant array instead of binding it (PlanOptions.inlineLiterals); the buffer stays for the rest. */
  inline?: boolean;
  /** weight: stored scaled along its rows (rule `gain`, plan/fold.ts). */
  scale?: WeightScale;
  /** weight: how it is stored on the device when not f32 (read only as linear weights and gather
   *  tables; the layouts are in target/storage.ts). */
  format?: StorageDType;
  /** weight: rows of each part when the matrix is larger than one binding: each row range is a
   *  device buffer of its own (in the layout of its format), bound part by part by the linear and
   *  gather kernels. */
  parts?: readonly number[];
}

/** Where a tensor's first element is: a buffer and an offset in elements, plus P · perPast for a
 *  tensor written straight into the KV cache at the step's first position (rule `in-place`). */
export interface Placement {
  buffer: number;
  offset: number;
  perPast?: number;
}

export type KernelKind =
  | "elementwise" // one op of the table, constants inlined
  | "fused" // an expression program, with row reductions over the last axis
  | "reduce" // sum / mean / amax over any axis
  | "linear" // x @ Wᵢᵀ for weights W [N, K], then an epilogue program
  | "fused_linear" // linears sharing x (segments), with a prologue on x, rotations, in-place KV writes
  | "matmul" // batched a @ b
  | "gather"
  | "gather_grad" // an embedding's gradient: dy rows summed by id (training)
  | "rotary"
  | "attention"
  | "attention_grad" // attention_lse / attention_dq / attention_dk / attention_dv (training)
  | "cross_entropy" // cross_entropy_rows / cross_entropy_rows_grad (training)
  | "kv_append"
  | "transpose"
  | "slice"
  | "concat";

export interface Dispatch {
  index: number;
  kernel: KernelKind;
  /** The IR node it computes. */
  node: number;
  /** IR nodes it reads, in kernel order (linear: x, weights…, epilogue extras). */
  inputs: number[];
  /** elementwise / fused: program input i is inputs[i]. linear: the epilogue, whose inputs are the
   *  accumulators (one per weight) then the extras inputs[1 + weights …]. */
  program?: ExprProgram;
  /** linear: how many weights follow x in `inputs`. */
  weights?: number;
  /** linear and fused_linear: the whole kernel (for linear, the same as the fields above). */
  linear?: LinearKernel;
  /** linear and gather over a weight split into row ranges whose parts do not all fit one kernel's
   *  bindings: this dispatch reads parts [first, end) only, and computes the rows they hold (the
   *  next dispatches, the other parts). */
  parts?: [number, number];
  /** matmul: inputs read transposed in their last two dims (a stored [.., K, M], b [.., N, K]):
   *  the transposes around a product fold into how the kernel reads (rule `transposed-matmul`). */
  transposed?: { a: boolean; b: boolean };
}

/**
 * A linear kernel: x = prologue(sources) [.., M, K], then for each segment its weights' products
 * with x, its epilogue and rotation, written to its own output. The segments of one dispatch run
 * side by side: consecutive ranges of its workgroups compute consecutive segments.
 */
export interface LinearKernel {
  sources: number[];
  /** A row program over `sources` (the identity when x is read as it is). */
  prologue: ExprProgram;
  segments: LinearSegment[];
}

export interface LinearSegment {
  /** The node it computes. */
  node: number;
  weights: number[];
  /** Epilogue inputs after the accumulators. */
  extras: number[];
  epilogue: ExprProgram;
  /** RoPE: pairs of each head of `headDim` rotated by the (cos, sin) outputs of `program` over
   *  `inputs` broadcast to [.., M, headDim / 2]. */
  rotation?: { headDim: number; program: ExprProgram; inputs: number[] };
}

/** The nodes a dispatch writes. */
export function dispatchOutputs(d: Dispatch): number[] {
  return d.linear ? d.linear.segments.map((s) => s.node) : [d.node];
}

/** How a node without a dispatch of its own gets its value. */
export type NodeStorage =
  | "input"
  | "weight"
  | "literal"
  | "view" // the same bytes as another tensor (reshape, contiguous slice, trivial transpose, KV cache)
  | "inlined" // a scalar constant (or a dim's value, from P) written into the kernels that use it
  | "elided"; // a transpose read directly by the linear or matmul kernels that use it, or a matmul computed transposed

export interface StepPlan {
  model: string;
  /** Tokens this step. */
  T: number;
  /** Longest context (P + T) the plan is sized for. */
  maxSeqLen: number;
  /** The graph specialised for T; P stays symbolic. */
  graph: Graph;
  buffers: PlanBuffer[];
  placement: Map<number, Placement>;
  /** Nodes computed without a dispatch, and how. */
  storage: Map<number, NodeStorage>;
  dispatches: Dispatch[];
  /** Runtime inputs: their node and buffer. */
  inputs: { name: string; node: number; buffer: number }[];
  outputs: number[];
}

export class PlanError extends Error {
  override name = "PlanError";
}

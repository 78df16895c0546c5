// The CUDA target: a graph, the GPUs' compute capabilities and the weights' policy → the program a
// CUDA runtime executes: the weights on the device, one module (kernels.cu) and, per tuning
// profile, the buffers and launches of a decode step (T = 1) and of a prefill chunk.
// `llmc compile --target cuda` writes exactly this (cudaProgramFiles); the CUDA executor runs it.
//
// Prompts longer or shorter than the chunk run as whole chunks; a short last chunk is padded (the
// padded tokens sit after the real ones, so causal attention hides them from the real ones; their
// KV rows are overwritten by the next step). The KV cache therefore has room for max_seq_len +
// chunk − 1 rows. Models where padding is not safe (non-causal attention, ops across tokens) run
// the remainder as decode steps instead (`paddingSafe`).

import { formatShape } from "../base/symbolic.js";
import { maxSeqLenOf, type Graph } from "../ir/graph.js";
import { CudaEmitError, emitCudaModule, stepsFor, type ComputeCapability, type CudaModule, type CudaStepPlan } from "../emit/cuda/index.js";
import { buildStepPlan } from "../plan/build.js";
import { checkPackedReads, deviceWeights, packedWeights, tokenTables, type WeightPolicy } from "./program.js";

export {
  archName, CUDA_PROFILES, CudaEmitError, parseArch, stepsFor, tuningFor,
  type BufferArg, type ComputeCapability, type CudaBuffer, type CudaKernel, type CudaLaunch, type CudaModule, type CudaOutput, type CudaStepPlan, type CudaTuning,
} from "../emit/cuda/index.js";

/** CUDA kernels take any number of pointer parameters; this only bounds how many linears the plan
 *  merges into one dispatch. */
const MAX_KERNEL_BUFFERS = 64;

export interface CudaTargetOptions extends WeightPolicy {
  /** Target GPUs; each gets the tuning profile of its compute capability. */
  archs: ComputeCapability[];
  /** Tokens per prefill step (default min(128, max_seq_len)). */
  prefillChunk?: number;
  /** Run f32-weight prefill on tensor cores (f16-rounded operands) instead of exact f32. */
  f32TensorCores?: boolean;
  /** The graph inputs the runtime provides (default: tokens and pos; a training step adds targets).
   *  Norm gains are never folded into CUDA weights, so a training graph needs no other option. */
  inputs?: readonly string[];
}

const INFERENCE_INPUTS = ["tokens", "pos"] as const;

export interface CudaProgram {
  readonly target: "cuda";
  readonly graph: Graph;
  readonly maxSeqLen: number;
  readonly module: CudaModule;
  /** Vocabulary sizes of the gathers indexed by token ids. */
  readonly tokenTables: readonly number[];
  /** The steps of one tuning profile: decode (T = 1) and the prefill chunk, if any. */
  steps(profile: string): { decode: CudaStepPlan; prefill: CudaStepPlan | null };
}

export function compileCuda(graph: Graph, opts: CudaTargetOptions): CudaProgram {
  const maxSeqLen = maxSeqLenOf(graph);
  const chunk = opts.prefillChunk ?? Math.min(128, maxSeqLen);
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > maxSeqLen) throw new CudaEmitError(`the prefill chunk must be 1…${maxSeqLen} (max_seq_len) tokens, got ${chunk}`);
  const weights = deviceWeights(graph, opts, { foldGains: false });
  const weightFormats = packedWeights(weights);
  const plans = [1, ...(chunk > 1 ? [chunk] : [])].map((T) => buildStepPlan(graph, { T, maxStorageBuffers: MAX_KERNEL_BUFFERS, weightFormats }));
  const inputs = opts.inputs ?? INFERENCE_INPUTS;
  for (const p of plans) {
    checkPackedReads(p);
    for (const i of p.inputs) {
      if (!inputs.includes(i.name)) throw new CudaEmitError(`the graph has an input '${i.name}' that the runtime does not provide (it provides ${inputs.join(", ")})`);
    }
  }
  const module = emitCudaModule(graph, { archs: opts.archs, plans, weights, maxSeqLen, kvRows: maxSeqLen + chunk - 1, f32TensorCores: opts.f32TensorCores ?? false });
  return { target: "cuda", graph, maxSeqLen, module, tokenTables: tokenTables(graph), steps: (profile) => stepsFor(module, profile) };
}

const line = (o: unknown) => "    " + JSON.stringify(o);

function stepJson(s: CudaStepPlan): string {
  const nodes = new Map(s.plan.graph.nodes.map((n) => [n.id, n]));
  const head = {
    T: s.T,
    params_buffer: s.paramsBuffer,
    outputs: s.outputs.map((o) => ({ node: o.node, buffer: o.buffer, offset_bytes: o.offsetBytes, shape: formatShape(o.shape), dtype: o.dtype })),
  };
  const buffers = s.buffers.map((b) => ({ id: b.id, kind: b.kind, bytes: b.bytes, holds: b.holds, ...(b.format ? { format: b.format } : {}) }));
  const dispatches = s.plan.dispatches.map((d) => ({ index: d.index, kernel: d.kernel, node: d.node, op: nodes.get(d.node)!.op, shape: formatShape(nodes.get(d.node)!.ty.shape) }));
  const launches = s.launches.map((l) => ({ dispatch: l.dispatch, kernel: l.kernel, grid: l.grid, block: l.block, args: l.args.map((a) => [a.buffer, a.offsetBytes]) }));
  const section = (name: string, rows: unknown[]) => `   ${JSON.stringify(name)}: [\n${rows.map((r) => "  " + line(r)).join(",\n")}\n   ]`;
  return [
    "{",
    ...Object.entries(head).map(([k, v]) => `   ${JSON.stringify(k)}: ${JSON.stringify(v)},`),
    section("buffers", buffers) + ",",
    section("dispatches", dispatches) + ",",
    section("launches", launches),
    "  }",
  ].join("\n");
}

/** plan.json: deterministic for a given graph and options; names from the model only as JSON
 *  strings. `ptx`: the architectures whose PTX sits beside it. */
export function cudaPlanJson(program: CudaProgram, ptx: ReadonlySet<string>): string {
  const m = program.module;
  const head = {
    format: "llmc-cuda-plan/1",
    model: program.graph.name,
    module: "kernels.cu",
    kernels: m.kernels.length,
    archs: m.profiles.map((p) => ({ arch: p.arch, profile: p.profile, ptx: ptx.has(p.arch) ? `kernels.${p.arch}.ptx` : null })),
    prefill_chunk: m.prefillChunk,
    padding_safe: m.paddingSafe,
    kv_rows: m.kvRows,
    max_seq_len: m.maxSeqLen,
    step_parameters: "int32 [P] in the params buffer, written before each step",
  };
  const weights = m.weights.map((w) => ({ name: w.name, shape: w.shape, format: w.dtype, bytes: w.layout.bytes, ...(w.layout.scaleOffset ? { scale_offset: w.layout.scaleOffset } : {}), ...(w.demoted ? { kept_f32_because: w.demoted } : {}) }));
  const profiles = [...new Set(m.steps.map((s) => s.profile))].map((p) => {
    const tuning = m.profiles.find((x) => x.profile === p)!.tuning;
    const steps = m.steps.filter((s) => s.profile === p).map((s) => `  ${JSON.stringify(s.T === 1 ? "decode" : "prefill")}: ${stepJson(s)}`);
    return `  ${JSON.stringify(p)}: {\n   "tuning": ${JSON.stringify(tuning)},\n ${steps.join(",\n ")}\n  }`;
  });
  return [
    "{",
    ...Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`),
    `  "weights": [\n${weights.map(line).join(",\n")}\n  ],`,
    `  "profiles": {\n${profiles.join(",\n")}\n  }`,
    "}",
  ].join("\n") + "\n";
}

/** The files `llmc compile --target cuda -o DIR` writes from the program itself (PTX and the report
 *  come beside them). */
export function cudaProgramFiles(program: CudaProgram, ptx: ReadonlySet<string> = new Set()): Map<string, string> {
  return new Map([
    ["kernels.cu", program.module.source],
    ["plan.json", cudaPlanJson(program, ptx)],
  ]);
}

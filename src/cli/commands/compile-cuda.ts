// `llmc compile FILE.llm --target cuda -o DIR`: the CUDA module of a model — kernels.cu, plan.json
// (buffers and launch schedule of a decode step and of a prefill chunk, per tuning profile),
// report.txt, and, where nvcc is on the PATH, kernels.sm_XX.ptx for each architecture (one nvcc run
// for all of them). The runtime loads these PTX files when given DIR (LLMC_CUDA_KERNELS=DIR).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Compiled } from "../../compiler/compile.js";
import { compileCuda, cudaProgramFiles, parseArch, type CudaProgram } from "../../compiler/target/cuda.js";
import { isStorageDType, SUPPORTED_DTYPES, type StorageDType } from "../../compiler/target/storage.js";
import { compileReport, formatReport } from "../../compiler/report.js";
import { compilePtx, findNvcc } from "../../runtime/cuda/ptx.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";

export const compileCudaUsage = `  --target cuda -o DIR   write DIR/kernels.cu, plan.json, report.txt and (with nvcc on the PATH)
                         kernels.sm_XX.ptx
  --cuda-arch LIST       architectures, comma-separated (default sm_80,sm_90)
  --weight-dtype T       weight storage on the GPU: f32, f16, bf16, q8_0, q4_0 (default f32, as a
                         GGUF of that dtype would be; weights other than matrices read by
                         matmuls and lookups stay f32)
  --prefill-chunk N      tokens per prefill step (default min(128, max_seq_len))
  --no-ptx               skip nvcc`;

export interface CompileCudaOptions {
  /** Architectures, e.g. ["sm_80", "sm_90"]. */
  archs?: string[];
  weightDType?: StorageDType;
  prefillChunk?: number;
  /** Run nvcc (default: when it is on the PATH). */
  ptx?: boolean;
}

/** The options from command-line strings (`--cuda-arch`, `--weight-dtype`, `--prefill-chunk`, `--no-ptx`). */
export function cudaOptionsFromFlags(flags: { "cuda-arch"?: string; "weight-dtype"?: string; "prefill-chunk"?: string; "no-ptx"?: boolean }): CompileCudaOptions {
  const opts: CompileCudaOptions = {};
  if (flags["cuda-arch"] !== undefined) {
    const archs = flags["cuda-arch"].split(",").map((a) => a.trim()).filter(Boolean);
    for (const a of archs) {
      try {
        parseArch(a);
      } catch (e) {
        throw new UsageError(`--cuda-arch: ${(e as Error).message}`);
      }
    }
    if (archs.length === 0) throw new UsageError("--cuda-arch takes a comma-separated list such as sm_80,sm_90");
    opts.archs = archs;
  }
  const dt = flags["weight-dtype"];
  if (dt !== undefined) {
    if (!isStorageDType(dt)) throw new UsageError(`--weight-dtype must be one of ${SUPPORTED_DTYPES.join(", ")}, got '${dt}'`);
    opts.weightDType = dt;
  }
  const chunk = flags["prefill-chunk"];
  if (chunk !== undefined) {
    if (!/^\d+$/.test(chunk) || Number(chunk) < 1) throw new UsageError(`--prefill-chunk takes a positive integer, got '${chunk}'`);
    opts.prefillChunk = Number(chunk);
  }
  if (flags["no-ptx"]) opts.ptx = false;
  return opts;
}

const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;

export function cudaReport(program: CudaProgram, compiled: Compiled, ptx: ReadonlyMap<string, string>, ptxNote: string): string {
  const m = program.module;
  const { graph, params } = compiled;
  const maxSeq = m.maxSeqLen;
  const base = formatReport(compileReport(graph, params, { context: Math.min(2048, Math.floor(maxSeq / 2)), promptTokens: m.prefillChunk }));
  const l: string[] = [base.trimEnd(), "", "CUDA:"];
  l.push(`  module: kernels.cu, ${m.kernels.length} kernels (${[...new Set(m.kernels.map((k) => k.family))].join(", ")})`);
  l.push(`  PTX: ${ptx.size ? [...ptx.keys()].map((a) => `kernels.${a}.ptx`).join(", ") : ptxNote}`);
  const byFormat = new Map<string, { n: number; bytes: number }>();
  for (const w of m.weights) {
    const e = byFormat.get(w.dtype) ?? { n: 0, bytes: 0 };
    byFormat.set(w.dtype, { n: e.n + 1, bytes: e.bytes + w.layout.bytes });
  }
  l.push(`  weights on the GPU: ${[...byFormat].map(([f, e]) => `${e.n} ${f} (${mib(e.bytes)})`).join(", ")}`);
  const demoted = m.weights.filter((w) => w.demoted);
  if (demoted.length) l.push(`  kept f32: ${demoted.length} weight(s), e.g. ${demoted[0]!.name}: ${demoted[0]!.demoted}`);
  const kv = m.steps[0]!.buffers.filter((b) => b.kind === "kv").reduce((a, b) => a + b.bytes, 0);
  l.push(`  KV cache: ${mib(kv)} (${m.kvRows} rows per layer: max_seq_len ${maxSeq} + prefill chunk ${m.prefillChunk} - 1)`);
  l.push(`  prompts: chunks of ${m.prefillChunk} tokens; a shorter tail ${m.paddingSafe ? "is padded to a chunk (causal attention hides the padding)" : "runs as decode steps (padding is not safe for this model)"}`);
  for (const p of m.profiles) {
    const steps = m.steps.filter((s) => s.profile === p.profile);
    const desc = steps.map((s) => `${s.T === 1 ? "decode" : `prefill (T = ${s.T})`} ${s.launches.length} launches for ${s.plan.dispatches.length} dispatches`).join("; ");
    const act = steps.map((s) => s.buffers.filter((b) => b.kind === "activation" || b.kind === "scratch").reduce((a, b) => a + b.bytes, 0));
    l.push(`  ${p.arch} → profile ${p.profile}: ${desc}; activations ${act.map(mib).join(" / ")}`);
  }
  return l.join("\n") + "\n";
}

/** Writes the CUDA module of `compiled` into `dir`; returns the exit code. */
export async function runCompileCuda(dir: string, compiled: Compiled, opts: CompileCudaOptions, io: CliIO): Promise<number> {
  const archNames = opts.archs ?? ["sm_80", "sm_90"];
  const archs = archNames.map((a) => parseArch(a));
  let program: CudaProgram;
  try {
    program = compileCuda(compiled.graph, {
      archs,
      ...(opts.weightDType ? { requested: opts.weightDType } : {}),
      ...(opts.prefillChunk !== undefined ? { prefillChunk: opts.prefillChunk } : {}),
    });
  } catch (e) {
    io.err(`error: cannot emit CUDA for ${compiled.graph.name}: ${(e as Error).message}\n`);
    return 1;
  }
  mkdirSync(dir, { recursive: true });
  const module = program.module;
  let ptx = new Map<string, string>();
  let note = "not compiled (--no-ptx)";
  let code = 0;
  if (opts.ptx !== false) {
    const nvcc = findNvcc();
    if (!nvcc) note = "not compiled: nvcc is not on the PATH";
    else {
      try {
        ptx = compilePtx(module.source, archs, nvcc);
        for (const [arch, text] of ptx) writeFileSync(join(dir, `kernels.${arch}.ptx`), text);
      } catch (e) {
        io.err(`error: ${(e as Error).message}\n`);
        note = "nvcc failed";
        code = 1;
      }
    }
  }
  for (const [name, text] of cudaProgramFiles(program, new Set(ptx.keys()))) writeFileSync(join(dir, name), text);
  const report = cudaReport(program, compiled, ptx, note);
  writeFileSync(join(dir, "report.txt"), report);
  const files = ["kernels.cu", ...[...ptx.keys()].map((a) => `kernels.${a}.ptx`), "plan.json", "report.txt"];
  io.out(`wrote ${files.map((f) => join(dir, f)).join(", ")}\n`);
  if (!ptx.size && opts.ptx !== false && code === 0) io.err(`warning: ${note}; the runtime needs PTX (or nvcc where it runs)\n`);
  return code;
}

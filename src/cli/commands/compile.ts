// `llmc compile FILE.llm`: check, lower to IR, run the passes; print the IR and/or the report.

import { parseArgs } from "node:util";
import { compileFile } from "../../compiler/compile.js";
import { maxSeqLenOf, renumber } from "../../compiler/ir/graph.js";
import { printGraph } from "../../compiler/ir/text.js";
import { DEFAULT_PIPELINE, passRegistry } from "../../compiler/passes/index.js";
import { specialize } from "../../compiler/passes/specialize.js";
import { compileReport, formatReport } from "../../compiler/report.js";
import type { CliIO } from "../io.js";
import { writeWgsl } from "./compile-wgsl.js";
import { compileCudaUsage, cudaOptionsFromFlags, runCompileCuda } from "./compile-cuda.js";
import { parseSetFlags, printDiagnostics, UsageError } from "./common.js";

export const compileUsage = `usage: llmc compile FILE.llm [--set name=value]… [--model NAME]
                    [--emit ir] [--step generic|decode|prefill] [--dump-after PASS|all]…
                    [--report] [--json] [--context N] [--prompt-tokens N]
                    [--target wgsl -o DIR [--tuning llvmpipe|gpu] [--weight-dtype T]]
                    [--target cuda -o DIR [--cuda-arch sm_80,sm_90] [--weight-dtype T] [--prefill-chunk N] [--no-ptx]]

  --emit ir         print the IR after the passes (${DEFAULT_PIPELINE.join(", ")})
  --step            specialise the printed IR: decode (T = 1), prefill (T = --prompt-tokens); default generic
  --dump-after      print the IR after a pass (lower, ${passRegistry.map((p) => p.name).join(", ")}, or all)
  --report          parameters, weight bytes, FLOPs and bytes per token, KV bytes, peak activations
  --json            the report as JSON
  --context N       past length for the decode figures (default: half of max_seq_len, at most 2048)
  --prompt-tokens N prompt length for prefill figures and --step prefill (default 128, at most max_seq_len)
  --target wgsl     write the WGSL kernels of the decode and prefill steps, plan.json and report.txt to -o DIR:
                    the program the WebGPU runtime runs on that class of adapter
  --tuning          kernel shapes and limits of a software adapter (llvmpipe, default) or a GPU
${compileCudaUsage}`;

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} takes a non-negative integer, got '${v}'`);
  return Number(v);
}

export async function runCompile(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: "string", multiple: true },
      model: { type: "string" },
      emit: { type: "string", multiple: true },
      step: { type: "string", default: "generic" },
      "dump-after": { type: "string", multiple: true },
      report: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      context: { type: "string" },
      "prompt-tokens": { type: "string" },
      target: { type: "string" },
      output: { type: "string", short: "o" },
      tuning: { type: "string", default: "llvmpipe" },
      "cuda-arch": { type: "string" },
      "weight-dtype": { type: "string" },
      "prefill-chunk": { type: "string" },
      "no-ptx": { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError("llmc compile takes one .llm file", compileUsage);
  const emit = new Set(values.emit ?? []);
  for (const e of emit) if (e !== "ir") throw new UsageError(`--emit ${e}: only 'ir' can be emitted here (kernels come with --target in a later version)`);
  const step = values.step!;
  if (!["generic", "decode", "prefill"].includes(step)) throw new UsageError(`--step must be generic, decode or prefill, got '${step}'`);
  const dumpAfter = values["dump-after"] ?? [];
  for (const d of dumpAfter) {
    if (d !== "all" && d !== "lower" && !passRegistry.some((p) => p.name === d)) {
      throw new UsageError(`--dump-after ${d}: no such pass (lower, ${passRegistry.map((p) => p.name).join(", ")}, all)`);
    }
  }
  const promptTokensFlag = positiveInt("--prompt-tokens", values["prompt-tokens"]);
  const target = values.target;
  if (target !== undefined && target !== "wgsl" && target !== "cuda") throw new UsageError(`--target ${target}: targets are wgsl and cuda`);
  const targetOpts = target ? cudaOptionsFromFlags(values) : null;
  const cudaOpts = target === "cuda" ? targetOpts : null;
  if (target && !values.output) throw new UsageError(`--target ${target} needs -o DIR`);
  if (values.tuning !== "llvmpipe" && values.tuning !== "gpu") throw new UsageError(`--tuning must be llvmpipe or gpu, got '${values.tuning}'`);
  if (promptTokensFlag !== undefined && promptTokensFlag < 1) throw new UsageError("--prompt-tokens must be at least 1");

  const res = compileFile(positionals[0]!, {
    overrides: parseSetFlags(values.set),
    ...(values.model ? { model: values.model } : {}),
    dumpAfter,
    onDump: (pass, text) => io.out(`// IR after ${pass}\n${text}\n`),
  });
  if (printDiagnostics(res.diagnostics, res.sources, io) > 0 || !res.compiled) return 1;
  const { graph, params } = res.compiled;

  const maxSeq = maxSeqLenOf(graph);
  const promptTokens = promptTokensFlag ?? Math.min(128, maxSeq);
  if (emit.has("ir")) {
    const g = step === "generic" ? graph : renumber(specialize(graph, { T: step === "decode" ? 1 : promptTokens }));
    io.out(printGraph(g));
  }
  const context = positiveInt("--context", values.context) ?? Math.min(2048, Math.floor(maxSeq / 2));
  if (context + 1 > maxSeq) throw new UsageError(`--context ${context} does not fit max_seq_len ${maxSeq}`);
  if (promptTokens > maxSeq) throw new UsageError(`--prompt-tokens ${promptTokens} exceeds max_seq_len ${maxSeq}`);
  const report = compileReport(graph, params, { context, promptTokens });
  if (cudaOpts) {
    const code = await runCompileCuda(values.output!, res.compiled, cudaOpts, io);
    if (code !== 0) return code;
  }
  if (target === "wgsl") {
    const out = writeWgsl(values.output!, res.compiled, report, { promptTokens, tuning: values.tuning as "llvmpipe" | "gpu", ...(targetOpts?.weightDType ? { weightDType: targetOpts.weightDType } : {}) }, io);
    io.out(`dispatches per decode step: ${out.decode.total} (${out.decode.perLayer[0] ?? 0} per layer, ${out.decode.perStep} per step)\n`);
  }
  if (values.report || values.json || (emit.size === 0 && !target)) {
    io.out(values.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  }
  return 0;
}

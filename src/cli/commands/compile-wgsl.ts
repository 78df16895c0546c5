// `llmc compile FILE.llm --target wgsl -o DIR`: the target layer's WGSL program for a nominal
// adapter of the chosen class — the kernels of the decode and prefill steps and plan.json, exactly
// as the WebGPU executor on such an adapter runs them — and a report with the dispatch counts per
// step and per layer.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Compiled } from "../../compiler/compile.js";
import type { StepPlan } from "../../compiler/plan/plan.js";
import type { StorageDType } from "../../compiler/target/storage.js";
import { compileWgsl, NOMINAL_LIMITS, wgslProfile, wgslProgramFiles } from "../../compiler/target/wgsl.js";
import type { CompileReport } from "../../compiler/report.js";
import { formatReport } from "../../compiler/report.js";
import type { CliIO } from "../io.js";

export interface DispatchCounts {
  total: number;
  perStep: number; // dispatches that belong to no layer (embedding, final norm, LM head, …)
  perLayer: number[]; // by layer index
}

/** Dispatches by the layer their IR node was made in (the lowering records it; see ir/graph.ts),
 *  leaving out those only greedy decoding launches. */
export function dispatchCounts(plan: StepPlan, greedyOnly: readonly boolean[] = []): DispatchCounts {
  const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  const perLayer: number[] = [];
  let perStep = 0;
  const run = plan.dispatches.filter((_, i) => !greedyOnly[i]);
  for (const d of run) {
    const layer = nodes.get(d.node)?.layer;
    if (layer === undefined) perStep++;
    else perLayer[layer] = (perLayer[layer] ?? 0) + 1;
  }
  return { total: run.length, perStep, perLayer: Array.from(perLayer, (x) => x ?? 0) };
}

export interface WgslOutput {
  files: string[];
  decode: DispatchCounts;
  prefill: DispatchCounts;
}

export function writeWgsl(dir: string, compiled: Compiled, report: CompileReport, opts: { promptTokens: number; tuning: "llvmpipe" | "gpu"; weightDType?: StorageDType }, io: CliIO): WgslOutput {
  const profile = wgslProfile(opts.tuning === "llvmpipe", NOMINAL_LIMITS[opts.tuning]);
  const program = compileWgsl(compiled.graph, { profile, ...(opts.weightDType ? { requested: opts.weightDType } : {}) });
  const steps = [["decode", 1], ["prefill", opts.promptTokens]] as const;
  mkdirSync(dir, { recursive: true });
  const files = wgslProgramFiles(program, steps);
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  const counts = new Map(steps.map(([name, T]) => [name, dispatchCounts(program.step(T).plan, program.step(T).greedyOnly)]));
  const lines = [formatReport(report).trimEnd(), "", `WGSL kernels (tuning: ${opts.tuning}):`];
  for (const [name, c] of counts) {
    const layers = c.perLayer.length;
    const uniform = c.perLayer.every((x) => x === c.perLayer[0]);
    const perLayer = uniform ? `${c.perLayer[0] ?? 0} per layer × ${layers} layers` : `per layer: ${c.perLayer.join(", ")}`;
    lines.push(`  dispatches per ${name} step: ${c.total} (${perLayer}, ${c.perStep} per step)`);
  }
  writeFileSync(join(dir, "report.txt"), lines.join("\n") + "\n");
  io.err(`wrote ${files.size + 1} files to ${dir}\n`);
  return { files: [...files.keys(), "report.txt"], decode: counts.get("decode")!, prefill: counts.get("prefill")! };
}

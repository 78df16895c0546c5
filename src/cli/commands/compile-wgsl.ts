// `llmc compile FILE.llm --target wgsl -o DIR`: the WGSL kernels of the decode and prefill steps,
// their plans (plan.json) and a report with the dispatch counts per step and per layer.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Compiled } from "../../compiler/compile.js";
import { buildStepPlan } from "../../compiler/plan/build.js";
import { planToJson } from "../../compiler/plan/json.js";
import type { StepPlan } from "../../compiler/plan/plan.js";
import { CPU_TUNING, GPU_TUNING, emitPlan, type WgslTuning } from "../../compiler/emit/wgsl/index.js";
import type { CompileReport } from "../../compiler/report.js";
import { formatReport } from "../../compiler/report.js";
import type { CliIO } from "../io.js";

export interface DispatchCounts {
  total: number;
  perStep: number; // dispatches that belong to no layer (embedding, final norm, LM head, …)
  perLayer: number[]; // by layer index
}

/** Dispatches by the layer their IR node was made in (the lowering records it; see ir/graph.ts). */
export function dispatchCounts(plan: StepPlan): DispatchCounts {
  const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  const perLayer: number[] = [];
  let perStep = 0;
  for (const d of plan.dispatches) {
    const layer = nodes.get(d.node)?.layer;
    if (layer === undefined) perStep++;
    else perLayer[layer] = (perLayer[layer] ?? 0) + 1;
  }
  return { total: plan.dispatches.length, perStep, perLayer: Array.from(perLayer, (x) => x ?? 0) };
}

export interface WgslOutput {
  files: string[];
  decode: DispatchCounts;
  prefill: DispatchCounts;
}

export function writeWgsl(dir: string, compiled: Compiled, report: CompileReport, opts: { promptTokens: number; tuning: "llvmpipe" | "gpu" }, io: CliIO): WgslOutput {
  const tuning: WgslTuning = opts.tuning === "gpu" ? GPU_TUNING : CPU_TUNING;
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    files.push(name);
  };
  // Merged kernels bind more storage buffers than WebGPU's default 8: llvmpipe allows 16; a GPU is
  // planned for the default, which every adapter supports.
  const maxStorageBuffers = opts.tuning === "llvmpipe" ? 16 : 8;
  const steps: [string, StepPlan][] = [
    ["decode", buildStepPlan(compiled.graph, { T: 1, maxStorageBuffers })],
    ["prefill", buildStepPlan(compiled.graph, { T: opts.promptTokens, maxStorageBuffers })],
  ];
  const counts = new Map<string, DispatchCounts>();
  const planJson: string[] = [];
  for (const [name, plan] of steps) {
    const kernels = emitPlan(plan, tuning);
    kernels.forEach((k, i) => {
      const header = `// ${name} dispatch ${i}: ${k.label}; workgroups [${k.workgroups.join(", ")}]\n`;
      write(`${name}-${String(i).padStart(3, "0")}.wgsl`, header + k.code);
    });
    counts.set(name, dispatchCounts(plan));
    planJson.push(`"${name}": ${planToJson(plan).trim()}`);
  }
  write("plan.json", `{\n${planJson.join(",\n")}\n}\n`);
  const lines = [formatReport(report).trimEnd(), "", `WGSL kernels (tuning: ${opts.tuning}):`];
  for (const [name, c] of counts) {
    const layers = c.perLayer.length;
    const uniform = c.perLayer.every((x) => x === c.perLayer[0]);
    const perLayer = uniform ? `${c.perLayer[0] ?? 0} per layer × ${layers} layers` : `per layer: ${c.perLayer.join(", ")}`;
    lines.push(`  dispatches per ${name} step: ${c.total} (${perLayer}, ${c.perStep} per step)`);
  }
  write("report.txt", lines.join("\n") + "\n");
  io.err(`wrote ${files.length} files to ${dir}\n`);
  return { files, decode: counts.get("decode")!, prefill: counts.get("prefill")! };
}

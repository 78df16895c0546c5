// The WGSL optimiser kernels (codegen-templates/wgsl/optimizer.hbs): sum one sequence's gradients
// into the step's sums, the sum of squares for the global norm (partials per workgroup), and the
// AdamW or SGD update over all parameters at once. Bindings are in the order the template declares.

import { checkGenerated, Templates } from "../shared/templates.js";
import type { FlatLayout, OptimizerRule } from "../shared/optimizer.js";

const templates = new Templates("wgsl");

export interface WgslOptimizerKernels {
  /** (sums rw, sequence r) */
  accumulate: string;
  /** (sums r, partials rw): `normGroups` workgroups, one partial each. */
  sumOfSquares: string;
  /** (hyper uniform, sums rw, params rw, slots rw…) */
  update: string;
  workgroupSize: number;
  /** Workgroups of every dispatch (each loops over its share). */
  groups: number;
}

export function wgslOptimizerKernels(layout: FlatLayout, rule: OptimizerRule, maxGroups: number): WgslOptimizerKernels {
  const workgroupSize = 64;
  const groups = Math.max(1, Math.min(maxGroups, Math.ceil(layout.total / workgroupSize / 16)));
  const base = { start: layout.start, total: layout.total, decayEnd: layout.decayEnd, workgroupSize, invocations: groups * workgroupSize };
  const render = (kernel: string, extra: Record<string, unknown>) => {
    const code = templates.render("optimizer", { kernel, accumulate: false, sumOfSquares: false, update: false, adamw: false, nesterov: false, ...base, ...extra });
    checkGenerated(code, `WGSL ${kernel} kernel`);
    return code;
  };
  return {
    accumulate: render("accumulate", { accumulate: true }),
    sumOfSquares: render("sum of squares", { sumOfSquares: true }),
    update: render(rule.kind === "adamw" ? "adamw" : "sgd", { update: true, adamw: rule.kind === "adamw", nesterov: rule.kind === "sgd" && rule.nesterov }),
    workgroupSize,
    groups,
  };
}

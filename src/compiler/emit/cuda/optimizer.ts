// The CUDA optimiser module (codegen-templates/cuda/optimizer.hbs): sum one sequence's gradients into
// the step's sums (one launch for every tensor, through a table of addresses), the sum of squares
// for the global norm (partials per block), and the AdamW or SGD update over all parameters at once.

import { checkGenerated, Templates } from "../shared/templates.js";
import type { FlatLayout, OptimizerRule } from "../shared/optimizer.js";
import type { CudaKernel } from "./kernel.js";

const templates = new Templates("cuda");

export interface CudaOptimizerModule {
  source: string;
  kernels: { accumulate: CudaKernel; sumOfSquares: CudaKernel; update: CudaKernel };
  blockSize: number;
  /** Blocks of the sum-of-squares and update launches (each loops over its share). */
  blocks: number;
}

export function cudaOptimizerModule(layout: FlatLayout, rule: OptimizerRule): CudaOptimizerModule {
  const blockSize = 256;
  const blocks = Math.max(1, Math.min(1024, Math.ceil(layout.total / blockSize / 8)));
  const names = { accumulate: "llmc_opt_accumulate", sumOfSquares: "llmc_opt_sum_of_squares", update: `llmc_opt_${rule.kind}` };
  const source = templates.render("optimizer", {
    ...names,
    start: layout.start,
    total: layout.total,
    decayEnd: layout.decayEnd,
    blockSize,
    threads: blocks * blockSize,
    adamw: rule.kind === "adamw",
    nesterov: rule.kind === "sgd" && rule.nesterov,
  });
  checkGenerated(source, "CUDA optimiser module", ['extern "C"']);
  const kernel = (name: string, params: string[]): CudaKernel => ({ family: "optimizer", name, code: "", helpers: [], params });
  const slots = rule.kind === "adamw" ? ["float*", "float*"] : ["float*"];
  return {
    source,
    kernels: {
      accumulate: kernel(names.accumulate, ["float*", "const unsigned long long*", "const unsigned int*"]),
      sumOfSquares: kernel(names.sumOfSquares, ["const float*", "float*"]),
      update: kernel(names.update, ["const float*", "float*", "float*", ...slots]),
    },
    blockSize,
    blocks,
  };
}

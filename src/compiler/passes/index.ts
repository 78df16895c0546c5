// The pass manager: runs passes in order, verifies the IR after each, and can show the IR after any
// pass (`--dump-after=NAME`).

import type { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/text.js";
import { verifyGraph } from "../ir/verify.js";
import { fuseAttention } from "./attention.js";
import { canonicalize } from "./canonicalize.js";
import { cse } from "./cse.js";
import { dce } from "./dce.js";
import { foldConstants } from "./fold.js";
import { fuseLinear, fusePrologue, fuseRegions, fuseRotary } from "./fuse.js";

export interface Pass {
  name: string;
  doc: string;
  run(g: Graph): Graph;
}

export const passRegistry: Pass[] = [
  { name: "canonicalize", doc: "algebraic identities: x*1, x+0, reshape∘reshape, transpose∘transpose, no-op casts", run: canonicalize },
  { name: "fuse-attention", doc: "softmax(mask(f(Q·Kᵀ)))·V written out → one attention node with score and mask programs (rules in passes/attention.ts)", run: fuseAttention },
  { name: "fuse-attention-plain", doc: "fuse-attention where the match needs no score or mask program: the forward graph of training, whose attention gradient kernels take causal, window and scale only", run: (g) => fuseAttention(g, { programs: false }) },
  { name: "fold", doc: "evaluate subgraphs that depend only on constants (e.g. RoPE frequencies) into literals", run: foldConstants },
  { name: "cse", doc: "merge identical nodes", run: cse },
  { name: "fuse-linear", doc: "matmul(x, transpose(W)) with a weight W → linear(x, W)", run: fuseLinear },
  { name: "fuse", doc: "elementwise regions, row reductions and matmul epilogues → fused kernels (rules in passes/fuse.ts)", run: fuseRegions },
  { name: "fuse-rotary", doc: "rotary of a linear's heads → the rotation in that linear's epilogue, cos/sin recomputed there (rules in passes/fuse.ts)", run: fuseRotary },
  { name: "fuse-prologue", doc: "a row norm read only by linears → their prologue, its reductions accumulated in the matmul's pass over x (rules in passes/fuse.ts)", run: fusePrologue },
  { name: "dce", doc: "remove nodes that reach no output and have no effect", run: dce },
];

// fuse-attention runs before fold, which would turn per-head tables (ALiBi slopes of arange(heads))
// into literals it cannot read as a function of the head.
export const DEFAULT_PIPELINE = ["canonicalize", "fuse-attention", "fold", "cse", "canonicalize", "fuse-linear", "fuse", "fuse-rotary", "fuse-prologue", "dce"];

/** Training graphs (compiler/autodiff): linears, elementwise regions and row programs fuse — the
 *  backward's chains of small ops (softmax-cross-entropy's gradient, RMSNorm's) become one kernel
 *  each, 1.2–1.4× the tokens/s of the unfused graph for tiny-llama on llvmpipe (bench/train.mjs,
 *  2026-12-05), no change for the 3.8M example. dce runs before fusion too: the gradients of
 *  constants (RMSNorm's ε) are dead, and a dead user keeps a value out of its region — RMSNorm's
 *  backward was 7 kernels, now 3 (the row kernel for dx, and the gain's product and column sum).
 *  Attention was fused before differentiation (TRAINING_FORWARD_PIPELINE); rotary and prologue
 *  fusion are untried here. */
export const TRAINING_PIPELINE = ["canonicalize", "fold", "cse", "canonicalize", "dce", "fuse-linear", "fuse", "dce"];

/** The forward graph a training graph differentiates: attention without score or mask programs
 *  becomes one node, whose gradient is the four attention gradient kernels (ops/gradients.ts);
 *  everything else stays primitive, since fusion runs after differentiation. */
export const TRAINING_FORWARD_PIPELINE = ["canonicalize", "fuse-attention-plain", "fold", "cse", "canonicalize", "dce"];

/** The pipeline without fusion: one kernel per primitive op (for tests that compare the two). */
export const UNFUSED_PIPELINE = ["canonicalize", "fold", "cse", "canonicalize", "dce"];

export interface PassOptions {
  pipeline?: string[];
  dumpAfter?: string[]; // pass names, or "all"
  onDump?: (passName: string, text: string) => void;
}

export function runPasses(g: Graph, opts: PassOptions = {}): Graph {
  const names = opts.pipeline ?? DEFAULT_PIPELINE;
  const dump = new Set(opts.dumpAfter ?? []);
  let cur = g;
  verifyGraph(cur, "lowering");
  if (dump.has("lower") || dump.has("all")) opts.onDump?.("lower", printGraph(cur));
  for (const name of names) {
    const pass = passRegistry.find((p) => p.name === name);
    if (!pass) throw new Error(`unknown pass '${name}'; passes: ${passRegistry.map((p) => p.name).join(", ")}`);
    cur = pass.run(cur);
    verifyGraph(cur, name);
    if (dump.has(name) || dump.has("all")) opts.onDump?.(name, printGraph(cur));
  }
  return cur;
}

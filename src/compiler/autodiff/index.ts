// The training graph: a model's forward graph without its KV cache, a mean cross-entropy loss over
// next-token targets, and reverse mode (reverse.ts) back to every weight. Its outputs are the loss
// and one gradient per weight, and it is an ordinary graph: the standard passes run over it.

import { checkFile, type CheckOptions } from "../check/index.js";
import type { ResolvedModel } from "../check/model.js";
import { constValue, type Dim } from "../base/symbolic.js";
import type { Diagnostic, SourceMap } from "../base/diagnostics.js";
import { renumber, type Graph } from "../ir/graph.js";
import { lowerModel } from "../ir/lower.js";
import { applyAliases } from "../ir/rewrite.js";
import { verifyGraph } from "../ir/verify.js";
import { runPasses, TRAINING_FORWARD_PIPELINE, TRAINING_PIPELINE } from "../passes/index.js";
import { specialize } from "../passes/specialize.js";
import { zeros } from "../ops/gradients.js";
import { differentiate, GraphAppender } from "./reverse.js";
import { withDropoutMasks, type DropoutSite } from "./dropout.js";
import { packingBlocker, segmentAttention } from "./pack.js";

export interface TrainingGraph {
  /** Inputs `tokens`, `pos` and `targets` ([T] i32 each); outputs the loss ([] f32), then one
   *  gradient per weight. */
  graph: Graph;
  /** Output i+1 is the gradient of weightNames[i] (a tied weight's two uses summed under one name). */
  weightNames: string[];
  /** Rows of the logits: targets must be below it (or negative, to be ignored). */
  vocabSize?: number;
  /** The dropout masks the step takes as inputs (dropout.ts), in order. */
  dropout: DropoutSite[];
  /** Set on a packed graph: its T tokens are `sequences` sequences of `segment` each, and its loss
   *  is the sum of their mean losses (so its gradients are the sum of theirs). */
  pack?: TrainingPack;
  /** Why this model's sequences cannot be packed (null: they can): pack.ts. */
  packingBlocker: string | null;
  /** What it was built from, so packedTrainingGraph can build its packed variants. */
  source: { forward: Graph; options: TrainingOptions };
}

export interface TrainingPack {
  segment: number;
  sequences: number;
}

export interface TrainingOptions {
  /** Passes over the training graph (default: TRAINING_PIPELINE). */
  pipeline?: string[];
  /** Passes over the forward graph before it is differentiated (default: TRAINING_FORWARD_PIPELINE,
   *  which fuses plain attention; UNFUSED_PIPELINE differentiates attention op by op). */
  forwardPipeline?: string[];
  /** Build the graph of `sequences` packed sequences of `segment` tokens (pack.ts); throws when the
   *  model's rows are not independent. */
  pack?: TrainingPack;
}

/** A target below zero is left out of the loss (PyTorch's ignore_index). */
export const IGNORED_TARGET = -1;

/** The forward graph of one training sequence: no KV cache (each kv_append is this step's k or v
 *  itself, since the sequence starts at P = 0) and no state. */
export function withoutKvCache(forward: Graph): Graph {
  const alias = new Map(forward.nodes.filter((n) => n.op === "kv_append").map((n) => [n.id, n.inputs[0]!]));
  const g = specialize(applyAliases(forward, alias), { P: 0 });
  const out = { ...g, states: new Map() };
  verifyGraph(out, "removing the KV cache");
  return out;
}

/**
 * Appends the mean cross-entropy of `logits` [T, V] against `targets` over the targets ≥ 0: each
 * row's loss is one `cross_entropy_rows` kernel (log Σ exp with the row's maximum subtracted, minus
 * the target's logit; 0 for a negative target, which is ignored), whose gradient is one
 * `cross_entropy_rows_grad` kernel — no [T, V] tensor but the logits and their gradient.
 */
function crossEntropy(b: GraphAppender, logits: number): number {
  const [t] = b.ty(logits).shape as [Dim, Dim];
  const dt = b.ty(logits).dtype;
  const c = (value: number, dtype = dt) => b.op("const", [], { value, dtype });
  const targets = b.input("targets", { shape: [t], dtype: "i32" });
  const rows = b.op("cross_entropy_rows", [logits, targets]);
  const total = b.op("sum", [rows], { axis: 0, keepdim: false });
  const counted = b.op("cast", [b.op("ge", [targets, c(0, "i32")])], { dtype: "f32" });
  const count = b.op("max", [b.op("sum", [counted], { axis: 0, keepdim: false }), c(1, "f32")]);
  return b.op("div", [total, count]);
}

/** The training graph of a forward graph (lowered, passes before fusion but attention's: see
 *  compileTrainingFile). */
export function buildTrainingGraph(forward: Graph, opts: TrainingOptions = {}): TrainingGraph {
  if (forward.outputs.length !== 1) throw new Error(`a training graph needs a forward graph with one output (the logits), got ${forward.outputs.length}`);
  const masked = withDropoutMasks(withoutKvCache(forward));
  const sites = masked.sites;
  verifyGraph(masked.graph, "masking dropout");
  const blocker = packingBlocker(masked.graph);
  const pack = opts.pack;
  if (pack && blocker) throw new Error(`cannot pack training sequences of this model: ${blocker}`);
  const g = pack ? segmentAttention(masked.graph, pack.segment) : masked.graph;
  const b = new GraphAppender(g);
  const logits = g.outputs[0]!;
  const lty = b.ty(logits);
  if (lty.shape.length !== 2) throw new Error(`training needs logits of shape [T, vocab], got rank ${lty.shape.length}`);
  const mean = crossEntropy(b, logits);
  // Packed: the mean over all tokens times the sequences, which is the sum of their means when each
  // has as many counted targets (packed windows are full; runtimes pack only such sequences).
  const loss = pack && pack.sequences !== 1 ? b.op("mul", [mean, b.op("const", [], { value: pack.sequences, dtype: "f32" })]) : mean;

  const weights = g.nodes.filter((n) => n.op === "weight");
  const weightNames = [...new Set(weights.map((n) => n.attrs["name"] as string))];
  const withLoss = b.graph(g);
  const d = differentiate(withLoss, loss, weights.map((n) => n.id));

  // A weight read in several places (a tied embedding and lm_head) sums the gradients of its uses.
  const back = new GraphAppender(d.graph);
  const byName = new Map<string, number>();
  weights.forEach((w, i) => {
    const gi = d.grads[i];
    if (gi === null || gi === undefined) return;
    const name = w.attrs["name"] as string;
    const prev = byName.get(name);
    byName.set(name, prev === undefined ? gi : back.op("add", [prev, gi]));
  });
  const outputs = [loss, ...weightNames.map((name) => {
    const gi = byName.get(name);
    if (gi !== undefined) return gi;
    // The loss does not depend on this weight: its gradient is zero.
    const w = weights.find((n) => n.attrs["name"] === name)!;
    return zeros(back, w.ty.shape, w.ty.dtype);
  })];
  const graph = renumber(runPasses({ ...back.graph(d.graph), outputs, name: `${forward.name}_train` }, { pipeline: opts.pipeline ?? TRAINING_PIPELINE }));
  const vocab = constValue(lty.shape[1]!);
  return {
    graph, weightNames, dropout: sites, packingBlocker: blocker, source: { forward, options: opts },
    ...(pack ? { pack } : {}), ...(vocab !== null ? { vocabSize: vocab } : {}),
  };
}

/** The graph of `sequences` sequences of `segment` tokens packed into one step of the same model. */
export function packedTrainingGraph(tg: TrainingGraph, pack: TrainingPack): TrainingGraph {
  return buildTrainingGraph(tg.source.forward, { ...tg.source.options, pack });
}

export interface TrainingCompileResult {
  training: TrainingGraph | null;
  /** The forward graph training differentiates (no KV cache, P = 0): logits [T, vocab]. */
  forward: Graph | null;
  model: ResolvedModel | null;
  diagnostics: Diagnostic[];
  sources: SourceMap;
}

/** .llm file → checked model → forward graph (lowered, the passes before fusion) → training graph. */
export function compileTrainingFile(path: string, opts: CheckOptions & TrainingOptions = {}): TrainingCompileResult {
  const check = checkFile(path, { ...opts, requireConcrete: true });
  const sources = check.program.sources;
  const fail = (diagnostics: Diagnostic[]): TrainingCompileResult => ({ training: null, forward: null, model: check.model, diagnostics, sources });
  if (check.diagnostics.some((d) => d.severity === "error") || !check.model) return fail(check.diagnostics);
  const lowered = lowerModel({ fns: check.fns }, check.model, { training: true });
  if (!lowered.graph) return fail([...check.diagnostics, ...lowered.diagnostics]);
  const forward = runPasses(lowered.graph, { pipeline: opts.forwardPipeline ?? TRAINING_FORWARD_PIPELINE });
  return {
    training: buildTrainingGraph(forward, opts),
    forward: renumber(withoutKvCache(forward)),
    model: check.model,
    diagnostics: check.diagnostics,
    sources,
  };
}

export { differentiate } from "./reverse.js";
export { dropoutInputs, dropoutMask, type DropoutKey, type DropoutSite } from "./dropout.js";
export { packingBlocker } from "./pack.js";

// One training step on the CPU: runs a training graph (compiler/autodiff) with the op table's
// reference kernels and returns the loss and each weight's gradient. Slow and exact, like the
// interpreter: the oracle a device training step is compared with. Also where a trainer gets a
// model's weights as plain arrays (random initial ones, or a file's).

import { evalDim } from "../../compiler/base/symbolic.js";
import { dropoutInputs, dropoutMask, type DropoutKey, type TrainingGraph } from "../../compiler/autodiff/index.js";
import type { ResolvedModel } from "../../compiler/check/model.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import { evaluateGraph } from "./evaluate.js";
import { loadModelWeights, type LoadOptions } from "../weights/loader.js";
import { modelTensors } from "../weights/model-tensors.js";

export { evaluateGraph } from "./evaluate.js";

/** One training sequence: `targets[i]` is the token expected after `tokens[i]` (negative: ignored). */
export interface TrainingSequence {
  tokens: Int32Array;
  targets: Int32Array;
  /** Draws the dropout masks (none: no dropout). */
  dropout?: DropoutKey;
}

/** Optimiser state as the host optimiser saves it; the device optimisers (WebGPU, CUDA) read theirs back as this (src/train/optimizer.ts). */
export interface DeviceOptimizerState {
  kind: "adamw" | "sgd";
  step: number;
  slots: Map<string, Map<string, Float32Array>>;
}

export interface TrainingStepResult {
  /** Mean cross-entropy over the targets that are not ignored. */
  loss: number;
  /** d loss / d weight, by weight name (every name of the training graph's weightNames). */
  grads: Map<string, Float32Array>;
}

/**
 * Checks one training sequence as every backend's step does: at least one token, a target and a
 * position per token, token ids in the vocabulary, targets below it (negative: ignored). Returns the
 * positions (default 0 … T−1).
 */
export function checkTrainingStep(tg: TrainingGraph, tokens: Int32Array, targets: Int32Array, pos?: Int32Array): Int32Array {
  const T = tokens.length;
  if (T < 1) throw new RangeError("a training step needs at least one token");
  if (targets.length !== T) throw new RangeError(`${T} tokens need ${T} targets, got ${targets.length}`);
  if (pos && pos.length !== T) throw new RangeError(`${T} tokens need ${T} positions, got ${pos.length}`);
  const vocab = tg.vocabSize;
  if (vocab !== undefined) {
    const badToken = tokens.findIndex((t) => t < 0 || t >= vocab);
    if (badToken >= 0) throw new RangeError(`token ${tokens[badToken]} (at ${badToken}) is outside the vocabulary of ${vocab}`);
    const badTarget = targets.findIndex((t) => t >= vocab);
    if (badTarget >= 0) throw new RangeError(`target ${targets[badTarget]} (at ${badTarget}) is outside the vocabulary of ${vocab} (a negative target is ignored)`);
  }
  if (tg.pack && T !== tg.pack.segment * tg.pack.sequences) throw new RangeError(`a packed step takes ${tg.pack.sequences} sequences of ${tg.pack.segment} tokens, got ${T} tokens`);
  // Packed sequences each start at position 0.
  return pos ?? Int32Array.from({ length: T }, (_, i) => (tg.pack ? i % tg.pack.segment : i));
}

/** How many of `sequences`, from the first, can run as one packed step of at most `maxTokens`
 *  tokens: sequences of one length whose counted targets are as many (so the sum of their mean
 *  losses is the packed mean times their number). 1 when the model cannot be packed. */
export function packableRun(tg: TrainingGraph, sequences: readonly TrainingSequence[], maxTokens: number): number {
  if (tg.packingBlocker !== null || sequences.length === 0) return 1;
  const L = sequences[0]!.tokens.length;
  const counted = (s: TrainingSequence) => s.targets.reduce((n, t) => n + (t >= 0 ? 1 : 0), 0);
  const c = counted(sequences[0]!);
  let k = 1;
  while (k < sequences.length && (k + 1) * L <= maxTokens && sequences[k]!.tokens.length === L && counted(sequences[k]!) === c) k++;
  return k;
}

/** The inputs of a packed step (tg.pack) from its sequences: tokens and targets one after another,
 *  positions restarting at 0, each sequence's dropout masks drawn as its own step's would be. */
export function packedInputs(tg: TrainingGraph, sequences: readonly TrainingSequence[]): Map<string, Int32Array | Float32Array> {
  const pack = tg.pack;
  if (!pack || sequences.length !== pack.sequences) throw new Error(`internal: ${sequences.length} sequences for a step packing ${pack?.sequences ?? 1}`);
  const L = pack.segment;
  const cat = <A extends Int32Array | Float32Array>(parts: A[], make: (n: number) => A): A => {
    const out = make(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  // Each sequence checked as a step of one: L tokens, ids and targets in the vocabulary.
  for (const s of sequences) checkTrainingStep({ ...tg, pack: { segment: L, sequences: 1 } }, s.tokens, s.targets);
  const inputs = new Map<string, Int32Array | Float32Array>([
    ["tokens", cat(sequences.map((s) => s.tokens), (n) => new Int32Array(n))],
    ["pos", Int32Array.from({ length: L * sequences.length }, (_, i) => i % L)],
    ["targets", cat(sequences.map((s) => s.targets), (n) => new Int32Array(n))],
  ]);
  tg.dropout.forEach((site, i) => inputs.set(site.input, cat(sequences.map((s) => dropoutMask(site, i, L, s.dropout)), (n) => new Float32Array(n))));
  return inputs;
}

/** The names of a training graph's inputs: the sequence's, then its dropout masks. */
export function trainingInputNames(tg: TrainingGraph): string[] {
  return ["tokens", "pos", "targets", ...tg.dropout.map((s) => s.input)];
}

/** Every input of one sequence's step by name: tokens, positions, targets, and the dropout masks of
 *  `dropout` (none: every element kept, as in evaluation). */
export function trainingInputs(tg: TrainingGraph, tokens: Int32Array, targets: Int32Array, positions: Int32Array, dropout?: DropoutKey): Map<string, Int32Array | Float32Array> {
  return new Map<string, Int32Array | Float32Array>([["tokens", tokens], ["pos", positions], ["targets", targets], ...dropoutInputs(tg.dropout, tokens.length, dropout)]);
}

/** The loss and gradients of one sequence: `targets[i]` is the token expected after `tokens[i]`
 *  (negative: ignored); `pos` defaults to 0 … T−1; `dropout` draws the masks (none: no dropout). */
export function cpuTrainingStep(
  tg: TrainingGraph,
  weights: ReadonlyMap<string, Float32Array>,
  tokens: Int32Array,
  targets: Int32Array,
  pos?: Int32Array,
  dropout?: DropoutKey,
): TrainingStepResult {
  const T = tokens.length;
  const positions = checkTrainingStep(tg, tokens, targets, pos);
  const inputs = new Map<string, HostTensor["data"]>(trainingInputs(tg, tokens, targets, positions, dropout));
  const weight = (name: string, shape: number[]) => {
    const w = weights.get(name);
    if (!w) throw new Error(`no weight '${name}' was given`);
    const n = shape.reduce((a, d) => a * d, 1);
    if (w.length !== n) throw new Error(`weight '${name}' has ${w.length} values, expected ${n} for shape [${shape.join(", ")}]`);
    return w;
  };
  const [loss, ...grads] = evaluateGraph(tg.graph, new Map([["T", T], ["P", 0]]), inputs, weight);
  const seen = new Set<unknown>();
  const out = new Map<string, Float32Array>();
  tg.weightNames.forEach((name, i) => {
    let data = grads[i]!.data as Float32Array;
    // Passes may merge equal gradients (zeros) into one value; each name gets its own array.
    if (seen.has(data)) data = data.slice();
    seen.add(data);
    out.set(name, data);
  });
  return { loss: loss!.data[0]!, grads: out };
}

/** Every weight of a training graph with its shape, in weightNames order. */
export function trainingWeightShapes(tg: TrainingGraph): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const n of tg.graph.nodes) {
    if (n.op !== "weight") continue;
    shapes.set(n.attrs["name"] as string, n.ty.shape.map((d) => evalDim(d, new Map())));
  }
  return new Map(tg.weightNames.map((name) => [name, shapes.get(name)!]));
}

/** The weights a model declares (IR names; a tied weight is its target) with their shapes. */
export function modelWeightShapes(model: ResolvedModel): Map<string, number[]> {
  return new Map(modelTensors(model).map((t) => [t.irName, [...t.shape]]));
}

/** The random initial weights `llmc init-weights` writes for a seed, as fresh arrays (init.ts). */
export { initialWeights } from "../weights/init.js";

/** A GGUF or safetensors file's weights as f32 arrays the caller owns (dequantized, transforms applied). */
export async function loadWeightsF32(model: ResolvedModel, path: string, opts: LoadOptions = {}): Promise<Map<string, Float32Array>> {
  const loaded = await loadModelWeights(model, path, opts);
  try {
    return new Map(loaded.names().map((name) => [name, loaded.f32(name).slice()]));
  } finally {
    await loaded.close();
  }
}

// A checkpoint is two files: the weights, an ordinary f32 GGUF model file (`out.gguf`, loadable by
// llama.cpp and `llmc run`), and beside it the training state (`out.optim`): the optimiser's step
// count and moments, the data order (seed, epoch, position), the loss curves, and the exact values
// of weights whose GGUF transform does not round-trip. The state file is a GGUF container too —
// metadata and named f32 tensors are all it needs — written and read by the same code as models.
// Both files record the step, so a mismatched pair is refused.

import { dirname, basename, join } from "node:path";
import { openGGUF } from "../runtime/weights/gguf-reader.js";
import { meta, writeGGUF, type GGUFMetadataEntry, type GGUFTensorInput } from "../runtime/weights/gguf-writer.js";
import type { OptimizerKind, Tensors } from "./optimizer.js";
import type { TrainingModel } from "./model.js";
import type { TrainState } from "./train.js";

export const STATE_KEYS = {
  kind: "general.architecture",
  step: "llmc.train.step",
  optimizer: "llmc.train.optimizer",
  optimizerStep: "llmc.train.optimizer_step",
  seed: "llmc.train.seed",
  epoch: "llmc.train.epoch",
  cursor: "llmc.train.cursor",
  trainSteps: "llmc.train.history.train_step",
  trainLoss: "llmc.train.history.train_loss",
  valSteps: "llmc.train.history.val_step",
  valLoss: "llmc.train.history.val_loss",
  settings: "llmc.train.settings",
} as const;

const STATE_KIND = "llmc-train-state";
/** Tensors of the state file: `<slot>.<weight>` for optimiser slots, `exact.<weight>` for exact weights. */
const EXACT_SLOT = "exact";

/** The training-state file beside a checkpoint's weights: out.gguf → out.optim. */
export function statePath(weightsPath: string): string {
  const name = basename(weightsPath).replace(/\.gguf$/i, "");
  return join(dirname(weightsPath), `${name}.optim`);
}

/** The loss plot beside a model: out.gguf → out.loss.svg. */
export function plotPath(weightsPath: string): string {
  return join(dirname(weightsPath), `${basename(weightsPath).replace(/\.gguf$/i, "")}.loss.svg`);
}

/** Writes the weights and the state beside them. `settings` (the run's flags) are kept for the record. */
export async function writeCheckpoint(path: string, model: TrainingModel, params: Tensors, state: TrainState, settings: object = {}): Promise<void> {
  const tensors: GGUFTensorInput[] = [];
  for (const [slot, values] of state.optimizer.slots) {
    for (const [name, v] of values) tensors.push({ name: `${slot}.${name}`, shape: model.shapes.get(name)!, dtype: "f32", data: v.slice() });
  }
  for (const name of model.inexact) tensors.push({ name: `${EXACT_SLOT}.${name}`, shape: model.shapes.get(name)!, dtype: "f32", data: params.get(name)!.slice() });
  const metadata: GGUFMetadataEntry[] = [
    meta.string(STATE_KEYS.kind, STATE_KIND),
    meta.uint64(STATE_KEYS.step, state.step),
    meta.string(STATE_KEYS.optimizer, state.optimizer.kind),
    meta.uint64(STATE_KEYS.optimizerStep, state.optimizer.step),
    meta.uint32(STATE_KEYS.seed, state.data.seed),
    meta.uint64(STATE_KEYS.epoch, state.data.epoch),
    meta.uint64(STATE_KEYS.cursor, state.data.cursor),
    meta.array(STATE_KEYS.trainSteps, "uint32", state.history.train.map(([s]) => s)),
    meta.array(STATE_KEYS.trainLoss, "float64", state.history.train.map(([, l]) => l)),
    meta.array(STATE_KEYS.valSteps, "uint32", state.history.val.map(([s]) => s)),
    meta.array(STATE_KEYS.valLoss, "float64", state.history.val.map(([, l]) => l)),
    meta.string(STATE_KEYS.settings, JSON.stringify(settings)),
  ];
  // The state first: a weights file is only ever paired with the state of its own step or a later one's.
  await writeGGUF(statePath(path), { metadata, tensors });
  await model.save(path, params, [meta.uint64(STATE_KEYS.step, state.step)]);
}

/** Reading a checkpoint failed: the message names the file and what to do. */
export class CheckpointError extends Error {}

export interface SavedState {
  state: TrainState;
  /** Exact values of weights whose GGUF transform is not exact (copy them over the loaded weights). */
  exact: Tensors;
  settings: Record<string, unknown>;
}

/** Reads the state beside a checkpoint's weights and checks it belongs to them. */
export async function readCheckpointState(path: string): Promise<SavedState> {
  const file = statePath(path);
  let weightsStep: unknown;
  try {
    const w = await openGGUF(path);
    weightsStep = w.metadata[STATE_KEYS.step];
    await w.close();
  } catch (e) {
    throw new CheckpointError(`--resume ${path}: cannot read the checkpoint's weights (${(e as Error).message})`);
  }
  let g;
  try {
    g = await openGGUF(file);
  } catch (e) {
    throw new CheckpointError(`--resume ${path}: cannot read its training state ${file} (${(e as Error).message}); resume from a file that llmc train wrote, with its .optim file beside it`);
  }
  try {
    const m = g.metadata;
    if (m[STATE_KEYS.kind] !== STATE_KIND) throw new CheckpointError(`${file} is not an llmc training state (general.architecture is ${JSON.stringify(m[STATE_KEYS.kind])})`);
    const step = Number(m[STATE_KEYS.step]);
    if (weightsStep === undefined || Number(weightsStep) !== step) {
      throw new CheckpointError(
        `--resume ${path}: the weights are of step ${weightsStep === undefined ? "(none recorded)" : String(weightsStep)} but ${file} is of step ${step}; the pair was not written together`,
      );
    }
    const slots = new Map<string, Tensors>();
    const exact: Tensors = new Map();
    for (const name of g.tensors.keys()) {
      const dot = name.indexOf(".");
      const slot = name.slice(0, dot);
      const values = await g.readTensorF32(name);
      if (slot === EXACT_SLOT) exact.set(name.slice(dot + 1), values);
      else {
        if (!slots.has(slot)) slots.set(slot, new Map());
        slots.get(slot)!.set(name.slice(dot + 1), values);
      }
    }
    const numbers = (key: string) => ((m[key] as unknown[] | undefined) ?? []).map(Number);
    const pairs = (stepsKey: string, lossKey: string): [number, number][] => {
      const losses = numbers(lossKey);
      return numbers(stepsKey).map((s, i) => [s, losses[i]!]);
    };
    let settings: Record<string, unknown> = {};
    try {
      settings = JSON.parse(String(m[STATE_KEYS.settings] ?? "{}")) as Record<string, unknown>;
    } catch {
      // The settings are a record for people; a damaged one does not stop a resume.
    }
    return {
      state: {
        step,
        optimizer: { kind: String(m[STATE_KEYS.optimizer]) as OptimizerKind, step: Number(m[STATE_KEYS.optimizerStep]), slots },
        data: { seed: Number(m[STATE_KEYS.seed]), epoch: Number(m[STATE_KEYS.epoch]), cursor: Number(m[STATE_KEYS.cursor]) },
        history: { train: pairs(STATE_KEYS.trainSteps, STATE_KEYS.trainLoss), val: pairs(STATE_KEYS.valSteps, STATE_KEYS.valLoss) },
      },
      exact,
      settings,
    };
  } finally {
    await g.close();
  }
}

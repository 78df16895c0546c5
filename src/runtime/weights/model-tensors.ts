// The tensors a resolved model declares, one per IR weight ("embed", "layers.3.wq"), with the name
// and transforms each has in a GGUF or Hugging Face file. The loader, `llmc init-weights` and the
// tests all walk the model's weights through this one list.

import type { ResolvedModel, TensorTransform, WeightField } from "../../compiler/check/model.js";
import { declaredNames } from "../../compiler/import/architectures.js";

/** The naming scheme of a weight file: llama.cpp's GGUF names or Hugging Face's safetensors names. */
export type NameScheme = "gguf" | "hf";

export interface ModelTensor {
  /** The IR's name: "embed", "layers.3.wq". */
  readonly irName: string;
  /** Declared shape, row-major ([out, in] for a matrix). */
  readonly shape: readonly number[];
  readonly field: WeightField;
  /** The layer index for a tensor of a group, null for a top-level one. */
  readonly layer: number | null;
}

export interface FileTensorName {
  readonly name: string;
  /** Applied in order when loading; their inverses in reverse order when writing. */
  readonly transforms: readonly TensorTransform[];
}

/** Every tensor the model reads from a file, in declaration order; tied weights are not among them (see tiedWeights). */
export function modelTensors(model: ResolvedModel): ModelTensor[] {
  const out: ModelTensor[] = [];
  for (const w of model.weights.values()) {
    if ("count" in w) {
      for (let i = 0; i < w.count; i++) {
        for (const f of w.fields.values()) out.push({ irName: `${w.name}.${i}.${f.name}`, shape: f.shape, field: f, layer: i });
      }
    } else if (!w.tiedTo) {
      out.push({ irName: w.name, shape: w.shape, field: w, layer: null });
    }
  }
  return out;
}

/** Tied weights: name → the weight it is (the IR refers to a tied weight by its target's name). */
export function tiedWeights(model: ResolvedModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const w of model.weights.values()) if (!("count" in w) && w.tiedTo) out.set(w.name, w.tiedTo);
  return out;
}

/** The tensor's name and transforms in a file of the given scheme, or null when the .llm gives it no such name. */
export function fileTensorName(t: ModelTensor, scheme: NameScheme): FileTensorName | null {
  const fn = scheme === "gguf" ? t.field.gguf : t.field.hf;
  if (!fn) return null;
  const name = t.layer === null ? fn.pattern : fn.pattern.replace(/\{i\}/g, String(t.layer));
  return { name, transforms: fn.transforms };
}

/**
 * The `general.architecture` of the model's GGUF files: the first gguf name of the nearest model in
 * its extends chain that declares one (Mistral is "llama"). `known` is false when none declares one;
 * the name is then that of the chain's base model.
 */
export function ggufArchitecture(model: ResolvedModel): { name: string; known: boolean } {
  const names = declaredNames(model, "gguf");
  return names.length > 0 ? { name: names[0]!, known: true } : { name: model.chain[0]?.name.name ?? model.name, known: false };
}

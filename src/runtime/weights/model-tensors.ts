// The tensors a resolved model declares, one per IR weight ("embed", "layers.3.wq"), with the name
// and transforms each has in a GGUF or Hugging Face file. The loader, `llmc init-weights` and the
// tests all walk the model's weights through this one list; the writers group them into the file's
// tensors (fileTensors: a fused tensor holds several weights).

import type { ResolvedModel, TensorTransform, WeightField } from "../../compiler/check/model.js";
import { declaredNames } from "../../compiler/import/architectures.js";
import { applyStoreTransforms } from "./transforms.js";

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

/** A tensor of a file and the weights it holds: one, or several that each read rows of it (`|> rows(start, count)`). */
export interface FileTensor {
  readonly name: string;
  /** Row-major, as in the file: a fused tensor's rows are its parts' rows, in order. */
  readonly shape: readonly number[];
  readonly parts: readonly FilePart[];
}

export interface FilePart {
  readonly tensor: ModelTensor;
  /** The weight's first row in the file tensor (0 unless it reads rows of a fused one). */
  readonly start: number;
  readonly transforms: readonly TensorTransform[];
}

/**
 * The tensors a file of the scheme holds for these weights (modelTensors, or a subset), a fused one
 * once with every weight that reads rows of it. Throws `fail(problem, name)` for a weight the scheme
 * gives no name, or rows that do not split their file tensor exactly.
 */
export function fileTensors(tensors: readonly ModelTensor[], scheme: NameScheme, fail: (problem: string, name: string) => Error): FileTensor[] {
  const byName = new Map<string, FilePart[]>();
  for (const t of tensors) {
    const fn = fileTensorName(t, scheme);
    if (!fn) throw fail(`weight '${t.irName}' has no ${scheme} name`, t.irName);
    const rows = fn.transforms[0]?.name === "rows" ? fn.transforms[0] : null;
    const part = { tensor: t, start: rows ? (rows.args[0]!.value as number) : 0, transforms: fn.transforms };
    byName.set(fn.name, [...(byName.get(fn.name) ?? []), part]);
  }
  return [...byName].map(([name, parts]) => {
    if (parts.length === 1 && parts[0]!.start === 0) return { name, shape: parts[0]!.tensor.shape, parts };
    const sorted = [...parts].sort((a, b) => a.start - b.start);
    let rows = 0;
    for (const p of sorted) {
      const same = p.transforms[0]?.name === "rows" && sameShape(p.tensor.shape.slice(1), sorted[0]!.tensor.shape.slice(1));
      if (!same || p.start !== rows) {
        throw fail(`the weights ${sorted.map((q) => `'${q.tensor.irName}'`).join(", ")} do not split it exactly: each needs rows(start, count) with the next start where the last ended, and rows of one size`, name);
      }
      rows += p.tensor.shape[0]!;
    }
    return { name, shape: [rows, ...sorted[0]!.tensor.shape.slice(1)], parts: sorted };
  });
}

/** A file tensor's values as the file holds them: each part's values through its inverse transforms, at its rows. */
export function storedValues(ft: FileTensor, values: (t: ModelTensor) => Float32Array, fail: (problem: string, t: ModelTensor) => Error): Float32Array {
  const stored = (p: FilePart) => applyStoreTransforms(values(p.tensor), p.tensor.shape, p.transforms, (problem) => fail(problem, p.tensor));
  if (ft.parts.length === 1 && ft.parts[0]!.start === 0) return stored(ft.parts[0]!);
  const rowLength = ft.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(ft.shape[0]! * rowLength);
  for (const p of ft.parts) out.set(stored(p), p.start * rowLength);
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
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

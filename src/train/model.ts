// The model a run trains: its compiled architecture, its weights as f32 parameters by IR name, its
// tokenizer, and what it takes to write the weights back as a GGUF file llama.cpp and `llmc run`
// load (the source file's metadata, vocabulary included, and any tensors the .llm does not declare,
// such as rope_freqs.weight).
//
// - MODEL.gguf: fine-tuning; the architecture the file names (or --arch), the file's weights.
// - FILE.llm: training from scratch; the weights, metadata and vocabulary `llmc init-weights` writes
//   (the same code, into a temporary file), so the result is what init-weights then training gives.
// - Resuming: the architecture as above, the weights of the checkpoint.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileTrainingFile, type TrainingGraph } from "../compiler/autodiff/index.js";
import { formatDiagnostic } from "../compiler/base/diagnostics.js";
import type { CheckOptions } from "../compiler/check/index.js";
import type { ResolvedModel } from "../compiler/check/model.js";
import { GENERAL_KEYS, GGUF_FILE_TYPES } from "../compiler/import/gguf-keys.js";
import { sanitizeModelName, writeLlm } from "../compiler/import/write-llm.js";
import { bundledModelsDir } from "../paths.js";
import { InputError } from "../runtime/generate/errors.js";
import { readModelSource } from "../runtime/generate/source.js";
import { tokenizerFromGGUF, type Tokenizer } from "../runtime/tokenizer/index.js";
import { openGGUF, type GGUFFile, type GGUFScalar, type GGUFScalarType } from "../runtime/weights/gguf-reader.js";
import { meta, writeGGUF, type GGUFMetadataEntry, type GGUFTensorInput } from "../runtime/weights/gguf-writer.js";
import { initWeights } from "../runtime/weights/init.js";
import type { GGUFVocab } from "../runtime/weights/vocab.js";
import { loadModelWeights } from "../runtime/weights/loader.js";
import { fileTensorName, fileTensors, modelTensors, storedValues, type ModelTensor } from "../runtime/weights/model-tensors.js";
import type { Tensors } from "./optimizer.js";

export interface TrainingModel {
  model: ResolvedModel;
  /** The forward graph with a cross-entropy head, differentiated: outputs the loss and each weight's gradient. */
  training: TrainingGraph;
  tokenizer: Tokenizer;
  /** The trained weights by IR name, f32, updated in place by the optimiser. */
  params: Tensors;
  shapes: Map<string, readonly number[]>;
  /**
   * Weights the graph reads but the run does not train: optional tensors the file lacks (zeros, as the
   * loader gives them), which are not written back either.
   */
  frozen: Tensors;
  /**
   * Weights whose file transforms do not round-trip f32 values exactly (`add(c)`): a checkpoint keeps
   * their exact values beside the file so a resumed run continues bit for bit.
   */
  inexact: string[];
  /** Writes the weights as an f32 GGUF with the source file's metadata and `extra` entries. */
  save(path: string, params: Tensors, extra?: readonly GGUFMetadataEntry[]): Promise<void>;
}

export interface OpenTrainingModelOptions {
  /** A .llm architecture for a GGUF file (--arch). */
  arch?: string;
  /** Config values (--set). */
  overrides?: ReadonlyMap<string, string>;
  /** The random seed of a from-scratch start (default 0). */
  seed?: number;
  /** Start from these weights instead (a checkpoint written by a run of the same model). */
  weights?: string;
  /** A tokenizer to use instead of the file's own (--tokenizer). */
  tokenizer?: Tokenizer;
  /** From scratch (.llm): the vocabulary of the new model file, instead of init-weights' default. */
  vocab?: GGUFVocab;
}

export async function openTrainingModel(path: string, opts: OpenTrainingModelOptions = {}): Promise<TrainingModel> {
  const overrides = opts.overrides ?? new Map<string, string>();
  if (path.endsWith(".llm")) {
    const compiled = compileTraining(path, path, { overrides });
    if (opts.weights !== undefined) return fromWeightFile(compiled, opts.weights, opts.tokenizer);
    const dir = await mkdtemp(join(tmpdir(), "llmc-train-"));
    try {
      const init = join(dir, "init.gguf");
      await initWeights(compiled.model, init, { seed: opts.seed ?? 0, ...(opts.vocab ? { vocab: opts.vocab } : {}) });
      return await fromWeightFile(compiled, init, opts.tokenizer);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const source = await readModelSource(path, opts.arch !== undefined ? { arch: opts.arch } : {});
  if (source.format !== "gguf") throw new InputError(`${path}: training reads and writes GGUF files; convert the model with llama.cpp's convert_hf_to_gguf.py first`);
  // The .llm text `llmc import` would write for the file, compiled from memory among the bundled
  // models (as the runtime's compileArchitecture does), so its imports resolve.
  const modelName = sanitizeModelName(source.name, source.imported.arch);
  const root = join(bundledModelsDir(), "imported", `${modelName}.llm`);
  const overlay = new Map([[root, writeLlm(source.imported, { source: path, modelName })]]);
  const compiled = compileTraining(root, path, { overrides, overlay });
  return fromWeightFile(compiled, opts.weights ?? path, opts.tokenizer);
}

/** The checked model and its training graph; the compiler's diagnostics as an InputError. */
function compileTraining(file: string, shown: string, opts: CheckOptions): { model: ResolvedModel; training: TrainingGraph } {
  let res;
  try {
    res = compileTrainingFile(file, opts);
  } catch (e) {
    // A model whose graph has an op without a gradient rule cannot be trained (yet).
    throw new InputError(`${shown}: cannot build the model's training graph: ${(e as Error).message}`);
  }
  if (!res.training || !res.model) {
    const errors = res.diagnostics.filter((d) => d.severity === "error");
    throw new InputError(`${shown}: the model does not compile:\n\n${errors.map((d) => formatDiagnostic(d, res.sources)).join("\n\n")}`, {
      list: errors,
      sources: res.sources,
    });
  }
  return { model: res.model, training: res.training };
}

async function fromWeightFile(compiled: { model: ResolvedModel; training: TrainingGraph }, path: string, tokenizer: Tokenizer | undefined): Promise<TrainingModel> {
  const file = await openGGUF(path);
  let fileMetadata: GGUFMetadataEntry[];
  let undeclared: GGUFTensorInput[];
  let present: Set<string>;
  try {
    fileMetadata = metadataEntries(file);
    const declared = new Set(modelTensors(compiled.model).map((t) => fileTensorName(t, "gguf")?.name));
    undeclared = await undeclaredTensors(file, declared);
    present = new Set(file.tensors.keys());
  } finally {
    await file.close();
  }
  const tok = tokenizer ?? tokenizerFromGGUF(Object.fromEntries(fileMetadata.map((e) => [e.key, e.value])));
  const vocabSize = compiled.model.config.get("vocab_size")?.value?.value;
  if (typeof vocabSize === "number" && tok.vocabSize > vocabSize) {
    throw new InputError(`the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${vocabSize}`);
  }

  const weights = await loadModelWeights(compiled.model, path, { format: "gguf" });
  const params: Tensors = new Map();
  const shapes = new Map<string, readonly number[]>();
  const frozen: Tensors = new Map();
  const written: ModelTensor[] = [];
  const inexact: string[] = [];
  try {
    for (const t of modelTensors(compiled.model)) {
      const fn = fileTensorName(t, "gguf")!; // the loader has checked every tensor has one
      // A copy: the loader caches its values, and training changes them.
      const values = weights.f32(t.irName).slice();
      if (!present.has(fn.name)) {
        frozen.set(t.irName, values);
        continue;
      }
      params.set(t.irName, values);
      shapes.set(t.irName, t.shape);
      written.push(t);
      if (fn.transforms.some((tr) => tr.name === "add")) inexact.push(t.irName);
    }
  } finally {
    await weights.close();
  }

  const save = async (out: string, values: Tensors, extra: readonly GGUFMetadataEntry[] = []) => {
    const extraKeys = new Set(extra.map((e) => e.key));
    const metadata = fileMetadata
      .filter((e) => !extraKeys.has(e.key) && e.key !== GENERAL_KEYS.quantizationVersion)
      .map((e) => (e.key === GENERAL_KEYS.fileType ? meta.uint32(e.key, GGUF_FILE_TYPES.f32) : e));
    // A fused file tensor (`|> rows`) is written once, its parts stacked.
    const tensors: GGUFTensorInput[] = fileTensors(written, "gguf", (p) => new Error(p)).map((ft) => ({
      name: ft.name,
      shape: ft.shape,
      dtype: "f32",
      data: () => storedValues(ft, (t) => values.get(t.irName)!, (p, t) => new Error(`weight '${t.irName}': ${p}`)),
    }));
    await writeGGUF(out, { metadata: [...metadata, ...extra], tensors: [...tensors, ...undeclared] });
  };
  return { model: compiled.model, training: compiled.training, tokenizer: tok, params, shapes, frozen, inexact, save };
}

/** The file's metadata as writable entries, with the types it was read with. */
function metadataEntries(file: GGUFFile): GGUFMetadataEntry[] {
  const out: GGUFMetadataEntry[] = [];
  for (const [key, value] of Object.entries(file.metadata)) {
    const info = file.metadataTypes.get(key);
    if (!info) continue;
    if (info.type === "array") {
      // Nested arrays do not occur in model files; llama.cpp does not read them either.
      if (!info.elementType || info.elementType === "array") continue;
      out.push(meta.array(key, info.elementType as GGUFScalarType, value as GGUFScalar[]));
    } else {
      out.push({ key, type: info.type, value: value as GGUFScalar });
    }
  }
  return out;
}

/** Tensors of the file the model does not declare (rope_freqs.weight), copied as they are. */
async function undeclaredTensors(file: GGUFFile, declared: ReadonlySet<string | undefined>): Promise<GGUFTensorInput[]> {
  const out: GGUFTensorInput[] = [];
  for (const info of file.tensors.values()) {
    if (declared.has(info.name) || info.dtype === null) continue;
    out.push({ name: info.name, shape: info.shape, dtype: info.dtype, data: await file.readTensorBytes(info.name) });
  }
  return out;
}

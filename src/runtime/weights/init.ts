// Random weights for a .llm model, each drawn by its initialiser (an `init` clause or the language's
// default), written as a GGUF file llama.cpp can load (`llmc init-weights`): every tensor under its GGUF name with the inverse of its GGUF transforms applied (so loading it
// gives back the random values; weights that share a fused tensor are stacked in it), the hyper-parameters under the GGUF keys the .llm declares (the
// keys `llmc import` reads), and a real SentencePiece vocabulary (vocab.ts).

import { stat } from "node:fs/promises";
import type { InitDistribution, ResolvedModel } from "../../compiler/check/model.js";
import { ggufKeyValues } from "../../compiler/import/config-keys.js";
import { GENERAL_KEYS, GGML_QUANTIZATION_VERSION, GGUF_FILE_TYPES, ROPE_FREQS_TENSOR } from "../../compiler/import/gguf-keys.js";
import { DTYPES, type StorageDType } from "../../compiler/target/storage.js";
import { WeightFileError } from "./errors.js";
import { meta, writeGGUF, type GGUFMetadataEntry, type GGUFTensorInput, type WriteProgress } from "./gguf-writer.js";
import { fileTensorName, fileTensors, ggufArchitecture, modelTensors, storedValues, type ModelTensor } from "./model-tensors.js";
import { normal, tensorStream } from "./random.js";
import { storableF32 } from "./transforms.js";
import { ggufVocabMetadata, trainSentencePieceVocab, type GGUFVocab } from "./vocab.js";

export interface InitWeightsOptions {
  /** Storage type of the matrices (1-D tensors stay f32, as llama.cpp keeps them). Default f32. */
  dtype?: StorageDType;
  /** Default 0. */
  seed?: number;
  /** general.name; default the model's name. */
  name?: string;
  /** The vocabulary to write (e.g. a trained tokenizer.json's); default one trained on a bundled text. */
  vocab?: GGUFVocab;
  /** Adds normal(0, perturb) noise to every weight after its initialiser (default 0). For test
   *  models: zero biases and unit norm gains would hide a dropped bias or gain. */
  perturb?: number;
  onProgress?: (progress: WriteProgress) => void;
}

export interface InitWeightsSummary {
  path: string;
  /** general.architecture */
  architecture: string;
  tensors: number;
  /** Size of the file. */
  bytes: number;
  /** How many tensors of each storage type. */
  dtypes: Partial<Record<StorageDType, number>>;
  vocab: { model: GGUFVocab["model"]; size: number; specials: number; learned: number; byteFallback: boolean };
  /** Things the user should know (fallback types, an architecture llama.cpp does not know). */
  notes: string[];
}

const QUANTIZED: ReadonlySet<StorageDType> = new Set(["q8_0", "q4_0"]);

/**
 * `count` values drawn from a distribution by the tensor's own stream (random.ts), so they do not
 * depend on which other tensors exist or the order they are drawn in.
 */
export function drawTensor(name: string, count: number, dist: InitDistribution, seed: number): Float32Array {
  const out = new Float32Array(count);
  switch (dist.kind) {
    case "constant":
      out.fill(dist.value);
      break;
    case "normal": {
      const gauss = normal(tensorStream(name, seed));
      for (let i = 0; i < count; i++) out[i] = dist.mean + dist.std * gauss();
      break;
    }
    case "uniform": {
      const rand = tensorStream(name, seed);
      const width = dist.high - dist.low;
      for (let i = 0; i < count; i++) out[i] = dist.low + width * rand();
      break;
    }
  }
  return out;
}

/**
 * The values `llmc init-weights` gives an IR weight: drawn by its initialiser (its `init` clause or
 * the default) from its own stream (irName and seed), nudged where the GGUF transform is not exact at
 * f32 (add(c)) to the nearest value that round-trips, so a file written at f32 loads back exactly
 * these values.
 */
export function randomModelWeight(tensor: ModelTensor, seed: number, perturb = 0): Float32Array {
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  const values = drawTensor(tensor.irName, count, tensor.field.init.distribution, seed);
  if (perturb > 0) {
    const noise = drawTensor(`${tensor.irName}#perturb`, count, { kind: "normal", mean: 0, std: perturb }, seed);
    for (let i = 0; i < count; i++) values[i]! += noise[i]!;
  }
  const fn = fileTensorName(tensor, "gguf");
  if (!fn) return values;
  return storableF32(values, tensor.shape, fn.transforms, (p) => new Error(`weight '${tensor.irName}': ${p}`));
}

/**
 * A fresh model's weights by IR name ("embed", "layers.3.wq"): what initWeights writes for this seed.
 * Tied weights are not among them; they are their target (model-tensors.ts, tiedWeights).
 */
export function initialWeights(model: ResolvedModel, seed: number, perturb = 0): Map<string, Float32Array> {
  return new Map(modelTensors(model).map((t) => [t.irName, randomModelWeight(t, seed, perturb)]));
}

/** A CPU-interpreter weight source of the same random weights that initWeights writes. */
export function randomWeightSource(model: ResolvedModel, seed: number, perturb = 0): (name: string, shape: readonly number[]) => Float32Array {
  const byName = new Map(modelTensors(model).map((t) => [t.irName, t]));
  const cache = new Map<string, Float32Array>();
  return (name) => {
    let v = cache.get(name);
    if (!v) {
      const t = byName.get(name);
      if (!t) throw new Error(`model '${model.name}' has no weight '${name}'`);
      v = randomModelWeight(t, seed, perturb);
      cache.set(name, v);
    }
    return v;
  };
}

/** The storage type of a tensor written at `requested`: 1-D tensors f32; rows that do not fill quantization blocks f16. */
export function storageDType(shape: readonly number[], requested: StorageDType): StorageDType {
  if (shape.length < 2) return "f32";
  if (shape[shape.length - 1]! % DTYPES[requested].blockSize !== 0) return "f16";
  return requested;
}

export { ggufArchitecture };

export async function initWeights(model: ResolvedModel, path: string, opts: InitWeightsOptions = {}): Promise<InitWeightsSummary> {
  const requested = opts.dtype ?? "f32";
  const seed = opts.seed ?? 0;
  const notes: string[] = [];
  const arch = ggufArchitecture(model);
  if (!arch.known) {
    notes.push(`model '${model.name}' and the models it extends declare no gguf architecture name; general.architecture is "${arch.name}", which llama.cpp may not know`);
  }
  const vocabSize = configNumber(model, "vocab_size");
  if (vocabSize === null) throw new WeightFileError(path, `model '${model.name}' has no config value vocab_size, so no vocabulary can be written`);
  let vocab: GGUFVocab;
  try {
    vocab = opts.vocab ?? trainSentencePieceVocab(vocabSize);
  } catch (cause) {
    throw new WeightFileError(path, `cannot make a vocabulary: ${(cause as Error).message}`, { cause });
  }
  if (vocab.tokens.length !== vocabSize) {
    // The embedding and output matrices have a row per token; llama.cpp refuses any other count.
    throw new WeightFileError(path, `the tokenizer has ${vocab.tokens.length} tokens but model '${model.name}' has vocab_size ${vocabSize}`, {
      hint: `Set --set vocab_size=${vocab.tokens.length}, or train the tokenizer with --vocab-size ${vocabSize}`,
    });
  }

  const tensors: GGUFTensorInput[] = [];
  const dtypes: Partial<Record<StorageDType, number>> = {};
  let fellBack = 0;
  const inFile = fileTensors(modelTensors(model), "gguf", (problem, name) =>
    new WeightFileError(path, `model '${model.name}': ${problem}, so it cannot be written to a GGUF file`, {
      tensor: name,
      hint: `Give each weight a gguf "…" name; weights that share one tensor split its rows with rows(start, count)`,
    }));
  for (const ft of inFile) {
    const dtype = storageDType(ft.shape, requested);
    if (ft.shape.length >= 2 && dtype !== requested) fellBack++;
    dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
    const fail = (problem: string, t: ModelTensor) => new WeightFileError(path, `${problem} (model weight '${t.irName}')`, { tensor: ft.name });
    tensors.push({
      name: ft.name,
      shape: ft.shape,
      dtype,
      data: () => storedValues(ft, (t) => randomModelWeight(t, seed, opts.perturb ?? 0), fail),
    });
  }
  if (fellBack > 0) notes.push(`${fellBack} matrices whose rows are not a multiple of ${DTYPES[requested].blockSize} are stored as f16`);
  const extra = extraTensors(model, tensors);
  for (const t of extra) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
  tensors.push(...extra);

  const metadata = [
    ...generalMetadata(model, arch.name, requested, opts.name),
    ...hparamMetadata(model, arch.name, new Set(tensors.map((t) => t.name))),
    ...ggufVocabMetadata(vocab),
  ];
  await writeGGUF(path, { metadata, tensors, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  return {
    path,
    architecture: arch.name,
    tensors: tensors.length,
    bytes: (await stat(path)).size,
    dtypes,
    vocab: { model: vocab.model, size: vocab.tokens.length, specials: vocab.specials, learned: vocab.learned, byteFallback: vocab.bytes > 0 },
    notes,
  };
}

function configValue(model: ResolvedModel, name: string): number | boolean | string | null {
  return model.config.get(name)?.value?.value ?? null;
}

function configNumber(model: ResolvedModel, name: string): number | null {
  const v = configValue(model, name);
  return typeof v === "number" ? v : null;
}

function generalMetadata(model: ResolvedModel, arch: string, requested: StorageDType, name: string | undefined): GGUFMetadataEntry[] {
  const out = [meta.string(GENERAL_KEYS.architecture, arch), meta.string(GENERAL_KEYS.name, name ?? model.name)];
  const fileType = (GGUF_FILE_TYPES as Partial<Record<StorageDType, number>>)[requested];
  if (fileType !== undefined) out.push(meta.uint32(GENERAL_KEYS.fileType, fileType));
  if (QUANTIZED.has(requested)) out.push(meta.uint32(GENERAL_KEYS.quantizationVersion, GGML_QUANTIZATION_VERSION));
  return out;
}

/** The config values under the GGUF keys the .llm declares: ints as uint32 (int64 if they do not fit), f32 as float32. */
function hparamMetadata(model: ResolvedModel, arch: string, tensors: ReadonlySet<string>): GGUFMetadataEntry[] {
  return ggufKeyValues(model, arch, tensors).map(({ key, value: v }) => {
    switch (v.type) {
      case "int":
        return (v.value as number) >= 0 && (v.value as number) < 2 ** 32 ? meta.uint32(key, v.value as number) : meta.int64(key, v.value as number);
      case "f32":
        return meta.float32(key, v.value as number);
      case "bool":
        return meta.bool(key, v.value as boolean);
      case "str":
        return meta.string(key, v.value as string);
    }
  });
}

/**
 * Tensors llama.cpp needs that the .llm does not declare: LLaMA 3.1 scaling (rope_scaling "llama3",
 * which llmc computes from the config) is carried in GGUF files as the per-frequency divisors
 * rope_freqs.weight, computed as llama.cpp's converter does.
 */
function extraTensors(model: ResolvedModel, declared: GGUFTensorInput[]): GGUFTensorInput[] {
  if (configValue(model, "rope_scaling") !== "llama3" || declared.some((t) => t.name === ROPE_FREQS_TENSOR)) return [];
  const dim = configNumber(model, "dim");
  const heads = configNumber(model, "n_heads");
  const headDim = configNumber(model, "head_dim") ?? (dim !== null && heads !== null ? Math.trunc(dim / heads) : null);
  if (headDim === null) return [];
  const factors = llama3RopeFactors(headDim, {
    theta: configNumber(model, "rope_theta") ?? 10000,
    factor: configNumber(model, "rope_factor") ?? 8,
    lowFreqFactor: configNumber(model, "rope_low_freq_factor") ?? 1,
    highFreqFactor: configNumber(model, "rope_high_freq_factor") ?? 4,
    originalMaxPos: configNumber(model, "rope_original_max_pos") ?? 8192,
  });
  return [{ name: ROPE_FREQS_TENSOR, shape: [factors.length], dtype: "f32", data: factors }];
}

export interface Llama3RopeScaling {
  theta: number;
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPos: number;
}

/** The divisor of each RoPE frequency under LLaMA 3.1 scaling (llama.cpp's rope_freqs.weight). */
export function llama3RopeFactors(headDim: number, s: Llama3RopeScaling): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowFreqWavelen = s.originalMaxPos / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPos / s.highFreqFactor;
  for (let j = 0; j < out.length; j++) {
    const freq = Math.fround(1 / Math.fround(s.theta ** ((2 * j) / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) out[j] = 1;
    else if (wavelen > lowFreqWavelen) out[j] = s.factor;
    else {
      const smooth = (s.originalMaxPos / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[j] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

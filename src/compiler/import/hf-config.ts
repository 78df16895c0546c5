// Hugging Face config.json → config values of the .llm architecture that declares its `model_type`
// (or the one given with --arch). Each config value comes from the keys its .llm declares
// (config-keys.ts), with transformers' defaults for keys a config.json may leave out written as the
// clauses' `else`, so the .llm file says what the checkpoint was trained with. Given the
// checkpoint's tensor shapes, the sizes are checked against them.

import { acceptedNames, findArchitecture, supportedNames, type Architecture } from "./architectures.js";
import { readConfig } from "./config-keys.js";
import type { TensorShapes } from "./tensor-check.js";
import { ImportError, type ImportedModel } from "./write-llm.js";

/** Keys every transformers config may hold (PretrainedConfig's own), none of which changes the computation. */
const FORMAT_KEYS = new Set([
  "_name_or_path", "architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "bos_token_id", "eos_token_id",
  "pad_token_id", "sep_token_id", "decoder_start_token_id", "use_cache", "initializer_range", "return_dict", "output_hidden_states",
  "output_attentions", "torchscript", "tokenizer_class", "auto_map", "task_specific_params", "id2label", "label2id", "problem_type",
  "is_encoder_decoder", "is_decoder", "add_cross_attention", "tie_encoder_decoder", "chunk_size_feed_forward", "pruned_heads", "prefix",
  "finetuning_task",
]);

/**
 * Reads the parsed contents of a config.json. `file` names the file in messages; `tensors`, the
 * checkpoint's safetensors shapes by name (and `weights`, where they are), when the caller has them;
 * `arch`, the model to read the values for (default: the bundled one that declares its model_type).
 * Throws ImportError for an unsupported model type, a missing required key, a value of the wrong
 * kind, a requirement of the .llm the values fail, or sizes the tensors contradict.
 */
export function importHfConfig(json: unknown, file: string, tensors?: { shapes: TensorShapes; weights: string }, arch?: Architecture): ImportedModel {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ImportError(`${file}: expected a JSON object (a Hugging Face config.json)`);
  }
  const obj = json as Record<string, unknown>;
  const modelType = Object.hasOwn(obj, "model_type") ? obj["model_type"] : undefined;
  if (modelType === undefined && !arch) {
    throw new ImportError(`${file}: missing required key "model_type" (supported: ${supportedNames("hf").join(", ")})`);
  }
  const name = typeof modelType === "string" ? modelType : "";
  const architecture = arch ?? findArchitecture("hf", name);
  if (!architecture) {
    throw new ImportError(
      `${file}: unsupported model_type ${JSON.stringify(modelType)}; supported model types: ${supportedNames("hf").join(", ")} (or give a .llm that declares it: --arch FILE.llm)`,
    );
  }
  const warnings: string[] = [];
  const accepted = acceptedNames(architecture.model, "hf");
  if (arch && !accepted.includes(name)) {
    warnings.push(
      `${file}: model_type is ${JSON.stringify(modelType)}, which model '${arch.model.name}' does not declare ` +
        `(${accepted.length > 0 ? `it declares hf ${accepted.map((n) => JSON.stringify(n)).join(" | ")}` : "it declares no hf name"}); its keys are read as that model's`,
    );
  }
  const read = readConfig(architecture, {
    format: "hf",
    file,
    arch: name,
    get: (key) => path(obj, key),
    modelKeys: Object.keys(obj).filter((k) => !FORMAT_KEYS.has(k)),
    tensors: { names: new Set(tensors?.shapes.keys() ?? []), ...(tensors ? { shapes: tensors.shapes } : {}), weights: tensors?.weights ?? file },
  });
  return {
    arch: architecture.model.name,
    archImport: architecture.importPath,
    origin: `Hugging Face config.json, model_type ${JSON.stringify(modelType)}`,
    fileModelName: null,
    bindings: read.bindings,
    warnings: [...warnings, ...read.warnings],
  };
}

/** A key of config.json; `rope_scaling.factor` reads into nested objects (a null object has no keys). */
function path(obj: Record<string, unknown>, key: string): unknown {
  let at: unknown = obj;
  for (const part of key.split(".")) {
    if (typeof at !== "object" || at === null || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

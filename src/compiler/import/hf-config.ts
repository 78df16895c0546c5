// Hugging Face config.json → config values of the .llm architecture that declares its `model_type`
// (or the one given with --arch). Each config value comes from the keys its .llm declares
// (config-keys.ts), with transformers' defaults for keys a config.json may leave out written as the
// clauses' `else`, so the .llm file says what the checkpoint was trained with. Given the
// checkpoint's tensor shapes, the sizes are checked against them.

import type { ResolvedModel } from "../check/model.js";
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
  const { root, within } = keysRoot(architecture.model, obj);
  const read = readConfig(architecture, {
    format: "hf",
    file: within === null ? file : `${file} (${within})`,
    arch: name,
    get: (key) => path(root, key),
    modelKeys: Object.keys(root).filter((k) => !FORMAT_KEYS.has(k)),
    tensors: { names: new Set(tensors?.shapes.keys() ?? []), ...(tensors ? { shapes: tensors.shapes } : {}), weights: tensors?.weights ?? file },
  });
  return {
    arch: architecture.model.name,
    archImport: architecture.importPath,
    origin: `Hugging Face config.json, model_type ${JSON.stringify(modelType)}${within === null ? "" : `, keys in ${within}`}`,
    fileModelName: null,
    bindings: read.bindings,
    warnings: [...warnings, ...read.warnings],
  };
}

/**
 * Where the model's keys are: the first object a `within hf "…"` of the model (or a model it
 * extends, nearest first) names that the file has (a multimodal config.json's text_config), else
 * the top level, whose other keys (a vision tower's) the model then does not read.
 */
function keysRoot(model: ResolvedModel, obj: Record<string, unknown>): { root: Record<string, unknown>; within: string | null } {
  for (const m of [...model.chain].reverse()) {
    for (const mem of m.members) {
      if (mem.kind !== "Config") continue;
      for (const it of mem.items) {
        if (it.kind !== "KeysWithin" || it.format !== "hf") continue;
        for (const key of it.keys) {
          const v = path(obj, key);
          if (typeof v === "object" && v !== null && !Array.isArray(v)) return { root: v as Record<string, unknown>, within: key };
        }
      }
    }
  }
  return { root: obj, within: null };
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

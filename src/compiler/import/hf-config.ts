// Hugging Face config.json → config values of a bundled .llm architecture, chosen by `model_type`.
// A key the file leaves out gets the default of the transformers config class for that model type,
// written out explicitly, so the .llm file says what the checkpoint was trained with. Given the
// checkpoint's tensor shapes, the sizes are checked against them (tensor-check.ts).

import { checkConfigAgainstTensors, type TensorShapes } from "./tensor-check.js";
import { ImportError, type Arch, type ConfigBinding, type ImportedModel } from "./write-llm.js";

/** The defaults transformers' config classes use for keys a config.json may leave out. */
interface HfDefaults {
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  numKeyValueHeads: number | "num_attention_heads";
  activations: readonly string[]; // the activations this architecture's .llm file computes
  defaultActivation: string;
}

const ARCHS: Record<string, { arch: Arch; defaults: HfDefaults }> = {
  llama: {
    arch: "llama",
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      numKeyValueHeads: "num_attention_heads",
      activations: ["silu"],
      defaultActivation: "silu",
    },
  },
  mistral: {
    arch: "mistral",
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 4096 * 32,
      tieWordEmbeddings: false,
      numKeyValueHeads: 8,
      activations: ["silu"],
      defaultActivation: "silu",
    },
  },
  qwen2: {
    arch: "qwen2",
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 32768,
      tieWordEmbeddings: false,
      numKeyValueHeads: 32,
      activations: ["silu"],
      defaultActivation: "silu",
    },
  },
  gemma: {
    arch: "gemma",
    defaults: {
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 8192,
      tieWordEmbeddings: true,
      numKeyValueHeads: 16,
      // gemma.llm computes GELU with the tanh approximation.
      activations: ["gelu_pytorch_tanh", "gelu_new"],
      defaultActivation: "gelu_pytorch_tanh",
    },
  },
};

export const SUPPORTED_MODEL_TYPES = Object.keys(ARCHS);

/** The config.json key each config value comes from, for messages. */
const HF_KEYS: Record<string, string> = {
  vocab_size: "vocab_size", dim: "hidden_size", n_layers: "num_hidden_layers", n_heads: "num_attention_heads",
  n_kv_heads: "num_key_value_heads", head_dim: "head_dim", ffn_dim: "intermediate_size",
};

/**
 * Reads the parsed contents of a config.json. `file` names the file in messages; `tensors`, the
 * checkpoint's safetensors shapes by name (and `weights`, where they are), when the caller has them.
 * Throws ImportError for an unsupported model type or feature, a missing required key, a value of
 * the wrong kind, or sizes the tensors contradict.
 */
export function importHfConfig(json: unknown, file: string, tensors?: { shapes: TensorShapes; weights: string }): ImportedModel {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ImportError(`${file}: expected a JSON object (a Hugging Face config.json)`);
  }
  const r = new Reader(json as Record<string, unknown>, file);
  const modelType = r.raw("model_type");
  if (modelType === undefined) {
    throw new ImportError(`${file}: missing required key "model_type" (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`);
  }
  const entry = typeof modelType === "string" ? ARCHS[modelType] : undefined;
  if (!entry) {
    throw new ImportError(
      `${file}: unsupported model_type ${JSON.stringify(modelType)}; supported model types: ${SUPPORTED_MODEL_TYPES.join(", ")}`,
    );
  }
  const { arch, defaults } = entry;
  const b = new Bindings();

  b.int("vocab_size", r.positiveInt("vocab_size"));
  b.int("dim", r.positiveInt("hidden_size"));
  b.int("n_layers", r.positiveInt("num_hidden_layers"));
  const nHeads = r.positiveInt("num_attention_heads");
  b.int("n_heads", nHeads);
  const kvDefault = defaults.numKeyValueHeads === "num_attention_heads" ? nHeads : defaults.numKeyValueHeads;
  b.int("n_kv_heads", r.positiveInt("num_key_value_heads", kvDefault));
  // head_dim is only written when the file says it (or the class has a fixed default, as Gemma's
  // 256): otherwise the .llm default dim / n_heads is what transformers computes too.
  const headDim = r.has("head_dim") ? r.positiveInt("head_dim") : arch === "gemma" ? 256 : null;
  if (headDim !== null) b.int("head_dim", headDim);
  b.int("ffn_dim", r.positiveInt("intermediate_size"));
  b.f32("norm_eps", r.positiveNumber("rms_norm_eps", defaults.rmsNormEps));

  // transformers 5 moves rope_theta and the scaling into one `rope_parameters` dict.
  const ropeParams = r.has("rope_parameters") ? r.object("rope_parameters") : null;
  const ropeTheta = ropeParams && "rope_theta" in ropeParams ? ropeParams["rope_theta"] : undefined;
  b.f32("rope_theta", ropeTheta !== undefined ? r.positiveNumberValue("rope_parameters.rope_theta", ropeTheta) : r.positiveNumber("rope_theta", defaults.ropeTheta));
  ropeScaling(ropeParams ?? (r.has("rope_scaling") ? r.object("rope_scaling") : null), ropeParams ? "rope_parameters" : "rope_scaling", file, b);

  b.int("max_seq_len", r.positiveInt("max_position_embeddings", defaults.maxPositionEmbeddings));
  b.bool("tie_embeddings", r.bool("tie_word_embeddings", defaults.tieWordEmbeddings));

  const activation = r.has("hidden_activation") ? r.string("hidden_activation") : arch === "gemma" ? defaults.defaultActivation : r.string("hidden_act", defaults.defaultActivation);
  if (!defaults.activations.includes(activation)) {
    throw new ImportError(
      `${file}: activation ${JSON.stringify(activation)} is not supported by ${arch}.llm (it computes ${defaults.activations[0]})`,
    );
  }

  if (arch === "llama" || arch === "gemma") b.bool("attn_bias", r.bool("attention_bias", false));
  if (r.bool("mlp_bias", false)) throw new ImportError(`${file}: "mlp_bias": true is not supported by ${arch}.llm`);
  if (arch === "mistral") {
    // null means no window (Mistral 7B v0.2 and later); the .llm file spells that 0.
    const window = r.raw("sliding_window");
    b.int("sliding_window", window === null ? 0 : r.positiveInt("sliding_window", 4096));
  }
  if (arch === "qwen2" && r.bool("use_sliding_window", false)) {
    throw new ImportError(`${file}: "use_sliding_window": true is not supported by qwen2.llm`);
  }

  if (tensors) checkConfigAgainstTensors(b.list, tensors.shapes, { scheme: "hf", file, weights: tensors.weights, keyOf: (config) => HF_KEYS[config] ?? config });

  return { arch, origin: `Hugging Face config.json, model_type ${JSON.stringify(modelType)}`, fileModelName: null, bindings: b.list };
}

/** The `rope_scaling` dict (or transformers 5 `rope_parameters`) → rope_scaling and its factors. */
function ropeScaling(dict: Record<string, unknown> | null, key: string, file: string, b: Bindings): void {
  const type = dict ? (dict["rope_type"] ?? dict["type"] ?? "default") : "default";
  const r = new Reader(dict ?? {}, file, `${key}.`);
  switch (type) {
    case "default":
      b.enum("rope_scaling", "none");
      return;
    case "linear":
      b.enum("rope_scaling", "linear");
      b.f32("rope_factor", r.positiveNumber("factor"));
      return;
    case "llama3": {
      b.enum("rope_scaling", "llama3");
      b.f32("rope_factor", r.positiveNumber("factor"));
      const low = r.positiveNumber("low_freq_factor");
      const high = r.positiveNumber("high_freq_factor");
      if (!(high > low)) throw new ImportError(`${file}: ${key}.high_freq_factor (${high}) must be greater than low_freq_factor (${low})`);
      b.f32("rope_low_freq_factor", low);
      b.f32("rope_high_freq_factor", high);
      b.int("rope_original_max_pos", r.positiveInt("original_max_position_embeddings"));
      return;
    }
    default:
      throw new ImportError(`${file}: ${key} type ${JSON.stringify(type)} is not supported (supported: linear, llama3)`);
  }
}

class Bindings {
  readonly list: ConfigBinding[] = [];
  int(name: string, value: number): void {
    this.list.push({ name, value: { type: "int", value } });
  }
  f32(name: string, value: number): void {
    this.list.push({ name, value: { type: "f32", value } });
  }
  bool(name: string, value: boolean): void {
    this.list.push({ name, value: { type: "bool", value } });
  }
  enum(name: string, value: string): void {
    this.list.push({ name, value: { type: "enum", value } });
  }
}

/** Typed access to a JSON object's keys with messages that name the file and the key. */
class Reader {
  constructor(
    private readonly obj: Record<string, unknown>,
    private readonly file: string,
    private readonly prefix = "",
  ) {}

  raw(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.obj, key) ? this.obj[key] : undefined;
  }

  /** Present and not null (transformers treats a null value as "use the default"). */
  has(key: string): boolean {
    const v = this.raw(key);
    return v !== undefined && v !== null;
  }

  private missing(key: string): never {
    throw new ImportError(`${this.file}: missing required key "${this.prefix}${key}"`);
  }

  private wrong(key: string, what: string, v: unknown): never {
    throw new ImportError(`${this.file}: "${this.prefix}${key}" must be ${what}, got ${JSON.stringify(v)}`);
  }

  positiveInt(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.missing(key);
    const v = this.raw(key);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) this.wrong(key, "a positive integer", v);
    return v;
  }

  positiveNumber(key: string, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.missing(key);
    return this.positiveNumberValue(`${this.prefix}${key}`, this.raw(key));
  }

  positiveNumberValue(shownKey: string, v: unknown): number {
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new ImportError(`${this.file}: "${shownKey}" must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const v = this.raw(key);
    if (typeof v !== "boolean") this.wrong(key, "true or false", v);
    return v;
  }

  string(key: string, fallback?: string): string {
    if (!this.has(key)) return fallback ?? this.missing(key);
    const v = this.raw(key);
    if (typeof v !== "string") this.wrong(key, "a string", v);
    return v;
  }

  object(key: string): Record<string, unknown> {
    const v = this.raw(key);
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.wrong(key, "an object or null", v);
    return v as Record<string, unknown>;
  }
}

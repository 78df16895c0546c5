// llmc's package entry: `import { loadModel } from "llmc"`.

export {
  loadModel,
  type LoadModelOptions,
  type Logprobs,
  type Model,
  type ModelGenerateOptions,
  type TokenLogprob,
} from "./runtime/model.js";
export type { GenerateOptions, GeneratedToken } from "./runtime/generate/generate.js";
export type { SamplerOptions } from "./runtime/generate/sampler.js";
export { InputError } from "./runtime/generate/errors.js";
export { BackendError, type BackendChoice } from "./runtime/backend.js";
export { ContextOverflowError } from "./runtime/executor.js";
export { WeightFileError } from "./runtime/weights/errors.js";
export { ImportError } from "./compiler/import/write-llm.js";
export type { ChatMessage, ChatRole, ChatTemplateKind, Tokenizer } from "./runtime/tokenizer/index.js";

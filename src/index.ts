// llmc's package entry: `import { loadModel } from "llmc"`.

export {
  loadModel,
  type LoadModelOptions,
  type Logprobs,
  type LogprobsOptions,
  type Model,
  type ModelGenerateOptions,
  type PromptOptions,
  type TokenLogprob,
} from "./runtime/model.js";
export type { GenerateOptions, GeneratedToken } from "./runtime/generate/generate.js";
export type { SamplerOptions } from "./runtime/generate/sampler.js";
export type { BeamOptions } from "./runtime/generate/beam.js";
// Evaluation: perplexity of a model on a text; BLEU (sacreBLEU's) and ROUGE (rouge-score's) of outputs.
export { perplexity, type Perplexity, type PerplexityOptions } from "./eval/perplexity.js";
export { bleu, sentenceBleu, type BleuOptions, type BleuScore } from "./eval/bleu.js";
export { rouge, sentenceRouge, type RougeOptions, type RougeScore, type RougeScores, type RougeType } from "./eval/rouge.js";
// Every error the API throws on purpose. An aborted signal rejects with the signal's own reason.
export { GenerationSupersededError, InputError, ModelBusyError, ModelDisposedError, type ModelCall } from "./runtime/generate/errors.js";
export { BackendError, type BackendChoice } from "./runtime/backend.js";
export { ContextOverflowError } from "./runtime/executor.js";
export { ResourceError } from "./runtime/errors.js";
export { WeightFileError } from "./runtime/weights/errors.js";
export { ImportError } from "./compiler/import/write-llm.js";
export { WebGpuError } from "./runtime/webgpu/errors.js";
export { CudaError, CudaUnavailableError } from "./runtime/cuda/errors.js";
export type { ChatMessage, ChatRole, ChatTemplate, ChatTemplateKind, JinjaChatTemplate, TextPart, Tokenizer } from "./runtime/tokenizer/index.js";
export { ChatTemplateError } from "./runtime/tokenizer/index.js";
export { createOptimizer, learningRate, train, type Batch, type LossAndGrad, type OptimizerConfig, type ScheduleConfig, type TrainOptions, type TrainStep } from "./train/index.js";

// A tiny random LLaMA written as a GGUF file by the project's own writer, with the hand-built
// SentencePiece vocabulary of the tokenizer tests, and the oracle to check it against: the CPU
// interpreter on the same weights, compiled straight from models/llama.llm.

import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { meta, writeGGUF, type GGUFMetadataEntry } from "../../src/runtime/weights/gguf-writer.js";
import { fileTensorName, modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { spmTokens } from "../fixtures/tokenizer/vocabularies.js";

export const VOCAB = spmTokens().tokens.length; // 283
export const TINY = { vocab_size: VOCAB, dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 64, max_seq_len: 64 };

export interface TinySpec {
  seed?: number;
  /** llama.context_length, i.e. max_seq_len. */
  contextLength?: number;
  eosId?: number;
  /** The model's vocab_size (llama.vocab_size), when it is larger than the tokenizer's. */
  vocabSize?: number;
  /** Replaces general.architecture. */
  architecture?: string;
  metadata?: GGUFMetadataEntry[];
}

function compileTiny(contextLength: number, vocabSize = VOCAB) {
  const overrides = new Map(Object.entries({ ...TINY, max_seq_len: contextLength, vocab_size: vocabSize }).map(([k, v]) => [k, String(v)]));
  const res = compileFile(join("models", "llama.llm"), { overrides });
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  return res.compiled;
}

export async function writeTinyModel(path: string, spec: TinySpec = {}): Promise<void> {
  const seed = spec.seed ?? 7;
  const contextLength = spec.contextLength ?? TINY.max_seq_len;
  const { tokens, scores, types } = spmTokens();
  const model = compileTiny(contextLength, spec.vocabSize).model;
  await writeGGUF(path, {
    metadata: [
      meta.string("general.architecture", spec.architecture ?? "llama"),
      meta.string("general.name", "tiny test llama"),
      meta.uint32("llama.context_length", contextLength),
      meta.uint32("llama.embedding_length", TINY.dim),
      meta.uint32("llama.block_count", TINY.n_layers),
      meta.uint32("llama.feed_forward_length", TINY.ffn_dim),
      meta.uint32("llama.attention.head_count", TINY.n_heads),
      meta.uint32("llama.attention.head_count_kv", TINY.n_kv_heads),
      meta.float32("llama.attention.layer_norm_rms_epsilon", 1e-5),
      meta.float32("llama.rope.freq_base", 10000),
      meta.string("tokenizer.ggml.model", "llama"),
      meta.array("tokenizer.ggml.tokens", "string", tokens),
      meta.array("tokenizer.ggml.scores", "float32", scores),
      meta.array("tokenizer.ggml.token_type", "int32", types),
      meta.uint32("tokenizer.ggml.bos_token_id", 1),
      meta.uint32("tokenizer.ggml.eos_token_id", spec.eosId ?? 2),
      meta.uint32("tokenizer.ggml.unknown_token_id", 0),
      meta.bool("tokenizer.ggml.add_bos_token", true),
      ...(spec.vocabSize === undefined ? [] : [meta.uint32("llama.vocab_size", spec.vocabSize)]),
      ...(spec.metadata ?? []),
    ],
    tensors: modelTensors(model).map((t) => ({
      name: fileTensorName(t, "gguf")!.name,
      shape: t.shape,
      dtype: "f32" as const,
      data: () => randomTensor(t.irName, t.shape, { seed }),
    })),
  });
}

/** The CPU interpreter on the weights writeTinyModel writes with the same seed. */
export function oracle(spec: { seed?: number; contextLength?: number } = {}): CpuInterpreter {
  const { graph } = compileTiny(spec.contextLength ?? TINY.max_seq_len);
  const seed = spec.seed ?? 7;
  return new CpuInterpreter(graph, (name, shape) => randomTensor(name, shape, { seed }));
}

/** The last row of a step's logits. */
export function lastRow(logits: { data: unknown; shape: number[] }): Float32Array {
  const data = logits.data as Float32Array;
  const V = logits.shape[1]!;
  return data.subarray(data.length - V);
}

export function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (x) => x - lse);
}

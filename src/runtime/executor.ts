// What every executor shares, whatever runs the kernels: the step contract (tokens, positions,
// what to read back), the checks made before a step (one at a time, not after dispose, at least one
// token, inside the context, token ids inside the vocabulary), the KV position count, how a long
// step splits into chunks, and the weight-source contract. The CPU interpreter, the WebGPU and the
// CUDA executors extend it.

import { dimEquals, symDim } from "../compiler/base/symbolic.js";
import { maxSeqLenOf, nodeMap, type Graph } from "../compiler/ir/graph.js";
import { reference, type HostTensor } from "../compiler/ops/reference.js";

export type { WeightSource } from "../compiler/target/program.js";

export interface StepInputs {
  tokens: Int32Array;
  /** Absolute positions of the tokens; default past … past + T - 1. */
  pos?: Int32Array;
  /**
   * What the step returns: "logits" (default), the graph's first output [T, vocab]; "last", its last
   * row [1, vocab], the logits after the last token (a device backend reads back only that row); or
   * "argmax", the greedy token after the last one, an i32 tensor [1] (the index of the last row's
   * largest logit, the lowest on ties; a device backend reads back only those 4 bytes). An output
   * whose leading axis is not the step's tokens comes whole with "last".
   */
  read?: StepRead;
}

export type StepRead = "logits" | "last" | "argmax";

export class ContextOverflowError extends Error {
  override name = "ContextOverflowError";
}

/** Whether output `index` of `graph` has a row per token of the step (its leading axis is T). */
function rowPerToken(graph: Graph, index = 0): boolean {
  const lead = nodeMap(graph).get(graph.outputs[index]!)?.ty.shape[0];
  return lead !== undefined && dimEquals(lead, symDim("T"));
}

/** The steps a step of T tokens runs as, at most `chunk` tokens each: [first token, count]. */
export function chunksOf(T: number, chunk: number): [number, number][] {
  const chunks: [number, number][] = [];
  for (let i = 0; i < T; i += chunk) chunks.push([i, Math.min(chunk, T - i)]);
  return chunks;
}

/** The last row of a tensor [rows, …]: [1, …]. */
export function lastRow(t: HostTensor): HostTensor {
  const rows = t.shape[0]!;
  const per = t.data.length / rows;
  return { shape: [1, ...t.shape.slice(1)], dtype: t.dtype, data: t.data.subarray((rows - 1) * per, rows * per) };
}

/** argmax over the last axis of the last row of logits [T, vocab], as the op's reference computes it: [1] i32. */
export function lastRowArgmax(logits: HostTensor): HostTensor {
  return reference["argmax"]!([lastRow(logits)], { axis: -1, keepdim: false });
}

/** A step's inputs once checked: T tokens at positions `pos`, after P cached ones. */
export interface CheckedStep {
  T: number;
  P: number;
  pos: Int32Array;
}

export abstract class ExecutorBase {
  /** Positions already in the KV cache (P). */
  past = 0;
  /** The KV cache's capacity in positions (P + T of any step). */
  readonly maxSeqLen: number;
  /** Whether the first output has a row per token (a long step's chunks then concatenate). */
  protected readonly outputRowPerToken: boolean;
  protected running = false;
  protected disposed = false;

  constructor(graph: Graph) {
    this.maxSeqLen = maxSeqLenOf(graph);
    this.outputRowPerToken = rowPerToken(graph);
  }

  /** Forgets the cached positions (the buffers are reused). */
  reset(): void {
    this.past = 0;
  }

  /** Keeps the first `to` cached positions and forgets the rest: the next step writes from `to` on
   *  (beam search goes back to the prefix two beams share). */
  rewind(to: number): void {
    if (!Number.isInteger(to) || to < 0 || to > this.past) throw new RangeError(`cannot rewind to position ${to}: the KV cache holds ${this.past}`);
    this.past = to;
  }

  /** Checks a step before it runs; `tokenTables` are the vocabulary sizes the token ids index. */
  protected checkStep(inputs: StepInputs, tokenTables: readonly number[]): CheckedStep {
    if (this.disposed) throw new Error("this executor was disposed");
    const T = inputs.tokens.length;
    if (T === 0) throw new Error("a step needs at least one token");
    const P = this.past;
    if (P + T > this.maxSeqLen) {
      throw new ContextOverflowError(`context overflow: ${P} cached + ${T} new tokens exceed max_seq_len ${this.maxSeqLen}`);
    }
    const pos = inputs.pos ?? Int32Array.from({ length: T }, (_, i) => P + i);
    if (pos.length !== T) throw new Error(`pos has ${pos.length} entries for ${T} tokens`);
    for (const rows of tokenTables) {
      const bad = inputs.tokens.findIndex((t) => t < 0 || t >= rows);
      if (bad >= 0) throw new RangeError(`token id ${inputs.tokens[bad]} (at index ${bad}) is out of range for a vocabulary of ${rows}`);
    }
    return { T, P, pos };
  }

  /** Runs `body` as the only step in flight. */
  protected async exclusive<R>(body: () => Promise<R>): Promise<R> {
    if (this.disposed) throw new Error("this executor was disposed");
    if (this.running) throw new Error("step() was called while another step is running; await each step before the next");
    this.running = true;
    try {
      return await body();
    } finally {
      this.running = false;
    }
  }
}

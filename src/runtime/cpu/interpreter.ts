// The CPU reference interpreter: runs a graph node by node with the op table's reference kernels,
// keeping the KV cache between steps. It is the oracle every backend is compared with — correctness
// first, not speed. A long step runs as chunks, so its activations (which grow with T, the logits
// as T × vocab) stay bounded; the KV cache is sized before it is allocated.

import { type Graph, type StateSpec } from "../../compiler/ir/graph.js";
import { evalDim } from "../../compiler/base/symbolic.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import { evaluateGraph } from "./evaluate.js";
import { tokenTables } from "../../compiler/target/program.js";
import { allocateHost, shorterContext } from "../errors.js";
import { chunksOf, ExecutorBase, lastRow, lastRowArgmax, type StepInputs, type WeightSource } from "../executor.js";

export interface CpuInterpreterOptions {
  /** Most tokens one pass over the graph takes; a longer step runs as chunks of this many (default
   *  256), which is exact for models whose tokens meet only through the KV cache under causal
   *  attention, as every .llm model's do. */
  prefillChunk?: number;
}

/** One state's K and V storage: [layers][max_seq_len, heads, head_dim] each. */
class KVStore {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  constructor(readonly spec: StateSpec) {
    const per = spec.maxSeqLen * spec.heads * spec.headDim;
    this.k = Array.from({ length: spec.layers }, () => new Float32Array(per));
    this.v = Array.from({ length: spec.layers }, () => new Float32Array(per));
  }
}

export class CpuInterpreter extends ExecutorBase {
  private readonly kv = new Map<string, KVStore>();
  private readonly weightCache = new Map<string, HostTensor>();
  private readonly tokenTables: number[];
  private readonly prefillChunk: number;

  constructor(
    readonly graph: Graph,
    private readonly weights: WeightSource,
    opts: CpuInterpreterOptions = {},
  ) {
    super(graph);
    this.prefillChunk = opts.prefillChunk ?? 256;
    if (!Number.isInteger(this.prefillChunk) || this.prefillChunk < 1) throw new RangeError(`prefillChunk must be a positive integer, got ${this.prefillChunk}`);
    const states = [...graph.states.values()];
    const perPosition = states.reduce((a, s) => a + 2 * s.layers * s.heads * s.headDim * 4, 0);
    const bytes = states.reduce((a, s) => a + 2 * s.layers * s.maxSeqLen * s.heads * s.headDim * 4, 0);
    allocateHost(bytes, `the KV cache (max_seq_len ${this.maxSeqLen} × ${perPosition} bytes per position)`, (limit) => shorterContext(perPosition, limit), () => {
      for (const s of states) this.kv.set(s.name, new KVStore(s));
    });
    this.tokenTables = tokenTables(graph);
  }

  /** Runs one step (prefill or decode) and returns what `inputs.read` asks for: by default the
   *  graph's first output, e.g. logits [T, vocab]. */
  step(inputs: StepInputs): HostTensor {
    const { T, P, pos } = this.checkStep(inputs, this.tokenTables);
    const read = inputs.read ?? "logits";
    const chunks = chunksOf(T, this.prefillChunk);
    const perToken = this.outputRowPerToken;
    let rows: HostTensor | null = null; // every chunk's rows, for "logits"
    let out!: HostTensor;
    for (const [i, n] of chunks) {
      out = this.pass(inputs.tokens.subarray(i, i + n), pos.subarray(i, i + n), P + i);
      if (read !== "logits" || chunks.length === 1 || !perToken) continue;
      const per = out.data.length / n;
      rows ??= {
        shape: [T, ...out.shape.slice(1)],
        dtype: out.dtype,
        data: allocateHost(T * per * out.data.BYTES_PER_ELEMENT, `the logits of ${T} tokens`, () => 'read: "last" (the last row only) or fewer tokens per step', () => new (out.data.constructor as Float32ArrayConstructor)(T * per)),
      };
      rows.data.set(out.data, i * per);
    }
    if (read === "argmax") return lastRowArgmax(out);
    if (read === "last") return perToken ? lastRow(out) : out;
    return rows ?? out;
  }

  /** One pass over the graph for `tokens` at positions `pos`, after P cached ones. */
  private pass(tokens: Int32Array, pos: Int32Array, P: number): HostTensor {
    const T = tokens.length;
    const [out] = evaluateGraph(
      this.graph,
      new Map([["T", T], ["P", P]]),
      new Map([["tokens", tokens], ["pos", pos]]),
      (name, shape) => this.weight(name, shape).data as Float32Array,
      (n, [x]) => this.append(x!, n.attrs["state"] as string, n.attrs["layer"] as number, n.attrs["which"] as string, P, T),
    );
    this.past = P + T;
    return out!;
  }

  private weight(name: string, shape: number[]): HostTensor {
    let w = this.weightCache.get(name);
    if (!w) {
      const data = this.weights(name, shape);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new Error(`weight '${name}' has ${data.length} values, expected ${n} for shape [${shape.join(", ")}]`);
      w = { shape, dtype: "f32", data };
      this.weightCache.set(name, w);
    }
    return w;
  }

  /** Writes this step's rows at P…P+T-1 and returns the cache so far, [P+T, heads, head_dim]. */
  private append(x: HostTensor, state: string, layer: number, which: string, P: number, T: number): HostTensor {
    const store = this.kv.get(state)!;
    const buf = (which === "k" ? store.k : store.v)[layer]!;
    const row = store.spec.heads * store.spec.headDim;
    buf.set(x.data as Float32Array, P * row);
    return { shape: [P + T, store.spec.heads, store.spec.headDim], dtype: "f32", data: buf.subarray(0, (P + T) * row) };
  }
}

// Runs a compiled graph on WebGPU with the CPU interpreter's interface. Weights are uploaded once;
// each step shape (T) gets a plan, its kernels, pipelines, buffers and bind groups the first time it
// runs, and every later step of that shape only writes the per-step parameters (P) and inputs,
// records one command buffer, submits it once and reads back what the step asks for. A step longer
// than the program's prefill chunk (the most tokens whose activations fit one binding) runs as
// chunks; only the last one reads back unless every row is asked for. A matrix larger than one
// binding is uploaded in row ranges (the target's `parts`), each its own buffer. What does not fit
// the device (a KV cache, a weight that cannot be split or an activation past
// maxStorageBufferBindingSize, an allocation Dawn refuses) is a ResourceError.

import { evalDim } from "../../compiler/base/symbolic.js";
import type { Graph, Node } from "../../compiler/ir/graph.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import type { StorageDType } from "../../compiler/target/storage.js";
import { deviceWeightParts, deviceWeightSize, packedWeights } from "../../compiler/target/program.js";
import type { PlanBuffer } from "../../compiler/plan/plan.js";
import {
  ARGMAX_OUTPUT, BindingSizeError, compileWgsl, describeBuffer, PARAMS_BYTES, wgslProfile,
  type WgslProgram, type WgslStep, type WgslTuning,
} from "../../compiler/target/wgsl.js";
import { ResourceError, shorterContext } from "../errors.js";
import { chunksOf, ExecutorBase, type StepInputs, type WeightSource } from "../executor.js";
import type { GpuContext } from "./context.js";
import { WebGpuError } from "./errors.js";
import { bindKernels, stepBuffers, type SharedBuffers } from "./pipelines.js";
import { deviceFeatures, isSoftwareAdapter } from "./tuning.js";

export interface WebGpuExecutorOptions {
  /** Kernel shapes; by default chosen for the adapter. */
  tuning?: WgslTuning;
  /** How many step shapes (prompt lengths) keep their buffers and pipelines; the oldest prefill
   *  shape is dropped past this. Decode (T = 1) is always kept. */
  maxStepShapes?: number;
  /** Storage buffers one kernel may bind (merged linears stay within it): the device's
   *  maxStorageBuffersPerShaderStage, or fewer. */
  maxStorageBuffers?: number;
  /** The largest buffer one binding may hold: the device's maxStorageBufferBindingSize, or less
   *  (larger matrices are split into row ranges; tests force splitting with a small value). */
  maxStorageBufferBindingSize?: number;
  /** Every matrix in this dtype on the device (`--weight-dtype`); default: the dtype the file stores
   *  (the weight source's `raw`), where the kernels can read it, else f32. */
  weightDType?: StorageDType;
  /** Bytes of weights uploaded so far, of `total`. */
  onUpload?: (done: number, total: number) => void;
  /** The most tokens one step runs (default 256, fewer where the activations would not fit one
   *  binding); a longer step runs as consecutive steps of this many, which is exact for models whose
   *  tokens meet only through the KV cache under causal attention, as every .llm model's do. */
  prefillChunk?: number;
}

export interface StepStats {
  tokens: number;
  dispatches: number;
  /** One per chunk of the step. */
  submits: number;
  /** Milliseconds of JavaScript work from entry to queue.submit returning, summed over the chunks
   *  (no GPU wait, no readback, no building of a new step shape). */
  hostMs: number;
  /** Bytes copied back to the host: the logits, one row of them for `read: "last"`, or 4 for `read: "argmax"`. */
  readbackBytes: number;
}

/** What one chunk of a step reads back: every row of the output, its last row, the greedy token, or nothing. */
type ChunkRead = "rows" | "last" | "argmax" | null;

/** The device objects of one step shape of the program, made once. */
interface StepProgram {
  step: WgslStep;
  pipelines: GPUComputePipeline[];
  bindGroups: GPUBindGroup[];
  /** Buffers owned by this shape (inputs, literals, activations); weights and KV are shared. */
  owned: GPUBuffer[];
  inputBuffers: Map<string, GPUBuffer>;
  /** Where graph outputs 0 (logits) and 1 (the greedy token) are. */
  outputs: { buffer: GPUBuffer; offset: number }[];
  readback: GPUBuffer;
  /** The commands a step records, by what it reads (made at its first use; see `recording`). */
  recordings: Map<string, Recording>;
}

/** A step's dispatches with the redundant setPipeline/setBindGroup calls taken out ahead: recording
 *  ~200 dispatches is the whole of a decode step's host time, so its loop does nothing else. */
interface Recording {
  dispatches: { pipeline: GPUComputePipeline | null; group: GPUBindGroup | null; x: number; y: number; z: number }[];
  /** The graph output the step reads: logits, or the greedy token. */
  output: Node;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The dispatches of `prog` for a step that reads the greedy token (or not) and reads nothing back
 *  (or does): kernels only the other kind needs are left out (the argmax; the final norm and LM head
 *  of a prefill chunk nobody reads). */
function recording(prog: StepProgram, greedy: boolean, readsNothing: boolean): Recording {
  const key = `${greedy}|${readsNothing}`;
  let r = prog.recordings.get(key);
  if (r) return r;
  const plan = prog.step.plan;
  const which = greedy ? ARGMAX_OUTPUT : 0;
  r = { dispatches: [], output: plan.graph.nodes.find((n) => n.id === plan.outputs[which])! };
  let pipeline: GPUComputePipeline | null = null;
  let group: GPUBindGroup | null = null;
  prog.step.kernels.forEach((k, i) => {
    if (!greedy && prog.step.greedyOnly[i]) return;
    if (readsNothing && prog.step.outputsOnly[i]) return;
    // Layers of one architecture compile to one pipeline; consecutive dispatches may share it.
    const p = prog.pipelines[i]!;
    const g = prog.bindGroups[i]!;
    const [x, y, z] = k.workgroups;
    r!.dispatches.push({ pipeline: p !== pipeline ? (pipeline = p) : null, group: g !== group ? (group = g) : null, x, y, z });
  });
  prog.recordings.set(key, r);
  return r;
}

export class WebGpuExecutor extends ExecutorBase {
  /** Counts of the last step. */
  lastStep: StepStats | null = null;
  /** What runs: the target layer's program for this adapter and these weights. */
  readonly program: WgslProgram;
  /** Bytes of every weight buffer on the device. */
  weightBytes = 0;

  private readonly device: GPUDevice;
  /** Each weight's buffers: one, or one per row range of a split matrix. */
  private readonly weights = new Map<string, GPUBuffer[]>();
  private readonly kv = new Map<string, GPUBuffer>();
  private readonly params: GPUBuffer;
  private readonly programs = new Map<number, Promise<StepProgram>>();
  private readonly maxStepShapes: number;
  private readonly uploaded: Promise<void>;

  constructor(
    graph: Graph,
    weights: WeightSource,
    readonly gpu: GpuContext,
    opts: WebGpuExecutorOptions = {},
  ) {
    super(graph);
    this.device = gpu.device;
    this.maxStepShapes = opts.maxStepShapes ?? 4;
    const l = this.device.limits;
    const limits = {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: Math.min(l.maxStorageBufferBindingSize, opts.maxStorageBufferBindingSize ?? Infinity),
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    };
    const profile = wgslProfile(isSoftwareAdapter(gpu.adapter), limits, {
      features: deviceFeatures(gpu),
      ...(opts.tuning ? { tuning: opts.tuning } : {}),
      ...(opts.maxStorageBuffers !== undefined ? { maxStorageBuffers: opts.maxStorageBuffers } : {}),
    });
    try {
      this.program = compileWgsl(graph, {
        profile,
        splitWeights: true,
        stored: (name) => weights.raw?.(name)?.dtype,
        ...(opts.weightDType ? { requested: opts.weightDType } : {}),
        ...(opts.prefillChunk !== undefined ? { prefillChunk: opts.prefillChunk } : {}),
      });
    } catch (e) {
      throw new WebGpuError((e as Error).message);
    }
    this.params = this.device.createBuffer({ label: "llmc params", size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.uploaded = this.upload(weights, opts.onUpload);
    this.uploaded.catch(() => undefined); // reported by the first step
  }

  /** The graph run (with the greedy token as an output where it has logits). */
  get graph(): Graph {
    return this.program.graph;
  }

  /** Kernel shapes of this executor's profile. */
  get tuning(): WgslTuning {
    return this.program.profile.tuning;
  }

  /** Weights stored packed on the device, by name. */
  get weightFormats(): Map<string, StorageDType> {
    return packedWeights(this.program.weights);
  }

  /** Waits for the weight upload; throws what went wrong with it. */
  async ready(): Promise<void> {
    await this.uploaded;
  }

  /** The step of T tokens this executor runs (built on first use). */
  /** Builds the step shapes a prompt of `tokens` tokens and decoding use (see Executor.prepareSteps). */
  async prepareSteps(tokens: number): Promise<void> {
    await this.uploaded;
    const shapes = new Set([1, ...chunksOf(tokens, tokens === 1 ? 1 : this.program.prefillChunk).map(([, n]) => n)]);
    for (const T of shapes) await this.prepared(T);
    // Drivers may compile a pipeline's shader only when it first runs (Dawn's OpenGL ES backend
    // does), so each shape runs once, on token 0 at the current position: the rows it writes at
    // P…P+T−1 are written again by the next real step before anything reads them.
    await this.exclusive(async () => {
      const P = this.past;
      const stats: StepStats = { tokens: 0, dispatches: 0, submits: 0, hostMs: 0, readbackBytes: 0 };
      for (const T of shapes) {
        if (P + T > this.maxSeqLen) continue;
        // Reading something back runs the output kernels (and the greedy token's) too.
        const read: ChunkRead = this.program.greedy !== null ? "argmax" : this.outputRowPerToken ? "last" : "rows";
        await this.runChunk(new Int32Array(T), Int32Array.from({ length: T }, (_, i) => P + i), P, read, stats);
        this.past = P;
      }
      await this.device.queue.onSubmittedWorkDone();
      this.gpu.check();
    });
  }

  async stepProgram(T: number): Promise<WgslStep> {
    return (await this.prepared(T)).step;
  }

  /** Runs one step (prefill or decode) and returns the graph's first output, e.g. logits [T, vocab]. */
  async step(inputs: StepInputs): Promise<HostTensor> {
    if (this.disposed) throw new WebGpuError("this executor was disposed");
    return this.exclusive(() => this.run(inputs));
  }

  private async run(inputs: StepInputs): Promise<HostTensor> {
    await this.uploaded;
    this.gpu.check();
    const { T, P, pos } = this.checkStep(inputs, this.program.tokenTables);
    const read = inputs.read ?? "logits";
    if (read === "argmax" && this.program.greedy === null) throw new Error('read: "argmax" needs a graph whose one output is logits [T, vocab]');
    const chunks = chunksOf(T, T === 1 ? 1 : this.program.prefillChunk);
    const perToken = this.outputRowPerToken;
    const stats: StepStats = { tokens: T, dispatches: 0, submits: 0, hostMs: 0, readbackBytes: 0 };
    let rows: HostTensor | null = null; // every chunk's rows, for "logits"
    let out: HostTensor | null = null;
    for (const [k, [i, n]] of chunks.entries()) {
      const lastChunk = k === chunks.length - 1;
      const chunkRead: ChunkRead = read === "logits" ? "rows" : !lastChunk ? null : read === "argmax" ? "argmax" : perToken ? "last" : "rows";
      out = await this.runChunk(inputs.tokens.subarray(i, i + n), pos.subarray(i, i + n), P + i, chunkRead, stats);
      if (read !== "logits" || chunks.length === 1 || !perToken) continue;
      const per = out!.data.length / n;
      rows ??= { shape: [T, ...out!.shape.slice(1)], dtype: out!.dtype, data: new (out!.data.constructor as Float32ArrayConstructor)(T * per) };
      rows.data.set(out!.data, i * per);
    }
    this.lastStep = stats;
    return rows ?? out!;
  }

  /** Runs `tokens` as one step of the program at past length P, reading back `read` (null: nothing,
   *  the step's work stays queued). */
  private async runChunk(tokens: Int32Array, pos: Int32Array, P: number, read: ChunkRead, stats: StepStats): Promise<HostTensor | null> {
    const T = tokens.length;
    let t0 = performance.now();
    if (!this.programs.has(T)) {
      await this.prepared(T); // building a new shape is setup, not per-step host time
      t0 = performance.now();
    }
    const prog = await this.prepared(T);
    const greedy = read === "argmax";
    const q = this.device.queue;
    q.writeBuffer(this.params, 0, Uint32Array.of(P, 0, 0, 0));
    for (const [name, buf] of prog.inputBuffers) {
      const data = name === "tokens" ? tokens : pos;
      q.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    const encoder = this.device.createCommandEncoder({ label: `llmc step T=${T}` });
    const pass = encoder.beginComputePass();
    const { dispatches, output: outNode } = recording(prog, greedy, read === null);
    for (const d of dispatches) {
      if (d.pipeline) pass.setPipeline(d.pipeline);
      if (d.group) pass.setBindGroup(0, d.group);
      // Dawn's binding converts each argument: one fewer is ~0.1 µs of a ~1.6 µs dispatch.
      if (d.y === 1 && d.z === 1) pass.dispatchWorkgroups(d.x);
      else pass.dispatchWorkgroups(d.x, d.y, d.z);
    }
    stats.dispatches += dispatches.length;
    pass.end();
    const output = prog.outputs[greedy ? ARGMAX_OUTPUT : 0]!;
    const shape = outNode.ty.shape.map((d) => evalDim(d, new Map([["P", P]])));
    let offset = output.offset;
    if (read === "last") {
      offset += (shape[0]! - 1) * size(shape.slice(1));
      shape[0] = 1;
    }
    const bytes = size(shape) * 4;
    if (read !== null) encoder.copyBufferToBuffer(output.buffer, offset * 4, prog.readback, 0, Math.max(4, bytes));
    q.submit([encoder.finish()]);
    stats.hostMs += performance.now() - t0;
    stats.submits++;
    if (read === null) {
      this.past = P + T;
      return null;
    }
    await prog.readback.mapAsync(GPUMapMode.READ, 0, Math.max(4, bytes));
    const raw = prog.readback.getMappedRange(0, Math.max(4, bytes)).slice(0, bytes);
    prog.readback.unmap();
    this.gpu.check();
    this.past = P + T;
    stats.readbackBytes += Math.max(4, bytes);
    const dtype = outNode.ty.dtype;
    const data = dtype === "f32" ? new Float32Array(raw) : dtype === "i32" ? new Int32Array(raw) : Uint8Array.from(new Uint32Array(raw));
    return { shape, dtype, data };
  }

  /** Dispatches one step of T tokens records (builds that shape's plan if needed). */
  async dispatchesPerStep(T: number): Promise<number> {
    return (await this.prepared(T)).step.greedyOnly.filter((g) => !g).length;
  }

  /** Releases every GPU buffer this executor made (the device stays). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.programs.values()) void p.then((prog) => this.destroyProgram(prog), () => undefined);
    this.programs.clear();
    for (const b of [...[...this.weights.values()].flat(), ...this.kv.values(), this.params]) b.destroy();
  }

  // ------------------------------------------------------------------------------------------ setup

  /** Refuses, before anything is allocated, a weight that cannot be split or a layer's KV cache
   *  larger than one binding. */
  private checkSizes(): void {
    const limit = this.program.profile.maxStorageBufferBindingSize ?? Infinity;
    for (const w of this.program.weights) {
      if (w.layout.bytes > limit && !w.parts) {
        const what = `weight '${w.name}' [${w.shape.join(", ")}]${w.dtype !== "f32" ? ` (${w.dtype})` : ""}`;
        throw new ResourceError(
          `${what} takes ${w.layout.bytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes, and cannot be split into row ranges ` +
            `(only matrices read as linear weights or embedding tables are, at two rows or more per binding); ` +
            `use ${w.dtype === "f32" ? "a quantized model (q8_0 or q4_0 weights stay packed on the device) or " : ""}another backend (--backend cpu)`,
          w.layout.bytes,
          limit,
        );
      }
    }
    for (const s of this.graph.states.values()) {
      const perPosition = s.heads * s.headDim * 4;
      const bytes = s.maxSeqLen * perPosition;
      if (bytes > limit) {
        throw new ResourceError(
          `the KV cache '${s.name}' (max_seq_len ${s.maxSeqLen} × ${s.heads} kv heads × head_dim ${s.headDim} × 4 bytes, per layer) takes ${bytes} bytes, ` +
            `more than this adapter's maxStorageBufferBindingSize of ${limit} bytes; use ${shorterContext(perPosition, limit)} or another backend (--backend cpu)`,
          bytes,
          limit,
        );
      }
    }
  }

  private async upload(source: WeightSource, onUpload: WebGpuExecutorOptions["onUpload"]): Promise<void> {
    this.checkSizes();
    const total = this.program.weights.reduce((a, w) => a + deviceWeightSize(w), 0);
    await this.gpu.scoped("uploading the weights", () => this.allocating("the weights", total, () => this.uploadWeights(source, total, onUpload)));
  }

  private uploadWeights(source: WeightSource, total: number, onUpload: WebGpuExecutorOptions["onUpload"]): void {
    for (const w of this.program.weights) {
      const what = `weight '${w.name}' [${w.shape.join(", ")}]${w.dtype !== "f32" ? ` (${w.dtype})` : ""}`;
      const parts = deviceWeightParts(w, this.program.weights, source);
      const label = `weight ${this.weights.size}`;
      const buffers = parts.map((bytes, j) => {
        const size = Math.max(16, Math.ceil(bytes.length / 16) * 16);
        const buf = this.createBuffer(parts.length > 1 ? `rows of ${what} (part ${j})` : what, { label: parts.length > 1 ? `${label} part ${j}` : label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
        new Uint8Array(buf.getMappedRange(), 0, bytes.length).set(bytes);
        buf.unmap();
        this.weightBytes += size;
        return buf;
      });
      this.weights.set(w.name, buffers);
      onUpload?.(this.weightBytes, total);
    }
  }

  /** createBuffer, with an allocation failure turned into an error that names the buffer. */
  private createBuffer(what: string, desc: GPUBufferDescriptor): GPUBuffer {
    try {
      return this.device.createBuffer(desc);
    } catch (e) {
      throw new ResourceError(outOfMemoryMessage(what, desc.size, this.allocated(), (e as Error).message), desc.size, 0, { cause: e });
    }
  }

  /** Runs `f`, which allocates `bytes` for `what`; an out-of-memory error the device reports for it
   *  (asynchronously, unlike a refusal createBuffer throws) becomes a ResourceError. */
  private async allocating<T>(what: string, bytes: number, f: () => T): Promise<T> {
    this.device.pushErrorScope("out-of-memory");
    let result: T | undefined;
    let failure: unknown = null;
    try {
      result = f();
    } catch (e) {
      failure = e;
    }
    const oom = await this.device.popErrorScope();
    if (oom) throw new ResourceError(outOfMemoryMessage(what, bytes, this.allocated(), oom.message), bytes, 0);
    if (failure !== null) throw failure;
    return result as T;
  }

  /** Bytes of the buffers this executor holds so far (weights, KV cache). */
  private allocated(): number {
    let n = this.weightBytes;
    for (const b of this.kv.values()) n += b.size;
    return n;
  }

  private prepared(T: number): Promise<StepProgram> {
    let p = this.programs.get(T);
    if (p) {
      // Most recently used last.
      this.programs.delete(T);
      this.programs.set(T, p);
      return p;
    }
    p = this.prepare(T);
    this.programs.set(T, p);
    p.catch(() => this.programs.delete(T));
    while (this.programs.size > this.maxStepShapes) {
      const oldest = [...this.programs.keys()].find((t) => t !== 1 && t !== T);
      if (oldest === undefined) break;
      const old = this.programs.get(oldest)!;
      this.programs.delete(oldest);
      void old.then((prog) => this.destroyProgram(prog), () => undefined);
    }
    return p;
  }

  private destroyProgram(prog: StepProgram): void {
    for (const b of prog.owned) b.destroy();
    prog.readback.destroy();
  }

  /** Allocates, uploads and binds what the program's step of T tokens needs. */
  private async prepare(T: number): Promise<StepProgram> {
    let step: WgslStep;
    try {
      step = this.program.step(T);
    } catch (e) {
      if (e instanceof BindingSizeError) throw tooLargeToBind(e.buffer, e.limit);
      throw e instanceof Error && e.name === "TargetError" ? new WebGpuError(e.message) : e;
    }
    const { plan, kernels } = step;
    const outNode = plan.graph.nodes.find((n) => n.id === plan.outputs[0]!)!;
    const outBytes = size(outNode.ty.shape.map((d) => evalDim(d, new Map([["P", plan.maxSeqLen - T]])))) * 4;

    const stepBytes = plan.buffers.filter((b) => b.kind !== "weight").reduce((a, b) => a + b.bytes, 0);
    const what = `the buffers of a ${T}-token step (KV cache, activations and constants)`;
    const shared: SharedBuffers = {
      weight: (name) => {
        const w = this.weights.get(name);
        if (w?.length !== 1) throw new Error(`internal: weight '${name}' was not uploaded whole`);
        return w[0]!;
      },
      weightParts: (name) => {
        const w = this.weights.get(name);
        if (!w) throw new Error(`internal: weight '${name}' was not uploaded`);
        return w;
      },
      kv: (b) => {
        let buf = this.kv.get(b.holds);
        if (!buf) {
          buf = this.createBuffer(describeBuffer(b), { label: `kv ${this.kv.size}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
          this.kv.set(b.holds, buf);
        }
        return buf;
      },
    };
    const { buffers, owned, inputs: inputBuffers, parts } = await this.gpu.scoped(`creating ${what}`, () =>
      this.allocating(what, stepBytes, () => stepBuffers(plan, shared, (b, desc) => this.createBuffer(describeBuffer(b), desc))),
    );
    const readback = this.device.createBuffer({ label: "llmc readback", size: Math.max(16, Math.ceil(outBytes / 16) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const { pipelines, bindGroups } = await bindKernels(this.gpu, kernels, buffers, this.params, `a ${T}-token step`, parts);
    const outputs = plan.outputs.map((id) => {
      const p = plan.placement.get(id)!;
      return { buffer: buffers[p.buffer]!, offset: p.offset };
    });
    return { step, pipelines, bindGroups, owned, inputBuffers, outputs, readback, recordings: new Map() };
  }
}

/** A buffer of a step larger than one binding: weights and KV caches are refused before (checkSizes)
 *  and the prefill chunk keeps activations within it, so this is an activation of even one token. */
function tooLargeToBind(b: PlanBuffer, limit: number): ResourceError {
  return new ResourceError(`${describeBuffer(b)} takes ${b.bytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes; use a smaller model or another backend (--backend cpu)`, b.bytes, limit);
}

/** What to say when the device cannot allocate a buffer. */
function outOfMemoryMessage(what: string, bytes: number, held: number, cause: string): string {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return (
    `out of GPU memory allocating ${what} (${mb(bytes)}; ${mb(held)} already allocated for this model): ${cause.trim().replace(/\.+$/, "")}. ` +
    "Use a smaller or quantized model (q8_0, q4_0 or f16 weights stay packed on the device), a shorter context (--set max_seq_len=N), or another backend (--backend cpu)."
  );
}

/** A WebGPU executor on `gpu` whose weights are uploaded (errors surface here, not at the first step). */
export async function createWebGpuExecutor(graph: Graph, weights: WeightSource, gpu: GpuContext, opts: WebGpuExecutorOptions = {}): Promise<WebGpuExecutor> {
  const ex = new WebGpuExecutor(graph, weights, gpu, opts);
  await ex.ready();
  return ex;
}

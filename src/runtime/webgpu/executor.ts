// Runs a compiled graph on WebGPU with the CPU interpreter's interface. Weights are uploaded once;
// each step shape (T) gets a plan, its kernels, pipelines, buffers and bind groups the first time it
// runs, and every later step of that shape only writes the per-step parameters (P) and inputs,
// records one command buffer, submits it once and reads back the output.

import { evalDim } from "../../compiler/base/symbolic.js";
import { emitPlan, PARAMS_BYTES, type KernelBinding, type WgslKernel, type WgslTuning } from "../../compiler/emit/wgsl/index.js";
import type { Graph } from "../../compiler/ir/graph.js";
import { weightNodes } from "../../compiler/ir/graph.js";
import type { HostTensor } from "../../compiler/ops/reference.js";
import { buildStepPlan } from "../../compiler/plan/build.js";
import { gainFolds, scaleWeight, type GainFolds } from "../../compiler/plan/fold.js";
import { packable, packWeight } from "../../compiler/emit/wgsl/packed.js";
import { packedBytes, type PackedFormat, type PlanBuffer, type StepPlan } from "../../compiler/plan/plan.js";
import type { WeightDType } from "../weights/dtypes.js";
import { ContextOverflowError, type StepInputs, type WeightSource } from "../cpu/interpreter.js";
import { WebGpuError, type GpuContext } from "./device.js";
import { chooseTuning } from "./tuning.js";
import { ARGMAX_OUTPUT, greedyOutput, withArgmaxOutput } from "../../compiler/passes/argmax.js";

export interface WebGpuExecutorOptions {
  /** Kernel shapes; by default chosen for the adapter. */
  tuning?: WgslTuning;
  /** How many step shapes (prompt lengths) keep their buffers and pipelines; the oldest prefill
   *  shape is dropped past this. Decode (T = 1) is always kept. */
  maxStepShapes?: number;
  /** Storage buffers one kernel may bind (merged linears stay within it): the device's
   *  maxStorageBuffersPerShaderStage, or fewer. */
  maxStorageBuffers?: number;
  /**
   * The weights in their storage form (ModelWeights.raw): matrices that only linear kernels read and
   * that are stored as f16, bf16, q8_0 or q4_0 are uploaded that way (emit/wgsl/packed.ts) and
   * dequantized inside the kernels; everything else is f32 from the WeightSource. Norm gains are not
   * folded into packed weights (the kernels keep multiplying by them).
   */
  raw?: (name: string) => { dtype: WeightDType; bytes: Uint8Array } | null | undefined;
  /** Upload packable weights packed (default true); false: every weight as f32. */
  packWeights?: boolean;
}

/** A WeightSource that can also give the stored form (loader.ts's weightSource does). */
type RawCapable = WeightSource & { raw?: WebGpuExecutorOptions["raw"] };

export interface StepStats {
  tokens: number;
  dispatches: number;
  submits: number;
  /** Milliseconds of JavaScript work from entry to queue.submit returning (no GPU wait, no readback). */
  hostMs: number;
  /** Bytes copied back to the host: the logits, or 4 for `read: "argmax"`. */
  readbackBytes: number;
}

/** Everything one step shape needs, made once. */
interface StepProgram {
  plan: StepPlan;
  kernels: WgslKernel[];
  pipelines: GPUComputePipeline[];
  bindGroups: GPUBindGroup[];
  /** Buffers owned by this shape (inputs, literals, activations); weights and KV are shared. */
  owned: GPUBuffer[];
  inputBuffers: Map<string, GPUBuffer>;
  /** Where graph outputs 0 (logits) and 1 (the greedy token) are. */
  outputs: { buffer: GPUBuffer; offset: number }[];
  readback: GPUBuffer;
  /** Gathers that read the token ids directly: ids must be below `rows`. */
  tokenTables: number[];
  /** Kernels only the greedy token needs (argmax): recorded only for `read: "argmax"`. */
  greedyOnly: boolean[];
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Pipelines and bind group layouts by kernel source, shared by every executor on a device (the
 *  layers of a model, and models of one architecture, compile to the same kernels). */
const deviceCaches = new WeakMap<GPUDevice, { pipelines: Map<string, Promise<GPUComputePipeline>>; layouts: Map<string, GPUBindGroupLayout> }>();

export class WebGpuExecutor {
  /** Positions already in the KV cache (P). */
  past = 0;
  readonly maxSeqLen: number;
  readonly tuning: WgslTuning;
  /** Counts of the last step. */
  lastStep: StepStats | null = null;

  private readonly device: GPUDevice;
  private readonly weights = new Map<string, GPUBuffer>();
  private readonly kv = new Map<string, GPUBuffer>();
  private readonly params: GPUBuffer;
  private readonly programs = new Map<number, Promise<StepProgram>>();
  private readonly pipelineCache: Map<string, Promise<GPUComputePipeline>>;
  private readonly layoutCache: Map<string, GPUBindGroupLayout>;
  private readonly maxStepShapes: number;
  private readonly maxStorageBuffers: number;
  /** Weights uploaded scaled by a norm's gain (rule `gain`). */
  private readonly folds: GainFolds;
  /** Weights stored packed on the device, by name. */
  readonly weightFormats = new Map<string, PackedFormat>();
  /** Bytes of every weight buffer on the device. */
  weightBytes = 0;
  private readonly uploaded: Promise<void>;
  private running = false;
  private disposed = false;

  /** The graph run: the one given, with the greedy token (passes/argmax.ts) as output 1. */
  readonly graph: Graph;
  /** Output index of the greedy token; null when the graph's output is not logits. */
  private readonly greedy: number | null;

  constructor(
    graph: Graph,
    weights: WeightSource,
    readonly gpu: GpuContext,
    opts: WebGpuExecutorOptions = {},
  ) {
    this.graph = graph = withArgmaxOutput(graph);
    this.greedy = greedyOutput(graph);
    this.device = gpu.device;
    const caches = deviceCaches.get(this.device) ?? { pipelines: new Map(), layouts: new Map() };
    deviceCaches.set(this.device, caches);
    this.pipelineCache = caches.pipelines;
    this.layoutCache = caches.layouts;
    this.tuning = opts.tuning ?? chooseTuning(gpu.adapter, gpu.limits);
    this.maxStepShapes = opts.maxStepShapes ?? 4;
    this.maxStorageBuffers = Math.min(opts.maxStorageBuffers ?? Infinity, this.device.limits.maxStorageBuffersPerShaderStage);
    this.maxSeqLen = Math.min(...[...graph.states.values()].map((s) => s.maxSeqLen), Number.MAX_SAFE_INTEGER);
    this.params = this.device.createBuffer({ label: "llmc params", size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const raw = opts.packWeights === false ? undefined : (opts.raw ?? (weights as RawCapable).raw);
    if (raw) {
      const linearOnly = linearOnlyWeights(graph);
      for (const n of weightNodes(graph)) {
        const name = String(n.attrs["name"]);
        const shape = n.ty.shape.map((d) => evalDim(d, new Map()));
        const dtype = linearOnly.has(name) ? raw(name)?.dtype : undefined;
        if (dtype && dtype !== "f32" && packable(dtype, shape)) this.weightFormats.set(name, dtype);
      }
    }
    this.folds = gainFolds(graph, (name) => this.weightFormats.has(name));
    this.uploaded = gpu.scoped("uploading the weights", () => this.uploadWeights(weights, raw));
    this.uploaded.catch(() => undefined); // reported by the first step
  }

  /** Waits for the weight upload; throws what went wrong with it. */
  async ready(): Promise<void> {
    await this.uploaded;
  }

  /** Forgets the cached positions (the buffers are reused). */
  reset(): void {
    this.past = 0;
  }

  /** The plan of a step of T tokens (built on first use). */
  async plan(T: number): Promise<StepPlan> {
    return (await this.program(T)).plan;
  }

  /** Runs one step (prefill or decode) and returns the graph's first output, e.g. logits [T, vocab]. */
  async step(inputs: StepInputs): Promise<HostTensor> {
    if (this.disposed) throw new WebGpuError("this executor was disposed");
    if (this.running) throw new Error("step() was called while another step is running; await each step before the next");
    this.running = true;
    try {
      return await this.run(inputs);
    } finally {
      this.running = false;
    }
  }

  private async run(inputs: StepInputs): Promise<HostTensor> {
    await this.uploaded;
    let t0 = performance.now();
    this.gpu.check();
    const T = inputs.tokens.length;
    if (T === 0) throw new Error("a step needs at least one token");
    const P = this.past;
    if (P + T > this.maxSeqLen) {
      throw new ContextOverflowError(`context overflow: ${P} cached + ${T} new tokens exceed max_seq_len ${this.maxSeqLen}`);
    }
    const pos = inputs.pos ?? Int32Array.from({ length: T }, (_, i) => P + i);
    if (pos.length !== T) throw new Error(`pos has ${pos.length} entries for ${T} tokens`);
    if (!this.programs.has(T)) {
      await this.program(T); // building a new shape is setup, not per-step host time
      t0 = performance.now();
    }
    const prog = await this.program(T);
    const greedy = inputs.read === "argmax";
    if (greedy && this.greedy === null) throw new Error('read: "argmax" needs a graph whose one output is logits [T, vocab]');
    for (const rows of prog.tokenTables) {
      const bad = inputs.tokens.findIndex((t) => t < 0 || t >= rows);
      if (bad >= 0) throw new RangeError(`token id ${inputs.tokens[bad]} (at index ${bad}) is out of range for a vocabulary of ${rows}`);
    }

    const q = this.device.queue;
    q.writeBuffer(this.params, 0, Uint32Array.of(P, 0, 0, 0));
    for (const [name, buf] of prog.inputBuffers) {
      const data = name === "tokens" ? inputs.tokens : pos;
      q.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    const encoder = this.device.createCommandEncoder({ label: `llmc step T=${T}` });
    const pass = encoder.beginComputePass();
    let pipeline: GPUComputePipeline | null = null;
    let group: GPUBindGroup | null = null;
    let dispatches = 0;
    prog.kernels.forEach((k, i) => {
      if (!greedy && prog.greedyOnly[i]) return;
      dispatches++;
      // Layers of one architecture compile to one pipeline; consecutive dispatches may share it.
      if (prog.pipelines[i] !== pipeline) pass.setPipeline((pipeline = prog.pipelines[i]!));
      if (prog.bindGroups[i] !== group) pass.setBindGroup(0, (group = prog.bindGroups[i]!));
      pass.dispatchWorkgroups(...k.workgroups);
    });
    pass.end();
    const which = inputs.read === "argmax" ? ARGMAX_OUTPUT : 0;
    const outNode = prog.plan.graph.nodes.find((n) => n.id === prog.plan.outputs[which])!;
    const output = prog.outputs[which]!;
    const env = new Map([["P", P]]);
    const shape = outNode.ty.shape.map((d) => evalDim(d, env));
    const bytes = size(shape) * 4;
    encoder.copyBufferToBuffer(output.buffer, output.offset * 4, prog.readback, 0, Math.max(4, bytes));
    q.submit([encoder.finish()]);
    const hostMs = performance.now() - t0;
    await prog.readback.mapAsync(GPUMapMode.READ, 0, Math.max(4, bytes));
    const raw = prog.readback.getMappedRange(0, Math.max(4, bytes)).slice(0, bytes);
    prog.readback.unmap();
    this.gpu.check();
    this.past = P + T;
    this.lastStep = { tokens: T, dispatches, submits: 1, hostMs, readbackBytes: Math.max(4, bytes) };
    const dtype = outNode.ty.dtype;
    const data = dtype === "f32" ? new Float32Array(raw) : dtype === "i32" ? new Int32Array(raw) : Uint8Array.from(new Uint32Array(raw));
    return { shape, dtype, data };
  }

  /** Dispatches one step of T tokens records (builds that shape's plan if needed). */
  async dispatchesPerStep(T: number): Promise<number> {
    return (await this.program(T)).greedyOnly.filter((g) => !g).length;
  }

  /** Releases every GPU buffer this executor made (the device stays). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.programs.values()) void p.then((prog) => this.destroyProgram(prog), () => undefined);
    this.programs.clear();
    for (const b of [...this.weights.values(), ...this.kv.values(), this.params]) b.destroy();
  }

  // ------------------------------------------------------------------------------------------ setup

  private uploadWeights(source: WeightSource, raw: WebGpuExecutorOptions["raw"]): void {
    const limit = this.device.limits.maxStorageBufferBindingSize;
    const shapeOf = new Map(weightNodes(this.graph).map((n) => [String(n.attrs["name"]), n.ty.shape.map((d) => evalDim(d, new Map()))]));
    for (const n of weightNodes(this.graph)) {
      const name = String(n.attrs["name"]);
      if (this.weights.has(name)) continue;
      const shape = n.ty.shape.map((d) => evalDim(d, new Map()));
      const count = size(shape);
      const format = this.weightFormats.get(name);
      const what = `weight '${name}' [${shape.join(", ")}]${format ? ` (${format})` : ""}`;
      const deviceBytes = format ? packedBytes(format, count) : count * 4;
      if (deviceBytes > limit) {
        throw new WebGpuError(`${what} takes ${deviceBytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes (splitting large tensors is not supported yet)`);
      }
      let bytes: Uint8Array;
      if (format) {
        const r = raw?.(name);
        if (!r || r.dtype !== format) throw new Error(`internal: weight '${name}' is no longer stored as ${format}`);
        bytes = packWeight(format, r.bytes, shape);
      } else {
        let data = source(name, shape);
        if (data.length !== count) throw new Error(`weight '${name}' has ${data.length} values, expected ${count} for shape [${shape.join(", ")}]`);
        const scale = this.folds.weights.get(name);
        if (scale) data = scaleWeight(data, shape[shape.length - 1]!, scale, (v) => source(v, shapeOf.get(v)!));
        bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      }
      const padded = Math.max(16, Math.ceil(bytes.length / 16) * 16);
      const buf = this.createBuffer(what, { label: `weight ${this.weights.size}`, size: padded, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Uint8Array(buf.getMappedRange(), 0, bytes.length).set(bytes);
      buf.unmap();
      this.weights.set(name, buf);
      this.weightBytes += padded;
    }
  }

  /** createBuffer, with an allocation failure turned into an error that names the buffer. */
  private createBuffer(what: string, desc: GPUBufferDescriptor): GPUBuffer {
    try {
      return this.device.createBuffer(desc);
    } catch (e) {
      throw new WebGpuError(outOfMemoryMessage(what, desc.size, this.allocated(), (e as Error).message));
    }
  }

  /** Bytes of the buffers this executor holds so far (weights, KV cache). */
  private allocated(): number {
    let n = this.weightBytes;
    for (const b of this.kv.values()) n += b.size;
    return n;
  }

  private program(T: number): Promise<StepProgram> {
    let p = this.programs.get(T);
    if (p) {
      // Most recently used last.
      this.programs.delete(T);
      this.programs.set(T, p);
      return p;
    }
    p = this.buildProgram(T);
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

  private async buildProgram(T: number): Promise<StepProgram> {
    const plan = buildStepPlan(this.graph, { T, maxStorageBuffers: this.maxStorageBuffers, mergeLinears: this.tuning.linear.merge, foldGains: true, weightFormats: this.weightFormats });
    checkPackedReads(plan);
    for (const i of plan.inputs) {
      if (i.name !== "tokens" && i.name !== "pos") throw new Error(`the graph has an input '${i.name}' that the runtime does not provide (it provides tokens and pos)`);
    }
    const kernels = emitPlan(plan, this.tuning);
    const maxBindings = this.device.limits.maxStorageBuffersPerShaderStage;
    for (const k of kernels) {
      const n = k.bindings.filter((b) => b.access !== "uniform").length;
      if (n > maxBindings) throw new WebGpuError(`the ${k.label} kernel reads and writes ${n} buffers, more than this device's maxStorageBuffersPerShaderStage of ${maxBindings}`);
    }
    const limit = this.device.limits.maxStorageBufferBindingSize;
    const owned: GPUBuffer[] = [];
    const inputBuffers = new Map<string, GPUBuffer>();
    const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
    const outNode = nodes.get(plan.outputs[0]!)!;
    const outBytes = size(outNode.ty.shape.map((d) => evalDim(d, new Map([["P", plan.maxSeqLen - T]])))) * 4;

    const stepBytes = plan.buffers.filter((b) => b.kind !== "weight").reduce((a, b) => a + b.bytes, 0);
    const buffers = await this.gpu.scoped(`creating the buffers of a ${T}-token step (${(stepBytes / 2 ** 20).toFixed(1)} MiB of KV cache, activations and constants besides ${(this.weightBytes / 2 ** 20).toFixed(1)} MiB of weights; a shorter context, --set max_seq_len=N, needs less)`, () =>
      plan.buffers.map((b) => {
        if (b.bytes > limit && b.kind !== "weight") throw new WebGpuError(`${describe(b)} takes ${b.bytes} bytes, more than this adapter's maxStorageBufferBindingSize of ${limit} bytes`);
        switch (b.kind) {
          case "weight": {
            const w = this.weights.get(b.holds);
            if (!w) throw new Error(`internal: weight '${b.holds}' was not uploaded`);
            if (!!b.scale !== this.folds.weights.has(b.holds)) throw new Error(`internal: weight '${b.holds}' was uploaded ${b.scale ? "unscaled" : "scaled"}`);
            return w;
          }
          case "kv": {
            let buf = this.kv.get(b.holds);
            if (!buf) {
              buf = this.createBuffer(describe(b), { label: `kv ${this.kv.size}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
              this.kv.set(b.holds, buf);
            }
            return buf;
          }
          case "literal": {
            const buf = this.createBuffer(describe(b), { label: `literal ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
            const data = b.data!;
            new (data.constructor as Float32ArrayConstructor)(buf.getMappedRange(), 0, data.length).set(data as Float32Array);
            buf.unmap();
            owned.push(buf);
            return buf;
          }
          case "input": {
            const buf = this.createBuffer(describe(b), { label: `input ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
            inputBuffers.set(b.holds, buf);
            owned.push(buf);
            return buf;
          }
          case "activation": {
            const buf = this.createBuffer(describe(b), { label: `activation ${b.id}`, size: b.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
            owned.push(buf);
            return buf;
          }
        }
      }),
    );
    const readback = this.device.createBuffer({ label: "llmc readback", size: Math.max(16, Math.ceil(outBytes / 16) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });

    const pipelines: GPUComputePipeline[] = [];
    for (const k of kernels) pipelines.push(await this.pipeline(k));
    const bindGroups = await this.gpu.scoped(`creating the bind groups of a ${T}-token step`, () =>
      kernels.map((k, i) =>
        this.device.createBindGroup({
          layout: this.layout(k.bindings),
          entries: k.bindings.map((b, j) => ({ binding: j, resource: { buffer: b.buffer === "params" ? this.params : buffers[b.buffer]! } })),
          label: `${k.label} (${i})`,
        }),
      ),
    );
    const outputs = plan.outputs.map((id) => {
      const p = plan.placement.get(id)!;
      return { buffer: buffers[p.buffer]!, offset: p.offset };
    });
    const tokenTables = plan.dispatches
      .filter((d) => d.kernel === "gather" && nodes.get(d.inputs[1]!)?.op === "input" && nodes.get(d.inputs[1]!)?.attrs["name"] === "tokens")
      .map((d) => evalDim(nodes.get(d.inputs[0]!)!.ty.shape[0]!, new Map()));
    const greedyOnly = plan.dispatches.map((d) => this.greedy !== null && onlyFor(plan, plan.outputs[this.greedy]!).has(d.node));
    return { plan, kernels, pipelines, bindGroups, owned, inputBuffers, outputs, readback, tokenTables, greedyOnly };
  }

  private layout(bindings: KernelBinding[]): GPUBindGroupLayout {
    const key = bindings.map((b) => b.access).join(",");
    let l = this.layoutCache.get(key);
    if (!l) {
      l = this.device.createBindGroupLayout({
        entries: bindings.map((b, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b.access === "uniform" ? "uniform" : b.access === "read" ? "read-only-storage" : "storage" },
        })),
      });
      this.layoutCache.set(key, l);
    }
    return l;
  }

  /** One pipeline per distinct kernel source; a WGSL error names the kernel and shows its code. */
  private pipeline(k: WgslKernel): Promise<GPUComputePipeline> {
    const key = `${k.bindings.map((b) => b.access).join(",")}\n${k.code}`;
    const cached = this.pipelineCache.get(key);
    if (cached) return cached;
    const layout = this.layout(k.bindings);
    const p = this.gpu
      .scoped(`the ${k.label} kernel`, () => {
        const module = this.device.createShaderModule({ code: k.code, label: k.label });
        return this.device.createComputePipeline({
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: "main" },
          label: k.label,
        });
      })
      .catch((e: unknown) => {
        this.pipelineCache.delete(key);
        const numbered = k.code.split("\n").map((l, i) => `${String(i + 1).padStart(4)} | ${l}`).join("\n");
        throw new WebGpuError(`${(e as Error).message}\n${numbered}`);
      });
    this.pipelineCache.set(key, p);
    return p;
  }
}

/** Nodes that `output` depends on and the plan's first output (the logits) does not. */
function onlyFor(plan: StepPlan, output: number): Set<number> {
  const byId = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  const ancestors = (root: number) => {
    const seen = new Set<number>();
    const stack = [root];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      stack.push(...(byId.get(id)?.inputs ?? []));
    }
    return seen;
  };
  const logits = ancestors(plan.outputs[0]!);
  return new Set([...ancestors(output)].filter((id) => !logits.has(id)));
}

/** Weight names whose every use is as a weight of a linear or a gather's table (the only kernels that read packed weights). */
function linearOnlyWeights(graph: Graph): Set<string> {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const ok = new Map<string, boolean>();
  for (const n of weightNodes(graph)) ok.set(String(n.attrs["name"]), !graph.outputs.includes(n.id));
  for (const u of graph.nodes) {
    let lo = 0;
    let hi = 0;
    if (u.op === "linear") [lo, hi] = [1, 1 + (u.attrs["weights"] as number)];
    else if (u.op === "gather") [lo, hi] = [0, 1]; // the table (an embedding)
    else if (u.op === "fused_linear") {
      const p = u.attrs["x_inputs"] as number;
      [lo, hi] = [p, p + (u.attrs["weights"] as number)];
    }
    u.inputs.forEach((id, i) => {
      const w = byId.get(id);
      if (w?.op === "weight" && (i < lo || i >= hi)) ok.set(String(w.attrs["name"]), false);
    });
  }
  return new Set([...ok].filter(([, v]) => v).map(([k]) => k));
}

/** A packed weight is read only as a linear kernel's weight or a gather's table (else a kernel would read it as f32). */
function checkPackedReads(plan: StepPlan): void {
  const packed = (id: number) => {
    const p = plan.placement.get(id);
    return p !== undefined && plan.buffers[p.buffer]?.format !== undefined;
  };
  for (const d of plan.dispatches) {
    const asWeight = new Set(d.kernel === "gather" ? [d.inputs[0]!] : (d.linear?.segments.flatMap((s) => s.weights) ?? []));
    const reads = d.linear ? [...d.linear.sources, ...d.linear.segments.flatMap((s) => [...s.weights, ...s.extras, ...(s.rotation?.inputs ?? [])])] : d.inputs;
    for (const id of reads) {
      if (packed(id) && !asWeight.has(id)) throw new Error(`internal: the ${d.kernel} dispatch #${d.index} reads packed weight %${id} as f32`);
    }
  }
}

/** What to say when the device cannot allocate a buffer. */
function outOfMemoryMessage(what: string, bytes: number, held: number, cause: string): string {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return (
    `out of GPU memory allocating ${what} (${mb(bytes)}; ${mb(held)} already allocated for this model): ${cause.trim().replace(/\.+$/, "")}. ` +
    "Use a smaller or quantized model (q8_0, q4_0 or f16 weights stay packed on the device), a shorter context (--set max_seq_len=N), or another backend (--backend cpu)."
  );
}

function describe(b: PlanBuffer): string {
  switch (b.kind) {
    case "kv": return `the KV cache '${b.holds}' (max_seq_len × kv heads × head_dim × 4 bytes)`;
    case "activation": return `activation buffer ${b.holds}`;
    case "literal": return `constant ${b.holds}`;
    case "input": return `input '${b.holds}'`;
    case "weight": return `weight '${b.holds}'`;
  }
}

/** A WebGPU executor on `gpu` whose weights are uploaded (errors surface here, not at the first step). */
export async function createWebGpuExecutor(graph: Graph, weights: WeightSource, gpu: GpuContext, opts: WebGpuExecutorOptions = {}): Promise<WebGpuExecutor> {
  const ex = new WebGpuExecutor(graph, weights, gpu, opts);
  await ex.ready();
  return ex;
}

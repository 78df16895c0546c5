// Building the step plan: specialise the graph for T, decide for every node whether it is a kernel,
// a view of other bytes, a constant (or a dim's value, a polynomial of P) written into its users, or
// a transpose the matmul reads through;
// write KV rows in place where a linear computes them (rule `in-place`), merge linears that share
// x (rule `merge`, plan/merge.ts); then give activations buffers by liveness.

import { constValue, evalDim, formatShape, type Dim } from "../base/symbolic.js";
import { maxSeqLenOf, nodeMap, type Graph, type Node } from "../ir/graph.js";
import { IDENTITY_PROGRAM, isIdentityProgram, type ExprNode, type ExprProgram } from "../ops/expr.js";
import { getOp, opTable, type DType } from "../ops/table.js";
import { specialize } from "../passes/specialize.js";
import { assignSlots, type Lifetime } from "./memory.js";
import { gainFolds } from "./fold.js";
import { linearBindings, mergeLinears } from "./merge.js";
import { dispatchOutputs, PlanError, type Dispatch, type LinearKernel, type NodeStorage, type Placement, type PlanBuffer, type StepPlan } from "./plan.js";
import { deviceLayout, type StorageDType } from "../target/storage.js";

export interface PlanOptions {
  /** Tokens per step: 1 for decode, the prompt length for prefill. */
  T: number;
  /** The device's maxStorageBuffersPerShaderStage (WebGPU's default, 8, when not given): merged
   *  kernels stay within it. */
  maxStorageBuffers?: number;
  /** Rule `merge` (default on). */
  mergeLinears?: boolean;
  /** Rule `gain` (plan/fold.ts; default off): the runtime uploads the weights `gainFolds` names
   *  scaled, and the kernels leave those factors out. */
  foldGains?: boolean;
  /** Weights stored packed on the device (f16/bf16 pairs, q8_0/q4_0 blocks), by name; the rest are
   *  f32. Only linear kernels read them, and their gains are never folded into them. */
  weightFormats?: ReadonlyMap<string, StorageDType>;
  /** Weights split into row ranges (rows of each part), by name: each part is bound on its own. */
  weightParts?: ReadonlyMap<string, readonly number[]>;
  /** Literals of at most this many f32 or i32 elements are written into the kernels that read them
   *  (a WGSL `const` array) and take no binding (default 0: every literal is bound). RoPE's
   *  frequency table is one: without its binding, a layer's q, k and v projections merge into one
   *  kernel under WebGPU's default 8 storage buffers. */
  inlineLiterals?: number;
  /** Rule `transposed-matmul` (default on): matmuls read operands transposed in their last two
   *  dims from the untransposed tensor, and a product only transposed is computed transposed. */
  transposedMatmul?: boolean;
}

/** WebGPU's default maxStorageBuffersPerShaderStage. */
export const DEFAULT_MAX_STORAGE_BUFFERS = 8;

const SUPPORTED_DTYPES: ReadonlySet<DType> = new Set(["f32", "i32", "bool"]);
const ELEMENT_BYTES = 4; // f32, i32, and bool stored as u32

const dependsOnP = (shape: readonly Dim[]) => shape.some((d) => constValue(d) === null);
const round16 = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

function isElementwise(op: string): boolean {
  return opTable.get(op)?.kind === "elementwise";
}

function isReduction(op: string): boolean {
  return opTable.get(op)?.kind === "reduction";
}

/** Concrete dims of a shape with no P in it. */
export function concreteDims(shape: readonly Dim[], what: string): number[] {
  return shape.map((d) => {
    const c = constValue(d);
    if (c === null) throw new PlanError(`${what}: shape ${formatShape(shape)} depends on the past length P`);
    return c;
  });
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** A transpose that only moves dims of size 1 keeps the element order: it is a view. */
function isTrivialTranspose(n: Node, input: Node): boolean {
  const perm = n.attrs["perm"] as number[];
  const kept = perm.filter((p) => constValue(input.ty.shape[p]!) !== 1);
  return kept.every((p, i) => i === 0 || p > kept[i - 1]!);
}

/** Whether a transpose swaps the last two dims and keeps the others. */
function swapsLastTwo(n: Node): boolean {
  if (n.op !== "transpose") return false;
  const perm = n.attrs["perm"] as number[];
  const r = perm.length;
  return r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, -2).every((p, i) => p === i);
}

/** The weight W of `x @ transpose(W)` with W [N, K]: the linear kernel reads W directly (its rows
 *  are tiled, so N must not depend on P; x's rows may). */
function linearWeight(m: Node, nodes: ReadonlyMap<number, Node>): number | null {
  const b = nodes.get(m.inputs[1]!)!;
  if (b.op !== "transpose" || m.inputs[0] === b.id) return null;
  const perm = b.attrs["perm"] as number[];
  const w = nodes.get(b.inputs[0]!)!;
  if (w.ty.shape.length !== 2 || perm.length !== 2 || perm[0] !== 1 || perm[1] !== 0 || dependsOnP(w.ty.shape)) return null;
  if (nodes.get(m.inputs[0]!)!.ty.shape.length < 2) return null;
  return w.id;
}

/** Rewrites program inputs that are scalar constants or dims' values into program nodes (`inline`
 *  gives them), renumbering the rest. */
function inlineConstants(program: ExprProgram, inputs: readonly number[], inline: (id: number) => ExprNode | null): { program: ExprProgram; inputs: number[] } {
  const kept: number[] = [];
  const remap = new Map<number, number>();
  inputs.forEach((id, i) => {
    if (inline(id) === null) {
      remap.set(i, kept.length);
      kept.push(id);
    }
  });
  const nodes = program.nodes.map((n): ExprNode => {
    if (n.kind !== "input") return n;
    return inline(inputs[n.index]!) ?? { kind: "input", index: remap.get(n.index)! };
  });
  return { program: { nodes, outputs: program.outputs }, inputs: kept };
}

function storageData(dtype: DType, values: ArrayLike<number>): Float32Array | Int32Array | Uint32Array {
  if (dtype === "f32") return Float32Array.from(values);
  if (dtype === "i32") return Int32Array.from(values);
  return Uint32Array.from(values, (v) => (v ? 1 : 0));
}

export function buildStepPlan(graph: Graph, opts: PlanOptions): StepPlan {
  const T = opts.T;
  if (!Number.isInteger(T) || T < 1) throw new PlanError(`a step needs at least one token, got T = ${T}`);
  const formats = opts.weightFormats;
  const folds = opts.foldGains ? gainFolds(graph, formats ? (name) => formats.has(name) : undefined) : null;
  const g = specialize(graph, { T });
  const nodes = nodeMap(g);
  const consumers = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const isOutput = new Set(g.outputs);
  const maxSeqLen = maxSeqLenOf(graph);
  if (T > maxSeqLen) throw new PlanError(`a step of ${T} tokens exceeds max_seq_len ${maxSeqLen}`);
  const envMax = new Map([["P", maxSeqLen - T]]);
  const elementsAtMax = (n: Node) => product(n.ty.shape.map((d) => evalDim(d, envMax)));

  for (const n of g.nodes) {
    if (!SUPPORTED_DTYPES.has(n.ty.dtype)) throw new PlanError(`%${n.id} (${n.op}) is ${n.ty.dtype}; the GPU backends support f32, i32 and bool tensors only (convert weights to f32 on load)`);
  }

  /** A scalar that kernels can take as a literal: a const, a one-element literal, or a dim's value
   *  that no longer depends on P (T is known). */
  const scalarOf = (id: number): { value: number; dtype: DType } | null => {
    const n = nodes.get(id)!;
    if (n.op === "dim_value") {
      const v = constValue(n.attrs["value"] as Dim);
      return v === null ? null : { value: v, dtype: n.ty.dtype };
    }
    if (n.op === "const") {
      const v = n.attrs["value"];
      return { value: typeof v === "boolean" ? (v ? 1 : 0) : (v as number), dtype: n.ty.dtype };
    }
    if (n.op === "literal" && !dependsOnP(n.ty.shape) && product(concreteDims(n.ty.shape, "literal")) === 1) {
      return { value: g.literals.get(n.id)![0]!, dtype: n.ty.dtype };
    }
    return null;
  };
  /** A program node for a scalar input: its literal, or the dim's value read from P each step. */
  const inlineNode = (id: number): ExprNode | null => {
    const c = scalarOf(id);
    if (c) return { kind: "const", value: c.value, dtype: c.dtype };
    const n = nodes.get(id)!;
    return n.op === "dim_value" ? { kind: "dim", value: n.attrs["value"] as Dim, dtype: n.ty.dtype } : null;
  };
  const takesInline = (c: Node) => isElementwise(c.op) || c.op === "fused";
  const needsBuffer = (n: Node) => isOutput.has(n.id) || (consumers.get(n.id) ?? []).some((c) => !takesInline(c));

  // Rule `transposed-matmul`: a matmul reads an operand transposed in its last two dims from the
  // untransposed tensor, and a product only transposed is computed transposed: (a·b)ᵀ = bᵀ·aᵀ. The
  // weight gradient of a linear, transpose(transpose(x) @ dy), becomes one matmul reading dy and x
  // (two transpose kernels fewer per weight in a training step).
  const foldsTransposes = opts.transposedMatmul !== false;
  const readsTransposed = (m: Node) => foldsTransposes && m.op === "matmul" && linearWeight(m, nodes) === null;
  const productTransposed = (t: Node) => {
    if (!swapsLastTwo(t) || isTrivialTranspose(t, nodes.get(t.inputs[0]!)!)) return null;
    const m = nodes.get(t.inputs[0]!)!;
    return readsTransposed(m) && !isOutput.has(m.id) && (consumers.get(m.id) ?? []).length === 1 ? m : null;
  };
  /** A matmul's dispatch: its operands with their transposes folded in, for node `node`. */
  const matmulDispatch = (m: Node, node: number, swap: boolean) => {
    const operand = (id: number) => {
      const t = nodes.get(id)!;
      return foldsTransposes && swapsLastTwo(t) ? { id: t.inputs[0]!, transposed: true } : { id, transposed: false };
    };
    let [a, b] = [operand(m.inputs[0]!), operand(m.inputs[1]!)];
    if (swap) [a, b] = [{ id: b.id, transposed: !b.transposed }, { id: a.id, transposed: !a.transposed }];
    const transposed = a.transposed || b.transposed ? { transposed: { a: a.transposed, b: b.transposed } } : {};
    dispatch({ kernel: "matmul", node, inputs: [a.id, b.id], ...transposed });
  };
  const elided = (t: Node) =>
    !isOutput.has(t.id) &&
    (consumers.get(t.id) ?? []).length > 0 &&
    consumers.get(t.id)!.every((c) => c.op === "matmul" && ((c.inputs[1] === t.id && linearWeight(c, nodes) !== null) || (swapsLastTwo(t) && readsTransposed(c))));

  const buffers: PlanBuffer[] = [];
  const placement = new Map<number, Placement>();
  const storage = new Map<number, NodeStorage>();
  const dispatches: Dispatch[] = [];
  const inputs: StepPlan["inputs"] = [];
  const weightBuffer = new Map<string, number>();
  const kvBuffer = new Map<string, number>();
  /** Views: node → (source node, extra element offset); resolved after activations are placed. */
  const views = new Map<number, { source: number; offset: number }>();
  /** Which dispatch writes a node. */
  const writer = new Map<number, Dispatch>();
  /** Linear outputs written straight into a KV cache (rule `in-place`). */
  const inPlace = new Map<number, Placement>();

  const addBuffer = (b: Omit<PlanBuffer, "id">): number => {
    buffers.push({ id: buffers.length, ...b });
    return buffers.length - 1;
  };
  const literalBuffer = (n: Node, values: ArrayLike<number>) => {
    const inline = values.length <= (opts.inlineLiterals ?? 0) && (n.ty.dtype === "f32" || n.ty.dtype === "i32");
    const id = addBuffer({ kind: "literal", bytes: round16(values.length * ELEMENT_BYTES), holds: `literal %${n.id}`, data: storageData(n.ty.dtype, values), ...(inline ? { inline } : {}) });
    placement.set(n.id, { buffer: id, offset: 0 });
    storage.set(n.id, "literal");
  };
  const maxStorageBuffers = opts.maxStorageBuffers ?? DEFAULT_MAX_STORAGE_BUFFERS;
  /** Parts of a weight split into row ranges (0 when whole). */
  const partCount = (id: number) => {
    const p = placement.get(id);
    return p ? (buffers[p.buffer]?.parts?.length ?? 0) : 0;
  };
  /** A linear or gather over a split weight whose parts would not all fit its kernel's bindings
   *  runs as several dispatches, each over consecutive parts: the ranges (one null: all of them). */
  const partRanges = (d: Omit<Dispatch, "index">): ([number, number] | null)[] => {
    const seg = d.linear?.segments[0];
    const [parts, perPart, base] = seg
      ? [partCount(seg.weights[0]!), seg.weights.length, linearBindings(d.linear!, (id) => `n${id}`)]
      : d.kernel === "gather" ? [partCount(d.inputs[0]!), 1, 3] : [0, 1, 0];
    const fit = Math.max(1, Math.floor((maxStorageBuffers - base) / perPart) + 1);
    if (parts <= fit) return [null];
    return Array.from({ length: Math.ceil(parts / fit) }, (_, j) => [j * fit, Math.min(parts, (j + 1) * fit)] as [number, number]);
  };
  // Kernels over P-dependent shapes are sized for the largest P and read P at each step (emit/).
  const dispatch = (d: Omit<Dispatch, "index">) => {
    for (const range of partRanges(d)) {
      const made: Dispatch = { index: dispatches.length, ...d, ...(range ? { parts: range } : {}) };
      dispatches.push(made);
      for (const o of dispatchOutputs(made)) writer.set(o, made);
    }
  };
  /** The node whose bytes a reshape view shows (offset 0). */
  const viewRoot = (id: number): number => {
    const v = views.get(id);
    return v && v.offset === 0 && nodes.get(id)!.op === "reshape" ? viewRoot(v.source) : id;
  };
  /** Whether `id` is read only by `target`, directly or through reshapes. */
  const onlyInto = (id: number, target: number): boolean =>
    !isOutput.has(id) && (consumers.get(id) ?? []).every((c) => c.id === target || (c.op === "reshape" && onlyInto(c.id, target)));

  for (const n of g.nodes) {
    const src = n.inputs[0];
    switch (n.op) {
      case "input": {
        const id = addBuffer({ kind: "input", bytes: round16(elementsAtMax(n) * ELEMENT_BYTES), holds: String(n.attrs["name"]) });
        placement.set(n.id, { buffer: id, offset: 0 });
        storage.set(n.id, "input");
        inputs.push({ name: String(n.attrs["name"]), node: n.id, buffer: id });
        break;
      }
      case "weight": {
        const name = String(n.attrs["name"]);
        let id = weightBuffer.get(name);
        if (id === undefined) {
          const scale = folds?.weights.get(name);
          const format = formats?.get(name);
          const bytes = format ? deviceLayout(format, concreteDims(n.ty.shape, `weight '${name}'`)).bytes : elementsAtMax(n) * ELEMENT_BYTES;
          const parts = opts.weightParts?.get(name);
          id = addBuffer({ kind: "weight", bytes: round16(bytes), holds: name, ...(scale ? { scale } : {}), ...(format ? { format } : {}), ...(parts ? { parts } : {}) });
          weightBuffer.set(name, id);
        }
        placement.set(n.id, { buffer: id, offset: 0 });
        storage.set(n.id, "weight");
        break;
      }
      case "literal":
        if (scalarOf(n.id) && !needsBuffer(n)) storage.set(n.id, "inlined");
        else literalBuffer(n, g.literals.get(n.id)!);
        break;
      case "const":
        if (!needsBuffer(n)) storage.set(n.id, "inlined");
        else literalBuffer(n, [scalarOf(n.id)!.value]);
        break;
      case "dim_value": {
        // Read by kernels that do not take it inline (or an output): a one-element buffer, a literal
        // when T alone decides it, else written each step by a kernel computing it from P.
        const c = scalarOf(n.id);
        if (!needsBuffer(n)) storage.set(n.id, "inlined");
        else if (c) literalBuffer(n, [c.value]);
        else dispatch({ kernel: "elementwise", node: n.id, inputs: [], program: { nodes: [inlineNode(n.id)!], outputs: [0] } });
        break;
      }
      case "arange":
        // 0, 1, … up to the largest P: every step reads the first n.
        literalBuffer(n, Array.from({ length: elementsAtMax(n) }, (_, i) => i));
        break;
      case "reshape":
        views.set(n.id, { source: src!, offset: 0 });
        break;
      case "slice": {
        const x = nodes.get(src!)!;
        const axis = (n.attrs["axis"] as number) < 0 ? (n.attrs["axis"] as number) + x.ty.shape.length : (n.attrs["axis"] as number);
        const start = constValue(n.attrs["start"] as Dim);
        const outer = x.ty.shape.slice(0, axis).map(constValue);
        if (start !== null && outer.every((d) => d === 1) && !dependsOnP(x.ty.shape.slice(axis + 1))) {
          const inner = product(concreteDims(x.ty.shape.slice(axis + 1), "slice"));
          views.set(n.id, { source: src!, offset: start * inner });
        } else dispatch({ kernel: "slice", node: n.id, inputs: [src!] });
        break;
      }
      case "transpose": {
        const m = productTransposed(n);
        if (m) matmulDispatch(m, n.id, true);
        else if (isTrivialTranspose(n, nodes.get(src!)!)) views.set(n.id, { source: src!, offset: 0 });
        else if (elided(n)) storage.set(n.id, "elided");
        else dispatch({ kernel: "transpose", node: n.id, inputs: [src!] });
        break;
      }
      case "kv_append": {
        if (dependsOnP(nodes.get(src!)!.ty.shape)) throw new PlanError(`%${n.id} appends ${formatShape(nodes.get(src!)!.ty.shape)} rows to the KV cache; a step appends its own T rows`);
        const state = String(n.attrs["state"]);
        const layer = n.attrs["layer"] as number;
        const which = n.attrs["which"] === "v" ? "v" : "k";
        const spec = g.states.get(state);
        if (!spec) throw new PlanError(`%${n.id} appends to a state the graph does not declare`);
        const key = `${state}.${layer}.${which}`;
        let id = kvBuffer.get(key);
        if (id === undefined) {
          id = addBuffer({ kind: "kv", bytes: round16(spec.maxSeqLen * spec.heads * spec.headDim * ELEMENT_BYTES), holds: key, kv: { state, layer, which } });
          kvBuffer.set(key, id);
        }
        placement.set(n.id, { buffer: id, offset: 0 });
        storage.set(n.id, "view");
        // Rule `in-place`: a linear whose rows only this append reads writes them into the cache.
        const root = viewRoot(src!);
        const producer = writer.get(root);
        if (producer?.linear && onlyInto(root, n.id)) {
          inPlace.set(root, { buffer: id, offset: 0, perPast: product(concreteDims(n.ty.shape.slice(1), `%${n.id}`)) });
        } else dispatch({ kernel: "kv_append", node: n.id, inputs: [src!] });
        break;
      }
      case "matmul": {
        const w = linearWeight(n, nodes);
        if (w !== null) {
          const linear: LinearKernel = { sources: [src!], prologue: IDENTITY_PROGRAM, segments: [{ node: n.id, weights: [w], extras: [], epilogue: IDENTITY_PROGRAM }] };
          dispatch({ kernel: "linear", node: n.id, inputs: [src!, w], program: IDENTITY_PROGRAM, weights: 1, linear });
        } else if ((consumers.get(n.id) ?? []).some((t) => productTransposed(t) === n)) {
          storage.set(n.id, "elided"); // computed transposed by its transpose's dispatch
        } else matmulDispatch(n, n.id, false);
        break;
      }
      case "linear": {
        const w = n.attrs["weights"] as number;
        const epilogue = n.attrs["epilogue"] as ExprProgram;
        const linear: LinearKernel = { sources: [src!], prologue: IDENTITY_PROGRAM, segments: [{ node: n.id, weights: n.inputs.slice(1, 1 + w), extras: n.inputs.slice(1 + w), epilogue }] };
        dispatch({ kernel: "linear", node: n.id, inputs: [...n.inputs], program: epilogue, weights: w, linear });
        break;
      }
      case "fused_linear": {
        const p = n.attrs["x_inputs"] as number;
        const w = n.attrs["weights"] as number;
        const e = n.attrs["extras"] as number;
        const headDim = n.attrs["head_dim"] as number;
        const folded = folds?.prologues.get(n.id);
        const linear: LinearKernel = {
          sources: folded?.sources ?? n.inputs.slice(0, p),
          prologue: folded?.prologue ?? (n.attrs["prologue"] as ExprProgram),
          segments: [{
            node: n.id,
            weights: n.inputs.slice(p, p + w),
            extras: n.inputs.slice(p + w, p + w + e),
            epilogue: n.attrs["epilogue"] as ExprProgram,
            ...(headDim > 0 ? { rotation: { headDim, program: n.attrs["rotation"] as ExprProgram, inputs: n.inputs.slice(p + w + e) } } : {}),
          }],
        };
        const reads = [...linear.sources, ...n.inputs.slice(p)];
        dispatch({ kernel: "fused_linear", node: n.id, inputs: [...new Set(reads)], linear });
        break;
      }
      case "fused": {
        const r = inlineConstants(n.attrs["program"] as ExprProgram, n.inputs, inlineNode);
        dispatch({ kernel: "fused", node: n.id, inputs: r.inputs, program: r.program });
        break;
      }
      case "gather":
      case "rotary":
      case "attention":
      case "concat":
        dispatch({ kernel: n.op, node: n.id, inputs: [...n.inputs] });
        break;
      case "gather_grad":
        dispatch({ kernel: "gather_grad", node: n.id, inputs: [...n.inputs] });
        break;
      case "cross_entropy_rows":
      case "cross_entropy_rows_grad":
        dispatch({ kernel: "cross_entropy", node: n.id, inputs: [...n.inputs] });
        break;
      case "attention_lse":
      case "attention_dq":
      case "attention_dk":
      case "attention_dv":
        dispatch({ kernel: "attention_grad", node: n.id, inputs: [...n.inputs] });
        break;
      default:
        if (isElementwise(n.op)) {
          const program: ExprProgram = {
            nodes: [
              ...n.inputs.map((_, i): ExprNode => ({ kind: "input", index: i })),
              n.op === "cast" ? { kind: "op", op: n.op, args: n.inputs.map((_, i) => i), dtype: n.attrs["dtype"] as DType } : { kind: "op", op: n.op, args: n.inputs.map((_, i) => i) },
            ],
            outputs: [n.inputs.length],
          };
          const r = inlineConstants(program, n.inputs, inlineNode);
          dispatch({ kernel: "elementwise", node: n.id, inputs: r.inputs, program: r.program });
        } else if (isReduction(n.op)) {
          dispatch({ kernel: "reduce", node: n.id, inputs: [src!] });
        } else {
          getOp(n.op); // unknown ops fail with the op table's message
          throw new PlanError(`%${n.id}: no kernel for op '${n.op}'`);
        }
    }
  }

  const rootOf = (id: number): number => {
    const v = views.get(id);
    return v ? rootOf(v.source) : id;
  };
  // `linear` keeps its original contract (x, weights, epilogue extras in `inputs`); anything more
  // is a `fused_linear`, which a target must read from `linear`.
  for (const d of dispatches) {
    if (!d.linear) continue;
    const k = d.linear;
    const seg = k.segments[0]!;
    if (k.segments.length === 1 && k.sources.length === 1 && isIdentityProgram(k.prologue) && !seg.rotation && !inPlace.has(seg.node)) {
      Object.assign(d, { kernel: "linear", inputs: [k.sources[0]!, ...seg.weights, ...seg.extras], program: seg.epilogue, weights: seg.weights.length });
    } else d.kernel = "fused_linear";
  }
  // "" for a literal the kernels write into their code: it takes no binding.
  const bufferKey = (id: number): string => {
    const r = rootOf(id);
    const p = inPlace.get(r) ?? placement.get(r);
    if (p && buffers[p.buffer]?.inline) return "";
    return p ? `b${p.buffer}` : `n${r}`;
  };
  const partsOf = (id: number) => Math.max(1, partCount(rootOf(id)));
  for (const d of dispatches) {
    const within = d.parts ? () => d.parts![1] - d.parts![0] : partsOf;
    if (d.linear && linearBindings(d.linear, bufferKey, within) > maxStorageBuffers) {
      throw new PlanError(`%${d.node} (${nodes.get(d.node)!.op}) needs ${linearBindings(d.linear, bufferKey, within)} storage buffers, more than the device's ${maxStorageBuffers}`);
    }
  }
  const planned =
    opts.mergeLinears === false
      ? dispatches
      : mergeLinears(dispatches, { producer: (id) => writer.get(rootOf(id))?.index ?? -1, bufferKey, partsOf, maxStorageBuffers });

  // Liveness of activations: written by their dispatch, read by later dispatches through any view.
  const lifetimes = new Map<number, Lifetime>();
  for (const d of planned) {
    if (d.kernel === "kv_append") continue;
    for (const o of dispatchOutputs(d)) {
      // From its first writer (several dispatches write the row ranges of a split weight's output).
      if (!inPlace.has(o) && !lifetimes.has(o)) lifetimes.set(o, { id: o, bytes: round16(elementsAtMax(nodes.get(o)!) * ELEMENT_BYTES), start: d.index, end: d.index });
    }
  }
  for (const d of planned) {
    for (const i of d.inputs) {
      const lt = lifetimes.get(rootOf(i));
      if (lt) lt.end = Math.max(lt.end, d.index);
    }
  }
  for (const o of g.outputs) {
    const lt = lifetimes.get(rootOf(o));
    if (lt) lt.end = Infinity;
  }
  const { slot, slotBytes } = assignSlots([...lifetimes.values()]);
  const slotBuffer = slotBytes.map((bytes, s) => addBuffer({ kind: "activation", bytes, holds: `slot ${s}` }));
  for (const [id, s] of slot) {
    placement.set(id, { buffer: slotBuffer[s]!, offset: 0 });
  }
  for (const [id, p] of inPlace) placement.set(id, p);
  for (const n of g.nodes) {
    const v = views.get(n.id);
    if (!v) continue;
    const p = placement.get(v.source);
    if (!p) throw new PlanError(`internal: %${n.id} is a view of %${v.source}, which has no storage`);
    placement.set(n.id, { ...p, offset: p.offset + v.offset });
    storage.set(n.id, "view");
  }
  for (const o of g.outputs) if (!placement.has(o)) throw new PlanError(`internal: output %${o} has no storage`);

  return { model: g.name, T, maxSeqLen, graph: g, buffers, placement, storage, dispatches: planned, inputs, outputs: [...g.outputs] };
}

// Kernels over shapes that depend on the past length P, on every backend. Random well-typed programs
// over a KV cache — transposes, slices (some starting at P), concats, elementwise ops with
// broadcasting, reductions along P + T, softmax rows, masks from arange(P + T), matmuls whose K or N
// is P + T, linears (with norm prologues and RoPE epilogues) over the cache's rows, gathers by
// position — run for several steps (a prefill, a decode, another prefill, a decode: P changes
// between them) on WebGPU and on the CUDA emulation, and must equal the CPU interpreter. Kernels
// over P-dependent shapes are launched for the largest P and read P from the step parameters, so one
// compiled step serves every P.
//
// Many programs run as one graph — sharing `tokens` and a few KV caches, one output each — so a few
// executor builds check them all (WebGPU returns one output: there they are concatenated). One batch
// goes through the fused pass pipeline (on WebGPU with the kernel shapes a GPU gets), one through the
// unfused pipeline (with llvmpipe's). FC_SEED draws other programs.

import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { addDim, constDim, constValue, dimEquals, dimSymbols, evalDim, formatShape, mulDim, symDim, type Dim } from "../../src/compiler/base/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import { DEFAULT_PIPELINE, runPasses, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { compileCuda } from "../../src/compiler/target/cuda.js";
import { compileWgsl, NOMINAL_LIMITS, wgslProfile } from "../../src/compiler/target/wgsl.js";
import { GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { draw, emulated } from "../cuda/helpers.js";
import { CI, expectClose, GraphBuilder, testWeights } from "../helpers/graph.js";
import { gpu } from "../webgpu/helpers.js";

afterAll(releaseSharedGpu);

const MAX_SEQ = 8;
const VOCAB = 8;
const CHUNK = 3;
/** Token ids per step: a prefill of CHUNK, a decode, another chunk, a decode (P = 0, 3, 4, 7). */
const STEPS = [[1, 5, 2], [7], [3, 6, 4], [0]].map((t) => Int32Array.from(t));
/** Largest element count of a tensor (at the largest P); bigger results are not made. */
const MAX_ELEMENTS = 1000;
/** The KV caches programs share: (kv heads, head_dim). */
const CACHES: [number, number][] = [[1, 2], [1, 4], [2, 2], [2, 3]];

const P = symDim("P");
const T = symDim("T");
const PT = addDim(P, T);
const isConst = (d: Dim) => constValue(d) !== null;
const elementsAtMax = (shape: readonly Dim[]) =>
  Math.max(...[[MAX_SEQ - 1, 1], [MAX_SEQ - CHUNK, CHUNK]].map(([p, t]) => shape.reduce((n, d) => n * evalDim(d, new Map([["P", p!], ["T", t!]])), 1)));

/** Decisions read off a drawn list of numbers, cycling. */
class Tape {
  private i = 0;
  constructor(private readonly values: readonly number[]) {}
  /** 0 … n-1 */
  pick(n: number): number {
    return this.values[this.i++ % this.values.length]! % n;
  }
  chance(percent: number): boolean {
    return this.pick(100) < percent;
  }
  one<X>(xs: readonly X[]): X {
    return xs[this.pick(xs.length)]!;
  }
}

interface Recipe {
  cache: number;
  ops: number;
  tape: number[];
}

const recipeArb: fc.Arbitrary<Recipe> = fc.record({
  cache: fc.nat({ max: CACHES.length - 1 }),
  ops: fc.integer({ min: 1, max: 4 }),
  tape: fc.array(fc.nat({ max: 1 << 20 }), { minLength: 64, maxLength: 64 }),
});

/** A KV cache the programs share: the keys and values so far [P + T, H, D], and per-step rows. */
interface Cache {
  H: number;
  D: number;
  k: number;
  v: number;
  /** This step's rows [T, H, D] of a table of its own. */
  rows: (weight: string) => number;
}

function caches(b: GraphBuilder, tokens: number): Cache[] {
  return CACHES.map(([H, D], i) => {
    const state = `kv${i}`;
    b.states.set(state, { name: state, layers: 1, maxSeqLen: MAX_SEQ, heads: H, headDim: D });
    const rows = (weight: string) => b.op("reshape", [b.op("gather", [b.weight(weight, [VOCAB, H * D]), tokens])], { shape: [T, constDim(H), constDim(D)] });
    const k = b.op("kv_append", [rows(`${state}.k`)], { state, layer: 0, which: "k" });
    const v = b.op("kv_append", [b.op("tanh", [rows(`${state}.v`)])], { state, layer: 0, which: "v" });
    return { H, D, k, v, rows };
  });
}

/**
 * Builds program `c` into `b` over one of the shared caches: ops drawn over a pool of tensors
 * (starting with the cache so far), then the last tensor cut down to a shape without P or T —
 * reductions along, or the last row of, its P- and T-dependent dims — and flattened. Returns the
 * output and what the program does.
 */
function buildCase(b: GraphBuilder, cache: Cache, c: number, r: Recipe): { out: number; what: string[] } {
  const tape = new Tape(r.tape);
  let weights = 0;
  const weight = (shape: number[]) => b.weight(`c${c}.w${weights++}`, shape);
  const q = () => cache.rows(`c${c}.q`);
  const pool = [cache.k, cache.v];
  const what = [`cache H=${cache.H} D=${cache.D}`];
  const shape = (id: number) => b.shape(id);
  const last = (id: number) => shape(id)[shape(id).length - 1]!;
  const pickTensor = (ok: (id: number) => boolean = () => true): number | null => {
    const fits = pool.filter(ok);
    return fits.length ? tape.one(fits) : null;
  };
  const constF = (value: number) => b.op("const", [], { value, dtype: "f32" });
  const softmax = (x: number) => {
    const e = b.op("exp", [b.op("sub", [x, b.op("amax", [x], { axis: -1, keepdim: true })])]);
    return b.op("div", [e, b.op("sum", [e], { axis: -1, keepdim: true })]);
  };
  const swapLast = (x: number) => {
    const n = shape(x).length;
    return b.op("transpose", [x], { perm: [...Array(n - 2).keys(), n - 1, n - 2] });
  };
  const batchFits = (a: number, x: number) => {
    const [sa, sx] = [shape(a).slice(0, -2), shape(x).slice(0, -2)];
    return sa.length === sx.length && sa.every((d, i) => dimEquals(d, sx[i]!) || constValue(d) === 1 || constValue(sx[i]!) === 1);
  };
  const linear = (x: number, n: number) => b.op("matmul", [x, b.op("transpose", [weight([n, constValue(last(x))!])], { perm: [1, 0] })]);
  /** 0, 1, … as a column [n, 1]: positions, for RoPE angles. */
  const positions = (n: Dim) => b.op("reshape", [b.op("arange", [], { n })], { shape: [n, constDim(1)] });

  const ops: Record<string, () => number | null> = {
    unary: () => b.op(tape.one(["tanh", "sin", "sigmoid", "neg", "abs", "silu"]), [pickTensor()!]),
    // A weight broadcast against a tensor: its constant dims kept or 1, its P-dependent ones 1.
    withWeight: () => {
      const a = pickTensor()!;
      const s = shape(a).slice(tape.pick(shape(a).length + 1));
      return b.op(tape.one(["mul", "add", "max"]), [a, weight(s.map((d) => (isConst(d) && tape.chance(70) ? constValue(d)! : 1)))]);
    },
    withTensor: () => {
      const a = pickTensor()!;
      const o = pickTensor((x) => x !== a && shape(x).length === shape(a).length && shape(x).every((d, i) => dimEquals(d, shape(a)[i]!)));
      return o === null ? null : b.op(tape.one(["add", "mul", "sub", "min"]), [a, o]);
    },
    transpose: () => {
      const a = pickTensor((x) => shape(x).length >= 2)!;
      const n = shape(a).length;
      const perm = [...Array(n).keys()];
      for (let i = n - 1; i > 0; i--) {
        const j = tape.pick(i + 1);
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      return perm.every((p, i) => p === i) ? null : b.op("transpose", [a], { perm });
    },
    slice: () => {
      const a = pickTensor()!;
      const axis = tape.pick(shape(a).length);
      const d = shape(a)[axis]!;
      const k = constValue(d);
      if (k !== null) {
        if (k < 2) return null;
        const s = tape.pick(k - 1);
        return b.op("slice", [a], { axis, start: constDim(s), end: constDim(s + 1 + tape.pick(k - s)) });
      }
      // The first row, the last row, or (of P + T rows) this step's rows, which start at P.
      const options: [Dim, Dim][] = [[constDim(0), constDim(1)], [addDim(d, constDim(-1)), d]];
      if (dimEquals(d, PT)) options.push([P, PT]);
      const [start, end] = tape.one(options);
      return b.op("slice", [a], { axis, start, end });
    },
    concat: () => {
      const a = pickTensor()!;
      return b.op("concat", [a, b.op("sin", [a])], { axis: tape.pick(shape(a).length) });
    },
    reduce: () => {
      const a = pickTensor()!;
      const n = shape(a).length;
      return b.op(tape.one(["sum", "mean", "amax"]), [a], { axis: tape.pick(n) - (tape.chance(50) ? n : 0), keepdim: n === 1 || tape.chance(50) });
    },
    softmax: () => softmax(pickTensor()!),
    // Positions past a threshold masked: arange over the last dim (P + T, say).
    mask: () => {
      const a = pickTensor()!;
      const keep = b.op("lt", [b.op("arange", [], { n: last(a) }), constF(1 + tape.pick(4))]);
      return b.op("where", [keep, a, b.op("mul", [a, constF(0.5)])]);
    },
    // x @ W, or x @ Wᵀ (a linear kernel), for x of any rows, P-dependent ones included.
    matmulWeight: () => {
      const a = pickTensor((x) => shape(x).length >= 2 && isConst(last(x)));
      if (a === null) return null;
      const N = 1 + tape.pick(4);
      return tape.chance(50) ? b.op("matmul", [a, weight([constValue(last(a))!, N])]) : linear(a, N);
    },
    // An RMSNorm then a linear (fused: the norm becomes the linear's prologue).
    normLinear: () => {
      const x = pickTensor((t) => shape(t).length >= 2 && isConst(last(t)));
      if (x === null) return null;
      const K = constValue(last(x))!;
      const ms = b.op("mean", [b.op("mul", [x, x])], { axis: -1, keepdim: true });
      const norm = b.op("mul", [b.op("mul", [x, b.op("rsqrt", [b.op("add", [ms, constF(1e-5)])])]), weight([K])]);
      return linear(norm, 1 + tape.pick(4));
    },
    // RoPE on a linear's heads (fused: the rotation in the linear's epilogue), angles from arange.
    ropeLinear: () => {
      const t = pickTensor((u) => shape(u).length >= 2 && isConst(last(u)));
      if (t === null) return null;
      const S = shape(t).slice(0, -1).reduce((acc, d) => mulDim(acc, d));
      const x = shape(t).length === 2 ? t : b.op("reshape", [t], { shape: [S, last(t)] });
      const [H, E] = [1 + tape.pick(2), 2 * (1 + tape.pick(2))];
      const heads = b.op("reshape", [linear(x, H * E)], { shape: [S, constDim(H), constDim(E)] });
      const angle = b.op("mul", [positions(S), weight([1, E / 2])]);
      return b.op("rotary", [heads, b.op("cos", [angle]), b.op("sin", [angle])]);
    },
    // Rows of a table by position: ids 0 … P + T - 1, clamped into the table.
    gatherPositions: () => {
      const a = pickTensor((t) => !isConst(shape(t)[0]!))!;
      const ids = b.op("cast", [b.op("min", [b.op("arange", [], { n: shape(a)[0]! }), constF(VOCAB - 1)])], { dtype: "i32" });
      return b.op("gather", [weight([VOCAB, 1 + tape.pick(3)]), ids]);
    },
    // a @ bᵀ over a shared last dim (scores: N = P + T where b is the cache) and a @ b over K = P + T.
    matmulTensors: () => {
      const a = pickTensor((x) => shape(x).length >= 2)!;
      const kDim = last(a);
      if (tape.chance(50)) {
        const o = pickTensor((x) => shape(x).length === shape(a).length && dimEquals(last(x), kDim) && batchFits(a, x));
        return o === null ? null : b.op("matmul", [a, swapLast(o)]);
      }
      const o = pickTensor((x) => shape(x).length === shape(a).length && dimEquals(shape(x)[shape(x).length - 2]!, kDim) && batchFits(a, x));
      return o === null ? null : b.op("matmul", [a, o]);
    },
    // The built-in attention, its queries this step's rows or any [.., H, D] tensor (over the cache:
    // P + T queries).
    attention: () => {
      const fits = (x: number) => shape(x).length === 3 && dimEquals(shape(x)[1]!, constDim(cache.H)) && dimEquals(last(x), constDim(cache.D));
      const qs = tape.chance(50) ? q() : pickTensor(fits);
      return qs === null ? null : b.op("attention", [qs, cache.k, cache.v], { causal: tape.chance(70), window: tape.one([0, 0, 2]), scale: 0.5 });
    },
    // Hand-written attention: heads first, scores over the cache, Gemma-2 soft-capping, softmax, · V.
    attend: () => {
      const qh = b.op("transpose", [q()], { perm: [1, 0, 2] });
      const kt = b.op("transpose", [cache.k], { perm: [1, 2, 0] });
      const cap = constF(2);
      const s = b.op("mul", [b.op("tanh", [b.op("div", [b.op("mul", [b.op("matmul", [qh, kt]), constF(1 / Math.sqrt(cache.D))]), cap])]), cap]);
      return b.op("matmul", [softmax(s), b.op("transpose", [cache.v], { perm: [1, 0, 2] })]);
    },
  };
  // Kinds by weight: products and the layout ops most, they are what P-dependent shapes change most.
  const kinds = Object.entries({ unary: 1, withWeight: 2, withTensor: 1, transpose: 3, slice: 3, concat: 2, reduce: 2, softmax: 2, mask: 1, matmulWeight: 2, normLinear: 2, ropeLinear: 2, gatherPositions: 1, matmulTensors: 4, attention: 1, attend: 2 }).flatMap(([k, w]) => Array<string>(w).fill(k));
  for (let made = 0, tries = 0; made < r.ops && tries < 40; tries++) {
    const kind = tape.one(kinds);
    const size = b.nodes.length;
    const id = ops[kind]!();
    if (id === null || shape(id).length > 4 || elementsAtMax(shape(id)) > MAX_ELEMENTS) {
      b.nodes.length = size; // drop what the attempt built
      continue;
    }
    pool.push(id);
    what.push(`${kind} → ${formatShape(shape(id))}`);
    made++;
  }

  // Cut the result down to a shape without P or T, then flatten it.
  let out = pool[pool.length - 1]!;
  for (let axis = shape(out).length - 1; axis >= 0; axis--) {
    const d = shape(out)[axis]!;
    if (isConst(d)) continue;
    const cut = tape.one(["sum", "mean", "amax", "last row"]);
    out = cut === "last row" ? b.op("slice", [out], { axis, start: addDim(d, constDim(-1)), end: d }) : b.op(cut, [out], { axis, keepdim: true });
    what.push(`${cut} along ${axis}`);
  }
  const n = shape(out).reduce((acc, d) => acc * constValue(d)!, 1);
  return { out: b.op("reshape", [out], { shape: [constDim(n)] }), what };
}

/** Values of each program's output in the joined output: cut to or padded (by repeating its last
 *  value) to this many, so the joining kernels are few distinct ones. */
const JOINED = 32;

interface Batch {
  /** One output per program. */
  graph: Graph;
  /** The same with one output (WebGPU and the CPU interpreter return only the first): each
   *  program's first JOINED values, padded, concatenated by a balanced tree of concats. */
  joined: Graph;
  /** Each program: how many values of its output the joined output holds, and what it does. */
  cases: { length: number; what: string[] }[];
}

function batch(recipes: readonly Recipe[]): Batch {
  const b = new GraphBuilder();
  const tokens = b.input("tokens", [T]);
  const shared = caches(b, tokens);
  const built = recipes.map((r, c) => buildCase(b, shared[r.cache]!, c, r));
  const graph = { ...b.graph(built.map((x) => x.out)), nodes: [...b.nodes], literals: new Map(b.literals) };
  const cases = built.map(({ out, what }) => ({ length: Math.min(JOINED, constValue(b.shape(out)[0]!)!), what }));
  const padded = built.map(({ out }, c) => {
    const n = cases[c]!.length;
    const kept = b.op("reshape", [b.op("slice", [out], { axis: 0, start: constDim(0), end: constDim(n) })], { shape: [constDim(n), constDim(1)] });
    return b.op("gather", [kept, b.literal(Int32Array.from({ length: JOINED }, (_, j) => Math.min(j, n - 1)), [JOINED])]);
  });
  const join = (ids: number[]): number => (ids.length === 1 ? ids[0]! : b.op("concat", [join(ids.slice(0, ids.length >> 1)), join(ids.slice(ids.length >> 1))], { axis: 0 }));
  return { graph, joined: b.graph([join(padded)]), cases };
}

/** Compares each program's values, naming the first that differs and what it does. */
function compareCases(got: (c: number) => HostTensor, want: HostTensor, cases: Batch["cases"], label: string, backend: string): void {
  for (const [i, c] of cases.entries()) {
    const part = (t: HostTensor, offset: number): HostTensor => ({ shape: [c.length], dtype: t.dtype, data: t.data.slice(offset, offset + c.length) });
    try {
      expectClose(part(got(i), 0), part(want, i * JOINED), 2e-4, `${label}, program ${i}`, backend);
    } catch (e) {
      (e as Error).message += `\n  program ${i}: ${c.what.join("; ")}`;
      throw e;
    }
  }
}

const SEED = Number(process.env["FC_SEED"] ?? 20240601); // as draw() reads it
/** 1000 programs under CI, 120 here. */
const PER_BATCH = CI ? 500 : 60;
const BATCHES = [
  { name: "fused", pipeline: DEFAULT_PIPELINE, wgsl: { tuning: GPU_TUNING }, shapes: "GPU kernel shapes" },
  { name: "unfused", pipeline: UNFUSED_PIPELINE, wgsl: {}, shapes: "the adapter's kernel shapes" },
];

/** Whether a node's shape depends on P. */
const overPast = (g: Graph) => {
  const nodes = new Map(g.nodes.map((n) => [n.id, n]));
  return (id: number) => nodes.get(id)!.ty.shape.some((d) => dimSymbols(d).includes("P"));
};

describe("kernels over P-dependent shapes (dynamic shapes)", () => {
  for (const [k, { name, pipeline, wgsl, shapes }] of BATCHES.entries()) {
    const { graph, joined, cases } = batch(draw(recipeArb, PER_BATCH, k));
    const weights: WeightSource = testWeights(SEED + k);
    const note = `(programs drawn with FC_SEED=${SEED}, batch ${k})`;
    // The CPU interpreter returns the first output: it runs the joined graph, as built (no passes).
    let want: HostTensor[] | undefined;
    const reference = () => {
      const cpu = new CpuInterpreter(joined, weights);
      return (want ??= STEPS.map((tokens) => cpu.step({ tokens })));
    };

    it(`batch ${k}: ${PER_BATCH} random programs, ${name}, on WebGPU (${shapes}) over prefill and decode steps = CPU`, async () => {
      const ex = await createWebGpuExecutor(runPasses(joined, { pipeline }), weights, await gpu(), { prefillChunk: CHUNK, ...wgsl });
      try {
        for (const [s, tokens] of STEPS.entries()) {
          const got = await ex.step({ tokens });
          const part = (i: number): HostTensor => ({ ...got, data: got.data.slice(i * JOINED) });
          compareCases(part, reference()[s]!, cases, `WebGPU step ${s} (T=${tokens.length}, P=${ex.past - tokens.length}) ${note}`, "webgpu");
        }
      } finally {
        ex.dispose();
      }
    });

    it(`batch ${k}: ${PER_BATCH} random programs, ${name}, on the CUDA emulation over prefill and decode steps (graph replays) = CPU`, async () => {
      const ex = new CudaExecutor(runPasses(graph, { pipeline }), weights, emulated({ prefillChunk: CHUNK }));
      try {
        for (const [s, tokens] of STEPS.entries()) {
          const got = await ex.stepOutputs({ tokens });
          compareCases((i) => got[i]!, reference()[s]!, cases, `CUDA step ${s} (T=${tokens.length}, P=${ex.past - tokens.length}) ${note}`, "cuda");
        }
      } finally {
        ex.dispose();
      }
    });
  }

  it("compiles each step shape once for every P: P-dependent kernels read P from the step parameters", () => {
    const { graph } = batch(draw(recipeArb, 8, 99));
    const wgsl = compileWgsl(graph, { profile: wgslProfile(true, NOMINAL_LIMITS.llvmpipe) }).step(1);
    const wgslOver = wgsl.plan.dispatches.filter((d) => overPast(wgsl.plan.graph)(d.node));
    expect(wgslOver.length).toBeGreaterThan(0);
    for (const d of wgslOver) expect(wgsl.kernels[d.index]!.code).toContain("params.past");
    const cuda = compileCuda(graph, { archs: [{ major: 8, minor: 0 }], prefillChunk: CHUNK });
    expect(cuda.module.paddingSafe).toBe(false); // padded chunks would pass max_seq_len
    const decode = cuda.steps(cuda.module.profiles[0]!.profile).decode;
    const cudaOver = decode.plan.dispatches.filter((d) => overPast(decode.plan.graph)(d.node));
    expect(cudaOver.length).toBeGreaterThan(0);
    for (const d of cudaOver) {
      expect(decode.launches.filter((l) => l.dispatch === d.index).some((l) => l.args.some((a) => a.buffer === decode.paramsBuffer))).toBe(true);
    }
  });
});

/** The fixture with its attention written by hand, tiny: GQA (4 query heads, 2 kv heads). Without
 *  the attention pattern rule, which would make it one attention kernel: these tests are about the
 *  written ops' kernels over P-dependent shapes. */
function softcapModel(): Graph {
  const overrides = { vocab_size: "40", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "48", max_seq_len: "24", attn_softcap: "1.5" };
  const pipeline = DEFAULT_PIPELINE.filter((p) => p !== "fuse-attention");
  const res = compileFile(join("test", "fixtures", "models", "llama-softcap.llm"), { overrides: new Map(Object.entries(overrides)), pipeline });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length || !res.compiled) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled.graph;
}

describe("a LLaMA with hand-written, soft-capped attention (test/fixtures/models/llama-softcap.llm)", () => {
  const graph = softcapModel();
  const weights: WeightSource = (name, shape) => randomTensor(name, shape, { seed: 11 });
  const prompt = Int32Array.from([3, 14, 15, 9, 26, 5, 35, 8]);
  const decode = [38, 4, 6].map((t) => Int32Array.of(t));
  let want: HostTensor[] | undefined;
  const reference = () => {
    const cpu = new CpuInterpreter(graph, weights);
    return (want ??= [prompt, ...decode].map((tokens) => cpu.step({ tokens })));
  };

  it("has no built-in attention: its attention runs as kernels over P-dependent shapes", () => {
    expect(graph.nodes.some((n) => n.op === "attention")).toBe(false);
    expect(graph.nodes.some((n) => n.op === "matmul" && overPast(graph)(n.id))).toBe(true);
  });

  it("WebGPU: prompt then decode steps = CPU interpreter", async () => {
    const ex = await createWebGpuExecutor(graph, weights, await gpu(), { prefillChunk: 5 });
    try {
      for (const [i, tokens] of [prompt, ...decode].entries()) {
        expectClose(await ex.step({ tokens }), reference()[i]!, 1e-4, `step ${i} (T=${tokens.length}, P=${ex.past - tokens.length})`, "webgpu");
      }
    } finally {
      ex.dispose();
    }
  });

  it("CUDA emulation: prompt in chunks then decode steps as a CUDA graph = CPU interpreter", async () => {
    const ex = new CudaExecutor(graph, weights, emulated({ prefillChunk: 5 }));
    try {
      for (const [i, tokens] of [prompt, ...decode].entries()) {
        expectClose(await ex.step({ tokens }), reference()[i]!, 1e-4, `step ${i} (T=${tokens.length}, P=${ex.past - tokens.length})`, "cuda");
      }
      expect(ex.lastStep?.graphs).toBe(1);
    } finally {
      ex.dispose();
    }
  });
});


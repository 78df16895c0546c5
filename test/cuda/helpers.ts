// Shared pieces of the CUDA tests. There is no GPU here: the generated kernels.cu is compiled twice —
// by nvcc to PTX (so it is real CUDA) and by g++ against the host emulation (so it runs) — and the
// CUDA executor drives it through its real koffi bindings, loaded against the fake libcuda.so.1
// (src/runtime/cuda/emulation). Builds are cached under os.tmpdir().
//
// Many random cases become one graph (their disjoint union, sharing the `tokens`/`pos` inputs), so a
// property compiles once: `runUnion` runs it for one step and returns each case's output, and the
// CPU interpreter gives each case's reference on its own.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { constDim, type Dim } from "../../src/compiler/check/symbolic.js";
import type { CudaModule, WeightFormat } from "../../src/compiler/emit/cuda/index.js";
import type { Graph, Node } from "../../src/compiler/ir/graph.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import { getOp, type Attrs, type DType } from "../../src/compiler/ops/table.js";
import { CpuInterpreter, type WeightSource } from "../../src/runtime/cpu/interpreter.js";
import { buildEmulatedModule, buildFakeLibcuda, emulatedImage } from "../../src/runtime/cuda/emulation/build.js";
import { CudaExecutor, type CudaExecutorOptions } from "../../src/runtime/cuda/executor.js";
import { findNvcc } from "../../src/runtime/cuda/ptx.js";

export const CI = !!process.env["CI"];

// ------------------------------------------------------------------------------------------ nvcc

const nvcc = findNvcc();
if (!nvcc && CI) throw new Error("nvcc is not on the PATH: under CI every generated kernels.cu must compile with nvcc");

/** Whether generated sources are also checked with nvcc (always under CI). */
export const NVCC = nvcc !== null;

/** Compiles `source` with `nvcc -ptx -arch=sm_80` (cached by its hash); throws nvcc's messages. */
export function nvccCheck(source: string, arch = "sm_80"): void {
  if (!nvcc) return;
  const dir = join(tmpdir(), "llmc-cuda-nvcc");
  mkdirSync(dir, { recursive: true });
  const key = createHash("sha256").update(arch).update(source).digest("hex").slice(0, 24);
  const ptx = join(dir, `${key}.ptx`);
  if (existsSync(ptx)) return;
  const cu = join(dir, `${key}.${process.pid}.cu`);
  writeFileSync(cu, source);
  try {
    execFileSync(nvcc, ["-ptx", `-arch=${arch}`, "-std=c++17", cu, "-o", `${ptx}.${process.pid}`], { stdio: ["ignore", "pipe", "pipe"] });
    execFileSync("mv", [`${ptx}.${process.pid}`, ptx]);
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`nvcc rejects the generated CUDA:\n${err.stderr?.toString().slice(0, 8000) ?? err.message}`);
  }
}

// ------------------------------------------------------------------------------------------ executor

/** Executor options that run on the emulation (and check the module with nvcc as it is loaded). */
export function emulated(opts: CudaExecutorOptions = {}): CudaExecutorOptions {
  return {
    libcuda: buildFakeLibcuda(),
    image: (m: CudaModule) => {
      nvccCheck(m.source);
      return emulatedImage(buildEmulatedModule(m.source, m.kernels));
    },
    ...opts,
  };
}

/** Compute capability the fake driver reports (picks the tuning profile). */
export function withComputeCapability<T>(cc: string, f: () => Promise<T>): Promise<T> {
  const before = process.env["LLMC_FAKE_CUDA_CC"];
  process.env["LLMC_FAKE_CUDA_CC"] = cc;
  return f().finally(() => {
    if (before === undefined) delete process.env["LLMC_FAKE_CUDA_CC"];
    else process.env["LLMC_FAKE_CUDA_CC"] = before;
  });
}

// ------------------------------------------------------------------------------------------ graphs

export const dims = (xs: readonly (number | Dim)[]): Dim[] => xs.map((x) => (typeof x === "number" ? constDim(x) : x));

/** Builds graphs node by node, typing each op with the op table. */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly literals = new Map<number, Float32Array | Int32Array>();
  readonly states: Graph["states"] = new Map();

  add(op: string, inputs: number[], attrs: Attrs, ty: Node["ty"]): number {
    this.nodes.push({ id: this.nodes.length, op, inputs, attrs, ty });
    return this.nodes.length - 1;
  }

  input(name: string, shape: (number | Dim)[], dtype: DType = "i32"): number {
    return this.add("input", [], { name }, { shape: dims(shape), dtype });
  }

  weight(name: string, shape: (number | Dim)[]): number {
    return this.add("weight", [], { name }, { shape: dims(shape), dtype: "f32" });
  }

  literal(data: Float32Array | Int32Array, shape: number[]): number {
    const id = this.add("literal", [], {}, { shape: dims(shape), dtype: data instanceof Int32Array ? "i32" : "f32" });
    this.literals.set(id, data);
    return id;
  }

  op(op: string, inputs: number[], attrs: Attrs = {}): number {
    const ty = getOp(op).infer(inputs.map((i) => this.nodes[i]!.ty), attrs);
    return this.add(op, inputs, attrs, ty);
  }

  graph(outputs: number[], name = "test"): Graph {
    return { name, nodes: this.nodes, outputs, literals: this.literals, states: this.states };
  }
}

/** The disjoint union of graphs: weights and states renamed per case (`c3.w0`), inputs shared by name. */
export function union(graphs: readonly Graph[]): Graph {
  const nodes: Node[] = [];
  const literals = new Map<number, Float32Array | Int32Array>();
  const states: Graph["states"] = new Map();
  const outputs: number[] = [];
  const inputs = new Map<string, number>();
  graphs.forEach((g, c) => {
    const map = new Map<number, number>();
    for (const n of g.nodes) {
      if (n.op === "input") {
        const name = String(n.attrs["name"]);
        if (!inputs.has(name)) {
          inputs.set(name, nodes.length);
          nodes.push({ ...n, id: nodes.length });
        }
        map.set(n.id, inputs.get(name)!);
        continue;
      }
      const id = nodes.length;
      map.set(n.id, id);
      const attrs = { ...n.attrs };
      if (n.op === "weight") attrs["name"] = `c${c}.${String(n.attrs["name"])}`;
      if (n.op === "kv_append") attrs["state"] = `c${c}.${String(n.attrs["state"])}`;
      nodes.push({ ...n, id, inputs: n.inputs.map((i) => map.get(i)!), attrs });
      const lit = g.literals.get(n.id);
      if (lit) literals.set(id, lit);
    }
    for (const s of g.states.values()) states.set(`c${c}.${s.name}`, { ...s, name: `c${c}.${s.name}` });
    outputs.push(...g.outputs.map((o) => map.get(o)!));
  });
  return { name: "union", nodes, outputs, literals, states };
}

/** The weights of case `c` of a union, from each case's own source. */
export function unionWeights(sources: readonly WeightSource[]): WeightSource {
  return (name, shape) => {
    const m = /^c(\d+)\.(.*)$/.exec(name)!;
    return sources[Number(m[1])]!(m[2]!, shape);
  };
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Seeded test weights; the name prefix picks the distribution: `pos*` uniform in [0.25, 3], `int*`
 * integers in [-4, 4], `nz*` integers in [1, 4], `exp*` integers in [0, 3], anything else uniform
 * in [-2, 2].
 */
export function testWeights(seed: number): WeightSource {
  return (name, shape) => {
    let a = (hash(name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
    const next = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const n = shape.reduce((x, y) => x * y, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = next();
      out[i] = name.startsWith("pos") ? 0.25 + 2.75 * u
        : name.startsWith("int") ? Math.floor(u * 9) - 4
        : name.startsWith("nz") ? 1 + Math.floor(u * 4)
        : name.startsWith("exp") ? Math.floor(u * 4)
        : 4 * u - 2;
    }
    return out;
  };
}

// ------------------------------------------------------------------------------------------ comparing

/** Largest |a - b| (NaNs in the same places count as equal), and the largest |b|. */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>): { maxDiff: number; scale: number } {
  if (a.length !== b.length) return { maxDiff: Infinity, scale: 0 };
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (!(Number.isNaN(x) && Number.isNaN(y))) maxDiff = Infinity;
      continue;
    }
    if (x === y) continue;
    maxDiff = Math.max(maxDiff, Math.abs(x - y));
    scale = Math.max(scale, Math.abs(y));
  }
  return { maxDiff, scale };
}

/** Throws unless `got` matches `want` within `tol` · max(1, largest |want|). */
export function expectClose(got: HostTensor, want: HostTensor, tol: number, what: string): void {
  if (got.shape.join() !== want.shape.join()) throw new Error(`${what}: shape [${got.shape}] vs [${want.shape}]`);
  if (got.dtype !== want.dtype) throw new Error(`${what}: dtype ${got.dtype} vs ${want.dtype}`);
  const { maxDiff, scale } = compare(got.data, want.data);
  const bound = tol * Math.max(1, scale);
  if (!(maxDiff <= bound)) {
    const sample = (t: HostTensor) => Array.from(t.data.slice(0, 8), (v) => +Number(v).toPrecision(6)).join(", ");
    throw new Error(`${what}: max |cuda - cpu| = ${maxDiff} > ${bound}\n  cuda [${sample(got)}…]\n  cpu  [${sample(want)}…]`);
  }
}

export interface UnionCase {
  graph: Graph;
  weights: WeightSource;
  /** What the case is, for failure messages. */
  what: string;
  tol?: number;
}

/**
 * Runs every case in one emulated module for one step (a single token: graphs here do not depend on
 * T) and compares each with the CPU interpreter. `weights` (CUDA storage formats) and reference
 * weights may differ: `reference` gives what the CPU sees (e.g. dequantized).
 */
export async function runUnion(cases: readonly UnionCase[], opts: CudaExecutorOptions = {}, reference?: (c: UnionCase) => WeightSource): Promise<void> {
  const g = union(cases.map((c) => c.graph));
  const ex = new CudaExecutor(g, unionWeights(cases.map((c) => c.weights)), emulated({ prefillChunk: 1, ...opts }));
  try {
    const outs = await ex.stepOutputs({ tokens: Int32Array.of(0) });
    cases.forEach((c, i) => {
      const want = new CpuInterpreter(c.graph, reference ? reference(c) : c.weights).step({ tokens: Int32Array.of(0) });
      expectClose(outs[i]!, want, c.tol ?? 1e-4, c.what);
    });
  } finally {
    ex.dispose();
  }
}

/** Draws `n` values of `arb` (seeded: FC_SEED or a fixed default, printed on failure by the caller). */
export function draw<T>(arb: fc.Arbitrary<T>, n: number, salt: number): T[] {
  const seed = (Number(process.env["FC_SEED"] ?? 20240601) + salt) | 0;
  return fc.sample(arb, { numRuns: n, seed });
}

/** Re-throws with the seed that reproduces a failure. */
export async function withSeed(salt: number, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    const seed = Number(process.env["FC_SEED"] ?? 20240601);
    (e as Error).message += `\n(cases drawn with FC_SEED=${seed}, salt ${salt})`;
    throw e;
  }
}

export type { WeightFormat };

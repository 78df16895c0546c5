// Shared pieces of the CUDA tests. There is no GPU here: the generated kernels.cu is compiled twice —
// by nvcc to PTX (so it is real CUDA) and by g++ against the host emulation (so it runs) — and the
// CUDA executor drives it through its real koffi bindings, loaded against the fake libcuda.so.1
// (tools/cuda-emulation). Builds are cached under os.tmpdir().
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
import type { CudaModule } from "../../src/compiler/target/cuda.js";
import { encodeTensor, type StorageDType } from "../../src/compiler/target/storage.js";
import { weightNodes } from "../../src/compiler/ir/graph.js";
import { evalDim } from "../../src/compiler/base/symbolic.js";
import type { Graph, Node } from "../../src/compiler/ir/graph.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { buildEmulatedModule, buildFakeLibcuda, emulatedImage } from "../../tools/cuda-emulation/build.js";
import { CudaExecutor, type CudaExecutorOptions } from "../../src/runtime/cuda/executor.js";
import { findNvcc } from "../../src/runtime/cuda/ptx.js";
import { archName, type ComputeCapability } from "../../src/compiler/emit/cuda/tuning.js";
import { CI, expectClose as expectCloseTo } from "../helpers/graph.js";

export { CI, compare, dims, GraphBuilder, testWeights } from "../helpers/graph.js";

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

/** Executor options that run on the emulation (and check the module with nvcc as it is loaded, for
 *  the architecture the fake driver reports). */
export function emulated(opts: CudaExecutorOptions = {}): CudaExecutorOptions {
  return {
    libcuda: buildFakeLibcuda(),
    image: (m: CudaModule, arch: ComputeCapability) => {
      nvccCheck(m.source, archName(arch));
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

// ------------------------------------------------------------------------------------------ unions

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

// ------------------------------------------------------------------------------------------ comparing

/** Throws unless the CUDA output `got` matches the CPU's `want` (see test/helpers/graph.ts). */
export function expectClose(got: HostTensor, want: HostTensor, tol: number, what: string): void {
  expectCloseTo(got, want, tol, what, "cuda");
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
export async function runUnion(cases: readonly UnionCase[], opts: CudaExecutorOptions & { storedAs?: (name: string) => StorageDType } = {}, reference?: (c: UnionCase) => WeightSource): Promise<void> {
  const g = union(cases.map((c) => c.graph));
  const { storedAs, ...executorOpts } = opts;
  const weights = unionWeights(cases.map((c) => c.weights));
  const ex = new CudaExecutor(g, storedAs ? storedWeights(g, weights, storedAs) : weights, emulated({ prefillChunk: 1, ...executorOpts }));
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

/** `source` as a weight file storing weight `name` as `dtypeOf(name)` would give it (`raw`: the
 *  encoded bytes), so the executor keeps that dtype on the device as it does for a real file. */
export function storedWeights(graph: Graph, source: WeightSource, dtypeOf: (name: string) => StorageDType): WeightSource {
  const shapes = new Map(weightNodes(graph).map((n) => [String(n.attrs["name"]), n.ty.shape.map((d) => evalDim(d, new Map()))]));
  const raw = (name: string) => {
    const dtype = dtypeOf(name);
    return dtype === "f32" ? null : { dtype, bytes: encodeTensor(dtype, source(name, shapes.get(name)!)) };
  };
  return Object.assign((name: string, shape: readonly number[]) => source(name, shape), { raw });
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


// What the backend tests share: a graph builder typed by the op table, seeded test weights, and the
// comparison of a backend's output with the CPU interpreter's.

import { constDim, type Dim } from "../../src/compiler/base/symbolic.js";
import type { Graph, Node } from "../../src/compiler/ir/graph.js";
import type { HostTensor } from "../../src/compiler/ops/reference.js";
import { getOp, type Attrs, type DType } from "../../src/compiler/ops/table.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { rng } from "../../src/runtime/weights/random.js";

export const CI = !!process.env["CI"];

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

  shape(id: number): Dim[] {
    return this.nodes[id]!.ty.shape;
  }

  graph(outputs: number[], name = "test"): Graph {
    return { name, nodes: this.nodes, outputs, literals: this.literals, states: this.states };
  }
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Seeded test weights; the name prefix picks the distribution:
 * `pos*` uniform in [0.25, 3] (logs, roots, powers), `int*` integers in [-4, 4], `nz*` integers in
 * [1, 4] (divisors), `exp*` integers in [0, 3] (integer exponents), anything else uniform in [-2, 2].
 */
export function testWeights(seed: number): WeightSource {
  return (name, shape) => {
    const next = rng((hash(name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
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

/** Throws unless `got` (from `backend`) matches `want` (from the CPU) within `tol` · max(1, largest |want|). */
export function expectClose(got: HostTensor, want: HostTensor, tol: number, what: string, backend = "gpu"): void {
  if (got.shape.join() !== want.shape.join()) throw new Error(`${what}: shape [${got.shape}] vs [${want.shape}]`);
  if (got.dtype !== want.dtype) throw new Error(`${what}: dtype ${got.dtype} vs ${want.dtype}`);
  const { maxDiff, scale } = compare(got.data, want.data);
  const bound = tol * Math.max(1, scale);
  if (!(maxDiff <= bound)) {
    const sample = (t: HostTensor) => Array.from(t.data.slice(0, 8), (v) => +Number(v).toPrecision(6)).join(", ");
    const w = Math.max(backend.length, 3);
    throw new Error(`${what}: max |${backend} - cpu| = ${maxDiff} > ${bound}\n  ${backend.padEnd(w)} [${sample(got)}…]\n  ${"cpu".padEnd(w)} [${sample(want)}…]`);
  }
}

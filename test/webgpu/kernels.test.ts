// Every WGSL kernel family against the CPU reference, on random shapes, on real Dawn (llvmpipe here).
// Each case is a small graph run by the WebGPU executor and by the CPU interpreter.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { parseProgram, type ExprNode, type ExprProgram } from "../../src/compiler/ops/expr.js";
import { CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import type { DType } from "../../src/compiler/ops/table.js";
import { CI, compareRuns, fusedLinears, GraphBuilder, linearSegment, NO_PROLOGUE, NORM_PROLOGUES, ONE_STEP, useGpu } from "./helpers.js";

const RUNS = CI ? 24 : 10;

useGpu();

const dimArb = fc.integer({ min: 1, max: 5 });
const seedArb = fc.integer({ min: 0, max: 1 << 30 });

/** `n` shapes that broadcast together (suffixes of one shape, some dims 1). */
function broadcastable(n: number, maxRank = 3): fc.Arbitrary<number[][]> {
  return fc.array(dimArb, { minLength: 0, maxLength: maxRank }).chain((base) =>
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: base.length }), fc.array(fc.boolean(), { minLength: base.length, maxLength: base.length })), { minLength: n, maxLength: n })
      .map((specs) => specs.map(([drop, ones]) => base.map((d, i) => (ones[i] ? 1 : d)).slice(drop))),
  );
}

type Domain = "any" | "pos" | "int" | "nz" | "exp";

/** An operand of `dtype` and `shape` made from weights (i32 by casting integer-valued weights). */
function operand(b: GraphBuilder, i: number, dtype: DType, shape: number[], domain: Domain): number {
  if (dtype === "bool") return b.op("lt", [b.weight(`a${i}`, shape), b.weight(`b${i}`, shape)]);
  if (dtype === "i32") return b.op("cast", [b.weight(`${domain === "any" || domain === "pos" ? "int" : domain}${i}`, shape)], { dtype: "i32" });
  return b.weight(`${domain === "any" ? "w" : domain === "pos" ? "pos" : domain}${i}`, shape);
}

interface OpSpec {
  op: string;
  dtypes: DType[];
  /** Domain of each operand. */
  domains: Domain[];
  /** First operand is the bool condition (where). */
  cond?: boolean;
}

const unaryFloat = (op: string, domain: Domain = "any"): OpSpec => ({ op, dtypes: ["f32"], domains: [domain] });
const binary = (op: string, dtypes: DType[], domains: Domain[] = ["any", "any"]): OpSpec => ({ op, dtypes, domains });

const ELEMENTWISE: OpSpec[] = [
  unaryFloat("exp"), unaryFloat("log", "pos"), unaryFloat("sqrt", "pos"), unaryFloat("rsqrt", "pos"), unaryFloat("sin"), unaryFloat("cos"),
  unaryFloat("tanh"), unaryFloat("sigmoid"), unaryFloat("silu"), unaryFloat("gelu"), unaryFloat("erf"), unaryFloat("recip", "pos"),
  { op: "neg", dtypes: ["f32", "i32"], domains: ["any"] },
  { op: "abs", dtypes: ["f32", "i32"], domains: ["any"] },
  { op: "not", dtypes: ["bool"], domains: ["any"] },
  binary("add", ["f32", "i32"]), binary("sub", ["f32", "i32"]), binary("mul", ["f32", "i32"]),
  binary("div", ["f32", "i32"], ["int", "nz"]), binary("max", ["f32", "i32"]), binary("min", ["f32", "i32"]),
  { op: "pow", dtypes: ["f32"], domains: ["pos", "any"] },
  { op: "pow", dtypes: ["i32"], domains: ["int", "exp"] },
  binary("lt", ["f32", "i32"]), binary("le", ["f32", "i32"]), binary("gt", ["f32", "i32"]),
  binary("ge", ["f32", "i32"]), binary("eq", ["i32"]), binary("ne", ["i32"]),
  binary("and", ["bool"]), binary("or", ["bool"]),
  { op: "where", dtypes: ["f32", "i32"], domains: ["any", "any", "any"], cond: true },
];

describe("elementwise kernels", () => {
  for (const spec of ELEMENTWISE) {
    it(`${spec.op} (${spec.dtypes.join(", ")}) matches the reference with broadcasting`, async () => {
      await fc.assert(
        fc.asyncProperty(broadcastable(spec.domains.length), fc.constantFrom(...spec.dtypes), seedArb, async (shapes, dtype, seed) => {
          const b = new GraphBuilder();
          const args = shapes.map((s, i) => operand(b, i, spec.cond && i === 0 ? "bool" : dtype, s, spec.domains[i]!));
          const out = b.op(spec.op, args);
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
        }),
        { numRuns: Math.ceil(RUNS / 3) },
      );
    });
  }

  it("casts between f32, i32 and bool", async () => {
    const types: DType[] = ["f32", "i32", "bool"];
    await fc.assert(
      fc.asyncProperty(fc.array(dimArb, { maxLength: 3 }), fc.constantFrom(...types), fc.constantFrom(...types), seedArb, async (shape, from, to, _seed) => {
        const b = new GraphBuilder();
        const x = from === "f32" ? b.op("mul", [b.weight("w", shape), b.weight("int", shape)]) : operand(b, 0, from, shape, "int");
        await compareRuns(b.graph([b.op("cast", [x], { dtype: to })]), { steps: ONE_STEP, seed: 7 });
      }),
      { numRuns: RUNS },
    );
  });
});

// ------------------------------------------------------------------------------------------ fused programs

type Instr = { kind: number; a: number; b: number; c: number };

const UNARY = ["neg", "abs", "tanh", "sigmoid", "silu", "gelu", "sin", "cos", "erf", "exp"] as const;
const BINARY = ["add", "sub", "mul", "max", "min"] as const;
const REDUCE = ["sum", "mean", "amax"] as const;

/** A random program over `inputs` inputs whose values stay bounded (|v| ≤ 1e3), so f32 on the GPU
 *  and f64 on the CPU agree to a relative 1e-4. */
function buildProgram(inputs: number, width: number, instrs: Instr[], reductions: boolean): ExprProgram {
  const nodes: ExprNode[] = [];
  const bound: number[] = [];
  const floats: number[] = []; // nodes that are f32 values (comparisons are bool)
  const push = (n: ExprNode, bnd: number) => {
    if (n.kind !== "op" || n.op !== "gt") floats.push(nodes.length);
    nodes.push(n);
    bound.push(bnd);
  };
  for (let i = 0; i < inputs; i++) {
    push({ kind: "input", index: i }, 2);
  }
  for (const ins of instrs) {
    const a = floats[ins.a % floats.length]!;
    const c = floats[ins.b % floats.length]!;
    const k = ins.kind % (UNARY.length + BINARY.length + 2 + (reductions ? REDUCE.length : 0));
    if (k < UNARY.length) {
      const op = UNARY[k]!;
      const ba = bound[a]!;
      if ((op === "exp" && ba > 4) || ((op === "sin" || op === "cos") && ba > 10)) continue;
      const bnd = op === "exp" ? Math.exp(ba) : ["tanh", "sigmoid", "sin", "cos", "erf"].includes(op) ? 1 : ba;
      push({ kind: "op", op, args: [a] }, bnd);
    } else if (k < UNARY.length + BINARY.length) {
      const op = BINARY[k - UNARY.length]!;
      const bnd = op === "mul" ? bound[a]! * bound[c]! : op === "add" || op === "sub" ? bound[a]! + bound[c]! : Math.max(bound[a]!, bound[c]!);
      if (bnd > 1e3) continue;
      push({ kind: "op", op, args: [a, c] }, bnd);
    } else if (k === UNARY.length + BINARY.length) {
      push({ kind: "const", value: Math.round((ins.c - 0.5) * 400) / 100, dtype: "f32" }, 2);
    } else if (k === UNARY.length + BINARY.length + 1) {
      // where(a > c, a, c)
      push({ kind: "op", op: "gt", args: [a, c] }, 1);
      push({ kind: "op", op: "where", args: [nodes.length - 1, a, c] }, Math.max(bound[a]!, bound[c]!));
    } else {
      const op = REDUCE[k - UNARY.length - BINARY.length - 2]!;
      if (op === "sum" && bound[a]! * width > 1e3) continue;
      push({ kind: "reduce", op, arg: a }, op === "sum" ? bound[a]! * width : bound[a]!);
    }
  }
  return { nodes, outputs: [floats[floats.length - 1]!] };
}

const instrArb = fc.record({ kind: fc.nat(), a: fc.nat(), b: fc.nat(), c: fc.double({ min: 0, max: 1, noNaN: true }) });

describe("fused kernels (shared expression renderer)", () => {
  for (const reductions of [false, true]) {
    it(`random ${reductions ? "row programs with reductions" : "elementwise programs"} match the reference`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(fc.constant(n), broadcastable(n, 3))),
          fc.array(instrArb, { minLength: 1, maxLength: 14 }),
          seedArb,
          async ([n, shapes], instrs, seed) => {
            const b = new GraphBuilder();
            const ins = shapes.map((s, i) => b.weight(`w${i}`, s));
            const outShape = shapes.reduce((acc, s) => (s.length > acc.length ? s.map((d, i) => Math.max(d, acc[i - (s.length - acc.length)] ?? 1)) : acc.map((d, i) => Math.max(d, s[i - (acc.length - s.length)] ?? 1))), [] as number[]);
            const width = outShape.length ? outShape[outShape.length - 1]! : 1;
            const program = buildProgram(n, width, instrs, reductions);
            const out = b.op("fused", ins, { program });
            await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
          },
        ),
        { numRuns: RUNS },
      );
    });
  }
});

// ------------------------------------------------------------------------------------------ reductions

describe("reduction kernels", () => {
  it("sum, mean and amax over any axis, with and without keepdim", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }))),
        fc.constantFrom("sum", "mean", "amax"),
        fc.boolean(),
        seedArb,
        async ([shape, axis], op, keepdim, seed) => {
          const b = new GraphBuilder();
          const out = b.op(op, [b.weight("x", shape)], { axis, keepdim });
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ------------------------------------------------------------------------------------------ matmul

describe("matmul kernels", () => {
  it("batched matmul with broadcast batch dims", async () => {
    await fc.assert(
      fc.asyncProperty(broadcastable(2, 2), dimArb, fc.integer({ min: 1, max: 9 }), dimArb, seedArb, async ([ba, bb], m, k, n, seed) => {
        const b = new GraphBuilder();
        const out = b.op("matmul", [b.weight("a", [...ba!, m, k]), b.weight("b", [...bb!, k, n])]);
        await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
      }),
      { numRuns: RUNS },
    );
  });

  // The register-tiled kernel (codegen-templates/wgsl/matmul.hbs) on outputs of any size: both
  // profiles' tiles, and tiles that are not multiples of 4.
  const TILED = [CPU_TUNING, GPU_TUNING, { ...CPU_TUNING, matmul: { ...CPU_TUNING.matmul, tileM: 3, tileN: 5 } }, { ...GPU_TUNING, matmul: { ...GPU_TUNING.matmul, tileM: 1, tileN: 2 } }].map(
    (t) => ({ ...t, matmul: { ...t.matmul, minTiledOutputs: 0 } }),
  );
  const tiledArb = fc.integer({ min: 0, max: TILED.length - 1 });

  it("register-tiled matmul: shapes that do and do not divide the tiles, vec4 and scalar K and N, broadcast batch dims", async () => {
    await fc.assert(
      fc.asyncProperty(
        broadcastable(2, 2),
        fc.integer({ min: 1, max: 13 }),
        fc.constantFrom(1, 3, 4, 8, 12, 13),
        fc.constantFrom(1, 2, 4, 5, 8, 12, 13),
        tiledArb,
        seedArb,
        async ([ba, bb], m, k, n, ti, seed) => {
          const b = new GraphBuilder();
          const out = b.op("matmul", [b.weight("a", [...ba!, m, k]), b.weight("b", [...bb!, k, n])]);
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed, opts: { tuning: TILED[ti]! } });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("register-tiled matmul: operands at unaligned offsets (slices) and transposed activations (dW = dYT X)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(4, 5, 8),
        fc.constantFrom(3, 4, 8),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        tiledArb,
        seedArb,
        async (m, k, n, shiftA, shiftB, transposed, ti, seed) => {
          const b = new GraphBuilder();
          /** rows × cols of a flat weight, from element `shift` on (a view at that offset). */
          const shifted = (name: string, shift: number, rows: number, cols: number) => {
            const flat = b.op("slice", [b.weight(name, [shift + rows * cols])], { axis: 0, start: new Map([["", shift]]), end: new Map([["", shift + rows * cols]]) });
            return b.op("reshape", [flat], { shape: [rows, cols].map((x) => new Map([["", x]])) });
          };
          const a = shifted("a", shiftA, m, k);
          // b as the transpose of an activation [n, k] (a copy kernel, then the matmul), or a view.
          const bt = transposed ? b.op("transpose", [b.op("add", [b.weight("p", [n, k]), b.weight("q", [n, k])])], { perm: [1, 0] }) : shifted("b", shiftB, k, n);
          const out = b.op("matmul", [a, bt]);
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed, opts: { tuning: TILED[ti]! } });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("operands stored transposed and products only transposed: read and computed in place (rule transposed-matmul)", async () => {
    const perm = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 1 }),
        fc.integer({ min: 1, max: 13 }),
        fc.constantFrom(1, 3, 4, 8, 13),
        fc.constantFrom(1, 2, 4, 5, 8, 13),
        fc.record({ a: fc.boolean(), b: fc.boolean(), out: fc.boolean(), alsoRead: fc.boolean(), read: fc.boolean() }),
        fc.integer({ min: -1, max: TILED.length - 1 }),
        seedArb,
        async (batch, m, k, n, t, ti, seed) => {
          // Tiled (or one element per invocation), reading transposed operands where they are or
          // copying them first.
          const base = ti >= 0 ? TILED[ti]! : { ...CPU_TUNING, matmul: { ...CPU_TUNING.matmul, minTiledOutputs: Number.MAX_SAFE_INTEGER } };
          const tuning = { ...base, matmul: { ...base.matmul, readTransposed: t.read } };
          const b = new GraphBuilder();
          // Activations (a weight plus itself), so that no transpose of a weight turns into a linear.
          const act = (name: string, shape: number[]) => b.op("add", [b.weight(name, shape), b.weight(`${name}2`, shape)]);
          const maybeT = (x: number, on: boolean) => (on ? b.op("transpose", [x], { perm: perm(batch.length + 2) }) : x);
          const a = maybeT(act("a", t.a ? [...batch, k, m] : [...batch, m, k]), t.a);
          const bb = maybeT(act("b", t.b ? [...batch, n, k] : [...batch, k, n]), t.b);
          const out = maybeT(b.op("matmul", [a, bb]), t.out);
          // A transpose also read by something other than a matmul is still computed, and the matmul
          // still reads around it.
          const outputs = t.alsoRead && t.a ? [out, b.op("neg", [a])] : [out];
          await compareRuns(b.graph(outputs), { steps: ONE_STEP, seed, opts: { tuning } });
        },
      ),
      // Always: a read transposed 4 rows and 4 steps of K at a time, with a partial last tile.
      { numRuns: RUNS, examples: [[[], 8, 8, 8, { a: true, b: false, out: true, alsoRead: false, read: true }, 0, 1], [[2], 12, 4, 5, { a: true, b: true, out: false, alsoRead: true, read: true }, 0, 2]] },
    );
  });

  it("register-tiled matmul over dims of P (KV-cache rows as M, K and N) across prefill and decode steps", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(2, 4, 5, 8),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 2, maxLength: 5 }),
        tiledArb,
        seedArb,
        async (d, lengths, ti, seed) => {
          const vocab = 7;
          const T = symDim("T");
          const b = new GraphBuilder();
          b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 24, heads: 1, headDim: d });
          const tokens = b.input("tokens", [T]);
          const rows = (name: string) => b.op("gather", [b.weight(name, [vocab, d]), tokens]);
          const cache = (which: "k" | "v") => {
            const all = b.op("kv_append", [b.op("reshape", [rows(which)], { shape: [T, new Map([["", 1]]), new Map([["", d]])] })], { state: "kv", layer: 0, which });
            return b.op("reshape", [all], { shape: [b.shape(all)[0]!, new Map([["", d]])] });
          };
          const [k, v, q] = [cache("k"), cache("v"), rows("q")];
          const scores = b.op("matmul", [q, b.op("transpose", [k], { perm: [1, 0] })]); // [T, P+T]: N of P
          const mixed = b.op("matmul", [scores, v]); // [T, d]: K of P
          const outer = b.op("matmul", [k, b.op("transpose", [q], { perm: [1, 0] })]); // [P+T, T]: M of P
          const steps = lengths.map((len, i) => Int32Array.from({ length: len }, (_, j) => (i * 3 + j * 5) % vocab));
          await compareRuns(b.graph([mixed, outer]), { steps, seed, opts: { tuning: TILED[ti]! } });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("x @ W.T reads W [N, K] directly (linear: decode matvec and prefill tiles, vec4 and scalar K)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(dimArb, { maxLength: 1 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(1, 3, 4, 8, 12, 13),
        fc.integer({ min: 1, max: 11 }),
        seedArb,
        async (batch, m, k, n, seed) => {
          const b = new GraphBuilder();
          const w = b.weight("w", [n, k]);
          const out = b.op("matmul", [b.weight("x", [...batch, m, k]), b.op("transpose", [w], { perm: [1, 0] })]);
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("fused linear: several weights, epilogue with bias and residual", async () => {
    const identity = (w: number): ExprNode[] => Array.from({ length: w }, (_, i) => ({ kind: "input", index: i }));
    const epilogues: { weights: number; extras: ("bias" | "residual")[]; program: ExprProgram }[] = [
      // silu(acc0) * acc1 (SwiGLU's gate and up in one kernel)
      { weights: 2, extras: [], program: { nodes: [...identity(2), { kind: "op", op: "silu", args: [0] }, { kind: "op", op: "mul", args: [2, 1] }], outputs: [3] } },
      // acc0 + bias
      { weights: 1, extras: ["bias"], program: { nodes: [...identity(2), { kind: "op", op: "add", args: [0, 1] }], outputs: [2] } },
      // residual + acc0 + bias
      {
        weights: 1,
        extras: ["bias", "residual"],
        program: { nodes: [...identity(3), { kind: "op", op: "add", args: [0, 1] }, { kind: "op", op: "add", args: [2, 3] }], outputs: [4] },
      },
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...epilogues), fc.integer({ min: 1, max: 6 }), fc.constantFrom(4, 8, 5), fc.integer({ min: 1, max: 9 }), seedArb, async (e, m, k, n, seed) => {
        const b = new GraphBuilder();
        const x = b.weight("x", [m, k]);
        const ws = Array.from({ length: e.weights }, (_, i) => b.weight(`w${i}`, [n, k]));
        const extras = e.extras.map((kind) => (kind === "bias" ? b.weight("bias", [n]) : b.weight("residual", [m, n])));
        const out = b.op("linear", [x, ...ws, ...extras], { weights: e.weights, epilogue: e.program });
        await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
      }),
      { numRuns: RUNS },
    );
  });
});

// ------------------------------------------------------------------------------------------ fused linears

/** Row prologues that factor as (row scale) × (elementwise): RMSNorm, Gemma's (1 + g), absmax
 *  scaling, and a norm with a per-row input (in2, [m, 1]: a scalar load per row). */
const PROLOGUES = [
  ...NORM_PROLOGUES,
  "in0; in1; in2; mul(0, 0); sum(3); 1:f32; add(4, 5); sqrt(6); mul(0, 1); mul(8, 2); div(9, 7) -> 10",
  NO_PROLOGUE,
];

describe("fused linear kernels (prologue, rotation, merged segments)", () => {
  it("match the reference: norms as prologues, RoPE rotations, several linears over one x in one dispatch", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: PROLOGUES.length - 1 }),
        fc.integer({ min: 1, max: 10 }),
        fc.constantFrom(3, 4, 8, 12, 13),
        fc.array(linearSegment, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        seedArb,
        async (pi, m, k, segs, merge, seed) => {
          const b = new GraphBuilder();
          const x = b.weight("x", [m, k]);
          const sources = pi === PROLOGUES.length - 1 ? [x] : pi === 3 ? [x, b.weight("g", [k]), b.weight("posr", [m, 1])] : [x, b.weight("g", [k])];
          const out = fusedLinears(b, sources, PROLOGUES[pi]!, m, k, segs);
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed, opts: { tuning: { ...CPU_TUNING, linear: { ...CPU_TUNING.linear, merge } } } });
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed, opts: { tuning: { ...GPU_TUNING, linear: { ...GPU_TUNING.linear, merge } } } });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("merges the segments: one dispatch for linears that share x and prologue", async () => {
    const b = new GraphBuilder();
    const x = b.weight("x", [1, 8]);
    const g = b.weight("g", [8]);
    const prologue = parseProgram(PROLOGUES[0]!);
    const attrs = { prologue, x_inputs: 2, weights: 1, epilogue: parseProgram("in0 -> 0"), extras: 0, head_dim: 0, rotation: parseProgram("1:f32; 0:f32 -> 0, 1") };
    const outs = [4, 8, 12].map((n, i) => b.op("fused_linear", [x, g, b.weight(`w${i}`, [n, 8])], attrs));
    const out = b.op("concat", [b.op("concat", [outs[0]!, outs[1]!], { axis: -1 }), outs[2]!], { axis: -1 });
    expect(await compareRuns(b.graph([out]), { steps: ONE_STEP, seed: 3 })).toBe(1 + 2); // the linears, two concats
    expect(await compareRuns(b.graph([out]), { steps: ONE_STEP, seed: 3, opts: { tuning: { ...CPU_TUNING, linear: { ...CPU_TUNING.linear, merge: false } } } })).toBe(3 + 2);
  });
});

// ------------------------------------------------------------------------------------------ model ops

/** One attention op over weights as q, k, v, on WebGPU and the CPU. */
async function attentionCase(c: { t: number; s: number; hkv: number; group: number; d: number; causal: boolean; window: number; scale?: number | undefined }, seed: number): Promise<void> {
  const b = new GraphBuilder();
  const q = b.weight("q", [c.t, c.hkv * c.group, c.d]);
  const k = b.weight("k", [c.s, c.hkv, c.d]);
  const v = b.weight("v", [c.s, c.hkv, c.d]);
  const attrs = { causal: c.causal, window: c.window, ...(c.scale !== undefined ? { scale: c.scale } : {}) };
  await compareRuns(b.graph([b.op("attention", [q, k, v], attrs)]), { steps: ONE_STEP, seed });
}

describe("gather, rotary, attention, KV cache", () => {
  it("gather rows by token ids (vec4 and scalar rows)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 9 }), fc.constantFrom(1, 3, 4, 8), fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 3 }), seedArb, async (v, d, steps, seed) => {
        const b = new GraphBuilder();
        const out = b.op("gather", [b.weight("table", [v, d]), b.input("tokens", [symDim("T")])]);
        await compareRuns(b.graph([out]), { steps: steps.map((s) => Int32Array.from(s, (x) => x % v)), seed });
      }),
      { numRuns: RUNS },
    );
  });

  it("rotary embedding", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), seedArb, async (t, h, half, seed) => {
        const b = new GraphBuilder();
        const out = b.op("rotary", [b.weight("x", [t, h, 2 * half]), b.weight("cos", [t, half]), b.weight("sin", [t, half])]);
        await compareRuns(b.graph([out]), { steps: ONE_STEP, seed });
      }),
      { numRuns: RUNS },
    );
  });

  it("attention: causal or not, sliding window, GQA, explicit scale, fewer keys than queries", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          t: fc.integer({ min: 1, max: 5 }),
          s: fc.integer({ min: 1, max: 9 }),
          hkv: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 3 }),
          d: fc.constantFrom(2, 4, 6, 8),
          causal: fc.boolean(),
          window: fc.integer({ min: 0, max: 6 }),
          scale: fc.option(fc.constantFrom(0.5, 0.125), { nil: undefined }),
        }),
        seedArb,
        attentionCase,
      ),
      { numRuns: RUNS },
    );
  });

  it("attention of decode steps (a workgroup per row, lanes splitting the keys) over pasts longer than the lanes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          t: fc.integer({ min: 1, max: 4 }),
          s: fc.integer({ min: 1, max: 150 }),
          hkv: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 3 }),
          d: fc.constantFrom(2, 6, 8, 64),
          causal: fc.boolean(),
          window: fc.constantFrom(0, 1, 5, 40),
        }),
        seedArb,
        attentionCase,
      ),
      { numRuns: RUNS },
    );
  });

  it("kv_append + attention over the cache across prefill and decode steps (P is a runtime parameter)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          hkv: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 2 }),
          d: fc.constantFrom(2, 4, 8),
          window: fc.constantFrom(0, 2, 3),
          lengths: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 6 }),
        }),
        seedArb,
        async (c, seed) => {
          const vocab = 7;
          const hq = c.hkv * c.group;
          const T = symDim("T");
          const b = new GraphBuilder();
          b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 24, heads: c.hkv, headDim: c.d });
          const tokens = b.input("tokens", [T]);
          const rows = (name: string, heads: number) => b.op("reshape", [b.op("gather", [b.weight(name, [vocab, heads * c.d]), tokens])], { shape: [T, ...[heads, c.d].map((x) => new Map([["", x]]))] });
          const kAll = b.op("kv_append", [rows("k", c.hkv)], { state: "kv", layer: 0, which: "k" });
          const vAll = b.op("kv_append", [rows("v", c.hkv)], { state: "kv", layer: 0, which: "v" });
          const out = b.op("attention", [rows("q", hq), kAll, vAll], { causal: true, window: c.window });
          const steps = c.lengths.map((n, i) => Int32Array.from({ length: n }, (_, j) => (i * 3 + j * 5) % vocab));
          await compareRuns(b.graph([out]), { steps, seed });
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ------------------------------------------------------------------------------------------ layout

describe("layout kernels and views", () => {
  it("transpose by any permutation", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(dimArb, { minLength: 1, maxLength: 4 }).chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray([...s.keys()], { minLength: s.length, maxLength: s.length }))),
        seedArb,
        async ([shape, perm], seed) => {
          const b = new GraphBuilder();
          // Followed by an add so a trivial (view) transpose still runs a kernel over it.
          const t = b.op("transpose", [b.weight("x", shape)], { perm });
          const out = b.op("add", [t, b.weight("y", perm.map((p) => shape[p]!))]);
          await compareRuns(b.graph([out, t]), { steps: ONE_STEP, seed });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("slice (contiguous slices are views with an offset) and concat", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(dimArb, { minLength: 1, maxLength: 3 }).chain((s) =>
          fc.integer({ min: 0, max: s.length - 1 }).chain((axis) =>
            fc.tuple(fc.constant(s), fc.constant(axis), fc.integer({ min: 0, max: s[axis]! - 1 }), fc.integer({ min: 1, max: s[axis]! }), fc.integer({ min: 1, max: 3 })),
          ),
        ),
        fc.boolean(),
        seedArb,
        async ([shape, axis, a, e, extra], leadingOne, seed) => {
          const [start, end] = [Math.min(a, e - 1), Math.max(e, a + 1)];
          const b = new GraphBuilder();
          const full = leadingOne ? [1, ...shape] : shape;
          const ax = leadingOne ? axis + 1 : axis;
          const x = b.weight("x", full);
          const sl = b.op("slice", [x], { axis: ax, start: new Map([["", start]]), end: new Map([["", end]]) });
          const sShape = full.slice();
          sShape[ax] = end - start;
          const y = b.op("mul", [sl, b.weight("y", sShape)]);
          const oShape = sShape.slice();
          oShape[ax] = extra;
          const cat = b.op("concat", [y, b.weight("z", oShape)], { axis: ax - full.length });
          await compareRuns(b.graph([cat]), { steps: ONE_STEP, seed });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("reshape is a free view: no dispatch", async () => {
    const b = new GraphBuilder();
    const x = b.weight("x", [2, 6]);
    const r = b.op("reshape", [x], { shape: [3, 4].map((n) => new Map([["", n]])) });
    const out = b.op("exp", [r]);
    const dispatches = await compareRuns(b.graph([out]), { steps: ONE_STEP, seed: 1 });
    expect(dispatches).toBe(1);
  });
});

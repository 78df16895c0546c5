// Every CUDA kernel family against the CPU reference on random shapes: fast-check draws the cases,
// each property's cases run as one emulated module (see helpers.ts), each module also compiles
// with nvcc. Set FC_SEED to draw other cases.

import { describe, it } from "vitest";
import fc from "fast-check";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { parseProgram, type ExprNode, type ExprProgram } from "../../src/compiler/ops/expr.js";
import { roundToDType } from "../../src/compiler/ops/reference.js";
import type { DType } from "../../src/compiler/ops/table.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import type { WeightSource } from "../../src/runtime/executor.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { decodeTensor, encodeTensor } from "../../src/compiler/target/storage.js";
import { CI, dims, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, union, unionWeights, withComputeCapability, withSeed, type UnionCase } from "./helpers.js";
import type { StorageDType } from "../../src/compiler/target/storage.js";
import { matvecShape } from "../../src/compiler/emit/cuda/linear.js";
import { parseArch, tuningFor } from "../../src/compiler/emit/cuda/tuning.js";

const N = (local: number) => (CI ? local * 3 : local);
const seedArb = fc.integer({ min: 0, max: 1 << 30 });
const dimArb = fc.integer({ min: 1, max: 5 });

function broadcastable(n: number, maxRank = 3): fc.Arbitrary<number[][]> {
  return fc.array(dimArb, { minLength: 0, maxLength: maxRank }).chain((base) =>
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: base.length }), fc.array(fc.boolean(), { minLength: base.length, maxLength: base.length })), { minLength: n, maxLength: n })
      .map((specs) => specs.map(([drop, ones]) => base.map((d, i) => (ones[i] ? 1 : d)).slice(drop))),
  );
}

type Domain = "any" | "pos" | "int" | "nz" | "exp";

function operand(b: GraphBuilder, i: number, dtype: DType, shape: number[], domain: Domain): number {
  if (dtype === "bool") return b.op("lt", [b.weight(`a${i}`, shape), b.weight(`b${i}`, shape)]);
  if (dtype === "i32") return b.op("cast", [b.weight(`${domain === "any" || domain === "pos" ? "int" : domain}${i}`, shape)], { dtype: "i32" });
  return b.weight(`${domain === "any" ? "w" : domain === "pos" ? "pos" : domain}${i}`, shape);
}

const ELEMENTWISE: { op: string; dtypes: DType[]; domains: Domain[]; cond?: boolean }[] = [
  ...["exp", "sin", "cos", "tanh", "sigmoid", "silu", "gelu", "erf"].map((op) => ({ op, dtypes: ["f32" as DType], domains: ["any" as Domain] })),
  ...["log", "sqrt", "rsqrt", "recip"].map((op) => ({ op, dtypes: ["f32" as DType], domains: ["pos" as Domain] })),
  { op: "neg", dtypes: ["f32", "i32"], domains: ["any"] },
  { op: "abs", dtypes: ["f32", "i32"], domains: ["any"] },
  { op: "not", dtypes: ["bool"], domains: ["any"] },
  ...["add", "sub", "mul", "max", "min", "lt", "le", "gt", "ge"].map((op) => ({ op, dtypes: ["f32", "i32"] as DType[], domains: ["any", "any"] as Domain[] })),
  { op: "div", dtypes: ["f32", "i32"], domains: ["int", "nz"] },
  { op: "pow", dtypes: ["f32"], domains: ["pos", "any"] },
  { op: "pow", dtypes: ["i32"], domains: ["int", "exp"] },
  { op: "eq", dtypes: ["i32"], domains: ["int", "int"] },
  { op: "ne", dtypes: ["i32"], domains: ["int", "int"] },
  { op: "and", dtypes: ["bool"], domains: ["any", "any"] },
  { op: "or", dtypes: ["bool"], domains: ["any", "any"] },
  { op: "where", dtypes: ["f32", "i32"], domains: ["any", "any", "any"], cond: true },
];

describe("CUDA elementwise kernels", () => {
  it("every elementwise op and dtype, with broadcasting, and casts between f32, i32 and bool", () =>
    withSeed(1, async () => {
      const specs = ELEMENTWISE.flatMap((s) => s.dtypes.map((dtype) => ({ ...s, dtype })));
      const shapes = draw(broadcastable(3), specs.length + 6, 1);
      const seeds = draw(seedArb, specs.length + 6, 2);
      const cases: UnionCase[] = specs.map((s, k) => {
        const b = new GraphBuilder();
        const ins = s.domains.map((dom, i) => operand(b, i, s.cond && i === 0 ? "bool" : s.dtype, shapes[k]![i]!, dom));
        return { graph: b.graph([b.op(s.op, ins)]), weights: testWeights(seeds[k]!), what: `${s.op} ${s.dtype} [${shapes[k]!.map((x) => `[${x}]`)}]` };
      });
      const casts: [DType, DType][] = [["f32", "i32"], ["i32", "f32"], ["f32", "bool"], ["bool", "f32"], ["i32", "bool"], ["bool", "i32"]];
      casts.forEach(([from, to], j) => {
        const k = specs.length + j;
        const b = new GraphBuilder();
        const x = from === "f32" ? b.op("mul", [b.weight("w0", shapes[k]![0]!), b.weight("w1", shapes[k]![0]!)]) : operand(b, 0, from, shapes[k]![0]!, "int");
        cases.push({ graph: b.graph([b.op("cast", [x], { dtype: to })]), weights: testWeights(seeds[k]!), what: `cast ${from} → ${to}` });
      });
      await runUnion(cases);
    }));
});

const UNARY = ["neg", "abs", "tanh", "sigmoid", "silu", "gelu", "sin", "cos", "erf", "exp"] as const;
const BINARY = ["add", "sub", "mul", "max", "min"] as const;
const REDUCE = ["sum", "mean", "amax"] as const;
interface Instr { kind: number; a: number; b: number; c: number }
const instrArb = fc.record({ kind: fc.nat(), a: fc.nat(), b: fc.nat(), c: fc.double({ min: 0, max: 1, noNaN: true }) });

/** A random program whose values stay bounded (|v| ≤ 1e3), so f32 and the f64 reference agree. */
function buildProgram(inputs: number, width: number, instrs: Instr[], reductions: boolean): ExprProgram {
  const nodes: ExprNode[] = [];
  const bound: number[] = [];
  const floats: number[] = [];
  const push = (n: ExprNode, bnd: number) => {
    if (n.kind !== "op" || n.op !== "gt") floats.push(nodes.length);
    nodes.push(n);
    bound.push(bnd);
  };
  for (let i = 0; i < inputs; i++) push({ kind: "input", index: i }, 2);
  for (const ins of instrs) {
    const a = floats[ins.a % floats.length]!;
    const c = floats[ins.b % floats.length]!;
    const k = ins.kind % (UNARY.length + BINARY.length + 2 + (reductions ? REDUCE.length : 0));
    if (k < UNARY.length) {
      const op = UNARY[k]!;
      const ba = bound[a]!;
      if ((op === "exp" && ba > 4) || ((op === "sin" || op === "cos") && ba > 10)) continue;
      push({ kind: "op", op, args: [a] }, op === "exp" ? Math.exp(ba) : ["tanh", "sigmoid", "sin", "cos", "erf"].includes(op) ? 1 : ba);
    } else if (k < UNARY.length + BINARY.length) {
      const op = BINARY[k - UNARY.length]!;
      const bnd = op === "mul" ? bound[a]! * bound[c]! : op === "add" || op === "sub" ? bound[a]! + bound[c]! : Math.max(bound[a]!, bound[c]!);
      if (bnd > 1e3) continue;
      push({ kind: "op", op, args: [a, c] }, bnd);
    } else if (k === UNARY.length + BINARY.length) {
      push({ kind: "const", value: Math.round((ins.c - 0.5) * 400) / 100, dtype: "f32" }, 2);
    } else if (k === UNARY.length + BINARY.length + 1) {
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

const outShapeOf = (shapes: number[][]) => shapes.reduce((acc, s) => {
  const n = Math.max(acc.length, s.length);
  return Array.from({ length: n }, (_, i) => Math.max(acc[acc.length - n + i] ?? 1, s[s.length - n + i] ?? 1));
}, [] as number[]);

describe("CUDA fused kernels (shared expression renderer, CUDA table)", () => {
  for (const reductions of [false, true]) {
    it(`random ${reductions ? "row programs with reductions (group shuffles, shared memory past one warp)" : "elementwise programs"}`, () =>
      withSeed(reductions ? 11 : 10, async () => {
        const n = N(14);
        const arb = fc.record({
          shapes: fc.integer({ min: 1, max: 3 }).chain((k) => broadcastable(k, 3)),
          long: fc.integer({ min: 0, max: 2 }),
          instrs: fc.array(instrArb, { minLength: 1, maxLength: 14 }),
          seed: seedArb,
        });
        const cases = draw(arb, n, reductions ? 11 : 10).map(({ shapes, long, instrs, seed }): UnionCase => {
          // Some rows longer than a warp and than a block's group.
          const widened = long && reductions ? shapes.map((s) => (s.length ? [...s.slice(0, -1), s[s.length - 1] === 1 ? 1 : [37, 300][long - 1]!] : s)) : shapes;
          const b = new GraphBuilder();
          const ins = widened.map((s, i) => b.weight(`w${i}`, s));
          const out = outShapeOf(widened);
          const program = buildProgram(widened.length, out.length ? out[out.length - 1]! : 1, instrs, reductions);
          return { graph: b.graph([b.op("fused", ins, { program })]), weights: testWeights(seed), what: `fused [${widened.map((s) => `[${s}]`)}]` };
        });
        await runUnion(cases);
      }));
  }

  it("sum, mean and amax over any axis, with and without keepdim", () =>
    withSeed(12, async () => {
      const arb = fc.record({ shape: fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 3 }), axis: fc.nat(), keepdim: fc.boolean(), op: fc.constantFrom("sum", "mean", "amax"), seed: seedArb });
      const cases = draw(arb, N(12), 12).map(({ shape, axis, keepdim, op, seed }): UnionCase => {
        const b = new GraphBuilder();
        const ax = axis % shape.length;
        return { graph: b.graph([b.op(op, [b.weight("w", shape)], { axis: ax, keepdim })]), weights: testWeights(seed), what: `${op} [${shape}] axis ${ax}` };
      });
      await runUnion(cases);
    }));
});

describe("CUDA matrix products", () => {
  it("batched matmul with broadcast batch dims", () =>
    withSeed(20, async () => {
      const arb = fc.record({ batch: broadcastable(2, 2), m: dimArb, k: fc.integer({ min: 1, max: 9 }), n: dimArb, seed: seedArb });
      const cases = draw(arb, N(8), 20).map(({ batch, m, k, n, seed }): UnionCase => {
        const b = new GraphBuilder();
        const out = b.op("matmul", [b.weight("a", [...batch[0]!, m, k]), b.weight("b", [...batch[1]!, k, n])]);
        return { graph: b.graph([out]), weights: testWeights(seed), what: `matmul [${batch[0]}, ${m}, ${k}] @ [${batch[1]}, ${k}, ${n}]` };
      });
      await runUnion(cases);
    }));

  it("operands stored transposed and products only transposed (rule transposed-matmul)", () =>
    withSeed(21, async () => {
      // Sizes across the SIMT kernel's 64 x 64 tiles and 16-deep steps of K, and below them.
      const size = fc.oneof(dimArb, fc.constantFrom(63, 65, 130));
      const arb = fc.record({ batch: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 1 }), m: size, k: fc.constantFrom(1, 9, 16, 17, 40), n: size, ta: fc.boolean(), tb: fc.boolean(), tout: fc.boolean(), seed: seedArb });
      const cases = draw(arb, N(8), 21).map(({ batch, m, k, n, ta, tb, tout, seed }): UnionCase => {
        const b = new GraphBuilder();
        const perm = [...batch.map((_, i) => i), batch.length + 1, batch.length];
        // Activations (a weight plus itself), so that no transpose of a weight turns into a linear.
        const act = (name: string, shape: number[]) => b.op("add", [b.weight(name, shape), b.weight(`${name}2`, shape)]);
        const maybeT = (x: number, on: boolean) => (on ? b.op("transpose", [x], { perm }) : x);
        const a = maybeT(act("a", ta ? [...batch, k, m] : [...batch, m, k]), ta);
        const bb = maybeT(act("b", tb ? [...batch, n, k] : [...batch, k, n]), tb);
        const out = maybeT(b.op("matmul", [a, bb]), tout);
        return { graph: b.graph([out]), weights: testWeights(seed), what: `matmul of [${batch}] ${m}x${k}x${n}, a${ta ? "T" : ""} b${tb ? "T" : ""}${tout ? ", transposed" : ""}` };
      });
      await runUnion(cases);
    }));

  const EPILOGUES: Record<string, { weights: number; program: string; extras: "none" | "bias" | "residual" }> = {
    identity: { weights: 1, program: "in0 -> 0", extras: "none" },
    bias: { weights: 1, program: "in0; in1; add(0, 1) -> 2", extras: "bias" },
    residual: { weights: 1, program: "in1; in0; add(0, 1) -> 2", extras: "residual" },
    swiglu: { weights: 2, program: "in0; silu(0); in1; mul(1, 2) -> 3", extras: "none" },
  };

  /** A linear case: x [M, K] (weight "x"), weights "w0".. [N, K] in `format`. */
  function linearCase(M: number, K: number, Nn: number, epi: string, format: StorageDType, seed: number, half: "f16" | "bf16" | null): UnionCase & { format: StorageDType; half: "f16" | "bf16" | null } {
    const e = EPILOGUES[epi]!;
    const b = new GraphBuilder();
    const x = b.weight("x", [M, K]);
    const ws = Array.from({ length: e.weights }, (_, i) => b.weight(`w${i}`, [Nn, K]));
    const extras = e.extras === "bias" ? [b.weight("bias", [Nn])] : e.extras === "residual" ? [b.weight("res", [M, Nn])] : [];
    const out = b.op("linear", [x, ...ws, ...extras], { weights: e.weights, epilogue: parseProgram(e.program) });
    return { graph: b.graph([out]), weights: testWeights(seed), what: `linear ${epi} ${format} M ${M} K ${K} N ${Nn}${half ? ` (${half} tensor cores)` : ""}`, format, half };
  }

  /** What the CPU must see: weights as stored, and for tensor-core tiles operands rounded to f16/bf16. */
  function referenceWeights(c: { weights: WeightSource; format: StorageDType; half: "f16" | "bf16" | null }): WeightSource {
    return (name, shape) => {
      let v = c.weights(name, shape);
      if (/^w\d$/.test(name) && c.format !== "f32") v = decodeTensor(c.format, encodeTensor(c.format, v));
      if (c.half && (name === "x" || /^w\d$/.test(name))) v = v.map((x) => roundToDType(x, c.half!));
      return v;
    };
  }

  for (const [cc, label] of [["8.0", "sm80 (wmma f16 and bf16)"], ["7.5", "sm75 (bf16 falls back to f32 tiles)"], ["9.0", "sm90"]] as const) {
    it(`linear: decode matvec and prefill tiles for every weight format, several weights, epilogues — ${label}`, () =>
      withSeed(21, () =>
        withComputeCapability(cc, async () => {
          const arb = fc.record({
            format: fc.constantFrom<StorageDType>("f32", "f16", "bf16", "q8_0", "q4_0"),
            m: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 70 })),
            kBlocks: fc.integer({ min: 1, max: 3 }),
            kOdd: fc.integer({ min: 0, max: 7 }),
            n: fc.integer({ min: 1, max: 40 }),
            epi: fc.constantFrom(...Object.keys(EPILOGUES)),
            seed: seedArb,
          });
          const drawn = draw(arb, N(12), cc === "8.0" ? 21 : cc === "7.5" ? 22 : 23);
          for (const format of ["f32", "f16", "bf16", "q8_0", "q4_0"] as const) {
            const mine = drawn.filter((d) => d.format === format);
            if (mine.length === 0) continue;
            const cases = mine.map((d) => {
              const quant = format === "q8_0" || format === "q4_0";
              const K = quant ? 32 * d.kBlocks : 32 * (d.kBlocks - 1) + 8 + d.kOdd;
              const tiled = d.m > 4;
              const half = tiled && format !== "f32" ? (format === "bf16" ? (cc === "7.5" ? null : "bf16") : "f16") : null;
              return linearCase(d.m, K, d.n, d.epi, format, d.seed, half);
            });
            await runUnion(cases, { storedAs: (name) => (/w\d$/.test(name) ? format : "f32") }, (c) => referenceWeights(c as (typeof cases)[number]));
          }
        })));
  }

  // Long rows split K over the warps of a block (combined in shared memory) and keep several chunks
  // of each row in flight; many rows (sm75's 72 SMs: a few hundred) keep K whole.
  for (const [cc, label, salt] of [["7.5", "sm75", 26], ["8.0", "sm80", 27], ["9.0", "sm90", 28]] as const) {
    it(`linear decode matvec: K split over warps, several 16-byte loads in flight, rows per warp by format — ${label}`, () =>
      withSeed(salt, () =>
        withComputeCapability(cc, async () => {
          const tuning = tuningFor(parseArch(cc.replace(".", "")));
          const arb = fc.record({
            format: fc.constantFrom<StorageDType>("f32", "f16", "bf16", "q8_0", "q4_0"),
            m: fc.integer({ min: 1, max: 4 }),
            many: fc.boolean(),
            ragged: fc.boolean(),
            chunks: fc.integer({ min: 64, max: 200 }),
            n: fc.integer({ min: 1, max: 48 }),
            epi: fc.constantFrom(...Object.keys(EPILOGUES)),
            seed: seedArb,
          });
          const drawn = draw(arb, N(14), salt);
          const cases = drawn.map((d) => {
            const quant = d.format === "q8_0" || d.format === "q4_0";
            // Many rows only where it stays cheap to emulate: 1-element chunks of f32/f16/bf16.
            const many = d.many && cc === "7.5" && !quant;
            const ragged = (d.ragged || many) && !quant;
            const elems = d.format === "q4_0" ? 32 : d.format === "q8_0" ? 16 : d.format === "f32" ? 4 : 8;
            const K = ragged ? d.chunks + (d.chunks % 2 === 0 ? 1 : 0) : quant ? 32 * Math.ceil((elems * d.chunks) / 32) : elems * d.chunks;
            const Nn = many ? 600 + 7 * d.n : d.n;
            return { ...linearCase(d.m, K, Nn, d.epi, d.format, d.seed, null), shape: matvecShape(tuning, d.format, Nn, K, EPILOGUES[d.epi]!.weights, false) };
          });
          if (!cases.some((c) => c.shape.splits > 1 && c.shape.inFlight > 1)) throw new Error("no case splits K with several loads in flight");
          if (cc === "7.5" && !cases.some((c) => c.shape.splits === 1 && c.shape.inFlight > 1)) throw new Error("no case keeps K whole with several loads in flight");
          for (const format of ["f32", "f16", "bf16", "q8_0", "q4_0"] as const) {
            const mine = cases.filter((c) => c.format === format);
            if (mine.length > 0) await runUnion(mine, { storedAs: (name) => (/w\d$/.test(name) ? format : "f32") }, (c) => referenceWeights(c as (typeof cases)[number]));
          }
        })));
  }

  // K a multiple of 8: the tensor-core kernel stages groups of 8 k per thread (raw 16-byte copies of
  // f16/bf16, quantized blocks dequantised in registers) with the next K step loaded during the mma;
  // K need not be a multiple of the K step, x may be a strided view (element loads).
  for (const [cc, label, salt] of [["8.0", "sm80", 29], ["9.0", "sm90", 30]] as const) {
    it(`linear prefill on tensor cores: staged groups of 8 for every weight format — ${label}`, () =>
      withSeed(salt, () =>
        withComputeCapability(cc, async () => {
          const arb = fc.record({
            format: fc.constantFrom<StorageDType>("f16", "bf16", "q8_0", "q4_0"),
            m: fc.integer({ min: 5, max: 80 }),
            kGroups: fc.integer({ min: 1, max: 24 }),
            n: fc.integer({ min: 1, max: 150 }),
            epi: fc.constantFrom(...Object.keys(EPILOGUES)),
            seed: seedArb,
          });
          const drawn = draw(arb, N(12), salt);
          for (const format of ["f16", "bf16", "q8_0", "q4_0"] as const) {
            const cases = drawn.filter((d) => d.format === format).map((d) => {
              const K = format === "q8_0" || format === "q4_0" ? 32 * Math.ceil(d.kGroups / 4) : 8 * d.kGroups;
              return linearCase(d.m, K, d.n, d.epi, format, d.seed, format === "bf16" ? "bf16" : "f16");
            });
            if (cases.length > 0) await runUnion(cases, { storedAs: (name) => (/w\d$/.test(name) ? format : "f32") }, (c) => referenceWeights(c as (typeof cases)[number]));
          }
          const f32 = draw(arb, N(4), salt + 100).map((d) => linearCase(d.m, 8 * d.kGroups, d.n, d.epi, "f32", d.seed, "f16"));
          await runUnion(f32, { f32TensorCores: true }, (c) => referenceWeights(c as (typeof f32)[number]));
        })));
  }

  for (const [cc, label, salt] of [["8.0", "sm80", 31], ["9.0", "sm90", 32]] as const) {
    it(`linear prefill on tensor cores: the large tiles (128 x 128, 64 x 128) where the grid still fills the GPU — ${label}`, () =>
      withSeed(salt, () =>
        withComputeCapability(cc, async () => {
          const [seedA, seedB] = draw(seedArb, 2, salt);
          // 2 x 66 blocks of 128 x 128, or 2 x 66 of 64 x 128 where 1 x 66 of 128 x 128 would not fill 132 (108) SMs.
          const cases = [linearCase(200, 32, 8448, "bias", "q4_0", seedA!, "f16"), linearCase(100, 32, 8448, "residual", "q4_0", seedB!, "f16")];
          const sources: string[] = [];
          const base = emulated();
          await runUnion(cases, { storedAs: (name) => (/w\d$/.test(name) ? "q4_0" : "f32"), image: (m, arch) => (sources.push(m.source), base.image!(m, arch)) }, (c) => referenceWeights(c as (typeof cases)[number]));
          for (const tile of ["128 x 128", "64 x 128"]) if (!sources.some((s) => s.includes(`computes a ${tile} tile`))) throw new Error(`no launch took the ${tile} tile`);
        })));
  }

  it("linear prefill tiles of f32 weights on tensor cores (f32TensorCores)", () =>
    withSeed(24, async () => {
      const arb = fc.record({ m: fc.integer({ min: 5, max: 40 }), k: fc.integer({ min: 1, max: 70 }), n: fc.integer({ min: 1, max: 40 }), seed: seedArb });
      const cases = draw(arb, N(5), 24).map((d) => linearCase(d.m, d.k, d.n, "bias", "f32", d.seed, "f16"));
      await runUnion(cases, { f32TensorCores: true }, (c) => referenceWeights(c as (typeof cases)[number]));
    }));

  it("fused_linear: RMSNorm prologue, RoPE rotation, two linears over one x merged into one dispatch", () =>
    withSeed(25, async () => {
      const RMS = parseProgram("in0; mul(0, 0); mean(1); 0.00001:f32; add(2, 3); rsqrt(4); mul(0, 5); in1; mul(6, 7) -> 8");
      const ROT = parseProgram("in0; in1; mul(0, 1); cos(2); sin(2) -> 3, 4");
      const arb = fc.record({ m: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 5, max: 40 })), k: fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 256, max: 700 })), heads: fc.integer({ min: 1, max: 3 }), headHalf: fc.integer({ min: 1, max: 4 }), n2: fc.integer({ min: 1, max: 20 }), seed: seedArb });
      const drawn = draw(arb, N(8), 25);
      // Decode rows with long x split K over warps: the prologue's reductions are combined too.
      const sm80 = tuningFor(parseArch("sm_80"));
      if (!drawn.some((d) => d.m <= sm80.matvec.maxRows && matvecShape(sm80, "f32", 2 * d.heads * d.headHalf, d.k, 1, true).splits > 1)) throw new Error("no case splits K under a prologue");
      const cases = drawn.map(({ m, k, heads, headHalf, n2, seed }): UnionCase => {
        const d = 2 * headHalf;
        const b = new GraphBuilder();
        const x = b.weight("x", [m, k]);
        const g = b.weight("g", [k]);
        const pos = b.weight("int_pos", [m, 1]);
        const freqs = b.weight("pos_freqs", [headHalf]);
        const wq = b.weight("wq", [heads * d, k]);
        const wv = b.weight("wv", [n2, k]);
        const bias = b.weight("bias", [n2]);
        const q = b.op("fused_linear", [x, g, wq, pos, freqs], { prologue: RMS, x_inputs: 2, weights: 1, epilogue: parseProgram("in0 -> 0"), extras: 0, head_dim: d, rotation: ROT });
        const v = b.op("fused_linear", [x, g, wv, bias], { prologue: RMS, x_inputs: 2, weights: 1, epilogue: parseProgram("in0; in1; add(0, 1) -> 2"), extras: 1, head_dim: 0, rotation: parseProgram("1:f32; 0:f32 -> 0, 1") });
        return { graph: b.graph([q, v]), weights: testWeights(seed), what: `fused_linear M ${m} K ${k} heads ${heads}x${d}, N2 ${n2}` };
      });
      // Each case has two outputs: compare both.
      const g = union(cases.map((c) => c.graph));
      const ex = new CudaExecutor(g, unionWeights(cases.map((c) => c.weights)), emulated({ prefillChunk: 1 }));
      try {
        const outs = await ex.stepOutputs({ tokens: Int32Array.of(0) });
        const merged = ex.module!.steps[0]!.plan.dispatches.filter((dd) => dd.linear && dd.linear.segments.length > 1).length;
        if (merged === 0) throw new Error("the plan merged no linears: the segment path is untested");
        cases.forEach((c, i) => {
          const cpu = new CpuInterpreter({ ...c.graph, outputs: [c.graph.outputs[0]!] }, c.weights).step({ tokens: Int32Array.of(0) });
          const cpu2 = new CpuInterpreter({ ...c.graph, outputs: [c.graph.outputs[1]!] }, c.weights).step({ tokens: Int32Array.of(0) });
          expectClose(outs[2 * i]!, cpu, 1e-4, `${c.what} (rotated)`);
          expectClose(outs[2 * i + 1]!, cpu2, 1e-4, `${c.what} (biased)`);
        });
      } finally {
        ex.dispose();
      }
    }));
});

describe("CUDA linear with RoPE on tensor cores", () => {
  it("fused_linear prefill on tensor cores: RoPE pairs rotated in the epilogue (no rotation launch) — sm90", () =>
    withSeed(33, () =>
      withComputeCapability("9.0", async () => {
        const ROT = parseProgram("in0; in1; mul(0, 1); cos(2); sin(2) -> 3, 4");
        const arb = fc.record({ format: fc.constantFrom<StorageDType>("f16", "bf16", "q8_0"), m: fc.integer({ min: 5, max: 70 }), kBlocks: fc.integer({ min: 1, max: 3 }), heads: fc.integer({ min: 1, max: 3 }), headHalf: fc.integer({ min: 1, max: 40 }), seed: seedArb });
        const drawn = draw(arb, N(8), 33);
        for (const format of ["f16", "bf16", "q8_0"] as const) {
          const half = format === "bf16" ? "bf16" : "f16";
          const cases = drawn.filter((d) => d.format === format).map(({ m, kBlocks, heads, headHalf, seed }) => {
            const d = 2 * headHalf;
            const K = 32 * kBlocks;
            const b = new GraphBuilder();
            const q = b.op("fused_linear", [b.weight("x", [m, K]), b.weight("w0", [heads * d, K]), b.weight("int_pos", [m, 1]), b.weight("pos_freqs", [headHalf])], {
              prologue: parseProgram("in0 -> 0"), x_inputs: 1, weights: 1, epilogue: parseProgram("in0 -> 0"), extras: 0, head_dim: d, rotation: ROT,
            });
            const weights = testWeights(seed);
            return { graph: b.graph([q]), weights, what: `fused_linear ${format} M ${m} K ${K} heads ${heads}x${d}`, tol: 2e-4 };
          });
          if (cases.length === 0) continue;
          const rounded = (c: UnionCase): WeightSource => (name, shape) => {
            let v = c.weights(name, shape);
            if (name === "w0") v = decodeTensor(format, encodeTensor(format, v));
            if (name === "x" || name === "w0") v = v.map((x) => roundToDType(x, half));
            return v;
          };
          const launches: string[] = [];
          const base = emulated();
          await runUnion(cases, { storedAs: (name) => (/w\d$/.test(name) ? format : "f32"), image: (mod, arch) => (launches.push(...mod.steps.flatMap((s) => s.launches.map((l) => l.kernel))), base.image!(mod, arch)) }, rounded);
          if (launches.some((k) => k.startsWith("llmc_rotate"))) throw new Error("a rotation launch follows the tensor-core kernel");
        }
      })));
});

describe("CUDA gather, rotary, attention, KV cache", () => {
  it("gather rows of f32, f16, bf16, q8_0 and q4_0 tables", () =>
    withSeed(30, async () => {
      const arb = fc.record({ format: fc.constantFrom<StorageDType>("f32", "f16", "bf16", "q8_0", "q4_0"), v: fc.integer({ min: 1, max: 20 }), d: fc.integer({ min: 1, max: 3 }), ids: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), seed: seedArb });
      for (const format of ["f32", "f16", "bf16", "q8_0", "q4_0"] as const) {
        const mine = draw(arb, N(10), 30).filter((c) => c.format === format).concat(draw(arb, 2, 31).map((c) => ({ ...c, format })));
        const cases = mine.map(({ v, d, ids, seed }) => {
          const D = format === "q8_0" || format === "q4_0" ? 32 * d : 5 * d + 3;
          const b = new GraphBuilder();
          const out = b.op("gather", [b.weight("table", [v, D]), b.literal(Int32Array.from(ids, (x) => x % v), [ids.length])]);
          return { graph: b.graph([out]), weights: testWeights(seed), what: `gather ${format} [${v}, ${D}] by ${ids.length}` };
        });
        await runUnion(cases, { storedAs: (name) => (name.endsWith("table") ? format : "f32") }, (c) => (name, shape) => {
          const w = c.weights(name, shape);
          return format === "f32" ? w : decodeTensor(format, encodeTensor(format, w));
        });
      }
    }));

  it("rotary embedding", () =>
    withSeed(32, async () => {
      const arb = fc.record({ t: dimArb, h: dimArb, half: dimArb, seed: seedArb });
      const cases = draw(arb, N(6), 32).map(({ t, h, half, seed }): UnionCase => {
        const b = new GraphBuilder();
        const out = b.op("rotary", [b.weight("x", [t, h, 2 * half]), b.weight("c", [t, half]), b.weight("s", [t, half])]);
        return { graph: b.graph([out]), weights: testWeights(seed), what: `rotary [${t}, ${h}, ${2 * half}]` };
      });
      await runUnion(cases);
    }));

  it("attention: decode (split keys, combined) and prefill tiles; causal or not, sliding window, GQA, scale, fewer keys than queries", () =>
    withSeed(33, async () => {
      const arb = fc.record({
        t: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 40 })),
        s: fc.integer({ min: 1, max: 80 }),
        hkv: fc.integer({ min: 1, max: 3 }),
        group: fc.integer({ min: 1, max: 3 }),
        d: fc.constantFrom(1, 4, 6, 16, 40, 128),
        causal: fc.boolean(),
        window: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })),
        scale: fc.option(fc.double({ min: 0.05, max: 1, noNaN: true })),
        seed: seedArb,
      });
      const cases = draw(arb, N(12), 33).map(({ t, s, hkv, group, d, causal, window, scale, seed }): UnionCase => {
        const b = new GraphBuilder();
        const hq = hkv * group;
        const out = b.op("attention", [b.weight("q", [t, hq, d]), b.weight("k", [s, hkv, d]), b.weight("v", [s, hkv, d])], { causal, window, scale: scale ?? 1 / Math.sqrt(d) });
        return { graph: b.graph([out]), weights: testWeights(seed), what: `attention T ${t} S ${s} heads ${hq}/${hkv} D ${d} causal ${causal} window ${window}` };
      });
      await runUnion(cases);
    }));

  it("kv_append and attention over the cache across padded prefill chunks and decode steps (P from the step parameters, CUDA graphs)", () =>
    withSeed(34, async () => {
      const arb = fc.record({ hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), d: fc.constantFrom(2, 8, 32), window: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })), seed: seedArb });
      const specs = draw(arb, N(4), 34);
      const vocab = 11;
      const graphs = specs.map(({ hkv, group, d, window }) => {
        const b = new GraphBuilder();
        const hq = hkv * group;
        const tokens = b.input("tokens", [symDim("T")]);
        const rows = (name: string, h: number) => b.op("reshape", [b.op("gather", [b.weight(name, [vocab, h * d]), tokens])], { shape: dims([symDim("T"), h, d]) });
        b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 24, heads: hkv, headDim: d });
        const k = b.op("kv_append", [rows("wk", hkv)], { state: "kv", layer: 0, which: "k" });
        const v = b.op("kv_append", [rows("wv", hkv)], { state: "kv", layer: 0, which: "v" });
        const out = b.op("attention", [rows("wq", hq), k, v], { causal: true, window, scale: 1 / Math.sqrt(d) });
        return b.graph([out]);
      });
      const weights = specs.map((s) => testWeights(s.seed));
      const ex = new CudaExecutor(union(graphs), unionWeights(weights), emulated({ prefillChunk: 4 }));
      const cpus = graphs.map((g, i) => new CpuInterpreter(g, weights[i]!));
      try {
        for (const step of [[1, 2, 3, 4, 5, 6], [7], [8], [9, 10], [3], [1, 1, 2, 2, 3, 3, 4]]) {
          const tokens = Int32Array.from(step);
          const outs = await ex.stepOutputs({ tokens });
          graphs.forEach((_, i) => expectClose(outs[i]!, cpus[i]!.step({ tokens }), 1e-4, `cache case ${i} at P ${ex.past - step.length}, T ${step.length}`));
        }
        if (!ex.module!.paddingSafe) throw new Error("expected a causal graph to pad prompt tails");
      } finally {
        ex.dispose();
      }
    }));
});

describe("CUDA layout kernels", () => {
  it("transpose by any permutation, slices that are not views, concat", () =>
    withSeed(40, async () => {
      const arb = fc.record({ shape: fc.array(dimArb, { minLength: 2, maxLength: 4 }), perm: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }), axis: fc.nat(), cut: fc.nat(), other: dimArb, seed: seedArb });
      const cases = draw(arb, N(8), 40).flatMap(({ shape, perm, axis, cut, other, seed }): UnionCase[] => {
        const order = shape.map((_, i) => i).sort((a, c) => (perm[a]! % 7) - (perm[c]! % 7) || a - c);
        const ax = axis % shape.length;
        const t = new GraphBuilder();
        const tr = t.op("transpose", [t.weight("x", shape)], { perm: order });
        const s = new GraphBuilder();
        const start = cut % shape[ax]!;
        const sl = s.op("slice", [s.op("neg", [s.weight("x", shape)])], { axis: ax, start: new Map([["", start]]), end: new Map([["", shape[ax]!]]) });
        const c = new GraphBuilder();
        const shape2 = shape.map((dd, i) => (i === ax ? other : dd));
        const cat = c.op("concat", [c.weight("a", shape), c.weight("b", shape2)], { axis: ax });
        return [
          { graph: t.graph([t.op("neg", [tr])]), weights: testWeights(seed), what: `transpose [${shape}] by [${order}]` },
          { graph: s.graph([s.op("neg", [sl])]), weights: testWeights(seed), what: `slice [${shape}] axis ${ax} from ${start}` },
          { graph: c.graph([c.op("neg", [cat])]), weights: testWeights(seed), what: `concat [${shape}] + [${shape2}] axis ${ax}` },
        ];
      });
      await runUnion(cases);
    }));
});

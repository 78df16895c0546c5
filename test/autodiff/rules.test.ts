// Every gradient rule of ops/gradients.ts against central finite differences on random shapes and
// values (gradcheck.ts explains the precision), and the op table's coverage: each op has a rule or
// is listed as not differentiable.

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { constDim, symDim, type Dim } from "../../src/compiler/base/symbolic.js";
import { gradients, NON_DIFFERENTIABLE } from "../../src/compiler/ops/gradients.js";
import { opTable } from "../../src/compiler/ops/table.js";
import { evaluateGraph } from "../../src/runtime/cpu/train-step.js";
import { differentiate } from "../../src/compiler/autodiff/reverse.js";
import { GraphBuilder } from "../helpers/graph.js";
import { checkRule, rand, type Operand, type RuleCase } from "./gradcheck.js";

const size = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

/** Values of an operand: `uniform` in [lo, hi], with a random sign when `signed`. */
function operand(shape: number[], seed: number, lo = -2, hi = 2, signed = false, differentiable = true): Operand {
  const r = rand(seed);
  const values = Float32Array.from({ length: size(shape) }, () => {
    const v = lo + (hi - lo) * r();
    return signed && r() < 0.5 ? -v : v;
  });
  return { shape, values, differentiable };
}

const dim = fc.integer({ min: 1, max: 4 });
const shapeOf = (minRank: number, maxRank: number) => fc.array(dim, { minLength: minRank, maxLength: maxRank });
const seed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

/** An output shape and an operand shape that broadcasts to it (leading dims dropped, some dims 1). */
const broadcastOperand = (out: number[]) =>
  fc.tuple(fc.integer({ min: 0, max: out.length }), fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }))
    .map(([drop, ones]) => out.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)));
const broadcastPair = shapeOf(1, 3).chain((out) => fc.tuple(broadcastOperand(out), broadcastOperand(out)));

const tested = new Set<string>();

function property(op: string, arb: fc.Arbitrary<{ c: RuleCase; seed: number }>, numRuns = 12): void {
  tested.add(op);
  test(`${op}: gradient = finite differences`, () => {
    fc.assert(
      fc.property(arb, ({ c, seed }) => {
        for (const r of checkRule(c, seed)) {
          if (!(Math.abs(r.analytic - r.numeric) <= r.tolerance)) {
            throw new Error(`operand ${r.operand}: analytic ${r.analytic}, numeric ${r.numeric} (tolerance ${r.tolerance})`);
          }
        }
      }),
      { numRuns },
    );
  });
}

const unaryDomains: Record<string, [number, number, boolean]> = {
  neg: [-2, 2, false], exp: [-2, 2, false], log: [0.5, 2, false], sqrt: [0.5, 2, false], rsqrt: [0.5, 2, false],
  sin: [-3, 3, false], cos: [-3, 3, false], tanh: [-2, 2, false], sigmoid: [-3, 3, false], silu: [-3, 3, false],
  gelu: [-3, 3, false], erf: [-2, 2, false],
  // Away from the kink at 0 (|x| ≥ 0.1 ≫ ε) and the pole of 1/x.
  abs: [0.1, 2, true], recip: [0.5, 2, true],
};

describe("unary elementwise", () => {
  for (const [op, [lo, hi, signed]] of Object.entries(unaryDomains)) {
    property(op, fc.tuple(shapeOf(0, 3), seed).map(([shape, s]) => ({
      seed: s,
      c: { operands: [operand(shape, s + 1, lo, hi, signed)], build: (b, [x]) => b.op(op, [x!]) },
    })));
  }
  property("cast", fc.tuple(shapeOf(1, 3), seed).map(([shape, s]) => ({
    seed: s,
    c: { operands: [operand(shape, s + 1)], build: (b, [x]) => b.op("cast", [x!], { dtype: "f32" }) },
  })));
});

describe("binary elementwise, broadcasting", () => {
  const domains: Record<string, [[number, number, boolean], [number, number, boolean]]> = {
    add: [[-2, 2, false], [-2, 2, false]],
    sub: [[-2, 2, false], [-2, 2, false]],
    mul: [[-2, 2, false], [-2, 2, false]],
    div: [[-2, 2, false], [0.5, 2, true]],
    pow: [[0.5, 2, false], [-2, 2, false]],
  };
  for (const [op, [da, db]] of Object.entries(domains)) {
    property(op, fc.tuple(broadcastPair, seed).map(([[sa, sb], s]) => ({
      seed: s,
      c: { operands: [operand(sa, s + 1, ...da), operand(sb, s + 2, ...db)], build: (b, [x, y]) => b.op(op, [x!, y!]) },
    })));
  }
  // Operands on two interleaved grids (multiples of ½, and of ½ plus ¼): never within ε of a tie.
  const grid = (shape: number[], s: number, offset: number): Operand => {
    const r = rand(s);
    return { shape, values: Float32Array.from({ length: size(shape) }, () => Math.floor(r() * 8 - 4) / 2 + offset) };
  };
  for (const op of ["max", "min"]) {
    property(op, fc.tuple(broadcastPair, seed).map(([[sa, sb], s]) => ({
      seed: s,
      c: { operands: [grid(sa, s + 1, 0), grid(sb, s + 2, 0.25)], build: (b, [x, y]) => b.op(op, [x!, y!]) },
    })));
  }
  property("where", fc.tuple(shapeOf(1, 3).chain((out) => fc.tuple(broadcastOperand(out), broadcastOperand(out), broadcastOperand(out))), seed)
    .map(([[sc, sa, sb], s]) => {
      const r = rand(s + 3);
      const cond = Float32Array.from({ length: size(sc) }, () => (r() < 0.5 ? 1 : -1));
      return {
        seed: s,
        c: {
          operands: [operand(sa, s + 1), operand(sb, s + 2)],
          build: (b, [x, y]) => b.op("where", [b.op("gt", [b.literal(cond, sc), b.op("const", [], { value: 0, dtype: "f32" })]), x!, y!]),
        },
      };
    }));
});

describe("reductions", () => {
  const reduced = fc.tuple(shapeOf(1, 3), fc.integer({ min: 0, max: 5 }), fc.boolean(), fc.boolean(), seed)
    .map(([shape, a, negative, keepdim, s]) => ({ shape, axis: negative ? -1 - (a % shape.length) : a % shape.length, keepdim, s }));
  for (const op of ["sum", "mean"]) {
    property(op, reduced.map(({ shape, axis, keepdim, s }) => ({
      seed: s,
      c: { operands: [operand(shape, s + 1)], build: (b, [x]) => b.op(op, [x!], { axis, keepdim }) },
    })));
  }
  // Distinct values 0.1 apart in a random order: a unique maximum that ε cannot change.
  property("amax", reduced.map(({ shape, axis, keepdim, s }) => {
    const r = rand(s + 1);
    const order = Array.from({ length: size(shape) }, (_, i) => i).sort(() => r() - 0.5);
    return {
      seed: s,
      c: { operands: [{ shape, values: Float32Array.from(order, (i) => i * 0.1 - 1) }], build: (b, [x]) => b.op("amax", [x!], { axis, keepdim }) },
    };
  }));
});

describe("contraction and layout", () => {
  property("matmul", fc.tuple(shapeOf(0, 2), fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }), dim, dim, dim, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), seed)
    .map(([batch, ones, m, k, n, dropA, dropB, s]) => {
      const bA = batch.slice(Math.min(dropA, batch.length)).map((d, i) => (ones[0] && i === 0 ? 1 : d));
      const bB = batch.slice(Math.min(dropB, batch.length)).map((d, i) => (ones[1] && i === 0 ? 1 : d));
      return {
        seed: s,
        c: { operands: [operand([...bA, m, k], s + 1), operand([...bB, k, n], s + 2)], build: (b, [x, y]) => b.op("matmul", [x!, y!]) },
      };
    }));
  property("transpose", shapeOf(1, 4).chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length }), seed))
    .map(([shape, perm, s]) => ({ seed: s, c: { operands: [operand(shape, s + 1)], build: (b, [x]) => b.op("transpose", [x!], { perm }) } })));
  // A shape of factors, reshaped by grouping neighbouring factors.
  property("reshape", fc.tuple(shapeOf(1, 4), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), seed).map(([factors, cuts, s]) => {
    const target: number[] = [];
    factors.forEach((f, i) => (i > 0 && !cuts[i] ? (target[target.length - 1]! *= f) : target.push(f)));
    return { seed: s, c: { operands: [operand(factors, s + 1)], build: (b, [x]) => b.op("reshape", [x!], { shape: target.map((d) => constDim(d)) }) } };
  }));
  property("concat", fc.tuple(shapeOf(1, 3), fc.integer({ min: 0, max: 5 }), dim, seed).map(([shape, a, other, s]) => {
    const axis = a % shape.length;
    const second = shape.map((d, i) => (i === axis ? other : d));
    return { seed: s, c: { operands: [operand(shape, s + 1), operand(second, s + 2)], build: (b, [x, y]) => b.op("concat", [x!, y!], { axis }) } };
  }));
  property("slice", fc.tuple(shapeOf(1, 3), fc.integer({ min: 0, max: 5 }), fc.nat(), fc.nat(), seed).map(([shape, a, p, q, s]) => {
    const axis = a % shape.length;
    const start = p % shape[axis]!;
    const end = start + 1 + (q % (shape[axis]! - start));
    return { seed: s, c: { operands: [operand(shape, s + 1)], build: (b, [x]) => b.op("slice", [x!], { axis, start: constDim(start), end: constDim(end) }) } };
  }));
  // Few rows, so ids repeat and their gradients must add up.
  property("gather", fc.tuple(fc.integer({ min: 1, max: 5 }), dim, shapeOf(1, 2), seed).map(([v, d, idShape, s]) => {
    const r = rand(s + 3);
    const ids = Int32Array.from({ length: size(idShape) }, () => Math.floor(r() * v));
    return { seed: s, c: { operands: [operand([v, d], s + 1)], build: (b, [table]) => b.op("gather", [table!, b.literal(ids, idShape)]) } };
  }));
});

describe("model primitives", () => {
  // cos and sin are any tables here (not one angle's), so every input's rule is exercised.
  property("rotary", fc.tuple(dim, dim, fc.integer({ min: 1, max: 3 }), seed).map(([t, h, half, s]) => ({
    seed: s,
    c: {
      operands: [operand([t, h, 2 * half], s + 1), operand([t, half], s + 2, -1, 1), operand([t, half], s + 3, -1, 1)],
      build: (b, [x, c, sn]) => b.op("rotary", [x!, c!, sn!]),
    },
  })));
  property("attention", fc.tuple(
    fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), dim,
    fc.boolean(), fc.integer({ min: 0, max: 5 }), fc.double({ min: 0.2, max: 1, noNaN: true }), seed,
  ).map(([t, past, hkv, group, d, causal, window, scale, s]) => ({
    seed: s,
    c: {
      operands: [operand([t, hkv * group, d], s + 1, -1, 1), operand([t + past, hkv, d], s + 2, -1, 1), operand([t + past, hkv, d], s + 3, -1, 1)],
      build: (b, [q, k, v]) => b.op("attention", [q!, k!, v!], { causal, window, scale }),
    },
  })), 20);
  // Targets from −1 to V: negative and out-of-range rows are ignored (no gradient).
  property("cross_entropy_rows", fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.boolean(), seed).map(([t, v, wide, s]) => {
    const r = rand(s + 3);
    const targets = Int32Array.from({ length: t }, () => Math.floor(r() * (v + 2)) - 1);
    return { seed: s, c: { operands: [operand([t, v], s + 1, wide ? -4 : -2, wide ? 4 : 2)], build: (b, [logits]) => b.op("cross_entropy_rows", [logits!, b.literal(targets, [t])]) } };
  }));
});

describe("kv_append", () => {
  tested.add("kv_append");
  test("the gradient of this step's keys is the last T rows of the cache's gradient", () => {
    // P = 3 past rows and T = 2 new ones, as a step specialised to those sizes sees them.
    const b = new GraphBuilder();
    b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 8, heads: 1, headDim: 2 });
    const k = b.weight("k", [2, 1, 2]);
    const cache = b.add("kv_append", [k], { state: "kv", layer: 0, which: "k" }, { shape: [constDim(5), constDim(1), constDim(2)], dtype: "f32" });
    const cot = b.weight("cot", [5, 1, 2]);
    let loss = b.op("mul", [cache, cot]);
    while (b.shape(loss).length > 0) loss = b.op("sum", [loss], { axis: 0, keepdim: false });
    const d = differentiate(b.graph([loss]), loss, [k]);
    const sliceNode = d.graph.nodes.find((n) => n.op === "slice")!;
    expect([...(sliceNode.attrs["start"] as Dim)]).toEqual([["", 3]]);
    // The interpreter owns the cache; here the cache's value (which the gradient does not read) is a weight.
    const nodes = d.graph.nodes.map((n) => (n.op === "kv_append" ? { ...n, op: "weight", inputs: [], attrs: { name: "cache" } } : n));
    const backward = { ...d.graph, nodes, outputs: [d.grads[0]!] };
    const cotValues = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const [g] = evaluateGraph(backward, new Map(), new Map(), (name, shape) => (name === "cot" ? cotValues : new Float32Array(size(shape))));
    expect(Array.from(g!.data)).toEqual([7, 8, 9, 10]);
  });
  test("with a symbolic past the slice is P … P + T", () => {
    const b = new GraphBuilder();
    b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 8, heads: 1, headDim: 2 });
    const k = b.weight("k", [2, 1, 2]);
    const cache = b.op("kv_append", [k], { state: "kv", layer: 0, which: "k" });
    const loss = b.op("sum", [b.op("sum", [b.op("sum", [cache], { axis: 0, keepdim: false })], { axis: 0, keepdim: false })], { axis: 0, keepdim: false });
    const d = differentiate(b.graph([loss]), loss, [k]);
    const sliceNode = d.graph.nodes.find((n) => n.op === "slice")!;
    expect(sliceNode.attrs["start"]).toEqual(symDim("P"));
  });
});

describe("coverage", () => {
  test("every op of the table has a gradient rule or is listed as not differentiable, not both", () => {
    for (const op of opTable.keys()) {
      const ruled = op in gradients;
      const listed = NON_DIFFERENTIABLE.has(op);
      expect(ruled !== listed, `${op}: rule ${ruled}, listed ${listed}`).toBe(true);
    }
    for (const op of [...Object.keys(gradients), ...NON_DIFFERENTIABLE.keys()]) expect(opTable.has(op), `${op} is not an op of the table`).toBe(true);
  });
  test("every rule is checked by a test above", () => {
    expect(Object.keys(gradients).filter((op) => !tested.has(op))).toEqual([]);
  });
});

// std/nn.llm's layer norms and partial RoPE, run through the compiler and the CPU interpreter, equal
// their definitions written out here in f64: PyTorch's nn.LayerNorm, and RoPE over the first
// `rot` values of each head in GPT-J's adjacent-pair order and in HF's rotate-half order
// (transformers' apply_rotary_pos_emb with partial_rotary_factor).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { testWeights } from "../helpers/graph.js";

const HEADS = 2;
const HEAD_DIM = 12;
const WIDTH = HEADS * HEAD_DIM;
const THETA = 10000;

const dir = mkdtempSync(join(tmpdir(), "llmc-std-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Row t of the output is `expr` for token t, from a [WIDTH, WIDTH] table `x` and [WIDTH] `w`, `b`. */
function run(expr: string, rot = 0, pos = Int32Array.of(0, 3, 17)) {
  const path = join(dir, `probe-${Math.random().toString(36).slice(2)}.llm`);
  writeFileSync(path, `import "std/nn.llm"

model probe {
  config {
    vocab_size: int = ${WIDTH}
    n_heads: int = ${HEADS}
    rot: int = ${rot || 2}
  }
  weights {
    x: [vocab_size, vocab_size]  gguf "x"
    w: [vocab_size]  gguf "w"
    b: [vocab_size]  gguf "b"
  }
  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size] {
    return ${expr}
  }
}
`);
  const res = compileFile(path);
  expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => formatDiagnostic(d, res.sources))).toEqual([]);
  const weights = testWeights(5);
  const tokens = Int32Array.of(4, 0, 23);
  const out = new CpuInterpreter(res.compiled!.graph, weights).step({ tokens, pos });
  const table = weights("x", [WIDTH, WIDTH]);
  const rows = Array.from(tokens, (t) => Array.from(table.subarray(t * WIDTH, (t + 1) * WIDTH)));
  return { out: Array.from(out.data), rows, pos, w: Array.from(weights("w", [WIDTH])), b: Array.from(weights("b", [WIDTH])) };
}

function layerNorm(row: number[], w: number[], b: number[] | null, eps: number): number[] {
  const mean = row.reduce((a, v) => a + v, 0) / row.length;
  const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length;
  return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * w[i]! + (b ? b[i]! : 0));
}

/** RoPE of one head over its first `rot` values; `pair(j)` gives the indices of the j-th rotated pair. */
function ropeHead(head: number[], p: number, rot: number, pair: (j: number) => [number, number]): number[] {
  const out = head.slice();
  for (let j = 0; j < rot / 2; j++) {
    const angle = p * THETA ** (-(2 * j) / rot);
    const [a, b] = pair(j);
    out[a] = head[a]! * Math.cos(angle) - head[b]! * Math.sin(angle);
    out[b] = head[b]! * Math.cos(angle) + head[a]! * Math.sin(angle);
  }
  return out;
}

function rope(rows: number[][], pos: Int32Array, rot: number, pair: (j: number) => [number, number]): number[] {
  return rows.flatMap((row, t) =>
    Array.from({ length: HEADS }, (_, h) => ropeHead(row.slice(h * HEAD_DIM, (h + 1) * HEAD_DIM), pos[t]!, rot, pair)).flat(),
  );
}

function expectClose(actual: number[], expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...actual.map((a, i) => Math.abs(a - expected[i]!)));
  expect(worst).toBeLessThan(tol);
}

const adjacent = (j: number): [number, number] => [2 * j, 2 * j + 1];
const halves = (rot: number) => (j: number): [number, number] => [j, j + rot / 2];

describe("std layer_norm", () => {
  it("with a bias is nn.LayerNorm", () => {
    const r = run("layer_norm(x[tokens], w, b, 1e-5)");
    expectClose(r.out, r.rows.flatMap((row) => layerNorm(row, r.w, r.b, 1e-5)), 1e-5);
  });

  it("without a bias is nn.LayerNorm(bias=False)", () => {
    const r = run("layer_norm_no_bias(x[tokens], w, 1e-5)");
    expectClose(r.out, r.rows.flatMap((row) => layerNorm(row, r.w, null, 1e-5)), 1e-5);
  });

  it("normalises each head of [T, heads, head_dim] on its own", () => {
    const r = run("merge(layer_norm(heads(x[tokens], n_heads), w[0:12], b[0:12], 1e-5))");
    const want = r.rows.flatMap((row) =>
      [0, 1].flatMap((h) => layerNorm(row.slice(h * 12, h * 12 + 12), r.w.slice(0, 12), r.b.slice(0, 12), 1e-5)),
    );
    expectClose(r.out, want, 1e-5);
  });
});

describe("std partial RoPE", () => {
  for (const rot of [4, 8, HEAD_DIM]) {
    it(`rope_pairs rotates adjacent pairs of the first ${rot} of ${HEAD_DIM} values`, () => {
      const r = run("merge(rope_pairs(heads(x[tokens], n_heads), pos, rope_inv_freq(rot, 10000.0)))", rot);
      expectClose(r.out, rope(r.rows, r.pos, rot, adjacent), 1e-4);
    });

    it(`rope_halves rotates (x[j], x[j + ${rot / 2}]) of the first ${rot} of ${HEAD_DIM} values`, () => {
      const r = run("merge(rope_halves(heads(x[tokens], n_heads), pos, rope_inv_freq(rot, 10000.0)))", rot);
      expectClose(r.out, rope(r.rows, r.pos, rot, halves(rot)), 1e-4);
    });
  }

  it("rope_pairs over the whole head is rope", () => {
    const a = run("merge(rope_pairs(heads(x[tokens], n_heads), pos, rope_inv_freq(12, 10000.0)))");
    const b = run("merge(rope(heads(x[tokens], n_heads), pos, rope_inv_freq(12, 10000.0)))");
    expect(a.out).toEqual(b.out);
  });
});

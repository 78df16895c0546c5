// The attention pattern rule (passes/attention.ts): attention written out in .llm becomes one
// `attention` node with score and mask programs, and the fused model computes what the written one
// does (CPU reference, prefill then decode steps); near misses stay as written.

import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { formatProgram, type ExprProgram } from "../../src/compiler/ops/expr.js";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { attendBody, modelDir, SMALL_LLAMA } from "./attention-cases.js";

const models = modelDir("llmc-attention-pattern-");
afterAll(() => models.dispose());
const written = (name: string, body: string) => models.write(name, body);
const SMALL = SMALL_LLAMA;

/** Grouped-query heads as a broadcast, then scores: gemma2.llm's spelling. */
const HEADS = `
    g = n_heads / n_kv_heads
    qh = transpose(transpose(reshape(q, [T, n_kv_heads, g, head_dim]), 0, 1), 1, 2)
    kh = reshape(transpose(k, 0, 1), [n_kv_heads, 1, S, head_dim])
    vh = reshape(transpose(v, 0, 1), [n_kv_heads, 1, S, head_dim])
    positions = arange(S)
    key_pos = reshape(positions, [1, S])
    query_pos = reshape(positions[S - T:], [T, 1])
    s = qh @ kh.T * head_dim ** -0.5`;
const OUT = `
    e = exp(s - amax(s, axis: -1, keepdim: true))
    o = e / sum(e, axis: -1, keepdim: true) @ vh
    return reshape(transpose(transpose(o, 1, 2), 0, 1), [T, n_heads, head_dim])`;

const CASES = {
  softcap: `${HEADS}
    s = 20.0 * tanh(s / 20.0)
    s = where(key_pos <= query_pos, s, -1e30)${OUT}`,
  window: `${HEADS}
    s = where(key_pos <= query_pos, s, -1e30)
    s = where(key_pos > query_pos - 3, s, -1e30)${OUT}`,
  alibi: `${HEADS}
    slopes = reshape(2.0 ** (-8.0 * (arange(n_heads) + 1.0) / n_heads), [n_kv_heads, g, 1, 1])
    s = s + slopes * (key_pos - query_pos)
    s = where(key_pos <= query_pos, s, -1e30)${OUT}`,
  // Every key but the one two back, and a softmax spelt without the max and times a reciprocal.
  maskExpr: `${HEADS}
    s = where(key_pos <= query_pos && query_pos - key_pos != 2.0, s, -1e30)
    e = exp(s)
    o = e * recip(sum(e, axis: -1, keepdim: true)) @ vh
    return reshape(transpose(transpose(o, 1, 2), 0, 1), [T, n_heads, head_dim])`,
  all: attendBody({ softcap: 4, window: 4, alibi: true, skipTwo: true }),
  // One kv head per query head, heads by transposes alone, the scale as a division, std's softmax.
  plain: `
    s = transpose(q, 0, 1) @ transpose(transpose(k, 0, 1), 1, 2) / sqrt(head_dim * 1.0)
    positions = arange(S)
    s = where(reshape(positions, [1, S]) <= reshape(positions[S - T:], [T, 1]), s, -1e30)
    return transpose(softmax(s) @ transpose(v, 0, 1), 0, 1)`,
} as const;

function compile(path: string, pipeline: string[], extra: Record<string, string> = {}): Graph {
  const res = compileFile(path, { overrides: new Map(Object.entries({ ...SMALL, ...extra })), pipeline });
  expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => d.message)).toEqual([]);
  return res.compiled!.graph;
}

/** Logits of a prefill of 5 tokens, then two decode steps, flattened. */
function logits(g: Graph): number[] {
  const it = new CpuInterpreter(g, (name, shape) => randomTensor(name, shape, { seed: 5 }));
  const out: number[] = [];
  for (const tokens of [[3, 1, 4, 1, 5], [9], [2]]) out.push(...(it.step({ tokens: Int32Array.from(tokens) }).data as Float32Array));
  return out;
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const attentions = (g: Graph) => g.nodes.filter((n) => n.op === "attention");
const program = (p: unknown) => (p ? formatProgram(p as ExprProgram) : "");

describe("attention pattern", () => {
  it("soft-capping becomes a score program; the causal mask becomes causal", () => {
    const g = compile(written("softcap", CASES.softcap), DEFAULT_PIPELINE);
    const a = attentions(g);
    expect(a.length).toBe(2);
    for (const n of a) {
      expect(n.attrs["causal"]).toBe(true);
      expect(n.attrs["scale"]).toBeCloseTo(8 ** -0.5, 6);
      expect(program(n.attrs["score"])).toContain("tanh");
      expect(n.attrs["mask"]).toBeUndefined();
    }
    // No [T, S] score tensor is left: the only matmuls were the two products.
    expect(g.nodes.filter((n) => n.op === "matmul" || n.op === "amax").length).toBe(0);
  });

  it("a sliding window written as a mask becomes window: n", () => {
    const g = compile(written("window", CASES.window), DEFAULT_PIPELINE);
    for (const n of attentions(g)) {
      expect([n.attrs["causal"], n.attrs["window"], n.attrs["score"], n.attrs["mask"]]).toEqual([true, 3, undefined, undefined]);
    }
    expect(attentions(g).length).toBe(2);
  });

  it("an ALiBi bias by head becomes a score program over the head and positions", () => {
    const g = compile(written("alibi", CASES.alibi), DEFAULT_PIPELINE);
    const a = attentions(g);
    expect(a.length).toBe(2);
    for (const n of a) {
      const p = n.attrs["score"] as ExprProgram;
      const inputs = new Set(p.nodes.flatMap((x) => (x.kind === "input" ? [x.index] : [])));
      expect([...inputs].sort()).toEqual([0, 1, 2, 3]);
    }
  });

  it("a mask that is neither causal nor a window becomes a mask program", () => {
    const g = compile(written("maskexpr", CASES.maskExpr), DEFAULT_PIPELINE);
    const a = attentions(g);
    expect(a.length).toBe(2);
    for (const n of a) expect(program(n.attrs["mask"])).not.toBe("");
  });

  it("heads laid out by transposes alone (no grouping), the scale as a division, std's softmax", () => {
    const g = compile(written("plain", CASES.plain), DEFAULT_PIPELINE, { n_kv_heads: "4" });
    const a = attentions(g);
    expect(a.length).toBe(2);
    for (const n of a) {
      expect([n.attrs["causal"], n.attrs["window"], n.attrs["score"], n.attrs["mask"]]).toEqual([true, 0, undefined, undefined]);
      expect(n.attrs["scale"]).toBeCloseTo(8 ** -0.5, 6);
    }
  });

  it("fused and written attention give the same logits (prefill, then decode over the cache)", () => {
    for (const [name, body] of Object.entries(CASES)) {
      const path = written(`agree_${name}`, body);
      const fused = compile(path, DEFAULT_PIPELINE, name === "plain" ? { n_kv_heads: "4" } : {});
      expect(attentions(fused).length, name).toBe(2);
      const d = maxDiff(logits(fused), logits(compile(path, UNFUSED_PIPELINE, name === "plain" ? { n_kv_heads: "4" } : {})));
      expect(d, name).toBeLessThan(1e-4);
    }
  });

  it("near misses stay as written: softmax over queries, a bias read from the keys, a mask that reads the scores", () => {
    const misses = {
      axis: CASES.softcap.replace("amax(s, axis: -1", "amax(s, axis: -2").replace("sum(e, axis: -1", "sum(e, axis: -2"),
      keys: CASES.softcap.replace("s = 20.0 * tanh(s / 20.0)", "s = s + reshape(transpose(k, 0, 2)[0:1], [n_kv_heads, 1, 1, S])"),
      scores: CASES.softcap.replace("where(key_pos <= query_pos, s, -1e30)", "where(s > 0.0, s, -1e30)"),
    };
    for (const [name, body] of Object.entries(misses)) {
      const path = written(`miss_${name}`, body);
      const g = compile(path, DEFAULT_PIPELINE);
      expect(attentions(g).length, name).toBe(0);
      expect(maxDiff(logits(g), logits(compile(path, UNFUSED_PIPELINE))), name).toBeLessThan(1e-4);
    }
  });

  it("std/nn.llm's attention (LLaMA, Mistral's window) fuses to exactly the node the built-in makes", () => {
    for (const [arch, window] of [["llama", 0], ["mistral", 5]] as const) {
      const extra: Record<string, string> = arch === "mistral" ? { sliding_window: "5" } : {};
      const a = attentions(compile(join("models", `${arch}.llm`), DEFAULT_PIPELINE, extra));
      expect(a.length, arch).toBe(2);
      for (const n of a) {
        expect(Object.keys(n.attrs).sort(), arch).toEqual(["causal", "scale", "window"]);
        expect([n.attrs["causal"], n.attrs["window"], Math.fround(n.attrs["scale"] as number)], arch).toEqual([true, window, Math.fround(8 ** -0.5)]);
      }
    }
  });

  it("Gemma 2 and Gemma 3 attention run fused: one attention per layer, local layers windowed", () => {
    for (const arch of ["gemma2", "gemma3"]) {
      const extra = { head_dim: "8", sliding_window: "3", ...(arch === "gemma2" ? { attn_softcap: "5.0" } : { sliding_window_pattern: "2" }) };
      const path = join("models", `${arch}.llm`);
      const g = compile(path, DEFAULT_PIPELINE, extra);
      const a = attentions(g);
      expect(a.length, arch).toBe(2);
      expect(a.map((n) => n.attrs["window"]), arch).toEqual([3, 0]);
      if (arch === "gemma2") expect(a.every((n) => program(n.attrs["score"]).includes("tanh"))).toBe(true);
      expect(maxDiff(logits(g), logits(compile(path, UNFUSED_PIPELINE, extra))), arch).toBeLessThan(1e-4);
    }
  });
});

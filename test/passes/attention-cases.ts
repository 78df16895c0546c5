// What the attention pattern tests share: score and mask programs for attention kernels (each
// target's test compares them to the CPU reference), and LLaMAs whose attention is written out in
// .llm with soft-capping, windows, ALiBi-like biases and masks (the pass fuses them).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { parseProgram, type ExprProgram } from "../../src/compiler/ops/expr.js";

/** Score programs over (s, q_pos, k_pos, head). */
export const SCORE_PROGRAMS: Record<string, ExprProgram | undefined> = {
  none: undefined,
  // 3·tanh(s / 3)
  softcap: parseProgram("in0; 3:f32; div(0, 1); tanh(2); mul(3, 1) -> 4"),
  // s + 0.25·(head + 1)·(k_pos − q_pos)
  alibi: parseProgram("in0; in1; in2; in3; sub(2, 1); 1:f32; add(3, 5); mul(6, 4); 0.25:f32; mul(7, 8); add(0, 9) -> 10"),
  // −∞ for the key just before the query: a score that weighs nothing
  hideOne: parseProgram("in0; in1; in2; 1:f32; sub(1, 3); eq(2, 4); -Infinity:f32; where(5, 6, 0) -> 7"),
};

/** Mask programs over (q_pos, k_pos, head). */
export const MASK_PROGRAMS: Record<string, ExprProgram | undefined> = {
  none: undefined,
  // every key but the one two positions back
  skipTwo: parseProgram("in0; in1; sub(0, 1); 2:f32; ne(2, 3) -> 4"),
  // head 0 sees only the key before the query and later ones; other heads see all
  byHead: parseProgram("in0; in1; in2; 1:f32; ge(2, 3); sub(0, 3); ge(1, 5); or(4, 6) -> 7"),
};

export const SMALL_LLAMA = { vocab_size: "48", dim: "32", n_layers: "2", n_heads: "4", n_kv_heads: "2", ffn_dim: "40", max_seq_len: "64" };

/** Written attention's options: soft-cap (0: none), window (0: none), an ALiBi-like bias by head,
 *  and a mask that hides the key two positions back. */
export interface WrittenAttention {
  softcap: number;
  window: number;
  alibi: boolean;
  skipTwo: boolean;
}

/** The body of LLaMA's `attend` written out: GQA as a broadcast (gemma2.llm's spelling), scores,
 *  the chosen modifiers, the causal mask, softmax, values. */
export function attendBody(o: WrittenAttention): string {
  const lines = [
    "g = n_heads / n_kv_heads",
    "qh = transpose(transpose(reshape(q, [T, n_kv_heads, g, head_dim]), 0, 1), 1, 2)",
    "kh = reshape(transpose(k, 0, 1), [n_kv_heads, 1, S, head_dim])",
    "vh = reshape(transpose(v, 0, 1), [n_kv_heads, 1, S, head_dim])",
    "positions = arange(S)",
    "key_pos = reshape(positions, [1, S])",
    "query_pos = reshape(positions[S - T:], [T, 1])",
    "s = qh @ kh.T * head_dim ** -0.5",
  ];
  if (o.softcap > 0) lines.push(`s = ${o.softcap.toFixed(1)} * tanh(s / ${o.softcap.toFixed(1)})`);
  if (o.alibi) {
    lines.push("slopes = reshape(2.0 ** (-8.0 * (arange(n_heads) + 1.0) / n_heads), [n_kv_heads, g, 1, 1])");
    lines.push("s = s + slopes * (key_pos - query_pos)");
  }
  lines.push(`s = where(key_pos <= query_pos${o.skipTwo ? " && query_pos - key_pos != 2.0" : ""}, s, -1e30)`);
  if (o.window > 0) lines.push(`s = where(key_pos > query_pos - ${o.window}, s, -1e30)`);
  lines.push(
    "e = exp(s - amax(s, axis: -1, keepdim: true))",
    "o = e / sum(e, axis: -1, keepdim: true) @ vh",
    "return reshape(transpose(transpose(o, 1, 2), 0, 1), [T, n_heads, head_dim])",
  );
  return lines.map((l) => `    ${l}`).join("\n");
}

/** A directory for written models; `dispose` removes it. */
export function modelDir(prefix: string): { write(name: string, attend: string): string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    /** A LLaMA whose `attend` (q [T, n_heads, head_dim], k and v [S, n_kv_heads, head_dim]) is `attend`. */
    write(name, attend) {
      const path = join(dir, `${name}.llm`);
      writeFileSync(path, `import "${resolve("models/llama.llm")}"

model ${name} extends llama {
  fn attend(
    q: [T, n_heads, head_dim],
    k: [S, n_kv_heads, head_dim],
    v: [S, n_kv_heads, head_dim]
  ) -> [T, n_heads, head_dim] {
${attend}
  }
}
`);
      return path;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The graph of a written model at SMALL_LLAMA's sizes through `pipeline`; throws the checker's errors. */
export function compileSmall(path: string, pipeline: string[]): Graph {
  const res = compileFile(path, { overrides: new Map(Object.entries(SMALL_LLAMA)), pipeline });
  const errors = res.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
  if (errors.length > 0 || !res.compiled) throw new Error(`${path} does not compile: ${errors.join("; ")}`);
  return res.compiled.graph;
}

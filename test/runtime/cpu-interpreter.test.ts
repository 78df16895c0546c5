// The CPU interpreter on whole models: decoding token by token with the KV cache gives the same
// logits as one prefill of the whole sequence, for random small models of every architecture.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { ContextOverflowError } from "../../src/runtime/executor.js";
import { randomTensor } from "../../src/runtime/weights/random.js";

const runs = process.env["CI"] ? 1000 : 60;

const compiled = new Map<string, ReturnType<typeof compileUncached>>();

/** Compiling is the slow part of a case; the property draws from a finite set of configs, each compiled once. */
function compile(arch: string, cfg: Record<string, number | string | boolean>) {
  const key = arch + JSON.stringify(cfg);
  if (!compiled.has(key)) compiled.set(key, compileUncached(arch, cfg));
  return compiled.get(key)!;
}

function compileUncached(arch: string, cfg: Record<string, number | string | boolean>) {
  const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
  const res = compileFile(join("models", `${arch}.llm`), { overrides });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.message).join("\n"));
  return res.compiled!;
}

function interpreter(graph: ReturnType<typeof compile>["graph"], seed: number) {
  return new CpuInterpreter(graph, (name, shape) => randomTensor(name, shape, { seed }));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const archs = fc.constantFrom("llama", "mistral", "qwen2", "gemma");

describe("CPU interpreter", () => {
  it("decode with the KV cache equals the full-sequence forward pass", () => {
    fc.assert(
      fc.property(
        archs,
        fc.record({ heads: fc.constantFrom(2, 4), kvDiv: fc.constantFrom(1, 2), headDim: fc.constantFrom(4, 8), layers: fc.integer({ min: 1, max: 2 }) }),
        fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 2, maxLength: 7 }),
        fc.integer({ min: 0, max: 1000 }),
        (arch, s, tokens, seed) => {
          const dim = s.heads * s.headDim;
          const cfg: Record<string, number | string | boolean> = {
            vocab_size: 32, dim, n_layers: s.layers, n_heads: s.heads, n_kv_heads: s.heads / s.kvDiv, ffn_dim: 2 * dim + 4, max_seq_len: 16,
          };
          if (arch === "gemma") cfg["head_dim"] = s.headDim;
          if (arch === "mistral") cfg["sliding_window"] = 3;
          const { graph } = compile(arch, cfg);
          const full = interpreter(graph, seed).step({ tokens: Int32Array.from(tokens) });
          const vocab = 32;
          expect(full.shape).toEqual([tokens.length, vocab]);
          const inc = interpreter(graph, seed);
          for (let t = 0; t < tokens.length; t++) {
            const out = inc.step({ tokens: Int32Array.of(tokens[t]!) });
            const row = (full.data as Float32Array).subarray(t * vocab, (t + 1) * vocab);
            expect(maxAbsDiff(out.data as Float32Array, row)).toBeLessThan(1e-4);
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it("a later token's logits depend on earlier tokens (the cache is used), earlier ones not on later", () => {
    const { graph } = compile("llama", { vocab_size: 32, dim: 16, n_layers: 1, n_heads: 2, ffn_dim: 24, max_seq_len: 16 });
    const a = interpreter(graph, 1).step({ tokens: Int32Array.of(1, 2, 3) });
    const b = interpreter(graph, 1).step({ tokens: Int32Array.of(1, 2, 9) });
    const c = interpreter(graph, 1).step({ tokens: Int32Array.of(5, 2, 3) });
    const row = (x: typeof a, t: number) => (x.data as Float32Array).subarray(t * 32, (t + 1) * 32);
    expect(maxAbsDiff(row(a, 1), row(b, 1))).toBe(0); // causal: token 2 cannot see token 3
    expect(maxAbsDiff(row(a, 2), row(c, 2))).toBeGreaterThan(1e-6); // token 3 sees token 1
  });

  it("refuses to run past max_seq_len with a clear error", () => {
    const { graph } = compile("llama", { vocab_size: 32, dim: 16, n_layers: 1, n_heads: 2, ffn_dim: 24, max_seq_len: 4 });
    const it = interpreter(graph, 1);
    it.step({ tokens: Int32Array.of(1, 2, 3) });
    expect(() => it.step({ tokens: Int32Array.of(4, 5) })).toThrow(ContextOverflowError);
    expect(() => it.step({ tokens: Int32Array.of(4, 5) })).toThrow(/3 cached \+ 2 new tokens exceed max_seq_len 4/);
  });
});

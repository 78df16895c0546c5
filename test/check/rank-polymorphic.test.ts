// Rank-polymorphic tensor types: `x: [..., D]` binds any number of leading dims (zero included), the
// same ones wherever one signature writes `...`. std's norms take [T, dim] rows and [T, heads,
// head_dim] heads alike: Qwen3's per-head q/k RMSNorm calls std rms_norm and computes what a
// hand-written per-head norm does.

import { describe, expect, it } from "vitest";
import { checkFile } from "../../src/compiler/check/index.js";
import { compileFile } from "../../src/compiler/compile.js";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { parseModule } from "../../src/compiler/parse/index.js";
import { printGraph } from "../../src/compiler/ir/text.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { testWeights } from "../helpers/graph.js";
import { llmWriter } from "../helpers/llm-files.js";

const write = llmWriter("rank");

/** `line:col code message` of each error in the checked text. */
function errorsOf(text: string): string[] {
  const res = checkFile(write(text));
  return res.diagnostics
    .filter((d) => d.severity === "error")
    .map((d) => `${d.span ? `${d.span.start.line}:${d.span.start.column}` : "-"} ${d.code} ${d.message}`);
}

// Qwen3: LLaMA with an RMSNorm over each head of q and k, before RoPE.
const QWEN3 = `import "llama.llm"

model qwen3ish extends llama {
  config {
    vocab_size = 32
    dim = 32
    n_layers = 2
    n_heads = 4
    n_kv_heads = 2
    ffn_dim = 48
    max_seq_len = 16
  }

  weights {
    layers[n_layers] {
      q_norm: [head_dim]  gguf "blk.{i}.attn_q_norm.weight"  hf "model.layers.{i}.self_attn.q_norm.weight"
      k_norm: [head_dim]  gguf "blk.{i}.attn_k_norm.weight"  hf "model.layers.{i}.self_attn.k_norm.weight"
    }
  }

  fn q_proj(x: [T, dim], w: layers) -> [T, n_heads, head_dim] {
    return rms_norm(heads(linear(x, w.wq), n_heads), w.q_norm, norm_eps)
  }

  fn k_proj(x: [T, dim], w: layers) -> [T, n_kv_heads, head_dim] {
    return rms_norm(heads(linear(x, w.wk), n_kv_heads), w.k_norm, norm_eps)
  }
}

// The same model with the per-head norm written out, as it had to be before.
model qwen3_by_hand extends qwen3ish {
  fn head_norm(x: [T, H, D], w: [D]) -> [T, H, D] {
    return x * rsqrt(mean(x * x, axis: -1, keepdim: true) + norm_eps) * w
  }

  fn q_proj(x: [T, dim], w: layers) -> [T, n_heads, head_dim] {
    return head_norm(heads(linear(x, w.wq), n_heads), w.q_norm)
  }

  fn k_proj(x: [T, dim], w: layers) -> [T, n_kv_heads, head_dim] {
    return head_norm(heads(linear(x, w.wk), n_kv_heads), w.k_norm)
  }
}
`;

describe("Qwen3's per-head q/k norm with std rms_norm on [T, H, D]", () => {
  const path = write(QWEN3);
  const compile = (model: string, pipeline?: string[]) => {
    const res = compileFile(path, { model, ...(pipeline ? { pipeline } : {}) });
    expect(res.diagnostics.filter((d) => d.severity === "error").map((d) => formatDiagnostic(d, res.sources))).toEqual([]);
    return res.compiled!.graph;
  };

  it("checks and lowers to the graph of the hand-written version", () => {
    const std = compile("qwen3ish");
    const byHand = compile("qwen3_by_hand");
    const body = (text: string) => text.split("\n").slice(1).join("\n");
    expect(body(printGraph(std))).toBe(body(printGraph(byHand)));
    // As lowered, the norm reduces over head_dim of [T, heads, head_dim].
    expect(printGraph(compile("qwen3ish", []))).toMatch(/= mean %\d+ \{axis = -1, keepdim = true\} : \[T, 4, 1\] f32/);
  });

  it("gives the hand-written version's logits on the CPU interpreter, prefill and decode", () => {
    const weights = testWeights(11);
    const a = new CpuInterpreter(compile("qwen3ish"), weights);
    const b = new CpuInterpreter(compile("qwen3_by_hand"), weights);
    for (const tokens of [Int32Array.of(3, 1, 4, 1, 5), Int32Array.of(9), Int32Array.of(2, 6)]) {
      const x = a.step({ tokens });
      const y = b.step({ tokens });
      expect(x.shape).toEqual([tokens.length, 32]);
      expect(Array.from(x.data)).toEqual(Array.from(y.data));
      expect(Array.from(x.data).every(Number.isFinite)).toBe(true);
    }
  });
});

describe("[..., D] in signatures", () => {
  const model = (fns: string, body: string) => `import "std/nn.llm"

${fns}

model m {
  config {
    vocab_size: int = 6
    heads: int = 2
  }
  weights {
    embed: [vocab_size, vocab_size]  gguf "e"
    g: [3]  gguf "g"
  }
  fn forward(tokens: [T] i32, pos: [T] i32) -> [T, vocab_size] {
    x = embed[tokens]
${body}
  }
}
`;

  it("binds zero, one or two leading dims, and the result type reuses them", () => {
    const text = model(
      `fn scale(x: [..., D], s: [D]) -> [..., D] {
  return x * s
}

fn last(x: [..., D]) -> [...] {
  return sum(x, axis: -1)
}`,
      `    a = scale(g, g)
    b = scale(reshape(x, [T, 2, 3]), g)
    c = scale(reshape(x, [T, 1, 2, 3]), g)
    d = last(b) + last(reshape(c, [T, 2, 3]))
    return reshape(b + reshape(c, [T, 2, 3]) + a + reshape(d, [T, 2, 1]), [T, vocab_size])`,
    );
    expect(errorsOf(text)).toEqual([]);
  });

  it("reports a tensor of too small a rank at the argument", () => {
    const text = model("", `    return x + concat(rms_norm(g, g, 1e-5), g)`);
    expect(errorsOf(text)).toEqual([]); // zero leading dims are fine
    const bad = model(
      `fn per_head(x: [..., H, D]) -> [..., H, D] {
  return x
}`,
      `    return per_head(g) + x`,
    );
    const errs = errorsOf(bad);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^\d+:\d+ E0301 argument 'x' of per_head: expected a tensor of rank ≥ 2 \[\.\.\., H, D\], got \[3\]$/);
  });

  it("requires every `...` of one call to be the same dims", () => {
    const text = model(
      `fn add_rows(a: [..., D], b: [..., D]) -> [..., D] {
  return a + b
}`,
      `    return add_rows(x, reshape(x, [T, 1, vocab_size]))`,
    );
    const errs = errorsOf(text);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toContain("E0301 argument 'b' of add_rows: expected shape [..., 6], got [T, 1, 6] ('...' is [T] in this call of add_rows, here [T, 1])");
  });

  it("checks a result against the leading dims of the arguments", () => {
    const text = model(
      `fn wrong(x: [..., D]) -> [..., D] {
  return sum(x, axis: 0, keepdim: true)
}`,
      `    return wrong(x)`,
    );
    expect(errorsOf(text).join("\n")).toContain("E0301 result of wrong: expected shape [..., 6], got [1, 6] ('...' is [T] in this call of wrong, here [1])");
  });

  it("is refused in forward's inputs", () => {
    const text = model("", "    return x").replace("tokens: [T] i32", "tokens: [..., T] i32");
    expect(errorsOf(text)).toEqual([expect.stringMatching(/^\d+:\d+ E0301 forward's inputs have a fixed rank/)]);
  });
});

describe("misplaced `...` is a located syntax-level error", () => {
  const parse = (text: string) => parseModule("e.llm", text).diagnostics.map((d) => `${d.span!.start.line}:${d.span!.start.column} ${d.code} ${d.message}`);

  it("after a dim", () => {
    expect(parse("fn f(x: [D, ...]) -> [D] {\n  return x\n}\n")).toEqual(["1:13 E0106 '...' stands for the leading dims, so it comes first: [..., D]"]);
  });

  it("twice", () => {
    expect(parse("fn f(x: [..., ..., D]) {\n  return x\n}\n")).toEqual(["1:15 E0106 a tensor type has at most one '...'"]);
  });

  it("in a weight's shape", () => {
    const text = `model m {\n  weights {\n    w: [..., 4]  gguf "w"\n  }\n}\n`;
    expect(parse(text)).toEqual(["3:9 E0106 a weight's shape is fixed; '...' (any leading dims) is for the tensor types of functions"]);
  });

  it("is a syntax error where no tensor type is expected", () => {
    expect(parse("fn f(x: [D]) {\n  return reshape(x, [..., 1])\n}\n")[0]).toMatch(/^2:22 E0101 /);
  });
});

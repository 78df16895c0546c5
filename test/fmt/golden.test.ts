// The canonical layout, by example: each input is formatted and compared with text written by hand.

import { describe, expect, it } from "vitest";
import { parseModule } from "../../src/compiler/parse/index.js";
import { formatModule } from "../../src/compiler/fmt/format.js";

function fmt(text: string): string {
  const { module, diagnostics } = parseModule("golden.llm", text);
  expect(diagnostics).toEqual([]);
  return formatModule(module, text);
}

/** Template text without its first newline and with the common indentation removed. */
function dedent(s: string): string {
  const lines = s.replace(/^\n/, "").split("\n");
  const pad = Math.min(...lines.filter((l) => l.trim() !== "").map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(pad)).join("\n");
}

const cases: { name: string; input: string; expected: string }[] = [
  {
    name: "parentheses only where precedence needs them",
    input: `
      fn f(a: f32, b: f32) {
        x = ((a + b)) * (c) - (d - e) + (f * g)
        y = -a ** b; z = (-a) ** b; w = a ** b ** c; v = (a ** b) ** c
        u = a ** -b; t = -(a + b); s = !(a && b) || c && (d || e)
        r = (a < b) == (c >= d); q = a + (b < c ? d : e); p = (a ? b : c) ? d : e
        o = a ? b ? c : d : e ? f : g
        n = (a + b).T; m = (-x)[0]; l = (x @ w).sum(axis: -1); k = f(x)[:, 0:half, -1:]
        j = a - (-b); i = a * (b / c) % d @ e; h = ((a * b) / c)
      }
    `,
    expected: `
      fn f(a: f32, b: f32) {
        x = (a + b) * c - (d - e) + f * g
        y = -a ** b
        z = (-a) ** b
        w = a ** b ** c
        v = (a ** b) ** c
        u = a ** -b
        t = -(a + b)
        s = !(a && b) || c && (d || e)
        r = (a < b) == (c >= d)
        q = a + (b < c ? d : e)
        p = (a ? b : c) ? d : e
        o = a ? b ? c : d : e ? f : g
        n = (a + b).T
        m = (-x)[0]
        l = (x @ w).sum(axis: -1)
        k = f(x)[:, 0:half, -1:]
        j = a - -b
        i = a * (b / c) % d @ e
        h = a * b / c
      }
    `,
  },
  {
    name: "canonical spacing; `;` dropped; number literals as written; strings re-escaped",
    input: `
      import"std/nn.llm";fn   g(x:[T,D]i32,eps:f32=1e-5)->([T,D],f32){a,b=split(x,axis:0);for i in 0..n{c=x[i:i+1,:]};return[1.50,007,2E+3,"tab\\there\\q\\"q\\"\tback\\\\"]}
    `,
    expected: `
      import "std/nn.llm"

      fn g(x: [T, D] i32, eps: f32 = 1e-5) -> ([T, D], f32) {
        a, b = split(x, axis: 0)
        for i in 0..n {
          c = x[i:i + 1, :]
        }
        return [1.50, 007, 2E+3, "tab\\thereq\\"q\\"\\tback\\\\"]
      }
    `,
  },
  {
    name: "blank lines: always between items and members, kept (at most one) inside blocks",
    input: `
      import "a.llm"
      import "b.llm"
      fn f() {
        a = 1


        b = 2
        c = 3
      }
      fn g() {}
      model m extends base {
        config {
          x: int
          y = 2

          require x > 0
        }
        state s: KVCache[n_layers, 4096]
        fn forward(tokens: [T] i32) -> [T, vocab_size] {}
      }
    `,
    expected: `
      import "a.llm"
      import "b.llm"

      fn f() {
        a = 1

        b = 2
        c = 3
      }

      fn g() {}

      model m extends base {
        config {
          x: int
          y = 2

          require x > 0
        }

        state s: KVCache[n_layers, 4096]

        fn forward(tokens: [T] i32) -> [T, vocab_size] {}
      }
    `,
  },
  {
    name: "comments: leading, trailing, on the brace line, at the end of a block and of the file",
    input: `
      // file header

      import "std/nn.llm" // the library
      /* about m */
      model m { // opening
        config {
          dim: int   // width
          n_heads: int /* heads */ // and more
          // the end of config
        }
        fn f(x: [T]) -> [T] {
          y = g(x, // inside a call
                1)
          return y } // after the brace
      }
      // the end
    `,
    expected: `
      // file header

      import "std/nn.llm"  // the library

      /* about m */
      model m {  // opening
        config {
          dim: int      // width
          n_heads: int  /* heads */ // and more
          // the end of config
        }

        fn f(x: [T]) -> [T] {
          // inside a call
          y = g(x, 1)
          return y
        }  // after the brace
      }
      // the end
    `,
  },
  {
    name: "trailing comments of adjacent lines line up",
    input: `
      model m {
        config {
          vocab_size: int // tokens
          n_kv_heads: int = n_heads // grouped-query attention
          head_dim: int = dim / n_heads
          eps: f32 = 1e-5 // norm
        }
      }
    `,
    expected: `
      model m {
        config {
          vocab_size: int            // tokens
          n_kv_heads: int = n_heads  // grouped-query attention
          head_dim: int = dim / n_heads
          eps: f32 = 1e-5  // norm
        }
      }
    `,
  },
  {
    name: "weights: clauses in columns, long declarations continued under their first clause",
    input: `
      model llama {
        weights {
          embed: [vocab_size, dim] gguf "token_embd.weight" hf "model.embed_tokens.weight"
          norm: [dim] hf "model.norm.weight" gguf "output_norm.weight"
          lm_head: [vocab_size, dim] gguf "output.weight" hf "lm_head.weight" = embed if tie_embeddings;
          layers[n_layers] {
            wq: [n_heads * head_dim, dim] gguf "blk.{i}.attn_q.weight" hf "model.layers.{i}.self_attn.q_proj.weight" |> rope_permute(n_heads)
            bk: [n_kv_heads * head_dim] when qkv_bias hf "model.layers.{i}.self_attn.k_proj.bias" |> rope_permute(n_kv_heads) gguf "blk.{i}.attn_k.bias"
            bq: [n_heads * head_dim] optional when qkv_bias
          }

          rope_factors: [head_dim / 2] gguf "rope_freqs.weight" optional
        }
      }
    `,
    expected: `
      model llama {
        weights {
          embed: [vocab_size, dim]    gguf "token_embd.weight"  hf "model.embed_tokens.weight"
          norm: [dim]                 gguf "output_norm.weight"  hf "model.norm.weight"
          lm_head: [vocab_size, dim]  gguf "output.weight"  hf "lm_head.weight"  = embed if tie_embeddings
          layers[n_layers] {
            wq: [n_heads * head_dim, dim]  gguf "blk.{i}.attn_q.weight"
                                           hf "model.layers.{i}.self_attn.q_proj.weight" |> rope_permute(n_heads)
            bk: [n_kv_heads * head_dim]    gguf "blk.{i}.attn_k.bias"
                                           hf "model.layers.{i}.self_attn.k_proj.bias" |> rope_permute(n_kv_heads)
                                           when qkv_bias
            bq: [n_heads * head_dim]       optional  when qkv_bias
          }

          rope_factors: [head_dim / 2]  gguf "rope_freqs.weight"  optional
        }
      }
    `,
  },
  {
    name: "long signatures, conditional chains and calls break over lines",
    input: `
      fn rope_llama3_scale(inv_freq: [R], factor: f32, low_freq_factor: f32, high_freq_factor: f32, original_max_pos: int) -> [R] {
        return rope_scaling == "llama3" ? rope_llama3(base, rope_factor, rope_low_freq_factor) : rope_scaling == "linear" ? base / rope_factor : base
      }
      fn g() {
        attn = attention(heads(q, n_heads), heads(k, n_kv_heads), heads(v, n_kv_heads), causal: true, window: 0)
      }
    `,
    expected: `
      fn rope_llama3_scale(
        inv_freq: [R],
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_max_pos: int
      ) -> [R] {
        return rope_scaling == "llama3" ? rope_llama3(base, rope_factor, rope_low_freq_factor)
          : rope_scaling == "linear" ? base / rope_factor
          : base
      }

      fn g() {
        attn = attention(
          heads(q, n_heads),
          heads(k, n_kv_heads),
          heads(v, n_kv_heads),
          causal: true,
          window: 0
        )
      }
    `,
  },
  {
    name: "leading dims `...`; `drop` of weights and of functions, one per line",
    input: `
      fn norm(x: [ ... ,D ], w: [D]) -> [...,D] { return x * w }
      fn any(x: [...]i32) -> [...] i32 { return x }
      model m extends base {
        drop fn norm   drop fn ffn
        weights { drop rope_factors; layers[n] { drop bq   // no bias
        wq: [d, d] gguf "q" } }
        drop fn logits
      }
    `,
    expected: `
      fn norm(x: [..., D], w: [D]) -> [..., D] {
        return x * w
      }

      fn any(x: [...] i32) -> [...] i32 {
        return x
      }

      model m extends base {
        drop fn norm
        drop fn ffn

        weights {
          drop rope_factors
          layers[n] {
            drop bq  // no bias
            wq: [d, d]  gguf "q"
          }
        }

        drop fn logits
      }
    `,
  },
];

describe("fmt golden examples", () => {
  it.each(cases)("$name", ({ input, expected }) => {
    const want = dedent(expected);
    expect(fmt(dedent(input))).toBe(want);
    expect(fmt(want)).toBe(want);
  });

  it("prints an empty file as empty, and a file of comments as its comments", () => {
    expect(fmt("")).toBe("");
    expect(fmt("  \n\n")).toBe("");
    expect(fmt("// one\n\n\n/* two */   // three\n")).toBe("// one\n\n/* two */\n// three\n");
  });

  it("keeps a multi-line block comment's text as it was written", () => {
    const input = "fn f() {\n        /* a\n   b */\n  return 1\n}\n";
    expect(fmt(input)).toBe("fn f() {\n  /* a\n   b */\n  return 1\n}\n");
  });
});

// `drop name` (in a weights block or a weight group) and `drop fn name` (in a model): a derived model
// does not inherit that weight or function.

import { describe, expect, it } from "vitest";
import { checkFile } from "../../src/compiler/check/index.js";
import { parameterCount } from "../../src/compiler/check/model.js";
import { compileFile } from "../../src/compiler/compile.js";
import { printGraph } from "../../src/compiler/ir/text.js";
import { llmWriter } from "../helpers/llm-files.js";

const write = llmWriter("drop");

const CONFIG = `config {
    vocab_size = 16
    dim = 8
    n_layers = 2
    n_heads = 2
    ffn_dim = 12
    max_seq_len = 8
    qkv_bias = true
  }`;

/** A small LLaMA with q/k/v biases, extended by `body`. */
const derived = (body: string, top = "") => `import "llama.llm"
${top}
model small extends llama {
  ${CONFIG}
${body}
}
`;

function check(text: string) {
  const res = checkFile(write(text));
  return { res, errors: res.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.message}`) };
}

describe("drop of a weight", () => {
  const withoutBq = derived(`
  weights {
    drop rope_factors
    layers[n_layers] {
      drop bq
    }
  }

  fn q_proj(x: [T, dim], w: layers) -> [T, n_heads, head_dim] {
    return heads(linear(x, w.wq), n_heads)
  }
`);

  it("removes it from the model: no tensor to load, fewer parameters", () => {
    const { res, errors } = check(withoutBq);
    expect(errors).toEqual([]);
    const layers = res.model!.weights.get("layers")!;
    expect("fields" in layers && [...layers.fields.keys()]).not.toContain("bq");
    expect("fields" in layers && [...layers.fields.keys()]).toContain("bk");
    const full = check(derived("")).res.model!;
    expect(parameterCount(full) - parameterCount(res.model!)).toBe(2 * 8);
    expect(printGraph(compileFile(write(withoutBq)).compiled!.graph)).not.toContain("bq");
  });

  it("is reported where an inherited function still uses it", () => {
    const { errors } = check(derived(`
  weights {
    layers[n_layers] {
      drop bq
    }
  }
`));
    expect(errors).toEqual(["E0206 weight 'layers.bq' does not exist for this config (model 'small' drops it)"]);
  });

  it("of a top-level weight is reported where it is used", () => {
    const { errors } = check(derived(`
  weights {
    drop output_norm
  }
`));
    expect(errors).toEqual(["E0206 weight 'output_norm' does not exist for this config (model 'small' drops it)"]);
  });

  it("must name a weight the extended model declares", () => {
    const { errors } = check(derived(`
  weights {
    drop output_nrm
    layers[n_layers] {
      drop bz
    }
  }
`));
    expect(errors).toEqual([
      "E0201 model 'small' drops weight 'output_nrm', which no model it extends declares; did you mean 'output_norm'?",
      "E0201 model 'small' drops weight 'layers.bz', which no model it extends declares; did you mean 'bq'?",
    ]);
  });

  it("can be declared again by a model further down the chain", () => {
    const { errors, res } = check(`import "llama.llm"

model no_bias extends llama {
  weights {
    layers[n_layers] {
      drop bq
    }
  }
}

model small extends no_bias {
  ${CONFIG}
  weights {
    layers[n_layers] {
      bq: [n_heads * head_dim]  gguf "blk.{i}.attn_q.bias"
    }
  }
}
`);
    expect(errors).toEqual([]);
    const layers = res.model!.weights.get("layers")!;
    expect("fields" in layers && layers.fields.get("bq")?.gguf?.pattern).toBe("blk.{i}.attn_q.bias");
  });
});

describe("drop of a function", () => {
  const norm = `
fn norm(x: [..., D], w: [D]) -> [..., D] {
  return layer_norm_no_bias(x, w, 1e-5)
}
`;

  it("makes calls resolve to the top-level function of that name", () => {
    const dropped = compileFile(write(derived("\n  drop fn norm\n", `import "std/nn.llm"\n${norm}`)));
    const overridden = compileFile(write(derived(`
  fn norm(x: [T, dim], w: [dim]) -> [T, dim] {
    return layer_norm_no_bias(x, w, 1e-5)
  }
`)));
    expect(dropped.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(printGraph(dropped.compiled!.graph)).toBe(printGraph(overridden.compiled!.graph));
  });

  it("leaves the calls of inherited functions unresolved when nothing else has the name", () => {
    const { res, errors } = check(derived("\n  drop fn norm\n"));
    // At both of llama.llm's calls, in block and in logits.
    expect(errors).toEqual(["E0201 unknown function 'norm'", "E0201 unknown function 'norm'"]);
    expect(res.diagnostics.filter((d) => d.severity === "error").every((d) => d.span?.file.endsWith("llama.llm"))).toBe(true);
  });

  it("is checked in the model's own functions", () => {
    const { errors } = check(derived(`
  drop fn ffn

  fn block(h: [T, dim], l: int, w: layers, pos: [T] i32, freqs: [head_dim / 2]) -> [T, dim] {
    return h + ffn(h, w)
  }
`));
    expect(errors[0]).toMatch(/^E0201 unknown function 'ffn'/);
  });

  it("must name a function the extended model defines", () => {
    const { errors } = check(derived("\n  drop fn norms\n"));
    expect(errors).toEqual(["E0201 model 'small' drops function 'norms', which no model it extends defines; did you mean 'norm'?"]);
  });
});

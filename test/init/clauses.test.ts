// The `init` clause of a weight: how it parses, the located diagnostics of a faulty one (with and
// without config values), and `llmc fmt` printing it back. Expected positions are found by searching
// the fixture text, so they are not taken from the checker's output.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDiagnostic } from "../../src/compiler/base/diagnostics.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { formatModule } from "../../src/compiler/fmt/format.js";
import type * as A from "../../src/compiler/parse/ast.js";
import { parseModule } from "../../src/compiler/parse/index.js";
import { expr, identName, moduleArb, shape } from "../fmt/ast-arbitrary.js";
import { runs } from "../grammar/helpers.js";

const BAD = join("test", "fixtures", "init", "bad-clauses.llm");
const CONFIG = { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 };

/** `file:line:col` of the first occurrence of `needle` on the line that contains `line`. */
function at(line: string, needle: string): string {
  const lines = readFileSync(BAD, "utf8").split("\n");
  const i = lines.findIndex((l) => l.includes(line));
  const col = lines[i]!.indexOf(needle);
  if (i < 0 || col < 0) throw new Error(`fixture has no '${needle}' on a line with '${line}'`);
  return `${BAD}:${i + 1}:${col + 1}`;
}

function check(overrides: Record<string, number>) {
  const res = checkFile(BAD, { overrides: new Map(Object.entries(overrides).map(([k, v]) => [k, String(v)])) });
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  return {
    where: errors.map((d) => `${d.span ? `${d.span.file.replace(/\\/g, "/")}:${d.span.start.line}:${d.span.start.column}` : "-"} ${d.code}`),
    text: errors.map((d) => formatDiagnostic(d, res.program.sources)).join("\n"),
  };
}

function weightsOf(text: string): A.WeightDecl[] {
  const { module, diagnostics } = parseModule("t.llm", text);
  expect(diagnostics).toEqual([]);
  const model = module.items[0] as A.ModelDecl;
  const block = model.members.find((m): m is A.WeightsBlock => m.kind === "Weights")!;
  return block.items as A.WeightDecl[];
}

describe("parsing init clauses", () => {
  it("reads the initialiser's name and its positional and named arguments, among the other clauses", () => {
    const [a, b, c, d] = weightsOf(`model m {
  weights {
    a: [4, 8]  gguf "a"  init normal(0, 0.02 / sqrt(2 * n))
    b: [8]  init zeros  gguf "b"  when flag
    c: [4, 8]  gguf "c"  = a if tied  init xavier_uniform(gain: 2.0)
    d: [4]  gguf "d"
  }
}`);
    expect(a!.init?.name.name).toBe("normal");
    expect(a!.init?.args.map((x) => x.value.kind)).toEqual(["Number", "Binary"]);
    expect(a!.gguf?.pattern).toBe("a");
    expect(b!.init).toMatchObject({ kind: "InitClause", name: { name: "zeros" }, args: [] });
    expect(b!.when).toMatchObject({ kind: "Name", name: "flag" });
    expect(c!.tie?.target.name).toBe("a");
    expect(c!.init?.args[0]!.name?.name).toBe("gain");
    expect(d!.init).toBeUndefined();
  });

  it("'init' is a keyword: it cannot name a weight", () => {
    const { diagnostics } = parseModule("t.llm", "model m { weights { init: [4] gguf \"x\" } }");
    expect(diagnostics.map((x) => x.code)).toContain("E0101");
  });
});

describe("diagnostics of faulty init clauses", () => {
  const structural = [
    `${at("nromal", "nromal")} E0201`,
    `${at("normal(0.02)", "init normal(0.02)")} E0303`,
    `${at("zeros(0)", "init zeros(0)")} E0303`,
    `${at("scale: 2.0", "scale")} E0303`,
    `${at("n_layer)", "n_layer)")} E0201`,
    `${at("init ones  init zeros", "init zeros")} E0105`,
    `${at("= embed  init zeros", "init zeros")} E0206`,
  ];

  it("without config values: unknown initialisers, argument counts and names, unknown config names, ties", () => {
    const { where, text } = check({});
    expect(where.filter((w) => !w.endsWith("E0401"))).toEqual(structural);
    expect(text).toContain("unknown initialiser 'nromal' for weight 'embed'; did you mean 'normal'?");
    expect(text).toContain("normal needs 'std': normal(mean, std)");
    expect(text).toContain("zeros takes no arguments, got 1");
    expect(text).toContain("xavier_normal has no parameter 'scale'; its parameters are gain");
    expect(text).toContain("unknown config value 'n_layer'; did you mean 'n_layers'?");
    expect(text).toContain("weight 'output_norm' has more than one 'init' clause");
    expect(text).toContain("weight 'lm_head' is always 'embed'");
  });

  it("with config values: also negative spreads, reversed bounds, non-numbers and fans of a vector", () => {
    const { where, text } = check(CONFIG);
    const byValue = [
      `${at("normal(0, -0.02)", "-0.02")} E0404`,
      `${at("uniform(0.1, -0.1)", "init uniform")} E0404`,
      `${at("gain: true", "true")} E0302`,
      `${at("attn_norm", "init xavier_uniform")} E0301`,
    ];
    const line = (w: string) => Number(w.split(":")[1]);
    expect(where).toEqual([...structural, ...byValue].sort((x, y) => line(x) - line(y)));
    expect(text).toContain("normal's 'std' of weight 'wk' must not be negative, got -0.02");
    expect(text).toContain("uniform's low 0.1 is above its high -0.1 for weight 'wv'");
    expect(text).toContain("xavier_uniform's 'gain' must be a number, got bool true");
    expect(text).toContain("xavier_uniform needs fan_in and fan_out, which a 1-D weight does not have ('attn_norm' is [64])");
    // the code frame underlines the negative spread
    expect(text).toContain("init normal(0, -0.02)\n  |                                                                                      ^^^^^");
  });
});

describe("llmc fmt prints init clauses", () => {
  const messy = `model m {
  weights {
    a: [4, 8]  init   normal( 0,0.02/sqrt(2*n) ) gguf "a"
    b: [8]  init zeros()  gguf "b"  when flag
    c: [4, 8]  init xavier_uniform(gain:2.0)  = a if tied  gguf "c"
  }
}
`;
  const canonical = `model m {
  weights {
    a: [4, 8]  gguf "a"  init normal(0, 0.02 / sqrt(2 * n))
    b: [8]     gguf "b"  when flag  init zeros
    c: [4, 8]  gguf "c"  = a if tied  init xavier_uniform(gain: 2.0)
  }
}
`;

  it("after the other clauses, arguments as written, and the result parses back to the same tree", () => {
    const parsed = parseModule("t.llm", messy);
    expect(parsed.diagnostics).toEqual([]);
    const out = formatModule(parsed.module, messy);
    expect(out).toBe(canonical);
    const back = parseModule("t.llm", out);
    expect(shape(back.module)).toEqual(shape(parsed.module));
    expect(formatModule(back.module, out)).toBe(out);
  });

  it("prints generated clauses on generated models so that they parse back to the same tree", () => {
    const zero = { offset: 0, line: 1, column: 1 };
    const S: A.Span = { file: "gen.llm", start: zero, end: zero };
    const ident = (name: string): A.Ident => ({ kind: "Ident", name, span: S });
    const arg = fc
      .record({ name: fc.option(identName.map(ident), { freq: 3 }), value: expr(2) })
      .map((r): A.Arg => ({ kind: "Arg", ...r, span: S }));
    const clause = fc
      .record({ name: fc.oneof(fc.constantFrom("normal", "uniform", "xavier_uniform", "zeros"), identName).map(ident), args: fc.array(arg, { maxLength: 3 }) })
      .map((r): A.InitClause => ({ kind: "InitClause", ...r, span: S }));
    const withInits = fc.tuple(moduleArb, fc.array(fc.option(clause), { minLength: 12, maxLength: 12 })).map(([m, clauses]) => {
      let k = 0;
      const visit = (items: A.WeightItem[]) => {
        for (const it of items) {
          if (it.kind === "WeightGroup") visit(it.items);
          else if (it.kind === "Weight") {
            const c = clauses[k++ % clauses.length];
            if (c) it.init = c;
          }
        }
      };
      for (const item of m.items) if (item.kind === "Model") for (const mem of item.members) if (mem.kind === "Weights") visit(mem.items);
      return m;
    });
    fc.assert(
      fc.property(withInits, (m) => {
        const printed = formatModule(m, "");
        const back = parseModule("gen.llm", printed);
        expect(back.diagnostics, printed).toEqual([]);
        expect(shape(back.module)).toEqual(shape(m));
        expect(formatModule(back.module, printed)).toBe(printed);
      }),
      { numRuns: runs(150, 1000) },
    );
  });

  it("wraps a long clause onto its own line, aligned under the first", () => {
    const long = `model m {
  weights {
    layers[n] {
      w_down: [dim, ffn_dim]  gguf "blk.{i}.ffn_down.weight"  init normal(0, 0.02 / sqrt(2 * n_layers * n_experts))
    }
  }
}
`;
    const out = formatModule(parseModule("t.llm", long).module, long);
    expect(out).toContain(`      w_down: [dim, ffn_dim]  gguf "blk.{i}.ffn_down.weight"
                              init normal(0, 0.02 / sqrt(2 * n_layers * n_experts))
`);
  });
});

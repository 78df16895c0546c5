// `|> rows(start, count)`: a weight that is part of a fused file tensor (Phi-3's attn_qkv and
// ffn_up). Loading takes its rows (whole blocks for quantized types), writing stacks the parts, and
// every way a fused tensor can disagree with the .llm is an error that names the tensor: in the
// checker, the loader (GGUF and safetensors), the importer and `llmc init-weights`.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolvedModel, TensorTransform } from "../../src/compiler/check/model.js";
import { checkFile } from "../../src/compiler/check/index.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { decodeTensor, encodeTensor } from "../../src/compiler/target/storage.js";
import { WeightFileError } from "../../src/runtime/weights/errors.js";
import { openGGUF } from "../../src/runtime/weights/gguf-reader.js";
import { initWeights, randomWeightSource } from "../../src/runtime/weights/init.js";
import { loadModelWeights } from "../../src/runtime/weights/loader.js";
import { applyLoadTransforms } from "../../src/runtime/weights/transforms.js";
import { llmWriter } from "../helpers/llm-files.js";
import { compileModel, writeHfCheckpoint, type Config } from "./model-helpers.js";

const rows = (start: number, count: number): TensorTransform => ({ name: "rows", args: [{ type: "int", value: start }, { type: "int", value: count }] });
const fail = (p: string) => new Error(p);
const f32Of = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const write = llmWriter("fused-rows");

// qkv [(4 + 2 + 2) · 16, 64] = [128, 64]; gate_up [2 · 96, 64].
const PHI3: Config = { vocab_size: 300, dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 96, max_seq_len: 32 };
let dir: string;
let gguf: string;
let hf: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "llmc-fused-rows-"));
  const model = compileModel("phi3", PHI3).model;
  gguf = join(dir, "phi3.gguf");
  await initWeights(model, gguf, { seed: 2 });
  hf = join(dir, "phi3-hf");
  const values = randomWeightSource(model, 2);
  await writeHfCheckpoint(model, hf, (n) => values(n, []));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function loadError(model: ResolvedModel, path: string): Promise<WeightFileError> {
  const err = await loadModelWeights(model, path).then(
    (w) => w.close().then(() => null),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WeightFileError);
  return err as WeightFileError;
}

describe("rows(start, count) on load", () => {
  it("takes rows [start, start + count) of f32 values and of quantized blocks", () => {
    const v = Float32Array.from({ length: 6 * 32 }, (_, i) => Math.sin(i));
    const f32 = applyLoadTransforms({ dtype: "f32", shape: [6, 32], bytes: new Uint8Array(v.buffer) }, [rows(2, 3)], fail);
    expect(f32.shape).toEqual([3, 32]);
    expect(f32Of(f32.bytes)).toEqual(v.subarray(64, 160));
    const q = encodeTensor("q8_0", v);
    const q8 = applyLoadTransforms({ dtype: "q8_0", shape: [6, 32], bytes: q }, [rows(2, 3)], fail);
    expect(q8.dtype).toBe("q8_0");
    expect(decodeTensor("q8_0", q8.bytes)).toEqual(decodeTensor("q8_0", q).subarray(64, 160));
  });

  it("refuses rows past the end of the file tensor", () => {
    const bytes = new Uint8Array(4 * 4 * 2);
    expect(() => applyLoadTransforms({ dtype: "f32", shape: [4, 2], bytes }, [rows(3, 2)], fail)).toThrow("rows(3, 2) reads rows up to 5, but the file tensor has 4");
  });
});

describe("a fused tensor round-trips through GGUF and safetensors", () => {
  it("the loader's q, k, v, gate and up are the values written, from either format", async () => {
    const model = compileModel("phi3", PHI3).model;
    const values = randomWeightSource(model, 2);
    for (const path of [gguf, hf]) {
      const w = await loadModelWeights(model, path);
      try {
        for (const name of ["layers.1.wq", "layers.1.wk", "layers.1.wv", "layers.1.w_gate", "layers.1.w_up"]) {
          expect(w.f32(name), `${name} from ${path}`).toEqual(values(name, []));
        }
      } finally {
        await w.close();
      }
    }
  });

  it("init-weights stacks the parts in row order: q rows, k rows, v rows", async () => {
    const model = compileModel("phi3", PHI3).model;
    const values = randomWeightSource(model, 2);
    const file = await openGGUF(gguf);
    try {
      const qkv = decodeTensor("f32", await file.readTensorBytes("blk.0.attn_qkv.weight"));
      // v is not permuted, so its rows are stored as they are, after q's 64 rows and k's 32.
      expect(qkv.subarray(96 * 64)).toEqual(values("layers.0.wv", []));
      const up = decodeTensor("f32", await file.readTensorBytes("blk.0.ffn_up.weight"));
      expect(up.subarray(0, 96 * 64)).toEqual(values("layers.0.w_gate", []));
      expect(up.subarray(96 * 64)).toEqual(values("layers.0.w_up", []));
    } finally {
      await file.close();
    }
  });
});

describe("a fused tensor that does not fit the .llm", () => {
  it("rows no weight reads: named with each weight's rows", async () => {
    // One KV head instead of two: q 0..64, k 64..80, v 80..96 of 128 rows.
    const e = await loadError(compileModel("phi3", { ...PHI3, n_kv_heads: 1 }).model, gguf);
    expect(e.tensor).toBe("blk.0.attn_qkv.weight");
    expect(e.message).toContain("its 128 rows are not split exactly");
    expect(e.message).toContain("'layers.0.wv' rows 80..96");
    expect(e.message).toContain("rows 96..128 are read by none");
  });

  it("rows past the end: the part and the file tensor's shape", async () => {
    for (const path of [gguf, hf]) {
      const e = await loadError(compileModel("phi3", { ...PHI3, ffn_dim: 128 }).model, path);
      expect(e.tensor).toMatch(/^(blk\.0\.ffn_up\.weight|model\.layers\.0\.mlp\.gate_up_proj\.weight)$/);
      expect(e.message).toContain("rows(128, 128) reads rows up to 256, but the file tensor has 192");
      expect(e.message).toContain("'layers.0.w_up'");
    }
  });

  it("a part of the wrong width: the file's shape, the part's and the declared one", async () => {
    const path = write(`import "phi3.llm"
model wide extends phi3 {
  weights {
    layers[n_layers] {
      v_wide: [n_kv_heads * head_dim, 2 * dim]  gguf "blk.{i}.attn_qkv.weight" |> rows((n_heads + n_kv_heads) * head_dim, n_kv_heads * head_dim)
    }
  }
}
`);
    const e = await loadError(compileModel(path, PHI3).model, gguf);
    expect(e.tensor).toBe("blk.0.attn_qkv.weight");
    expect(e.message).toContain("its shape is [128, 64] (its part rows(96, 32) is [32, 64]), but model 'wide' declares weight 'layers.0.v_wide' as [32, 128]");
  });

  it("llmc import checks the config against a checkpoint's fused shapes", () => {
    const json = { model_type: "phi3", vocab_size: 300, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, max_position_embeddings: 32 };
    const shapes = new Map([
      ["model.layers.0.mlp.gate_up_proj.weight", [192, 64]],
      ["model.layers.1.mlp.gate_up_proj.weight", [192, 64]],
    ]);
    expect(() => importHfConfig(json, "config.json", { shapes, weights: "model.safetensors" })).toThrow(
      /intermediate_size = 128, tensor "model.layers.0.mlp.gate_up_proj.weight" would be \[128, 64\], but in model.safetensors it is \[192, 64\]/,
    );
  });

  it("init-weights refuses parts that leave a gap, naming the tensor", async () => {
    const path = write(`import "llama.llm"
model gap extends llama {
  config { vocab_size = 300  dim = 64  n_layers = 1  n_heads = 4  ffn_dim = 96 }
  weights {
    layers[n_layers] {
      w_gate: [ffn_dim, dim]  gguf "blk.{i}.ffn_up.weight" |> rows(0, ffn_dim)
      w_up: [ffn_dim, dim]    gguf "blk.{i}.ffn_up.weight" |> rows(ffn_dim + 1, ffn_dim)
    }
  }
}
`);
    const res = checkFile(path);
    expect(res.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    const err = await initWeights(res.model!, join(dir, "gap.gguf")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as WeightFileError).tensor).toBe("blk.0.ffn_up.weight");
    expect((err as WeightFileError).message).toContain("'layers.0.w_gate', 'layers.0.w_up' do not split it exactly");
  });
});

describe("the checker", () => {
  it("rows must come first and take integers start >= 0, count > 0", () => {
    const path = write(`import "llama.llm"
model bad extends llama {
  config { vocab_size = 300  dim = 64  n_layers = 1  n_heads = 4  ffn_dim = 96 }
  weights {
    layers[n_layers] {
      wq: [dim, dim]  gguf "blk.{i}.attn_qkv.weight" |> rope_permute(n_heads) |> rows(0, dim)
      w_gate: [ffn_dim, dim]  gguf "blk.{i}.ffn_up.weight" |> rows(-1, ffn_dim)
      w_up: [ffn_dim, dim]  gguf "blk.{i}.ffn_up.weight" |> rows(0, 0.5)
    }
  }
}
`);
    const messages = checkFile(path).diagnostics.filter((d) => d.severity === "error").map((d) => `${d.code} ${d.span?.start.line}: ${d.message}`);
    expect(messages).toEqual([
      "E0303 6: rows(start, count) must come first: it picks the weight's rows of the file tensor before other transforms apply",
      "E0302 7: rows(-1, 96) needs integers start >= 0 and count > 0",
      "E0302 8: rows(0, 0.5) needs integers start >= 0 and count > 0",
    ]);
  });
});

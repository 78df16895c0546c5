// What does not fit is the user's to fix, not a bug: a KV cache too large for the device or for
// the host is a ResourceError naming the size, the limit and what to do (never V8's RangeError or a
// WebGpuError), found before anything large is allocated; and a config whose sizes the weight file
// contradicts (hidden_size 2^31, 10^6 layers) is refused by the import in milliseconds, before the
// model is compiled (which used to take minutes and gigabytes).

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import type { Graph } from "../../src/compiler/ir/graph.js";
import { importGgufMetadata, readGgufHeader } from "../../src/compiler/import/gguf-metadata.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import { ImportError } from "../../src/compiler/import/write-llm.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { ResourceError } from "../../src/runtime/errors.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { readTensorShapes } from "../../src/runtime/weights/loader.js";
import { modelTensors } from "../../src/runtime/weights/model-tensors.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { writeSafetensors } from "../../src/runtime/weights/safetensors.js";
import { loadModel } from "../../src/index.js";
import { emulated } from "../cuda/helpers.js";
import { TINY, writeTinyModel } from "../generate/fixture.js";
import { hfName, toHfOrder } from "../weights/model-helpers.js";
import { gpu, GraphBuilder } from "../webgpu/helpers.js";

afterAll(releaseSharedGpu);

const tmp = mkdtempSync(join(tmpdir(), "llmc-resources-"));

function llama(cfg: Record<string, number>): Graph {
  const res = compileFile(join("models", "llama.llm"), { overrides: new Map(Object.entries({ ...TINY, ...cfg }).map(([k, v]) => [k, String(v)])) });
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  return res.compiled.graph;
}

/** The error `f` throws or rejects with. */
async function thrown(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

// TINY: 2 layers, 2 kv heads of 8 → 64 bytes per position per layer, 256 for the whole KV cache.
const PER_POSITION = 2 * 2 * 2 * 8 * 4;

describe("a KV cache larger than the device or the host", () => {
  it("CPU: sized before it is allocated, against the host's memory", async () => {
    const maxSeqLen = Math.ceil(totalmem() / PER_POSITION) + 1;
    let asked = false;
    const err = await thrown(() => new CpuInterpreter(llama({ max_seq_len: maxSeqLen }), () => ((asked = true), new Float32Array())));
    expect(err).toBeInstanceOf(ResourceError);
    expect(err.message).toMatch(/^the KV cache \(max_seq_len \d+ × 256 bytes per position\) needs [\d.]+ GiB, more than this machine's [\d.]+ GiB of memory; use a shorter context \(--set max_seq_len=N with N ≤ \d+\)$/);
    expect(asked).toBe(false);
  });

  it("CPU: through loadModel, with the context asked for", async () => {
    const path = join(tmp, "tiny.gguf");
    await writeTinyModel(path);
    const err = await thrown(() => loadModel(path, { backend: "cpu", maxSeqLen: 4_000_000_000 }));
    expect(err).toBeInstanceOf(ResourceError);
    expect(err.message).toMatch(/KV cache .* more than this machine's/);
  });

  it("WebGPU: a layer's cache past maxStorageBufferBindingSize, refused before the weights are read", async () => {
    const device = await gpu();
    const limit = device.limits.maxStorageBufferBindingSize;
    const perLayer = 2 * 8 * 4;
    let asked = false;
    const graph = llama({ max_seq_len: Math.floor(limit / perLayer) + 1 });
    const err = await thrown(() => createWebGpuExecutor(graph, (name, shape) => ((asked = true), randomTensor(name, shape, { seed: 1 })), device));
    expect(err).toBeInstanceOf(ResourceError);
    expect(err.message).toContain(`more than this adapter's maxStorageBufferBindingSize of ${limit} bytes; use a shorter context (--set max_seq_len=N with N ≤ ${Math.floor(limit / perLayer)}) or another backend (--backend cpu)`);
    expect(asked).toBe(false);
  });

  it("WebGPU: a weight past maxStorageBufferBindingSize that cannot be split into row ranges", async () => {
    // Matrices read as linear weights or embedding tables are split (test/webgpu/split-weights.test.ts);
    // one read whole, here by an elementwise op, is refused before anything is allocated.
    const device = await gpu();
    const limit = device.limits.maxStorageBufferBindingSize;
    const cols = 1024;
    const b = new GraphBuilder();
    const table = b.weight("table", [Math.floor(limit / (cols * 4)) + 1, cols]);
    const graph = b.graph([b.op("exp", [table])]);
    const err = await thrown(() => createWebGpuExecutor(graph, () => { throw new Error("the weights were read"); }, device));
    expect(err).toBeInstanceOf(ResourceError);
    expect(err.message).toMatch(/^weight 'table' .* more than this adapter's maxStorageBufferBindingSize .* cannot be split into row ranges .* use a quantized model .* or another backend \(--backend cpu\)$/);
  });

  it("WebGPU: an activation past maxStorageBufferBindingSize at one token", async () => {
    const device = await gpu();
    const n = Math.ceil(Math.sqrt(device.limits.maxStorageBufferBindingSize / 4)) + 1;
    const b = new GraphBuilder();
    const outer = b.op("matmul", [b.weight("a", [n, 1]), b.weight("b", [1, n])]);
    const ex = await createWebGpuExecutor(b.graph([outer]), (_, shape) => new Float32Array(shape[0]! * shape[1]!), device);
    try {
      const err = await thrown(() => ex.step({ tokens: Int32Array.of(0) }));
      expect(err).toBeInstanceOf(ResourceError);
      expect(err.message).toMatch(new RegExp(`^activation buffer .* takes ${n * n * 4} bytes, more than this adapter's maxStorageBufferBindingSize .*; use a smaller model or another backend \\(--backend cpu\\)$`));
    } finally {
      ex.dispose();
    }
  });

  it("CUDA (emulated): more than the free GPU memory, refused before kernels are built", async () => {
    // The fake driver reports 6 GiB free; 2 layers × K and V × 64 bytes per position.
    const ex = new CudaExecutor(llama({ max_seq_len: 30_000_000 }), (name, shape) => randomTensor(name, shape, { seed: 1 }), emulated({ image: () => { throw new Error("the kernels were built"); } }));
    const err = await thrown(() => ex.init());
    expect(err).toBeInstanceOf(ResourceError);
    expect(err.message).toMatch(/^the model needs [\d.]+ GiB of GPU memory \(weights .*, KV cache [\d.]+ GiB, activations .*\) but only 6\.0 GiB is free; use a shorter context/);
    ex.dispose();
  });
});

describe("config sizes the weight file contradicts are refused before compiling", () => {
  const tensors = () => {
    const resolved = compileFile(join("models", "llama.llm"), { overrides: new Map(Object.entries(TINY).map(([k, v]) => [k, String(v)])) }).compiled!.model;
    return modelTensors(resolved);
  };
  const hfConfig = (over: Record<string, number>) => ({
    model_type: "llama", vocab_size: TINY.vocab_size, hidden_size: TINY.dim, num_hidden_layers: TINY.n_layers, num_attention_heads: TINY.n_heads,
    num_key_value_heads: TINY.n_kv_heads, intermediate_size: TINY.ffn_dim, max_position_embeddings: TINY.max_seq_len, ...over,
  });
  let hfDir: string;

  beforeAll(async () => {
    hfDir = join(tmp, "hf");
    mkdirSync(hfDir);
    await writeSafetensors(join(hfDir, "model.safetensors"), tensors().map((t) => ({ name: hfName(t), shape: t.shape, dtype: "f32" as const, data: toHfOrder(t, randomTensor(t.irName, t.shape, { seed: 3 })) })));
  });

  /** Imports config.json against the checkpoint's tensor headers, as loading a folder does; fast and small. */
  async function importAgainstFile(over: Record<string, number>): Promise<Error> {
    writeFileSync(join(hfDir, "config.json"), JSON.stringify(hfConfig(over)));
    const t0 = performance.now();
    const rss = process.memoryUsage().rss;
    const err = await thrown(async () => {
      const { file, shapes } = await readTensorShapes(hfDir);
      return importHfConfig(hfConfig(over), join(hfDir, "config.json"), { shapes, weights: file });
    });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(500 * 2 ** 20);
    expect(err).toBeInstanceOf(ImportError);
    return err;
  }

  it("hidden_size 2^31 in config.json: the embedding's shape in the safetensors header", async () => {
    expect((await importAgainstFile({ hidden_size: 2 ** 31 })).message).toBe(
      `${join(hfDir, "config.json")}: with hidden_size = 2147483648, tensor "model.embed_tokens.weight" would be [${TINY.vocab_size}, 2147483648], ` +
        `but in ${join(hfDir, "model.safetensors")} it is [${TINY.vocab_size}, ${TINY.dim}]; the config does not describe this file`,
    );
  });

  it("num_hidden_layers 10^6 in config.json, and other sizes: the layers the tensor names count, the shapes of q, k and the gate", async () => {
    expect((await importAgainstFile({ num_hidden_layers: 1_000_000 })).message).toMatch(/num_hidden_layers = 1000000, but the tensors of .*model\.safetensors are those of 2 layers \(the last is model\.layers\.1\.\*\)/);
    expect((await importAgainstFile({ num_key_value_heads: 4 })).message).toMatch(/with num_key_value_heads = 4 and head_dim = 8, tensor "model\.layers\.0\.self_attn\.k_proj\.weight" would be \[32, 32\], but .* it is \[16, 32\]/);
    expect((await importAgainstFile({ intermediate_size: 2 ** 30 })).message).toMatch(/intermediate_size = 1073741824, tensor "model\.layers\.0\.mlp\.gate_proj\.weight"/);
    expect((await importAgainstFile({ vocab_size: 2 ** 30 })).message).toMatch(/vocab_size = 1073741824, tensor "model\.embed_tokens\.weight" would be \[1073741824, 32\]/);
    // The checkpoint's own config passes.
    writeFileSync(join(hfDir, "config.json"), JSON.stringify(hfConfig({})));
    const { file, shapes } = await readTensorShapes(hfDir);
    expect(importHfConfig(hfConfig({}), "config.json", { shapes, weights: file }).bindings).toContainEqual({ name: "dim", value: { type: "int", value: TINY.dim } });
  });

  /** The tiny GGUF with one u32 of its metadata replaced in place (after the key: a type tag, the value). */
  async function ggufWith(key: string, value: number): Promise<string> {
    const path = join(tmp, `${key}.gguf`);
    await writeTinyModel(path);
    const bytes = readFileSync(path);
    const at = bytes.indexOf(key) + key.length;
    expect(bytes.readUInt32LE(at)).toBe(4);
    bytes.writeUInt32LE(value, at + 4);
    writeFileSync(path, bytes);
    return path;
  }

  it("llama.embedding_length 2^31 in a GGUF header: the embedding's shape", async () => {
    const path = await ggufWith("llama.embedding_length", 2 ** 31);
    const err = await thrown(async () => importGgufMetadata(await readGgufHeader(path), path));
    expect(err).toBeInstanceOf(ImportError);
    expect(err.message).toBe(
      `${path}: with llama.embedding_length = 2147483648, tensor "token_embd.weight" would be [${TINY.vocab_size}, 2147483648], but in the file it is [${TINY.vocab_size}, ${TINY.dim}]; the config does not describe this file`,
    );
  });

  it("llama.block_count 10^6 in a GGUF file: loadModel refuses it in under 2 s", async () => {
    const path = await ggufWith("llama.block_count", 1_000_000);
    const t0 = performance.now();
    const rss = process.memoryUsage().rss;
    const err = await thrown(() => loadModel(path, { backend: "cpu" }));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(500 * 2 ** 20);
    expect(err).toBeInstanceOf(ImportError);
    expect(err.message).toBe(`${path}: llama.block_count = 1000000, but the tensors of the file are those of 2 layers (the last is blk.1.*); the config does not describe this file`);
  });
});

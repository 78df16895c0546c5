// On-device greedy decoding: the WGSL argmax kernel against the reference, and a whole model whose
// decode steps read back the greedy token (4 bytes) instead of the logits.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFile } from "../../src/compiler/compile.js";
import { withArgmaxOutput } from "../../src/compiler/passes/argmax.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import type { Executor } from "../../src/runtime/backend.js";
import { Context } from "../../src/runtime/generate/context.js";
import { generateTokens } from "../../src/runtime/generate/generate.js";
import { argmax } from "../../src/runtime/generate/sampler.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { randomTensor } from "../../src/runtime/weights/random.js";
import { loadModel } from "../../src/index.js";
import { TINY, VOCAB, writeTinyModel } from "../generate/fixture.js";
import { CI, compareRuns, gpu, GraphBuilder } from "./helpers.js";

beforeAll(async () => {
  await gpu();
});
afterAll(releaseSharedGpu);

const ONE_STEP = [Int32Array.of(0)];

describe("argmax kernel", () => {
  it("matches the reference on random shapes, any axis, with ties (integer values) and without", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 3 }).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 }))),
        fc.boolean(),
        fc.constantFrom("w", "int"),
        fc.integer({ min: 0, max: 1 << 30 }),
        async ([shape, axis], keepdim, kind, seed) => {
          const b = new GraphBuilder();
          const out = b.op("argmax", [b.weight(`${kind}x`, shape)], { axis, keepdim });
          await compareRuns(b.graph([out]), { steps: ONE_STEP, seed, tol: 0 });
        },
      ),
      { numRuns: CI ? 24 : 10 },
    );
  });

  it("rows of a 32000- and a 128000-entry vocabulary", async () => {
    for (const shape of [[3, 32000], [1, 128000]]) {
      for (const kind of ["w", "int"]) {
        const b = new GraphBuilder();
        const out = b.op("argmax", [b.weight(`${kind}x`, shape)], { axis: -1, keepdim: false });
        await compareRuns(b.graph([out]), { steps: ONE_STEP, seed: 3, tol: 0 });
      }
    }
  });
});

function compileTiny() {
  const overrides = new Map(Object.entries(TINY).map(([k, v]) => [k, String(v)]));
  const res = compileFile(join("models", "llama.llm"), { overrides });
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  return res.compiled.graph;
}

const weightsFor = (seed: number) => (name: string, shape: readonly number[]) => randomTensor(name, shape, { seed });

describe("greedy decoding on the device", () => {
  it("the argmax pass appends the last row's argmax as output 1 (once)", () => {
    const g = withArgmaxOutput(compileTiny());
    expect(g.outputs).toHaveLength(2);
    const node = g.nodes.find((n) => n.id === g.outputs[1])!;
    expect(node.op).toBe("argmax");
    expect(node.ty.dtype).toBe("i32");
    expect(withArgmaxOutput(g)).toBe(g);
  });

  it("reads back 4 bytes per step and picks the tokens that full logits + host argmax pick", async () => {
    const graph = compileTiny();
    const weights = weightsFor(5);
    const onDevice = await createWebGpuExecutor(graph, weights, await gpu());
    const withLogits = await createWebGpuExecutor(graph, weights, await gpu());
    const cpu = new CpuInterpreter(graph, weights);
    try {
      const prompt = Int32Array.of(1, 17, 42, 9);
      const a = await onDevice.step({ tokens: prompt, read: "argmax" });
      expect(onDevice.lastStep!.readbackBytes).toBe(4);
      const l = await withLogits.step({ tokens: prompt });
      expect(withLogits.lastStep!.readbackBytes).toBe(prompt.length * VOCAB * 4);
      const c = cpu.step({ tokens: prompt, read: "argmax" });
      expect(a.dtype).toBe("i32");
      expect(a.shape).toEqual([1]);
      const lastRow = (t: { data: ArrayLike<number> }) => argmax(Float32Array.from(t.data).subarray((prompt.length - 1) * VOCAB));
      let deviceToken = a.data[0]!;
      let hostToken = lastRow(l);
      expect(deviceToken).toBe(hostToken);
      expect(c.data[0]).toBe(hostToken);
      for (let i = 0; i < 24; i++) {
        const d = await onDevice.step({ tokens: Int32Array.of(deviceToken), read: "argmax" });
        expect(onDevice.lastStep!.readbackBytes).toBe(4);
        const h = await withLogits.step({ tokens: Int32Array.of(hostToken) });
        expect(withLogits.lastStep!.readbackBytes).toBe(VOCAB * 4);
        deviceToken = d.data[0]!;
        hostToken = argmax(h.data as Float32Array);
        expect(deviceToken).toBe(hostToken);
      }
    } finally {
      onDevice.dispose();
      withLogits.dispose();
    }
  });

  it("generateTokens uses read: \"argmax\" when greedy and gives the tokens of the logits path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-argmax-"));
    const path = join(dir, "tiny.gguf");
    await writeTinyModel(path);
    const cpuModel = await loadModel(path, { backend: "cpu" });
    const tokenizer = cpuModel.tokenizer;
    const graph = compileTiny();
    const ex = await createWebGpuExecutor(graph, weightsFor(9), await gpu());
    const reads: (string | undefined)[] = [];
    const spy: Executor = {
      get past() { return ex.past; },
      maxSeqLen: ex.maxSeqLen,
      step: (i) => (reads.push(i.read), ex.step(i)),
      reset: () => ex.reset(),
      rewind: (to) => ex.rewind(to),
    };
    const logitsOnly: Executor = { ...spy, get past() { return ex.past; }, step: (i) => ex.step({ tokens: i.tokens, pos: i.pos }) };
    const run = async (e: Executor, opts: Record<string, number>) => {
      ex.reset();
      const out: number[] = [];
      for await (const t of generateTokens(new Context(e, { vocabSize: VOCAB, slidingWindow: 0 }), tokenizer, [1, 30, 31, 32], { maxTokens: 20, seed: 1, ...opts })) out.push(t.token);
      return out;
    };
    try {
      const want = await run(logitsOnly, { temperature: 0 });
      reads.length = 0;
      expect(want.length).toBeGreaterThan(1);
      expect(await run(spy, { temperature: 0 })).toEqual(want);
      expect(reads.filter((r) => r === "argmax").length).toBe(want.length - 1);
      reads.length = 0;
      expect(await run(spy, { temperature: 0.7, topK: 1 })).toEqual(want);
      expect(reads.filter((r) => r === "argmax").length).toBe(want.length - 1);
      reads.length = 0;
      await run(spy, { temperature: 0, repeatPenalty: 1.3 });
      // A penalty needs the logits: only the last row is read back, never the device's argmax.
      expect(reads.length).toBeGreaterThan(1);
      expect(reads.every((r) => r === "last")).toBe(true);
    } finally {
      ex.dispose();
      cpuModel.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

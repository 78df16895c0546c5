// Attention with score and mask programs on WebGPU: the prefill and decode kernels against the CPU
// reference, and LLaMAs with attention written out in .llm run fused on WebGPU against the written
// (unfused) model on the CPU.

import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { releaseSharedGpu } from "../../src/runtime/webgpu/device.js";
import { createWebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { attendBody, compileSmall, MASK_PROGRAMS, modelDir, SCORE_PROGRAMS } from "../passes/attention-cases.js";
import { CI, compareRuns, expectClose, gpu, GraphBuilder, testWeights } from "./helpers.js";

const RUNS = CI ? 20 : 8;
const ONE_STEP = [Int32Array.of(0)];
const models = modelDir("llmc-attention-webgpu-");
afterAll(async () => {
  models.dispose();
  await releaseSharedGpu();
});

interface Case { t: number; s: number; hkv: number; group: number; d: number; causal: boolean; window: number; score: string; mask: string }

async function attentionCase(c: Case, seed: number): Promise<void> {
  const b = new GraphBuilder();
  const q = b.weight("q", [c.t, c.hkv * c.group, c.d]);
  const k = b.weight("k", [c.s, c.hkv, c.d]);
  const v = b.weight("v", [c.s, c.hkv, c.d]);
  const score = SCORE_PROGRAMS[c.score];
  const mask = MASK_PROGRAMS[c.mask];
  const attrs = { causal: c.causal, window: c.window, scale: 0.5, ...(score ? { score } : {}), ...(mask ? { mask } : {}) };
  await compareRuns(b.graph([b.op("attention", [q, k, v], attrs)]), { steps: ONE_STEP, seed });
}

const modifiers = { score: fc.constantFrom(...Object.keys(SCORE_PROGRAMS)), mask: fc.constantFrom(...Object.keys(MASK_PROGRAMS)) };

describe("attention with score and mask programs (WebGPU)", () => {
  it("prefill: one row per invocation", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ t: fc.integer({ min: 5, max: 8 }), s: fc.integer({ min: 1, max: 12 }), hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 3 }), d: fc.constantFrom(2, 4, 8), causal: fc.boolean(), window: fc.constantFrom(0, 2, 5), ...modifiers }),
        fc.integer({ min: 0, max: 1 << 30 }),
        attentionCase,
      ),
      { numRuns: RUNS },
    );
  });

  it("decode: lanes splitting a long past", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ t: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 20, max: 150 }), hkv: fc.integer({ min: 1, max: 2 }), group: fc.integer({ min: 1, max: 2 }), d: fc.constantFrom(4, 8), causal: fc.boolean(), window: fc.constantFrom(0, 5, 40), ...modifiers }),
        fc.integer({ min: 0, max: 1 << 30 }),
        attentionCase,
      ),
      { numRuns: RUNS },
    );
  });

  it("written attention runs fused on WebGPU as the written model does on the CPU (prefill, decode over a long past)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ softcap: fc.constantFrom(0, 4), window: fc.constantFrom(0, 6), alibi: fc.boolean(), skipTwo: fc.boolean() }),
        fc.integer({ min: 2, max: 30 }),
        fc.integer({ min: 0, max: 1 << 30 }),
        async (o, prompt, seed) => {
          const path = models.write(`m${o.softcap}_${o.window}_${+o.alibi}_${+o.skipTwo}`, attendBody(o));
          const compile = (pipeline: string[]) => compileSmall(path, pipeline);
          const fused = compile(DEFAULT_PIPELINE);
          expect(fused.nodes.filter((n) => n.op === "attention").length).toBe(2);
          const weights = testWeights(seed);
          const ex = await createWebGpuExecutor(fused, weights, await gpu());
          const cpu = new CpuInterpreter(compile(UNFUSED_PIPELINE), weights);
          try {
            const steps = [Int32Array.from({ length: prompt }, (_, i) => (i * 7 + 3) % 48), Int32Array.of(5), Int32Array.of(11)];
            for (const [i, tokens] of steps.entries()) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-3, `step ${i} (T=${tokens.length})`);
          } finally {
            ex.dispose();
          }
        },
      ),
      { numRuns: CI ? 4 : 3 },
    );
  });
});

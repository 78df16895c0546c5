// Attention with score and mask programs in CUDA (run by the host emulation): prefill tiles and
// flash-decoding splits against the CPU reference, and a LLaMA with attention written out in .llm
// run fused against the written (unfused) model on the CPU.

import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { DEFAULT_PIPELINE, UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { CpuInterpreter } from "../../src/runtime/cpu/interpreter.js";
import { CudaExecutor } from "../../src/runtime/cuda/executor.js";
import { attendBody, compileSmall, MASK_PROGRAMS, modelDir, SCORE_PROGRAMS } from "../passes/attention-cases.js";
import { CI, draw, emulated, expectClose, GraphBuilder, runUnion, testWeights, withSeed, type UnionCase } from "./helpers.js";

const N = (local: number) => (CI ? local * 3 : local);
const models = modelDir("llmc-attention-cuda-");
afterAll(() => models.dispose());

describe("CUDA attention with score and mask programs", () => {
  it("prefill tiles and flash-decoding splits over long pasts, with GQA, causal, windows", () =>
    withSeed(40, async () => {
      const arb = fc.record({
        t: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 40 })),
        s: fc.integer({ min: 1, max: 90 }),
        hkv: fc.integer({ min: 1, max: 2 }),
        group: fc.integer({ min: 1, max: 3 }),
        d: fc.constantFrom(4, 16, 40, 128),
        causal: fc.boolean(),
        window: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })),
        score: fc.constantFrom(...Object.keys(SCORE_PROGRAMS)),
        mask: fc.constantFrom(...Object.keys(MASK_PROGRAMS)),
        seed: fc.integer({ min: 0, max: 1 << 30 }),
      });
      const drawn = draw(arb, N(12), 40);
      // Decode rows over a past long enough to be split across blocks (16 keys a split) must be drawn.
      drawn.push({ t: 1, s: 70, hkv: 2, group: 2, d: 16, causal: true, window: 0, score: "alibi", mask: "skipTwo", seed: 1 });
      const cases = drawn.map(({ t, s, hkv, group, d, causal, window, score, mask, seed }): UnionCase => {
        const b = new GraphBuilder();
        const sp = SCORE_PROGRAMS[score];
        const mp = MASK_PROGRAMS[mask];
        const attrs = { causal, window, scale: 1 / Math.sqrt(d), ...(sp ? { score: sp } : {}), ...(mp ? { mask: mp } : {}) };
        const out = b.op("attention", [b.weight("q", [t, hkv * group, d]), b.weight("k", [s, hkv, d]), b.weight("v", [s, hkv, d])], attrs);
        return { graph: b.graph([out]), weights: testWeights(seed), what: `attention T ${t} S ${s} heads ${hkv * group}/${hkv} D ${d} causal ${causal} window ${window} score ${score} mask ${mask}` };
      });
      await runUnion(cases);
    }));

  it("a LLaMA with soft-capped, ALiBi-biased, windowed, masked attention written out runs fused as written", async () => {
    const path = models.write("written", attendBody({ softcap: 4, window: 6, alibi: true, skipTwo: true }));
    const compile = (pipeline: string[]) => compileSmall(path, pipeline);
    const fused = compile(DEFAULT_PIPELINE);
    expect(fused.nodes.filter((n) => n.op === "attention").length).toBe(2);
    const weights = testWeights(9);
    const ex = new CudaExecutor(fused, weights, emulated({ prefillChunk: 8 }));
    const cpu = new CpuInterpreter(compile(UNFUSED_PIPELINE), weights);
    try {
      const steps = [Int32Array.from({ length: 21 }, (_, i) => (i * 7 + 3) % 48), Int32Array.of(5), Int32Array.of(11)];
      for (const [i, tokens] of steps.entries()) expectClose(await ex.step({ tokens }), cpu.step({ tokens }), 1e-3, `step ${i} (T=${tokens.length})`);
    } finally {
      ex.dispose();
    }
  });
});

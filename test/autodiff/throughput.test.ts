// Training tokens per second of the CPU reference on models/examples/tiny-llama.llm, T = 64, beside
// the forward pass alone. A measurement, not a check: it runs only with LLMC_BENCH=1.
//   LLMC_BENCH=1 npx vitest run test/autodiff/throughput.test.ts

import { test } from "vitest";
import { compileTrainingFile } from "../../src/compiler/autodiff/index.js";
import { cpuTrainingStep, evaluateGraph, initialWeights } from "../../src/runtime/cpu/train-step.js";

test.skipIf(!process.env["LLMC_BENCH"])("tiny-llama training step throughput, T = 64", () => {
  const t0 = performance.now();
  const { training, forward, model } = compileTrainingFile("models/examples/tiny-llama.llm");
  const compileMs = performance.now() - t0;
  const weights = initialWeights(model!, 1);
  const T = 64;
  const tokens = Int32Array.from({ length: T }, (_, i) => (i * 37) % 512);
  const targets = Int32Array.from({ length: T }, (_, i) => ((i + 1) * 37) % 512);
  const pos = Int32Array.from({ length: T }, (_, i) => i);
  const time = (f: () => void, n: number) => {
    f(); // warm-up
    const start = performance.now();
    for (let i = 0; i < n; i++) f();
    return (performance.now() - start) / n;
  };
  const stepMs = time(() => cpuTrainingStep(training!, weights, tokens, targets), 5);
  const forwardMs = time(() => evaluateGraph(forward!, new Map([["T", T], ["P", 0]]), new Map([["tokens", tokens], ["pos", pos]]), (n) => weights.get(n)!), 5);
  console.log(
    `tiny-llama, T = ${T}: training graph ${training!.graph.nodes.length} nodes, compiled in ${compileMs.toFixed(0)} ms; ` +
    `step ${stepMs.toFixed(0)} ms = ${(T / (stepMs / 1000)).toFixed(0)} training tokens/s; ` +
    `forward alone ${forwardMs.toFixed(0)} ms (step / forward = ${(stepMs / forwardMs).toFixed(1)})`,
  );
});

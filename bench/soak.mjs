// Memory over time: a 4000-token generation with the resident set sampled as it goes, then 100
// load/dispose cycles of the same model; prints the growth per 1000 tokens and per cycle (least
// squares over the samples after a warm-up, so one-off allocations do not count).
//
//   npm run soak [-- --backend auto|cpu|webgpu] [--tokens 4000] [--cycles 100] [--json]

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "auto" },
    tokens: { type: "string", default: "4000" },
    cycles: { type: "string", default: "100" },
    json: { type: "boolean", default: false },
  },
});
const TOKENS = Number(values.tokens);
const CYCLES = Number(values.cycles);
const log = (s) => !values.json && console.log(s);
if (!global.gc) {
  // Sampling the resident set means little without a collection first.
  execFileSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(0);
}
const { loadModel } = await import(pathToFileURL(join(root, "dist", "src", "index.js")).href);

const work = mkdtempSync(join(tmpdir(), "llmc-soak-"));
const model = join(work, "soak.gguf");
execFileSync(process.execPath, [join(root, "bin", "llmc"), "init-weights", join(root, "models", "examples", "tiny-llama.llm"), "--set", `max_seq_len=${TOKENS + 96}`, "-o", model], { stdio: ["ignore", "ignore", "inherit"] });

const rss = () => {
  global.gc();
  return process.memoryUsage().rss / 2 ** 20;
};
/** Slope of y over x by least squares. */
function slope(points) {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------------- one long generation
const m = await loadModel(model, { backend: values.backend, onNote: () => undefined });
log(`backend: ${m.backend}`);
const tokens = m.promptTokens("Once upon a time");
const samples = [];
const started = performance.now();
let seed = 1;
while (tokens.length < TOKENS) {
  // A generation may end early at an end-of-turn token: the next one continues from the cache.
  for await (const t of m.generate(tokens, { maxTokens: TOKENS - tokens.length, seed: seed++, temperature: 0.8 })) {
    tokens.push(t.token);
    if (tokens.length % 250 === 0) samples.push([tokens.length, rss()]);
  }
}
const seconds = (performance.now() - started) / 1000;
m.dispose();
const warm = samples.filter(([n]) => n >= 1000);
const perThousand = slope(warm) * 1000;
log(`generation: ${tokens.length} tokens in ${seconds.toFixed(1)} s; RSS ${samples[0][1].toFixed(1)} → ${samples.at(-1)[1].toFixed(1)} MiB; growth ${perThousand.toFixed(2)} MiB per 1000 tokens (after the first 1000)`);

// ---------------------------------------------------------------------- load / dispose cycles
const cycles = [];
for (let i = 1; i <= CYCLES; i++) {
  const c = await loadModel(model, { backend: values.backend, onNote: () => undefined });
  for await (const _ of c.generate("Once", { maxTokens: 4, seed: i })) void _;
  c.dispose();
  if (i % 5 === 0) cycles.push([i, rss()]);
}
const warmCycles = cycles.filter(([i]) => i > CYCLES / 5);
const perCycle = slope(warmCycles);
log(`load/dispose: ${CYCLES} cycles; RSS ${cycles[0][1].toFixed(1)} → ${cycles.at(-1)[1].toFixed(1)} MiB; growth ${perCycle.toFixed(3)} MiB per cycle (after the first ${CYCLES / 5})`);
if (values.json) {
  console.log(JSON.stringify({ backend: values.backend, tokens: tokens.length, mib_per_1000_tokens: perThousand, cycles: CYCLES, mib_per_cycle: perCycle, samples, cycle_samples: cycles }, null, 2));
}
rmSync(work, { recursive: true, force: true });

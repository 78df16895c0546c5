// `llmc bench --json`: the keys the benchmark issue names, with plausible values, on the CPU
// interpreter and on Dawn's null backend (which executes nothing: host overhead only).

import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { bufferIO } from "../../src/cli/io.js";

async function bench(...args: string[]) {
  const io = bufferIO();
  const code = await main(["bench", "models/examples/tiny-llama.llm", "--json", "--prompt-tokens", "4", "--gen-tokens", "4", "--repeat", "1", ...args], io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("llmc bench", () => {
  it("reports the speeds, dispatches and host time as JSON (null backend)", async () => {
    const r = await bench("--backend", "null");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of ["decode_tokens_per_s", "prefill_tokens_per_s", "dispatches_per_decode_step", "host_ms_per_decode_step", "peak_device_bytes"]) expect(j).toHaveProperty(k);
    expect(j["decode_tokens_per_s"]).toBeGreaterThan(0);
    expect(j["prefill_tokens_per_s"]).toBeGreaterThan(0);
    expect(j["dispatches_per_decode_step"]).toBeGreaterThan(2);
    expect(j["params"]).toBe(158_016);
  });

  it("runs on the CPU interpreter, where dispatches are not a thing", async () => {
    const r = await bench("--backend", "cpu");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j["decode_tokens_per_s"]).toBeGreaterThan(0);
    expect(j["dispatches_per_decode_step"]).toBeNull();
  });

  it("refuses a run longer than the context", async () => {
    const io = bufferIO();
    const code = await main(["bench", "models/examples/tiny-llama.llm", "--prompt-tokens", "250", "--gen-tokens", "10", "--backend", "cpu"], io);
    expect(code).toBe(2);
    expect(io.stderr()).toContain("exceed max_seq_len 256");
  });
});

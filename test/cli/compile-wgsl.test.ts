// `llmc compile --target wgsl`: files, dispatch counts per layer, and Dawn accepting every kernel of
// an imported Llama-3-8B config (decode and prefill).

import { describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.js";
import { bufferIO } from "../../src/cli/io.js";
import { sharedGpu } from "../../src/runtime/webgpu/device.js";

async function llmc(...args: string[]) {
  const io = bufferIO();
  const code = await main(args, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe("llmc compile --target wgsl", () => {
  it("writes kernels, plan.json and a report with dispatches per decode step and per layer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-wgsl-"));
    const r = await llmc("compile", "models/examples/tiny-llama.llm", "--target", "wgsl", "-o", dir, "--prompt-tokens", "8");
    expect(r.code).toBe(0);
    const m = /dispatches per decode step: (\d+) \((\d+) per layer, (\d+) per step\)/.exec(r.out);
    expect(m).not.toBeNull();
    const [total, perLayer, perStep] = m!.slice(1).map(Number);
    expect(total).toBe(2 * perLayer! + perStep!); // tiny-llama has 2 layers
    const files = readdirSync(dir);
    // Every decode dispatch has its kernel; the greedy token's argmax runs only when decoding greedily.
    const decode = files.filter((f) => f.startsWith("decode-") && f.endsWith(".wgsl"));
    expect(decode.filter((f) => !readFileSync(join(dir, f), "utf8").split("\n")[0]!.includes("greedy decoding only")).length).toBe(total);
    expect(decode.length).toBe(total! + 1);
    expect(files).toContain("plan.json");
    const plan = JSON.parse(readFileSync(join(dir, "plan.json"), "utf8")) as Record<string, unknown>;
    expect(Object.keys(plan)).toEqual(expect.arrayContaining(["profile", "weights", "decode", "prefill"]));
    expect(plan["profile"]).toBe("llvmpipe");
    expect(readFileSync(join(dir, "report.txt"), "utf8")).toMatch(/dispatches per decode step: \d+ \(\d+ per layer × 2 layers, \d+ per step\)/);
  });

  it("refuses --target without -o and unknown targets", async () => {
    expect((await llmc("compile", "models/examples/tiny-llama.llm", "--target", "wgsl")).code).toBe(2);
    expect((await llmc("compile", "models/examples/tiny-llama.llm", "--target", "metal", "-o", "/tmp/x")).code).toBe(2);
  });

  it("an imported Llama-3-8B config compiles to WGSL that Dawn accepts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "llmc-wgsl-8b-"));
    const r = await llmc("compile", "models/examples/llama-3-8b.llm", "--target", "wgsl", "-o", dir, "--prompt-tokens", "16", "--tuning", "gpu");
    expect(r.err).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const gpu = await sharedGpu();
    const device = gpu.device;
    const files = readdirSync(dir).filter((f) => f.endsWith(".wgsl"));
    expect(files.length).toBeGreaterThan(0);
    // Identical kernels repeat across layers; compile each distinct source once.
    const sources = new Set(files.map((f) => readFileSync(join(dir, f), "utf8").replace(/^\/\/.*\n/, "")));
    for (const code of sources) {
      device.pushErrorScope("validation");
      const module = device.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === "error");
      expect(errors.map((e) => e.message)).toEqual([]);
      device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      const err = await device.popErrorScope();
      expect(err?.message ?? null).toBeNull();
    }
  });
});

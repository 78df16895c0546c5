// `-v` on run, chat, logprobs and bench says on stderr which backend runs and why "auto" passed over
// the ones before it; without -v nothing is said unless "auto" falls back to the CPU. `llmc bench
// --backend cuda` goes through the Backend interface: without a driver a message naming
// libcuda.so.1, and on the emulated driver a benchmark.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { bufferIO } from "../../src/cli/io.js";
import type { CudaModule } from "../../src/compiler/emit/cuda/index.js";
import { buildEmulatedModule, buildFakeLibcuda, emulatedImage } from "../../tools/cuda-emulation/build.js";
import { writeTinyModel } from "../generate/fixture.js";

process.env["EGL_PLATFORM"] ??= "surfaceless";

const tinyPath = join(mkdtempSync(join(tmpdir(), "llmc-backend-cli-")), "tiny.gguf");
beforeAll(() => writeTinyModel(tinyPath, { contextLength: 64 }));

const savedLibcuda = process.env["LLMC_LIBCUDA"];
const restoreLibcuda = () => {
  if (savedLibcuda === undefined) delete process.env["LLMC_LIBCUDA"];
  else process.env["LLMC_LIBCUDA"] = savedLibcuda;
};
afterEach(() => {
  restoreLibcuda();
  vi.doUnmock("../../src/runtime/cuda/backend.js");
  vi.resetModules();
});
afterAll(restoreLibcuda);

async function llmc(...argv: string[]) {
  const { main } = await import("../../src/cli/main.js");
  const io = bufferIO();
  const code = await main(argv, io);
  return { code, out: io.stdout(), err: io.stderr() };
}

const NO_DRIVER = /skipped cuda: the CUDA backend needs the NVIDIA driver library libcuda\.so\.1/;

describe("-v: the backend and why", () => {
  it('llmc run -v on "auto" without libcuda.so.1: WebGPU, and why not CUDA; without -v, nothing about it', async () => {
    process.env["LLMC_LIBCUDA"] = "/nonexistent/libcuda.so.1";
    const v = await llmc("run", tinyPath, "-p", "hello", "-n", "2", "--temperature", "0", "-v");
    expect(v.code).toBe(0);
    expect(v.err).toMatch(/^llmc: backend webgpu \(.*\)$/m);
    expect(v.err).toMatch(new RegExp(`^llmc:   ${NO_DRIVER.source}`, "m"));
    const quiet = await llmc("run", tinyPath, "-p", "hello", "-n", "2", "--temperature", "0");
    expect(quiet.code).toBe(0);
    expect(quiet.err).not.toMatch(/^llmc: backend|skipped/m);
    expect(quiet.out).toBe(v.out);
  });

  it("llmc chat -v and llmc logprobs -v name the backend asked for, with nothing skipped", async () => {
    const { runChat } = await import("../../src/cli/commands/chat.js");
    const io = bufferIO();
    expect(await runChat([tinyPath, "--backend", "cpu", "--template", "llama2", "-n", "2", "-v"], io, Readable.from(["hi\n"]))).toBe(0);
    expect(io.stderr()).toMatch(/^llmc: backend cpu \(reference interpreter\)$/m);
    expect(io.stderr()).not.toContain("skipped");
    const lp = await llmc("logprobs", tinyPath, "--backend", "cpu", "--tokens", "1,5,9", "--verbose");
    expect(lp.code).toBe(0);
    expect(lp.err).toMatch(/^llmc: backend cpu \(reference interpreter\)$/m);
    expect((await llmc("logprobs", tinyPath, "--backend", "cpu", "--tokens", "1,5,9")).err).not.toContain("backend cpu");
  });

  it("llmc bench -v on a driver whose device fails the self-test: WebGPU, and why not CUDA", async () => {
    // The fake driver runs only emulation modules, so the self-test's PTX does not load.
    process.env["LLMC_LIBCUDA"] = buildFakeLibcuda();
    const r = await llmc("bench", "models/examples/tiny-llama.llm", "--json", "--prompt-tokens", "4", "--gen-tokens", "2", "--repeat", "1", "--set", "max_seq_len=8", "-v");
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^llmc bench: backend webgpu \(.*\)$/m);
    expect(r.err).toMatch(/^llmc bench:   skipped cuda: cuda \(llmc emulated GPU.*\) failed the self-test: cuModuleLoadDataEx failed: .*fake libcuda runs only emulation modules/m);
    expect(JSON.parse(r.out).backend).toMatch(/^webgpu /);
  });
});

describe("llmc bench --backend cuda", () => {
  const args = ["bench", "models/examples/tiny-llama.llm", "--json", "--prompt-tokens", "4", "--gen-tokens", "2", "--repeat", "1", "--set", "max_seq_len=8", "--backend", "cuda"];

  it("without a driver: exit 1 and a message naming libcuda.so.1", async () => {
    process.env["LLMC_LIBCUDA"] = "/nonexistent/libcuda.so.1";
    const r = await llmc(...args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^llmc bench: the CUDA backend is unavailable: the CUDA backend needs the NVIDIA driver library libcuda\.so\.1/);
    expect(r.err).not.toContain("internal error");
  });

  it("on the emulated driver: a benchmark, with the launches per decode step", async () => {
    process.env["LLMC_LIBCUDA"] = buildFakeLibcuda();
    // The executor gets the emulation of its module instead of PTX (which the fake driver refuses).
    vi.doMock("../../src/runtime/cuda/backend.js", async (importOriginal) => {
      const real = await importOriginal<typeof import("../../src/runtime/cuda/backend.js")>();
      return { ...real, cudaBackend: () => real.cudaBackend({ image: (m: CudaModule) => emulatedImage(buildEmulatedModule(m.source, m.kernels)) }) };
    });
    const r = await llmc(...args, "-v");
    expect(r.err).toMatch(/^llmc bench: backend cuda \(llmc emulated GPU/m);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j["backend"]).toMatch(/^cuda \(llmc emulated GPU/);
    expect(j["decode_tokens_per_s"]).toBeGreaterThan(0);
    expect(j["dispatches_per_decode_step"]).toBeGreaterThan(2);
  });
});

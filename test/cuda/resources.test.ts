// What the emulation cannot show — registers, spills, shared memory — read from ptxas for the
// Llama-3-8B module at every weight dtype, per architecture: the decode matvecs must keep enough
// blocks resident to have their loads in flight (docs/roofline.md), and no kernel may spill or pass
// the 48 KiB of static shared memory.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileFile } from "../../src/compiler/compile.js";
import { compileCuda, parseArch, tuningFor } from "../../src/compiler/target/cuda.js";
import type { StorageDType } from "../../src/compiler/target/storage.js";
import { findNvcc } from "../../src/runtime/cuda/ptx.js";
import { CI } from "./helpers.js";

const nvcc = findNvcc();

interface Usage {
  registers: number;
  spillBytes: number;
  sharedBytes: number;
}

/** ptxas's resource report (`-Xptxas -v`) per kernel. */
function resources(source: string, arch: string): Map<string, Usage> {
  const dir = mkdtempSync(join(tmpdir(), "llmc-ptxas-"));
  try {
    writeFileSync(join(dir, "kernels.cu"), source);
    const run = spawnSync(nvcc!, ["-cubin", `-arch=${arch}`, "-std=c++17", "-Xptxas", "-v", "kernels.cu", "-o", "kernels.cubin"], { cwd: dir, encoding: "utf8" });
    if (run.status !== 0) throw new Error(`nvcc rejects the module:\n${run.stderr.slice(0, 8000)}`);
    const usage = new Map<string, Usage>();
    let current: Usage | null = null;
    for (const line of run.stderr.split("\n")) {
      const entry = /Compiling entry function '(\w+)'/.exec(line);
      if (entry) {
        current = { registers: 0, spillBytes: 0, sharedBytes: 0 };
        usage.set(entry[1]!, current);
      }
      if (!current) continue;
      const spill = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
      if (spill) current.spillBytes = Number(spill[1]) + Number(spill[2]);
      const regs = /Used (\d+) registers/.exec(line);
      if (regs) current.registers = Number(regs[1]);
      const smem = /(\d+) bytes smem/.exec(line);
      if (smem) current.sharedBytes = Number(smem[1]);
    }
    return usage;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!nvcc && !CI)("CUDA kernel resources (ptxas) for Llama-3-8B", () => {
  const res = compileFile(join("models", "examples", "llama-3-8b.llm"));
  if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
  const graph = res.compiled.graph;
  for (const arch of ["sm_80", "sm_90"]) {
    for (const dtype of ["f16", "bf16", "q8_0", "q4_0"] as const satisfies readonly StorageDType[]) {
      it(`${arch}, ${dtype}: no spills, shared memory within 48 KiB, decode matvecs at ≥ 2 blocks per SM`, () => {
        const cc = parseArch(arch);
        const program = compileCuda(graph, { archs: [cc], requested: dtype });
        const usage = resources(program.module.source, arch);
        expect([...usage.keys()].sort()).toEqual(program.module.kernels.map((k) => k.name).sort());
        for (const [name, u] of usage) {
          expect(u.spillBytes, `${name} spills`).toBe(0);
          expect(u.sharedBytes, `${name}'s shared memory`).toBeLessThanOrEqual(48 * 1024);
        }
        // 64 K registers per SM, allocated per warp in steps of 8 per thread.
        const { decode } = program.steps(tuningFor(cc).profile);
        const matvecs = decode.launches.filter((l) => l.kernel.startsWith("llmc_linear_") || l.kernel.startsWith("llmc_fused_linear_"));
        expect(matvecs.length).toBeGreaterThan(0);
        for (const l of matvecs) {
          const regs = Math.ceil(usage.get(l.kernel)!.registers / 8) * 8;
          expect(Math.floor(65536 / (regs * l.block[0])), `blocks of ${l.kernel} per SM (${regs} registers)`).toBeGreaterThanOrEqual(2);
        }
      });
    }
  }
});

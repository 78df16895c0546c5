// Building the CPU emulation of a CUDA module: the generated kernels.cu plus a launcher per kernel,
// compiled by g++ against cuda_emu.h into a shared library, and the fake libcuda.so.1 that loads
// such libraries as "modules". Builds are cached under os.tmpdir() by a hash of their inputs, so a
// module compiles once however many tests use it.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CudaKernel } from "../../src/compiler/emit/cuda/index.js";
import { packageRoot } from "../../src/paths.js";

export function emulationDir(): string {
  return join(packageRoot(), "tools", "cuda-emulation");
}

function cacheDir(): string {
  const dir = join(tmpdir(), "llmc-cuda-emulation");
  mkdirSync(dir, { recursive: true });
  return dir;
}

const hash = (...parts: string[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 24);
};

/** One C entry point per kernel taking the driver's `void** kernelParams`, and its parameter sizes. */
export function emulationLaunchers(kernels: readonly CudaKernel[]): string {
  const lines = ["", "// Emulation launchers (generated): cuLaunchKernel's parameters for each kernel."];
  for (const k of kernels) {
    const args = k.params.map((t, i) => `*reinterpret_cast<${t.replace(/\s*__restrict__/g, "")} const*>(args[${i}])`).join(", ");
    lines.push(
      `extern "C" const char* llmc_emu_launch_${k.name}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, void** args) {`,
      "  static std::string err;",
      `  err = llmc_emu::launch(dim3(gx, gy, gz), dim3(bx, by, bz), [&] { ${k.name}(${args}); });`,
      "  return err.empty() ? nullptr : err.c_str();",
      "}",
      `extern "C" const int llmc_emu_params_${k.name}[] = {${[k.params.length, ...k.params.map(() => 8)].join(", ")}};`,
    );
  }
  return lines.join("\n") + "\n";
}

function gxx(args: string[], what: string): void {
  try {
    execFileSync("g++", args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`g++ failed to build ${what}:\n${err.stderr?.toString().slice(0, 20000) ?? err.message}`);
  }
}

/** Compiles into the cache unless there already; returns the output path. */
function cached(name: string, key: string, build: (out: string) => void): string {
  const out = join(cacheDir(), `${name}-${key}.so`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  build(tmp);
  renameSync(tmp, out);
  return out;
}

function emulationSources(): string {
  const dir = emulationDir();
  return ["cuda_emu.h", "cuda_fp16.h", "cuda_bf16.h", "mma.h"].map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
}

/** The module's kernels compiled for the CPU; returns the shared library's path. */
export function buildEmulatedModule(source: string, kernels: readonly CudaKernel[]): string {
  const unit = source + emulationLaunchers(kernels);
  return cached("module", hash(unit, emulationSources()), (out) => {
    const cpp = `${out}.cpp`;
    writeFileSync(cpp, unit);
    gxx(["-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-I", emulationDir(), "-include", "cuda_emu.h", "-x", "c++", cpp, "-o", out], "an emulated CUDA module");
  });
}

/** The fake libcuda.so.1; returns its path. */
export function buildFakeLibcuda(): string {
  const src = join(emulationDir(), "fake_libcuda.cpp");
  return cached("libcuda", hash(readFileSync(src, "utf8")), (out) => {
    gxx(["-std=c++17", "-O1", "-fPIC", "-shared", "-w", src, "-o", out, "-ldl"], "the fake libcuda");
  });
}

/** What the fake libcuda's cuModuleLoadData takes for an emulated module. */
export function emulatedImage(libraryPath: string): Uint8Array {
  return new TextEncoder().encode(`LLMC-EMU:${libraryPath}\0`);
}

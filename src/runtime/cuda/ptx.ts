// Getting PTX for a module's kernels. nvcc compiles kernels.cu once per model (every architecture
// in one run); the runtime loads the PTX of the newest architecture the GPU has, which the driver
// compiles for the exact GPU. Kernels are named by a hash of their code, so any compiled module
// that contains every kernel a runtime needs will do: `llmc compile --target cuda -o DIR` output, a
// bundle's prebuilt folder, or the cache (~/.cache/llmc/cuda) that the runtime fills when nvcc is
// on the PATH.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { archName, type ComputeCapability } from "../../compiler/target/cuda.js";

export function findNvcc(): string | null {
  const explicit = process.env["LLMC_NVCC"];
  if (explicit) return existsSync(explicit) ? explicit : null;
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "nvcc"))) return join(dir, "nvcc");
  }
  for (const p of ["/usr/local/cuda/bin/nvcc"]) if (existsSync(p)) return p;
  return null;
}

/** Compiles `source` to PTX for every architecture with one nvcc run; returns PTX text by arch name
 *  (`sm_80`). Throws with nvcc's messages when it fails. */
export function compilePtx(source: string, archs: readonly ComputeCapability[], nvcc = findNvcc()): Map<string, string> {
  if (!nvcc) throw new Error("nvcc is not on the PATH (install the CUDA toolkit, or set LLMC_NVCC)");
  const dir = mkdtempSync(join(tmpdir(), "llmc-nvcc-"));
  try {
    const cu = join(dir, "kernels.cu");
    writeFileSync(cu, source);
    const keep = join(dir, "keep");
    mkdirSync(keep);
    const uniq = [...new Map(archs.map((a) => [archName(a), a])).values()];
    const gencode = uniq.flatMap((a) => ["-gencode", `arch=compute_${a.major}${a.minor},code=compute_${a.major}${a.minor}`]);
    const args = uniq.length === 1 ? ["-ptx", ...gencode, cu, "-o", join(keep, `kernels.compute_${uniq[0]!.major}${uniq[0]!.minor}.ptx`)] : ["-fatbin", ...gencode, "--keep", "--keep-dir", keep, cu, "-o", join(dir, "kernels.fatbin")];
    try {
      execFileSync(nvcc, ["-std=c++17", "-lineinfo", ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`nvcc failed:\n${err.stderr?.toString().slice(0, 20000) ?? err.message}`);
    }
    const out = new Map<string, string>();
    for (const a of uniq) {
      const f = readdirSync(keep).find((n) => n.endsWith(`.compute_${a.major}${a.minor}.ptx`));
      if (!f) throw new Error(`nvcc produced no PTX for ${archName(a)}`);
      out.set(archName(a), readFileSync(join(keep, f), "utf8"));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A compiled module: its source (for the kernel names it holds) and PTX per architecture. */
export interface KernelLibrary {
  where: string;
  source: string;
  ptx: Map<string, string>;
}

/** A folder with kernels.cu and kernels.sm_XX.ptx files (what `llmc compile --target cuda` writes). */
export function readKernelLibrary(dir: string): KernelLibrary | null {
  const cu = join(dir, "kernels.cu");
  if (!existsSync(cu)) return null;
  const ptx = new Map<string, string>();
  for (const f of readdirSync(dir)) {
    const m = /^kernels\.(sm_\d+)\.ptx$/.exec(f);
    if (m) ptx.set(m[1]!, readFileSync(join(dir, f), "utf8"));
  }
  return ptx.size ? { where: dir, source: readFileSync(cu, "utf8"), ptx } : null;
}

export function writeKernelLibrary(dir: string, source: string, ptx: ReadonlyMap<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "kernels.cu"), source);
  for (const [arch, text] of ptx) writeFileSync(join(dir, `kernels.${arch}.ptx`), text);
}

export function cacheRoot(): string {
  const base = process.env["LLMC_CACHE_DIR"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "llmc");
  return join(base, "cuda");
}

export function sourceHash(source: string): string {
  return createHash("sha256").update(source).digest("hex").slice(0, 24);
}

/** Whether `lib` defines every kernel in `names`. */
export function libraryHas(lib: KernelLibrary, names: readonly string[]): boolean {
  return names.every((n) => lib.source.includes(` ${n}(`));
}

/** The newest architecture in `available` the device can run (PTX for sm_XY runs on XY and later). */
export function pickArch(available: Iterable<string>, device: ComputeCapability): string | null {
  const dev = device.major * 10 + device.minor;
  let best: { name: string; v: number } | null = null;
  for (const a of available) {
    const m = /^sm_(\d+)(\d)$/.exec(a);
    if (!m) continue;
    const v = Number(m[1]) * 10 + Number(m[2]);
    if (v <= dev && (!best || v > best.v)) best = { name: a, v };
  }
  return best?.name ?? null;
}

/** PTX ISA version each CUDA driver version accepts at most (CUDA 11.0 → 7.0 … 13.0 → 9.0). */
export function maxPtxVersion(driverVersion: number): [number, number] {
  const major = Math.floor(driverVersion / 1000);
  const minor = Math.floor((driverVersion % 1000) / 10);
  if (major >= 13) return [9, minor];
  if (major === 12) return [8, ([0, 1, 2, 3, 4, 5, 5, 6, 7, 8] as const)[Math.min(minor, 9)]];
  if (major === 11) return [7, Math.min(minor, 8)];
  return [6, 0];
}

/**
 * PTX from a newer toolkit than the driver declares a PTX ISA version the driver refuses, although
 * llmc's kernels use nothing newer than ISA 7.0 (8.0 for sm_90 targets). Lowers the `.version` line
 * to what the driver accepts; returns the text unchanged when it already fits.
 */
export function fitPtxVersion(ptx: string, driverVersion: number): { ptx: string; from?: string; to?: string } {
  const m = /^\.version (\d+)\.(\d+)\s*$/m.exec(ptx);
  if (!m) return { ptx };
  const [maj, min] = maxPtxVersion(driverVersion);
  const have = Number(m[1]) * 10 + Number(m[2]);
  if (have <= maj * 10 + min) return { ptx };
  const to = `${maj}.${min}`;
  return { ptx: ptx.replace(m[0], `.version ${to}`), from: `${m[1]}.${m[2]}`, to };
}

/** Compiles into the cache (when nvcc is there) and returns the library; null without nvcc. */
export function cachedLibrary(source: string, arch: ComputeCapability): KernelLibrary | null {
  const dir = join(cacheRoot(), sourceHash(source));
  const have = readKernelLibrary(dir);
  if (have && have.ptx.has(archName(arch))) return have;
  if (!findNvcc()) return null;
  const ptx = compilePtx(source, [arch]);
  const tmp = `${dir}.${process.pid}.tmp`;
  writeKernelLibrary(tmp, source, ptx);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return readKernelLibrary(dir);
}

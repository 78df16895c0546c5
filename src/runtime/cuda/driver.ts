// The CUDA driver API through koffi: just the calls llmc needs, each checked, each failure an Error
// naming the call and the driver's error. libcuda.so.1 comes with the NVIDIA driver (not the CUDA
// toolkit); it is found the way the dynamic loader finds libraries, then in the usual driver
// folders, or at $LLMC_LIBCUDA.

import koffi, { type LibraryHandle } from "koffi";
import { existsSync } from "node:fs";
import { CudaError, CudaUnavailableError } from "./errors.js";

export { CudaError, CudaUnavailableError } from "./errors.js";

export const CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;

/** Where the driver library usually is, after the loader's own search. */
const DRIVER_PATHS = [
  "libcuda.so.1",
  "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
  "/usr/lib64/libcuda.so.1",
  "/usr/lib/libcuda.so.1",
  "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
  "/usr/local/nvidia/lib64/libcuda.so.1",
  "/usr/lib/wsl/lib/libcuda.so.1",
  "/run/opengl-driver/lib/libcuda.so.1",
];

export type Handle = unknown;
export type DevicePtr = number;

export const ATTR = {
  maxThreadsPerBlock: 1,
  maxSharedPerBlock: 8,
  multiprocessors: 16,
  memoryClockKHz: 36,
  memoryBusWidthBits: 37,
  l2CacheBytes: 38,
  ccMajor: 75,
  ccMinor: 76,
  maxSharedPerBlockOptin: 97,
} as const;

type Fn = (...args: unknown[]) => number;

const SIGNATURES = {
  cuInit: "int cuInit(unsigned int flags)",
  cuDriverGetVersion: "int cuDriverGetVersion(_Out_ int *version)",
  cuDeviceGetCount: "int cuDeviceGetCount(_Out_ int *count)",
  cuDeviceGet: "int cuDeviceGet(_Out_ int *device, int ordinal)",
  cuDeviceGetName: "int cuDeviceGetName(char *name, int len, int device)",
  cuDeviceGetAttribute: "int cuDeviceGetAttribute(_Out_ int *value, int attribute, int device)",
  cuDeviceTotalMem_v2: "int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int device)",
  cuCtxCreate_v2: "int cuCtxCreate_v2(_Out_ void **ctx, unsigned int flags, int device)",
  cuCtxDestroy_v2: "int cuCtxDestroy_v2(void *ctx)",
  cuCtxSetCurrent: "int cuCtxSetCurrent(void *ctx)",
  cuCtxSynchronize: "int cuCtxSynchronize()",
  cuMemGetInfo_v2: "int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)",
  cuMemAlloc_v2: "int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)",
  cuMemFree_v2: "int cuMemFree_v2(uint64_t dptr)",
  cuMemcpyHtoD_v2: "int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)",
  cuMemcpyDtoH_v2: "int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes)",
  cuMemcpyDtoD_v2: "int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes)",
  cuMemcpyHtoDAsync_v2: "int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)",
  cuMemsetD8_v2: "int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t count)",
  cuModuleLoadDataEx: "int cuModuleLoadDataEx(_Out_ void **module, const void *image, unsigned int numOptions, const int *options, const void *optionValues)",
  cuModuleUnload: "int cuModuleUnload(void *module)",
  cuModuleGetFunction: "int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)",
  cuStreamCreate: "int cuStreamCreate(_Out_ void **stream, unsigned int flags)",
  cuStreamDestroy_v2: "int cuStreamDestroy_v2(void *stream)",
  cuStreamSynchronize: "int cuStreamSynchronize(void *stream)",
  cuLaunchKernel: "int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int sharedBytes, void *stream, void **params, void **extra)",
  cuStreamBeginCapture_v2: "int cuStreamBeginCapture_v2(void *stream, int mode)",
  cuStreamEndCapture: "int cuStreamEndCapture(void *stream, _Out_ void **graph)",
  cuGraphInstantiateWithFlags: "int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, unsigned long long flags)",
  cuGraphLaunch: "int cuGraphLaunch(void *exec, void *stream)",
  cuGraphExecDestroy: "int cuGraphExecDestroy(void *exec)",
  cuGraphDestroy: "int cuGraphDestroy(void *graph)",
  cuEventCreate: "int cuEventCreate(_Out_ void **event, unsigned int flags)",
  cuEventRecord: "int cuEventRecord(void *event, void *stream)",
  cuEventSynchronize: "int cuEventSynchronize(void *event)",
  cuEventElapsedTime: "int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)",
  cuEventDestroy_v2: "int cuEventDestroy_v2(void *event)",
  cuGetErrorName: "int cuGetErrorName(int code, _Out_ const char **name)",
  cuGetErrorString: "int cuGetErrorString(int code, _Out_ const char **text)",
} as const;

type Api = { -readonly [K in keyof typeof SIGNATURES]: Fn };

/** Opens the driver library: $LLMC_LIBCUDA if set, else the loader's search and the usual paths. */
function openDriver(explicit?: string): { lib: LibraryHandle; path: string } {
  const wanted = explicit ?? process.env["LLMC_LIBCUDA"];
  const candidates = wanted ? [wanted] : DRIVER_PATHS;
  const failures: string[] = [];
  for (const path of candidates) {
    if (path.includes("/") && !existsSync(path)) {
      failures.push(`${path}: no such file`);
      continue;
    }
    try {
      return { lib: koffi.load(path), path };
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const where = wanted ? `at ${wanted} (from ${explicit ? "the options" : "$LLMC_LIBCUDA"})` : "(searched the dynamic loader's path and the usual driver folders)";
  throw new CudaUnavailableError(
    `the CUDA backend needs the NVIDIA driver library libcuda.so.1, which was not found ${where}. ` +
      `Install the NVIDIA driver, or point LLMC_LIBCUDA at libcuda.so.1. Tried: ${failures.join("; ")}`,
  );
}

export class CudaDriver {
  readonly path: string;
  private readonly api: Api;

  constructor(libPath?: string) {
    if (process.platform !== "linux") throw new CudaUnavailableError(`the CUDA backend runs on Linux (libcuda.so.1); this is ${process.platform}`);
    const { lib, path } = openDriver(libPath);
    this.path = path;
    const api: Partial<Api> = {};
    for (const [name, sig] of Object.entries(SIGNATURES)) {
      try {
        api[name as keyof Api] = lib.func(sig) as Fn;
      } catch (e) {
        throw new CudaUnavailableError(`${path} lacks ${name} (${(e as Error).message}); the NVIDIA driver is too old for llmc (it needs CUDA 11.4 or newer)`);
      }
    }
    this.api = api as Api;
  }

  /** A readable name and text for a driver result code. */
  describe(code: number): string {
    const name = [null as string | null];
    const text = [null as string | null];
    const n = this.api.cuGetErrorName(code, name) === 0 ? name[0] : null;
    const t = this.api.cuGetErrorString(code, text) === 0 ? text[0] : null;
    return `${n ?? `CUDA error ${code}`}${t && t !== n ? `: ${t}` : ""}`;
  }

  check(code: number, what: string): void {
    if (code !== 0) throw new CudaError(`${what} failed: ${this.describe(code)} (${code})`, code);
  }

  init(): void {
    const r = this.api.cuInit(0);
    if (r === 100) throw new CudaUnavailableError(`the NVIDIA driver (${this.path}) reports no CUDA device`);
    this.check(r, "cuInit");
  }

  driverVersion(): number {
    const v = [0];
    this.check(this.api.cuDriverGetVersion(v), "cuDriverGetVersion");
    return v[0]!;
  }

  deviceCount(): number {
    const n = [0];
    this.check(this.api.cuDeviceGetCount(n), "cuDeviceGetCount");
    return n[0]!;
  }

  /** Initialises the driver and picks device `ordinal` (default 0), with its compute capability;
   *  no device, or no such ordinal, is a CudaUnavailableError. */
  openDevice(ordinal = 0): { dev: number; cc: { major: number; minor: number } } {
    this.init();
    const count = this.deviceCount();
    if (count === 0) throw new CudaUnavailableError("the NVIDIA driver reports no CUDA device");
    if (ordinal < 0 || ordinal >= count) throw new CudaUnavailableError(`CUDA device ${ordinal} does not exist (there are ${count})`);
    const dev = this.device(ordinal);
    return { dev, cc: { major: this.attribute(dev, ATTR.ccMajor), minor: this.attribute(dev, ATTR.ccMinor) } };
  }

  device(ordinal: number): number {
    const d = [0];
    this.check(this.api.cuDeviceGet(d, ordinal), `cuDeviceGet(${ordinal})`);
    return d[0]!;
  }

  deviceName(dev: number): string {
    const buf = Buffer.alloc(256);
    this.check(this.api.cuDeviceGetName(buf, buf.length, dev), "cuDeviceGetName");
    return buf.toString("utf8", 0, buf.indexOf(0) < 0 ? buf.length : buf.indexOf(0));
  }

  attribute(dev: number, attr: number): number {
    const v = [0];
    this.check(this.api.cuDeviceGetAttribute(v, attr, dev), `cuDeviceGetAttribute(${attr})`);
    return v[0]!;
  }

  totalMemory(dev: number): number {
    const v = [0];
    this.check(this.api.cuDeviceTotalMem_v2(v, dev), "cuDeviceTotalMem");
    return Number(v[0]);
  }

  memoryInfo(): { free: number; total: number } {
    const f = [0];
    const t = [0];
    this.check(this.api.cuMemGetInfo_v2(f, t), "cuMemGetInfo");
    return { free: Number(f[0]), total: Number(t[0]) };
  }

  createContext(dev: number): Handle {
    const c: Handle[] = [null];
    this.check(this.api.cuCtxCreate_v2(c, 0, dev), "cuCtxCreate");
    return c[0];
  }

  setCurrent(ctx: Handle): void {
    this.check(this.api.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  }

  destroyContext(ctx: Handle): void {
    this.check(this.api.cuCtxDestroy_v2(ctx), "cuCtxDestroy");
  }

  synchronize(): void {
    this.check(this.api.cuCtxSynchronize(), "cuCtxSynchronize");
  }

  /** Loads PTX (NUL-terminated) or a cubin/fatbin; a JIT error comes with the compiler's log. */
  loadModule(image: Uint8Array): Handle {
    const m: Handle[] = [null];
    const logBytes = 16384;
    const log = koffi.alloc("char", logBytes);
    try {
      const options = Int32Array.of(5, 6); // CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES
      const values = BigUint64Array.of(BigInt(koffi.address(log)), BigInt(logBytes));
      const r = this.api.cuModuleLoadDataEx(m, image, 2, options, values);
      if (r !== 0) {
        const bytes = koffi.decode(log, "uint8_t", logBytes) as Uint8Array;
        const end = bytes.indexOf(0);
        const text = Buffer.from(bytes.subarray(0, end < 0 ? logBytes : end)).toString("utf8").trim();
        throw new CudaError(`cuModuleLoadDataEx failed: ${this.describe(r)} (${r})${text ? `\n${text}` : ""}`, r);
      }
    } finally {
      koffi.free(log);
    }
    return m[0];
  }

  unloadModule(m: Handle): void {
    this.check(this.api.cuModuleUnload(m), "cuModuleUnload");
  }

  getFunction(m: Handle, name: string): Handle {
    const f: Handle[] = [null];
    this.check(this.api.cuModuleGetFunction(f, m, name), `cuModuleGetFunction(${name})`);
    return f[0];
  }

  alloc(bytes: number): DevicePtr {
    const p = [0];
    this.check(this.api.cuMemAlloc_v2(p, Math.max(1, bytes)), `cuMemAlloc(${bytes} bytes)`);
    return Number(p[0]);
  }

  free(ptr: DevicePtr): void {
    this.check(this.api.cuMemFree_v2(ptr), "cuMemFree");
  }

  htod(dst: DevicePtr, src: ArrayBufferView): void {
    if (src.byteLength === 0) return;
    this.check(this.api.cuMemcpyHtoD_v2(dst, src, src.byteLength), "cuMemcpyHtoD");
  }

  htodAsync(dst: DevicePtr, src: ArrayBufferView, stream: Handle): void {
    if (src.byteLength === 0) return;
    this.check(this.api.cuMemcpyHtoDAsync_v2(dst, src, src.byteLength, stream), "cuMemcpyHtoDAsync");
  }

  dtoh(dst: ArrayBufferView, src: DevicePtr): void {
    if (dst.byteLength === 0) return;
    this.check(this.api.cuMemcpyDtoH_v2(dst, src, dst.byteLength), "cuMemcpyDtoH");
  }

  dtod(dst: DevicePtr, src: DevicePtr, bytes: number): void {
    this.check(this.api.cuMemcpyDtoD_v2(dst, src, bytes), "cuMemcpyDtoD");
  }

  memset(dst: DevicePtr, value: number, bytes: number): void {
    this.check(this.api.cuMemsetD8_v2(dst, value, bytes), "cuMemsetD8");
  }

  createStream(): Handle {
    const s: Handle[] = [null];
    this.check(this.api.cuStreamCreate(s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
    return s[0];
  }

  destroyStream(s: Handle): void {
    this.check(this.api.cuStreamDestroy_v2(s), "cuStreamDestroy");
  }

  streamSynchronize(s: Handle): void {
    this.check(this.api.cuStreamSynchronize(s), "cuStreamSynchronize");
  }

  /** `args` holds one 8-byte value per kernel parameter (all llmc kernel parameters are pointers). */
  launch(fn: Handle, grid: readonly number[], block: readonly number[], stream: Handle, args: readonly BigUint64Array[], what: string): void {
    this.check(this.api.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, stream, args, null), `cuLaunchKernel(${what})`);
  }

  beginCapture(s: Handle): void {
    this.check(this.api.cuStreamBeginCapture_v2(s, 1 /* CU_STREAM_CAPTURE_MODE_THREAD_LOCAL */), "cuStreamBeginCapture");
  }

  endCapture(s: Handle): Handle {
    const g: Handle[] = [null];
    this.check(this.api.cuStreamEndCapture(s, g), "cuStreamEndCapture");
    return g[0];
  }

  instantiate(graph: Handle): Handle {
    const e: Handle[] = [null];
    this.check(this.api.cuGraphInstantiateWithFlags(e, graph, 0), "cuGraphInstantiate");
    return e[0];
  }

  graphLaunch(exec: Handle, s: Handle): void {
    this.check(this.api.cuGraphLaunch(exec, s), "cuGraphLaunch");
  }

  destroyGraph(graph: Handle): void {
    this.check(this.api.cuGraphDestroy(graph), "cuGraphDestroy");
  }

  destroyGraphExec(exec: Handle): void {
    this.check(this.api.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
  }

  createEvent(): Handle {
    const e: Handle[] = [null];
    this.check(this.api.cuEventCreate(e, 0), "cuEventCreate");
    return e[0];
  }

  recordEvent(e: Handle, s: Handle): void {
    this.check(this.api.cuEventRecord(e, s), "cuEventRecord");
  }

  /** Milliseconds between two recorded events (waits for the second). */
  elapsed(a: Handle, b: Handle): number {
    this.check(this.api.cuEventSynchronize(b), "cuEventSynchronize");
    const ms = [0];
    this.check(this.api.cuEventElapsedTime(ms, a, b), "cuEventElapsedTime");
    return ms[0]!;
  }

  destroyEvent(e: Handle): void {
    this.check(this.api.cuEventDestroy_v2(e), "cuEventDestroy");
  }
}

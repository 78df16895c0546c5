// Whether a CUDA device really runs kernels, before "auto" trusts it with a model: open the driver,
// make a context, load a tiny module, run y[i] = 2·x[i] + 1 over 256 floats and compare. A broken
// install (a driver without a working JIT, a device in a bad state) fails here in milliseconds with
// a message, instead of midway through loading a model.

import { CudaDriver, CudaError, type DevicePtr, type Handle } from "./driver.js";

export const SELF_TEST_KERNEL = "llmc_self_test";
const N = 256;
const BLOCK = 128;

/**
 * Hand-written PTX for `y[blockIdx.x * blockDim.x + threadIdx.x] = 2 * x[…] + 1`: ISA 7.0 and sm_50,
 * so every driver from CUDA 11 on JIT-compiles it for whatever GPU it has.
 */
export const SELF_TEST_PTX = `.version 7.0
.target sm_50
.address_size 64

.visible .entry ${SELF_TEST_KERNEL}(
	.param .u64 x,
	.param .u64 y
)
{
	.reg .b32 %r<5>;
	.reg .f32 %f<3>;
	.reg .b64 %rd<8>;

	ld.param.u64 %rd1, [x];
	ld.param.u64 %rd2, [y];
	cvta.to.global.u64 %rd3, %rd1;
	cvta.to.global.u64 %rd4, %rd2;
	mov.u32 %r1, %ctaid.x;
	mov.u32 %r2, %ntid.x;
	mov.u32 %r3, %tid.x;
	mad.lo.s32 %r4, %r1, %r2, %r3;
	mul.wide.u32 %rd5, %r4, 4;
	add.s64 %rd6, %rd3, %rd5;
	ld.global.f32 %f1, [%rd6];
	fma.rn.f32 %f2, %f1, 0f40000000, 0f3F800000;
	add.s64 %rd7, %rd4, %rd5;
	st.global.f32 [%rd7], %f2;
	ret;
}
`;

export interface SelfTestOptions {
  /** Path of libcuda.so.1 (default: $LLMC_LIBCUDA, then the loader's search). */
  libcuda?: string;
  /** Device ordinal (default 0). */
  device?: number;
  /** The module image holding SELF_TEST_KERNEL instead of SELF_TEST_PTX (tests: the CPU emulation). */
  image?: () => Uint8Array;
}

/** Throws (CudaUnavailableError, CudaError) unless the kernel runs and computes the right values. */
export function runCudaSelfTest(opts: SelfTestOptions = {}): void {
  const driver = new CudaDriver(opts.libcuda);
  driver.init();
  const ctx = driver.createContext(driver.device(opts.device ?? 0));
  const releases: (() => void)[] = [() => driver.destroyContext(ctx)];
  const alloc = (bytes: number): DevicePtr => {
    const p = driver.alloc(bytes);
    releases.push(() => driver.free(p));
    return p;
  };
  // The test's own failure wins over one in releasing (after a failed launch, the context may be
  // unusable), but everything is released either way.
  let failure: unknown = null;
  try {
    const module: Handle = driver.loadModule(opts.image?.() ?? new TextEncoder().encode(`${SELF_TEST_PTX}\0`));
    releases.push(() => driver.unloadModule(module));
    const fn = driver.getFunction(module, SELF_TEST_KERNEL);
    const x = Float32Array.from({ length: N }, (_, i) => (i - N / 2) / 4);
    const xp = alloc(x.byteLength);
    const yp = alloc(x.byteLength);
    driver.htod(xp, x);
    driver.launch(fn, [N / BLOCK, 1, 1], [BLOCK, 1, 1], null, [BigUint64Array.of(BigInt(xp)), BigUint64Array.of(BigInt(yp))], SELF_TEST_KERNEL);
    driver.synchronize();
    const y = new Float32Array(N);
    driver.dtoh(y, yp);
    // Exact: 2·x + 1 is representable for these x, with or without a fused multiply-add.
    const bad = y.findIndex((v, i) => v !== 2 * x[i]! + 1);
    if (bad >= 0) throw new CudaError(`the self-test kernel computed y[${bad}] = ${y[bad]} where 2·x[${bad}] + 1 = ${2 * x[bad]! + 1}`, 0);
  } catch (e) {
    failure = e;
  }
  for (const release of releases.reverse()) {
    try {
      release();
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure) throw failure;
}

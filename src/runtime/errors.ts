// A model that does not fit where it is asked to run — a KV cache, an activation or a weight larger
// than the device can bind or allocate, or than the host's memory — is the user's to fix (a shorter
// context, a quantized model, another backend), not a bug. Every backend reports it as a
// ResourceError whose message names the size, the limit and what to do, so the CLI prints it as is.
// Apart from the backends so that the package entry can export it without loading Dawn or koffi.

import { hostMemory } from "./memory.js";

export class ResourceError extends Error {
  override name = "ResourceError";

  constructor(
    message: string,
    /** Bytes asked for, and the limit they pass (0 where the device did not say). */
    readonly bytes: number,
    readonly limit: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** "1.5 GiB", "153.7 MiB", "512 bytes". */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** The advice for a KV cache that does not fit: the longest context that would, if any. */
export function shorterContext(bytesPerPosition: number, limit: number): string {
  const fits = Math.floor(limit / bytesPerPosition);
  return fits >= 1 ? `a shorter context (--set max_seq_len=N with N ≤ ${fits})` : "a shorter context (--set max_seq_len=N)";
}

/**
 * `make()`, which allocates `bytes` on the host for `what`, refused with a ResourceError (not V8's
 * RangeError, nor the machine swapping) when that is more than the host's memory or than one typed
 * array can hold. `advice`: what to use instead, given the limit in bytes ("a shorter context …").
 */
export function allocateHost<T>(bytes: number, what: string, advice: (limit: number) => string, make: () => T): T {
  const limit = hostMemory();
  if (bytes > limit) throw new ResourceError(`${what} needs ${formatBytes(bytes)}, more than this machine's ${formatBytes(limit)} of memory; use ${advice(limit)}`, bytes, limit);
  try {
    return make();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new ResourceError(`${what} needs ${formatBytes(bytes)}, more than this JavaScript engine allocates at once (${e.message}); use ${advice(0)}`, bytes, 0, { cause: e });
  }
}

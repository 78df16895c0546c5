// Dawn prints its own notes on standard error from native code while it sets up an adapter (on
// llvmpipe: "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced …"). They are
// not llmc's messages and say nothing a user can act on, so file descriptor 2 points at /dev/null
// while an adapter and its device are made; LLMC_DAWN_LOG=1 (set by the CLI's -v) keeps them.

import koffi from "koffi";

interface Libc {
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  open(path: string, flags: number): number;
  close(fd: number): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return libc;
  try {
    const lib = koffi.load("libc.so.6");
    libc = {
      dup: lib.func("int dup(int)") as Libc["dup"],
      dup2: lib.func("int dup2(int, int)") as Libc["dup2"],
      open: lib.func("int open(const char *, int)") as Libc["open"],
      close: lib.func("int close(int)") as Libc["close"],
    };
  } catch {
    libc = null; // no libc to call: Dawn's notes stay visible
  }
  return libc;
}

const O_WRONLY = 1;

/** How many calls are inside withoutNativeStderr, and the real stderr they share while any is. */
let depth = 0;
let saved = -1;

/**
 * Runs `f` with standard error silenced at the file-descriptor level (native writes included).
 * Overlapping calls (two adapters opened at once) share one redirection: the first saves fd 2, the
 * last puts it back, so the real stderr is never lost to an inner call's restore.
 */
export async function withoutNativeStderr<T>(f: () => Promise<T>): Promise<T> {
  const c = process.env["LLMC_DAWN_LOG"] ? null : loadLibc();
  if (!c) return f();
  if (depth === 0) {
    // Node makes its stderr stream on first use, from what fd 2 is then: make it while fd 2 is itself.
    void process.stderr.fd;
    saved = c.dup(2);
    const devNull = saved < 0 ? -1 : c.open("/dev/null", O_WRONLY);
    if (devNull < 0) {
      if (saved >= 0) c.close(saved);
      saved = -1;
      return f();
    }
    c.dup2(devNull, 2);
    c.close(devNull);
  }
  depth++;
  try {
    return await f();
  } finally {
    depth--;
    if (depth === 0) {
      c.dup2(saved, 2);
      c.close(saved);
      saved = -1;
    }
  }
}

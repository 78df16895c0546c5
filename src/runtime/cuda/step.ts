// What every CUDA step needs, inference or training: a step plan's device buffers (the ones it
// shares with other step shapes come from the caller; the rest are allocated, literals uploaded) and
// its launches with their pointer arguments.

import type { CudaBuffer, CudaStepPlan } from "../../compiler/target/cuda.js";
import type { CudaDriver, DevicePtr, Handle } from "./driver.js";

/** Where the buffers a step shares with other step shapes come from: uploaded weights, KV caches. */
export interface SharedBuffers<B> {
  weight(name: string): B;
  kv(buffer: CudaBuffer): B;
}

/** One kernel launch, ready to record: its function and its arguments (device pointers). */
export interface PreparedLaunch {
  fn: Handle;
  name: string;
  grid: [number, number, number];
  block: [number, number, number];
  args: BigUint64Array[];
}

/** The device buffers of a step plan (`alloc` makes the step's own; `ptr` reads a buffer's address). */
export function stepBuffers<B>(
  step: CudaStepPlan,
  driver: CudaDriver,
  shared: SharedBuffers<B>,
  alloc: (bytes: number) => B,
  ptr: (buffer: B) => DevicePtr,
): { buffers: B[]; inputs: Map<string, B> } {
  const inputs = new Map<string, B>();
  const buffers = step.buffers.map((b): B => {
    switch (b.kind) {
      case "weight":
        return shared.weight(b.holds);
      case "kv":
        return shared.kv(b);
      case "literal": {
        const buf = alloc(b.bytes);
        driver.htod(ptr(buf), b.data!);
        return buf;
      }
      case "input": {
        const buf = alloc(b.bytes);
        inputs.set(b.holds, buf);
        return buf;
      }
      default:
        return alloc(b.bytes);
    }
  });
  return { buffers, inputs };
}

/** The step's launches over its buffers (`fn`: a kernel's function in the loaded module). */
export function stepLaunches(step: CudaStepPlan, fn: (kernel: string) => Handle, ptrOf: (buffer: number) => DevicePtr): PreparedLaunch[] {
  return step.launches.map((l) => ({
    fn: fn(l.kernel),
    name: l.kernel,
    grid: l.grid,
    block: l.block,
    args: l.args.map((a) => BigUint64Array.of(BigInt(ptrOf(a.buffer)) + BigInt(a.offsetBytes))),
  }));
}

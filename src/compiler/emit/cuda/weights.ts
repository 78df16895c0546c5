// How weights are laid out in device memory, per storage format. The emitter decides which weights
// may stay half or quantized (those read only by linear and gather kernels), the runtime packs
// them into these layouts on upload, and the kernels read them back.
//
//   f32, f16, bf16   row-major [N, K] elements (f16/bf16 as 16-bit patterns)
//   q8_0             all N·K int8 quants row-major, then the f16 scale of every 32 elements
//   q4_0             all N·K/2 bytes of nibbles (GGUF's block order: byte j of a 32-element block
//                    holds element j low, element j + 16 high), then the f16 scales
//
// The scales start at a 16-byte boundary; each quantized row is a whole number of 16-byte loads.

import type { WeightFormat } from "./context.js";

export interface WeightLayout {
  format: WeightFormat;
  /** Bytes the tensor takes on the device. */
  bytes: number;
  /** Quantized formats: byte offset of the scales. */
  scaleOffset: number;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;

export function weightLayout(format: WeightFormat, shape: readonly number[]): WeightLayout {
  const count = shape.reduce((a, b) => a * b, 1);
  switch (format) {
    case "f32": return { format, bytes: align16(count * 4), scaleOffset: 0 };
    case "f16":
    case "bf16": return { format, bytes: align16(count * 2), scaleOffset: 0 };
    case "q8_0": {
      const scaleOffset = align16(count);
      return { format, bytes: align16(scaleOffset + (count / 32) * 2), scaleOffset };
    }
    case "q4_0": {
      const scaleOffset = align16(count / 2);
      return { format, bytes: align16(scaleOffset + (count / 32) * 2), scaleOffset };
    }
  }
}

/** Why a weight cannot be stored in `format`, or null when it can. Quantized formats need rows of
 *  whole 32-element blocks. */
export function formatProblem(format: WeightFormat, shape: readonly number[]): string | null {
  if (format === "f32") return null;
  if (shape.length !== 2) return `${format} weights must be matrices`;
  if ((format === "q8_0" || format === "q4_0") && shape[1]! % 32 !== 0) return `${format} needs rows of a multiple of 32 elements, not ${shape[1]}`;
  return null;
}

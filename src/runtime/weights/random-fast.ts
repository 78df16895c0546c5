// Random weights fast enough for benchmarks of 8B-parameter models (16 GB of f16 in seconds, where
// drawing every value takes 40 s): each matrix is tiled, already in its device layout, from a few
// small seeded pools — normal values scaled by 1/sqrt(fan_in) for f32/f16/bf16; for q8_0 and q4_0,
// symmetric uniform quants and f16 block scales chosen so that the decoded values have the same
// deviation. The values are finite and realistic in scale but repeat across tensors: for timing
// only, never for checking results (random.ts draws every value independently).

import type { DeviceWeight, WeightSource } from "../../compiler/target/program.js";
import { f32ToBf16Bits, f32ToF16Bits, type StorageDType } from "../../compiler/target/storage.js";
import { normal, randomTensor, rng, tensorStream } from "./random.js";

/** Values (or quant bytes) per pool: large enough that tiles rarely repeat within a row block,
 *  small enough to draw in a few milliseconds. */
const POOL_VALUES = 1 << 21;

/** Deviation of a decoded quant q·d in units of d: q uniform on -127…127 (q8_0) or -7…7 (q4_0). */
const QUANT_STD = { q8_0: Math.sqrt((255 * 255 - 1) / 12), q4_0: Math.sqrt((15 * 15 - 1) / 12) } as const;

/** Block scales vary by this factor either way around the mean, as real blocks' do. */
const SCALE_SPREAD = 0.25;

type Pools = Map<string, Uint8Array>;

/**
 * A weight source of benchmark weights: matrices N(0, 1/fan_in)-like in their device layout through
 * `device`, vectors (norm gains, biases) as random.ts draws them. `seed` picks the pools and the
 * tiling; the same seed gives the same bytes.
 */
export function tiledRandomWeights(seed: number): WeightSource & { device: (w: DeviceWeight) => Uint8Array | undefined } {
  const pools: Pools = new Map();
  const pool = (key: string, make: (rand: () => number) => Uint8Array) => {
    let p = pools.get(key);
    if (!p) {
      p = make(tensorStream(key, seed));
      pools.set(key, p);
    }
    return p;
  };
  const source = (name: string, shape: readonly number[]): Float32Array => {
    if (shape.length < 2) return randomTensor(name, shape, { seed });
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const std = 1 / Math.sqrt(shape[shape.length - 1]!);
    tile(new Uint8Array(out.buffer), pool(`f32 ${std}`, (r) => normalPool("f32", std, r)), tensorStream(name, seed), 4);
    return out;
  };
  const device = (w: DeviceWeight): Uint8Array | undefined => {
    if (w.shape.length < 2) return undefined;
    const n = w.shape.reduce((a, b) => a * b, 1);
    const std = 1 / Math.sqrt(w.shape[w.shape.length - 1]!);
    const out = new Uint8Array(w.layout.bytes);
    const rand = tensorStream(w.name, seed);
    switch (w.dtype) {
      case "f32":
      case "f16":
      case "bf16": {
        const dtype = w.dtype;
        const width = dtype === "f32" ? 4 : 2;
        tile(out.subarray(0, n * width), pool(`${dtype} ${std}`, (r) => normalPool(dtype, std, r)), rand, width);
        return out;
      }
      case "q8_0":
      case "q4_0": {
        const dtype = w.dtype;
        tile(out.subarray(0, w.layout.scaleOffset), pool(`${dtype} quants`, (r) => quantPool(dtype, r)), rand, 1);
        const scales = pool(`${dtype} scales ${std}`, (r) => scalePool(std / QUANT_STD[dtype], r));
        tile(out.subarray(w.layout.scaleOffset, w.layout.scaleOffset + (n / 32) * 2), scales, rand, 2);
        return out;
      }
    }
  };
  return Object.assign(source, { device });
}

/** Fills `dst` with runs of `pool` from random offsets (multiples of `align` bytes). */
function tile(dst: Uint8Array, pool: Uint8Array, rand: () => number, align: number): void {
  const starts = pool.length / 2 / align;
  for (let at = 0; at < dst.length; ) {
    const off = Math.floor(rand() * starts) * align;
    const len = Math.min(dst.length - at, pool.length - off);
    dst.set(pool.subarray(off, off + len), at);
    at += len;
  }
}

function normalPool(dtype: Extract<StorageDType, "f32" | "f16" | "bf16">, std: number, rand: () => number): Uint8Array {
  const gauss = normal(rand);
  if (dtype === "f32") {
    const v = new Float32Array(POOL_VALUES);
    for (let i = 0; i < v.length; i++) v[i] = std * gauss();
    return new Uint8Array(v.buffer);
  }
  const bits = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  const v = new Uint16Array(POOL_VALUES);
  for (let i = 0; i < v.length; i++) v[i] = bits(std * gauss());
  return new Uint8Array(v.buffer);
}

/** Quant bytes: q8_0 int8 uniform on -127…127; q4_0 two nibbles uniform on 1…15 (q - 8 on -7…7). */
function quantPool(dtype: "q8_0" | "q4_0", rand: () => number): Uint8Array {
  const out = new Uint8Array(POOL_VALUES);
  const u32 = rng(Math.floor(rand() * 2 ** 32));
  for (let i = 0; i < out.length; i++) {
    const r = Math.floor(u32() * 2 ** 32) >>> 0;
    out[i] = dtype === "q8_0" ? ((r % 255) - 127) & 0xff : (1 + (r % 15)) | ((1 + ((r >>> 8) % 15)) << 4);
  }
  return out;
}

/** f16 block scales: `mean` times a factor uniform on 1 ± SCALE_SPREAD. */
function scalePool(mean: number, rand: () => number): Uint8Array {
  const v = new Uint16Array(POOL_VALUES / 16);
  for (let i = 0; i < v.length; i++) v[i] = f32ToF16Bits(mean * (1 + SCALE_SPREAD * (2 * rand() - 1)));
  return new Uint8Array(v.buffer);
}

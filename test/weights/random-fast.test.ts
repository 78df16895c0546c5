import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { deviceWeightBytes, type DeviceWeight } from "../../src/compiler/target/program.js";
import { decodeTensor, deviceLayout, encodeTensor, packForDevice, unpackFromDevice, type StorageDType } from "../../src/compiler/target/storage.js";
import { tiledRandomWeights } from "../../src/runtime/weights/random-fast.js";

const weight = (name: string, dtype: StorageDType, shape: number[]): DeviceWeight => ({ name, shape, dtype, layout: deviceLayout(dtype, shape) });

function stats(v: Float32Array) {
  let sum = 0;
  let sq = 0;
  let max = 0;
  let finite = true;
  for (const x of v) {
    if (!Number.isFinite(x)) finite = false;
    sum += x;
    sq += x * x;
    max = Math.max(max, Math.abs(x));
  }
  const mean = sum / v.length;
  return { finite, mean, std: Math.sqrt(sq / v.length - mean * mean), max };
}

describe("tiled random weights", () => {
  for (const dtype of ["f32", "f16", "bf16", "q8_0", "q4_0"] as const) {
    for (const shape of [[96, 64], [512, 1024]]) {
      it(`${dtype} [${shape.join(", ")}] decodes to finite values of deviation 1/sqrt(fan_in)`, () => {
        const w = weight("layers.0.wq", dtype, shape);
        const bytes = tiledRandomWeights(5).device(w)!;
        expect(bytes.length).toBe(w.layout.bytes);
        const values = decodeTensor(dtype, unpackFromDevice(dtype, bytes, shape));
        const s = stats(values);
        const want = 1 / Math.sqrt(shape[1]!);
        expect(s.finite).toBe(true);
        expect(s.std).toBeGreaterThan(0.8 * want);
        expect(s.std).toBeLessThan(1.25 * want);
        expect(Math.abs(s.mean)).toBeLessThan(0.1 * want);
        expect(s.max).toBeLessThan(8 * want);
      });
    }
  }

  it("depends on the seed and the name, and on nothing else", () => {
    const w = weight("layers.0.wq", "q4_0", [64, 256]);
    const a = tiledRandomWeights(1).device(w)!;
    expect(tiledRandomWeights(1).device(w)).toEqual(a);
    expect(tiledRandomWeights(2).device(w)).not.toEqual(a);
    expect(tiledRandomWeights(1).device({ ...w, name: "layers.1.wq" })).not.toEqual(a);
  });

  it("gives vectors and f32 matrices through the plain source", () => {
    const src = tiledRandomWeights(3);
    expect(src.device(weight("norm", "f32", [64]))).toBeUndefined();
    const gain = src("norm", [64]);
    expect(stats(gain).mean).toBeGreaterThan(0.9); // norm gains near 1
    const m = stats(src("lm_head", [96, 64]));
    expect(m.finite).toBe(true);
    expect(m.std).toBeGreaterThan(0.8 / 8);
    expect(m.std).toBeLessThan(1.25 / 8);
  });

  it("is uploaded as it is by deviceWeightBytes", () => {
    const src = tiledRandomWeights(4);
    const w = weight("layers.0.w_up", "q8_0", [64, 64]);
    expect(deviceWeightBytes(w, [w], src)).toEqual(src.device(w));
  });

  it("deviceWeightBytes refuses device bytes of the wrong length", () => {
    const w = weight("layers.0.wq", "f16", [64, 64]);
    const short = Object.assign((_: string, shape: readonly number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1)), { device: () => new Uint8Array(16) });
    expect(() => deviceWeightBytes(w, [w], short)).toThrow(/device bytes/);
  });
});

describe("unpackFromDevice", () => {
  it("inverts packForDevice", () => {
    fc.assert(
      fc.property(fc.constantFrom<StorageDType>("f32", "f16", "bf16", "q8_0", "q4_0"), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (dtype, rows, blocks, seed) => {
        const shape = [rows, 32 * blocks];
        const values = Float32Array.from({ length: rows * 32 * blocks }, (_, i) => Math.sin(seed + i * 1.7));
        const file = encodeTensor(dtype, values);
        expect(unpackFromDevice(dtype, packForDevice(dtype, file, shape), shape)).toEqual(file);
      }),
    );
  });
});

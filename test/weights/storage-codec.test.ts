import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  DTYPES,
  SUPPORTED_DTYPES,
  bf16BitsToF32,
  decodeTensor,
  deviceLayout,
  dequantizeQ4_0,
  dequantizeQ8_0,
  dtypeFromGgmlType,
  encodeTensor,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  packForDevice,
  quantizeQ4_0,
  quantizeQ8_0,
  tensorByteSize,
  unpackFromDevice,
} from "../../src/compiler/target/storage.js";

const f32 = Math.fround;

/** The f32 bit pattern of x, as an unsigned integer. */
function bitsOf(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0]!;
}

function fromBits(u: number): number {
  return new Float32Array(new Uint32Array([u]).buffer)[0]!;
}

/** Finite float32 values over the whole range, including subnormals, zeros and extremes. */
const finiteF32 = fc.float({ noNaN: true, noDefaultInfinity: true });

describe("dtype table", () => {
  it("has ggml's type ids and block layouts", () => {
    expect(SUPPORTED_DTYPES).toEqual(["f32", "f16", "bf16", "q8_0", "q4_0"]);
    expect(DTYPES.f32).toMatchObject({ ggmlType: 0, blockSize: 1, bytesPerBlock: 4 });
    expect(DTYPES.f16).toMatchObject({ ggmlType: 1, blockSize: 1, bytesPerBlock: 2 });
    expect(DTYPES.bf16).toMatchObject({ ggmlType: 30, blockSize: 1, bytesPerBlock: 2 });
    expect(DTYPES.q8_0).toMatchObject({ ggmlType: 8, blockSize: 32, bytesPerBlock: 34 });
    expect(DTYPES.q4_0).toMatchObject({ ggmlType: 2, blockSize: 32, bytesPerBlock: 18 });
    for (const d of SUPPORTED_DTYPES) expect(dtypeFromGgmlType(DTYPES[d].ggmlType)).toBe(d);
    expect(dtypeFromGgmlType(12)).toBeNull(); // Q4_K
  });

  it("sizes tensors by whole blocks", () => {
    expect(tensorByteSize("f32", 10)).toBe(40);
    expect(tensorByteSize("bf16", 10)).toBe(20);
    expect(tensorByteSize("q8_0", 64)).toBe(68);
    expect(tensorByteSize("q4_0", 4096)).toBe(128 * 18);
    expect(() => tensorByteSize("q4_0", 48)).toThrow(/multiple of 32/);
    expect(() => tensorByteSize("f16", -1)).toThrow(RangeError);
  });
});

describe("f16", () => {
  it("converts known values, rounding to nearest even", () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // just below the halfway point to 65536
      [65520, 0x7c00], // halfway: rounds to even, which is infinity
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway between 0 and 2^-24: to even, 0
      [3 * 2 ** -26, 0x0001], // above halfway
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 units: to even, 2
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next f16: to even
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: to even
      [f32(0.1), 0x2e66],
    ];
    for (const [x, h] of cases) expect(f32ToF16Bits(x), `f16(${x})`).toBe(h);
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it("keeps NaN a NaN", () => {
    expect(f16BitsToF32(f32ToF16Bits(NaN))).toBeNaN();
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f32ToF16Bits(fromBits(0x7f800001)) & 0x7c00).toBe(0x7c00); // a signalling NaN stays NaN, not inf
    expect(f32ToF16Bits(fromBits(0x7f800001)) & 0x3ff).not.toBe(0);
  });

  it("round-trips every f16 value exactly", () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      if (Number.isNaN(x)) continue;
      if (f32ToF16Bits(x) !== h) expect(f32ToF16Bits(x), `bits ${h.toString(16)}`).toBe(h);
    }
  });

  it("rounds any float32 to the nearest f16", () => {
    fc.assert(
      fc.property(finiteF32, (x) => {
        const h = f32ToF16Bits(x);
        const r = f16BitsToF32(h);
        if (Math.abs(x) >= 65520) return r === Math.sign(x) * Infinity;
        // the neighbours of h on either side (by magnitude); none is closer to x
        const mag = h & 0x7fff;
        const sign = h & 0x8000;
        const neighbours = [mag - 1, mag + 1].filter((m) => m >= 0 && m <= 0x7bff).map((m) => f16BitsToF32(sign | m));
        if (mag === 0) neighbours.push(f16BitsToF32(0x8001), f16BitsToF32(0x0001));
        const err = Math.abs(x - r);
        return neighbours.every((n) => err < Math.abs(x - n) || (err === Math.abs(x - n) && (h & 1) === 0));
      }),
      { numRuns: 2000 },
    );
  });

  it("encodes and decodes tensors", () => {
    const values = new Float32Array([1, -2, 0.5, 65504, 1e-8, 3.14159]);
    const bytes = encodeTensor("f16", values);
    expect(bytes.byteLength).toBe(12);
    expect([...bytes.subarray(0, 4)]).toEqual([0x00, 0x3c, 0x00, 0xc0]); // little-endian 0x3c00, 0xc000
    const back = decodeTensor("f16", bytes);
    for (let i = 0; i < values.length; i++) expect(back[i]).toBe(f16BitsToF32(f32ToF16Bits(values[i]!)));
    // decoding from an odd byte offset works too
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    expect(decodeTensor("f16", shifted.subarray(1))).toEqual(back);
  });
});

describe("bf16", () => {
  it("converts known values, rounding to nearest even", () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(3)).toBe(0x4040);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // halfway: to even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // halfway: to even
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above halfway
    expect(f32ToBf16Bits(fromBits(0x7f7fffff))).toBe(0x7f80); // rounds up to infinity
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(f32ToBf16Bits(fromBits(0x00000001))).toBe(0x0000); // subnormal rounds to zero
    expect(f32ToBf16Bits(fromBits(0x00018000))).toBe(0x0002); // subnormals are kept, not flushed
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc040)).toBe(-3);
  });

  it("makes NaNs quiet NaNs", () => {
    expect(f32ToBf16Bits(fromBits(0x7f800001))).toBe(0x7fc0);
    expect(f32ToBf16Bits(fromBits(0xffc00000))).toBe(0xffc0);
    expect(bf16BitsToF32(f32ToBf16Bits(NaN))).toBeNaN();
  });

  it("round-trips every bf16 value exactly", () => {
    for (let h = 0; h < 65536; h++) {
      const x = bf16BitsToF32(h);
      if (Number.isNaN(x)) continue;
      if (f32ToBf16Bits(x) !== h) expect(f32ToBf16Bits(x), `bits ${h.toString(16)}`).toBe(h);
    }
  });

  it("rounds any float32 to the nearest bf16, ties to even", () => {
    fc.assert(
      fc.property(finiteF32, (x) => {
        const u = bitsOf(x);
        const h = f32ToBf16Bits(x);
        const down = u >>> 16;
        const rest = u & 0xffff;
        const expected = rest > 0x8000 || (rest === 0x8000 && (down & 1) === 1) ? down + 1 : down;
        return h === expected;
      }),
      { numRuns: 2000 },
    );
  });
});

/** A block of 32 values with the given ones first and zeros after. */
function block(values: number[]): Float32Array {
  const b = new Float32Array(32);
  b.set(values);
  return b;
}

describe("q8_0", () => {
  it("quantizes a block as ggml does (worked by hand)", () => {
    // amax = 127, so d = 1 and q = roundf(x): halves round away from zero
    const x = block([127, -2.5, 2.5, -0.5, 0.5, 1.4, -1.6, 0.49]);
    const bytes = quantizeQ8_0(x);
    expect(bytes.byteLength).toBe(34);
    expect([...bytes.subarray(0, 2)]).toEqual([0x00, 0x3c]); // d = 1.0 as f16, little-endian
    expect([...new Int8Array(bytes.buffer, 2, 9)]).toEqual([127, -3, 3, -1, 1, 1, -2, 0, 0]);
    expect([...dequantizeQ8_0(bytes).subarray(0, 8)]).toEqual([127, -3, 3, -1, 1, 1, -2, 0]);
  });

  it("uses d = amax / 127, stored as f16, and rounds halves away from zero", () => {
    // amax = 31.75, so d = 0.25 (f16 0x3400) and q = roundf(4x)
    const x = block([31.75, -15.875, 0.125, 0.124, -0.125]);
    const bytes = quantizeQ8_0(x);
    expect([...bytes.subarray(0, 2)]).toEqual([0x00, 0x34]);
    expect([...new Int8Array(bytes.buffer, 2, 5)]).toEqual([127, -64, 1, 0, -1]); // -63.5 -> -64, 0.5 -> 1, 0.496 -> 0
    expect([...dequantizeQ8_0(bytes).subarray(0, 5)]).toEqual([31.75, -16, 0.25, 0, -0.25]);
  });

  it("quantizes an all-zero block to d = 0 and zero quants", () => {
    const bytes = quantizeQ8_0(new Float32Array(64));
    expect([...bytes]).toEqual(new Array(68).fill(0));
    expect([...dequantizeQ8_0(bytes)]).toEqual(new Array(64).fill(0));
  });

  it("dequantizes within half a quantization step (plus the f16 rounding of d)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }).chain((nb) => blocksArb(nb)), (values) => {
        const bytes = quantizeQ8_0(values);
        const back = dequantizeQ8_0(bytes);
        for (let b = 0; b < values.length / 32; b++) {
          const xs = values.subarray(b * 32, b * 32 + 32);
          const amax = Math.max(...[...xs].map(Math.abs));
          const d = f32(amax / 127);
          const d16 = f16BitsToF32(bytes[b * 34]! | (bytes[b * 34 + 1]! << 8));
          const bound = 0.5 * d * (1 + 1e-4) + 127 * Math.abs(d - d16) + 1e-30;
          for (let j = 0; j < 32; j++) {
            if (Math.abs(xs[j]! - back[b * 32 + j]!) > bound) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("rejects non-finite values and blocks whose scale overflows f16", () => {
    expect(() => quantizeQ8_0(block([1, NaN]))).toThrow(/index 1/);
    expect(() => quantizeQ8_0(block([Infinity]))).toThrow(RangeError);
    expect(() => quantizeQ8_0(block([1e7]))).toThrow(/overflows f16/);
    expect(() => quantizeQ8_0(new Float32Array(31))).toThrow(/multiple of 32/);
  });
});

describe("q4_0", () => {
  it("quantizes a block as ggml does (worked by hand)", () => {
    // max (largest magnitude, signed) = -8, so d = -8 / -8 = 1 and q = min(15, trunc(x + 8.5))
    const lo = [-8, 7, 8, 0.5, -0.5, -1.5, 2.4, 0]; // elements 0..7, the low nibbles
    const hi = [1, -1, 3.5, -3.49]; // elements 16..19, the high nibbles
    const x = new Float32Array(32);
    x.set(lo, 0);
    x.set(hi, 16);
    const bytes = quantizeQ4_0(x);
    expect(bytes.byteLength).toBe(18);
    expect([...bytes.subarray(0, 2)]).toEqual([0x00, 0x3c]); // d = 1.0
    // q: -8->0, 7->15, 8->16 clamped to 15, 0.5->9, -0.5->8, -1.5->7, 2.4->10, 0->8
    // high: 1->9, -1->7, 3.5->12, -3.49->5 (trunc(5.01)); zeros elsewhere -> 8
    const q = [0x90, 0x7f, 0xcf, 0x59, 0x88, 0x87, 0x8a, 0x88];
    expect([...bytes.subarray(2, 10)]).toEqual(q);
    expect([...bytes.subarray(10, 18)]).toEqual(new Array(8).fill(0x88));
    const back = dequantizeQ4_0(bytes);
    expect([...back.subarray(0, 8)]).toEqual([-8, 7, 7, 1, 0, -1, 2, 0]);
    expect([...back.subarray(16, 20)]).toEqual([1, -1, 4, -3]);
  });

  it("uses the signed value of largest magnitude, so d can be negative", () => {
    // max = 4 (the first of 4 and -4 in magnitude), d = -0.5: 4 maps to q = 0 and back to exactly 4
    const x = block([4, -4, 1, -2]);
    const bytes = quantizeQ4_0(x);
    expect(bytes[0]! | (bytes[1]! << 8)).toBe(0xb800); // -0.5
    // x/d + 8.5: 4 -> 0.5 -> 0; -4 -> 16.5 -> 15 (clamped); 1 -> 6.5 -> 6; -2 -> 12.5 -> 12
    expect(bytes[2]! & 0xf).toBe(0);
    expect(bytes[3]! & 0xf).toBe(15);
    expect(bytes[4]! & 0xf).toBe(6);
    expect(bytes[5]! & 0xf).toBe(12);
    expect([...dequantizeQ4_0(bytes).subarray(0, 4)]).toEqual([4, -3.5, 1, -2]);
  });

  it("dequantizes within one quantization step (plus the f16 rounding of d)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }).chain((nb) => blocksArb(nb)), (values) => {
        const bytes = quantizeQ4_0(values);
        const back = dequantizeQ4_0(bytes);
        for (let b = 0; b < values.length / 32; b++) {
          const xs = values.subarray(b * 32, b * 32 + 32);
          const amax = Math.max(...[...xs].map(Math.abs));
          const d = amax / 8;
          const d16 = Math.abs(f16BitsToF32(bytes[b * 18]! | (bytes[b * 18 + 1]! << 8)));
          const bound = d * (1 + 1e-4) + 8 * Math.abs(d - d16) + 1e-30;
          for (let j = 0; j < 32; j++) {
            if (Math.abs(xs[j]! - back[b * 32 + j]!) > bound) return false;
          }
          // the value of largest magnitude comes back up to the f16 rounding of d
          const k = [...xs].findIndex((v) => Math.abs(v) === amax);
          if (Math.abs(xs[k]! - back[b * 32 + k]!) > 8 * Math.abs(d - d16) + 1e-30) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("puts element j in the low nibble and element j + 16 in the high nibble of byte j", () => {
    fc.assert(
      fc.property(blocksArb(1), (x) => {
        const bytes = quantizeQ4_0(x);
        const back = dequantizeQ4_0(bytes);
        const d = f16BitsToF32(bytes[0]! | (bytes[1]! << 8));
        for (let j = 0; j < 16; j++) {
          if (back[j] !== ((bytes[2 + j]! & 0xf) - 8) * d) return false;
          if (back[j + 16] !== ((bytes[2 + j]! >> 4) - 8) * d) return false;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  it("rejects non-finite values and blocks whose scale overflows f16", () => {
    expect(() => quantizeQ4_0(block([NaN]))).toThrow(/index 0/);
    expect(() => quantizeQ4_0(block([-1e6]))).toThrow(/overflows f16/);
  });
});

describe("encodeTensor / decodeTensor", () => {
  it("round-trips f32 exactly and sizes every dtype by its blocks", () => {
    const values = new Float32Array(64).map((_, i) => Math.sin(i) * 3);
    for (const dtype of SUPPORTED_DTYPES) {
      const bytes = encodeTensor(dtype, values);
      expect(bytes.byteLength).toBe(tensorByteSize(dtype, 64));
      expect(decodeTensor(dtype, bytes).length).toBe(64);
    }
    expect(decodeTensor("f32", encodeTensor("f32", values))).toEqual(values);
    expect(() => decodeTensor("q8_0", new Uint8Array(35))).toThrow(/whole number of q8_0 blocks/);
  });
});

/** nb blocks of values whose scales stay within f16: magnitudes from tiny (1e-9) to large (1e4). */
function blocksArb(nb: number): fc.Arbitrary<Float32Array> {
  return fc
    .tuple(
      fc.float({ min: f32(1e-9), max: f32(1e4), noNaN: true }),
      fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: nb * 32, maxLength: nb * 32 }),
    )
    .map(([scale, unit]) => Float32Array.from(unit, (u) => u * scale));
}

describe("the device layout of q8_0/q4_0 (packForDevice, unpackFromDevice)", () => {
  it("puts every block's quants first, then every scale, wherever the bytes start, and unpacks back", () => {
    fc.assert(
      fc.property(fc.constantFrom<"q8_0" | "q4_0">("q8_0", "q4_0"), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer(), (dtype, rows, blocksPerRow, shift, seed) => {
        const bpb = DTYPES[dtype].bytesPerBlock;
        const blocks = rows * blocksPerRow;
        // Random block bytes at an offset of `shift` into their buffer (odd offsets take the byte path).
        const file = new Uint8Array(blocks * bpb + shift).subarray(shift);
        let x = seed >>> 0;
        for (let i = 0; i < file.length; i++) file[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
        const shape = [rows, blocksPerRow * 32];
        const device = packForDevice(dtype, file, shape);
        const layout = deviceLayout(dtype, shape);
        expect(device.length).toBe(layout.bytes);
        const q = bpb - 2;
        for (let b = 0; b < blocks; b++) {
          expect([...device.subarray(b * q, (b + 1) * q)]).toEqual([...file.subarray(b * bpb + 2, (b + 1) * bpb)]);
          expect([...device.subarray(layout.scaleOffset + 2 * b, layout.scaleOffset + 2 * b + 2)]).toEqual([...file.subarray(b * bpb, b * bpb + 2)]);
        }
        const padded = new Uint8Array(device.length + shift).subarray(shift);
        padded.set(device);
        expect([...unpackFromDevice(dtype, padded, shape)]).toEqual([...file]);
      }),
      { numRuns: 60 },
    );
  });
});

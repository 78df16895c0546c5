// Weight storage dtypes, the one place that knows them: the types of GGUF weight files that llmc
// reads and writes (ggml type ids and block layouts), CPU conversions to and from f32, the layout
// each dtype has in device memory (the same for WGSL and CUDA), and the policy that picks a
// weight's device dtype. The layouts and the rounding match ggml's
// reference code (ggml-quants.c, ggml-impl.h) bit for bit, so a file we quantize is the file
// llama.cpp would write, and a file llama.cpp wrote dequantizes to the values llama.cpp computes.
//
// Byte order: GGUF tensor data is little-endian (the reader refuses big-endian files) and so is
// every host Node and the browsers run on, so multi-byte values are read through typed-array views.

export type StorageDType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0";

export interface DTypeInfo {
  readonly name: StorageDType;
  readonly ggmlType: number; // enum ggml_type
  readonly blockSize: number; // elements per block
  readonly bytesPerBlock: number;
}

export const DTYPES: { readonly [K in StorageDType]: DTypeInfo } = {
  f32: { name: "f32", ggmlType: 0, blockSize: 1, bytesPerBlock: 4 },
  f16: { name: "f16", ggmlType: 1, blockSize: 1, bytesPerBlock: 2 },
  bf16: { name: "bf16", ggmlType: 30, blockSize: 1, bytesPerBlock: 2 },
  // block_q8_0: f16 scale d, then 32 int8 quants
  q8_0: { name: "q8_0", ggmlType: 8, blockSize: 32, bytesPerBlock: 2 + 32 },
  // block_q4_0: f16 scale d, then 16 bytes of 4-bit quants (element j low nibble, j+16 high nibble)
  q4_0: { name: "q4_0", ggmlType: 2, blockSize: 32, bytesPerBlock: 2 + 16 },
};

export const SUPPORTED_DTYPES: readonly StorageDType[] = Object.keys(DTYPES) as StorageDType[];

const BY_GGML_TYPE = new Map<number, StorageDType>(SUPPORTED_DTYPES.map((d) => [DTYPES[d].ggmlType, d]));

export function isStorageDType(name: string): name is StorageDType {
  return Object.prototype.hasOwnProperty.call(DTYPES, name);
}

/** The dtype stored as ggml type `ggmlType`, or null when llmc does not support that type. */
export function dtypeFromGgmlType(ggmlType: number): StorageDType | null {
  return BY_GGML_TYPE.get(ggmlType) ?? null;
}

/** Bytes taken by `numElements` elements of `dtype`; a RangeError unless they fill whole blocks. */
export function tensorByteSize(dtype: StorageDType, numElements: number): number {
  const { blockSize, bytesPerBlock } = DTYPES[dtype];
  if (!Number.isSafeInteger(numElements) || numElements < 0) {
    throw new RangeError(`element count ${numElements} is not a non-negative integer`);
  }
  if (numElements % blockSize !== 0) {
    throw new RangeError(`${dtype} stores blocks of ${blockSize} elements; ${numElements} is not a multiple of ${blockSize}`);
  }
  return (numElements / blockSize) * bytesPerBlock;
}

// ---------------------------------------------------------------------------------------------
// Scalars: f16 and bf16 bit patterns

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** IEEE binary16 bits of a float32 bit pattern, rounding to nearest even (as F16C's vcvtps2ph). */
function f16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13); // inf; quiet NaN
  const e = exp - 127 + 15; // the f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // f16 subnormal (or zero): the value in units of 2^-24 is (1.mant) >> (14 - e)
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e;
    let q = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) !== 0)) q++;
    return sign | q; // q may carry into 0x400, the smallest normal, which is right
  }
  let q = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) !== 0)) q++; // a carry may reach 0x7c00 = inf, also right
  return sign | q;
}

export function f32ToF16Bits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}

let f16Table: Float32Array | undefined;

/** float32 value of every f16 bit pattern, built on first use (256 KiB). */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13);
    else if (exp === 0) table[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero or subnormal, exact
    else bits[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  f16Table = table;
  return table;
}

export function f16BitsToF32(h: number): number {
  return f16ToF32Table()[h & 0xffff]!;
}

/** bf16 bits of a float32 bit pattern: round to nearest even, NaN made quiet, subnormals kept (as ggml). */
function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  // cannot overflow 32 bits: the largest non-NaN pattern is 0xff800000 (-inf)
  return ((u >>> 0) + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

export function f32ToBf16Bits(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

// ---------------------------------------------------------------------------------------------
// Whole tensors

/** A typed-array view of `bytes`, copying only when `bytes` is not aligned for the element type. */
function viewOf<T>(bytes: Uint8Array, ctor: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number }): T {
  const size = ctor.BYTES_PER_ELEMENT;
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new ctor(src.buffer, src.byteOffset, src.byteLength / size);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function checkByteLength(dtype: StorageDType, bytes: Uint8Array): number {
  const { blockSize, bytesPerBlock } = DTYPES[dtype];
  if (bytes.byteLength % bytesPerBlock !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} blocks (${bytesPerBlock} bytes each)`);
  }
  return (bytes.byteLength / bytesPerBlock) * blockSize;
}

function checkBlocks(dtype: StorageDType, values: Float32Array): void {
  const { blockSize } = DTYPES[dtype];
  if (values.length % blockSize !== 0) {
    throw new RangeError(`${dtype} quantizes blocks of ${blockSize} values; ${values.length} is not a multiple of ${blockSize}`);
  }
}

function checkFinite(dtype: StorageDType, v: number, index: number): void {
  if (!Number.isFinite(v)) throw new RangeError(`value ${v} at index ${index} cannot be quantized to ${dtype}`);
}

export function encodeF16(values: Float32Array): Uint8Array {
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < src.length; i++) out[i] = f16FromF32Bits(src[i]!);
  return bytesOf(out);
}

export function decodeF16(bytes: Uint8Array): Float32Array {
  const n = checkByteLength("f16", bytes);
  const src = viewOf(bytes, Uint16Array);
  const table = f16ToF32Table();
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = table[src[i]!]!;
  return out;
}

export function encodeBf16(values: Float32Array): Uint8Array {
  const src = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16FromF32Bits(src[i]!);
  return bytesOf(out);
}

export function decodeBf16(bytes: Uint8Array): Float32Array {
  const n = checkByteLength("bf16", bytes);
  const src = viewOf(bytes, Uint16Array);
  const out = new Float32Array(n);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) outBits[i] = src[i]! << 16;
  return out;
}

/**
 * ggml's quantize_row_q8_0_ref: per block of 32, d = amax / 127 and q = roundf(x / d), half away
 * from zero. Every step is float32 arithmetic as in C; d is stored as f16 but the quants are computed
 * with the float32 d. Values must be finite; a RangeError otherwise, or when d overflows f16.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  checkBlocks("q8_0", values);
  const nb = values.length / 32;
  const out = new Uint8Array(nb * 34);
  const quants = new Int8Array(out.buffer);
  for (let b = 0; b < nb; b++) {
    const x = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const v = values[x + j]!;
      checkFinite("q8_0", v, x + j);
      amax = Math.max(amax, Math.abs(v));
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const dBits = f32ToF16Bits(d);
    if ((dBits & 0x7c00) === 0x7c00) throw new RangeError(`q8_0 block ${b}: scale ${d} overflows f16 (largest |value| ${amax})`);
    const o = b * 34;
    out[o] = dBits & 0xff;
    out[o + 1] = dBits >>> 8;
    for (let j = 0; j < 32; j++) {
      const s = Math.fround(values[x + j]! * id);
      quants[o + 2 + j] = Math.sign(s) * Math.round(Math.abs(s)); // roundf: half away from zero
    }
  }
  return out;
}

/** ggml's dequantize_row_q8_0: x = q * d. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const n = checkByteLength("q8_0", bytes);
  const quants = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 34;
    const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = quants[o + 2 + j]! * d;
  }
  return out;
}

/**
 * ggml's quantize_row_q4_0_ref: per block of 32, `max` is the signed value of largest magnitude (the
 * first one on ties), d = max / -8, and q = min(15, trunc(x / d + 8.5)), so the value `max` itself
 * maps to q = 0 exactly. Byte j holds element j in its low nibble and element j + 16 in its high one.
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  checkBlocks("q4_0", values);
  const nb = values.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let b = 0; b < nb; b++) {
    const x = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = values[x + j]!;
      checkFinite("q4_0", v, x + j);
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const dBits = f32ToF16Bits(d);
    if ((dBits & 0x7c00) === 0x7c00) throw new RangeError(`q4_0 block ${b}: scale ${d} overflows f16 (largest |value| ${amax})`);
    const o = b * 18;
    out[o] = dBits & 0xff;
    out[o + 1] = dBits >>> 8;
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(Math.fround(values[x + j]! * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(Math.fround(Math.fround(values[x + 16 + j]! * id) + 8.5)));
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** ggml's dequantize_row_q4_0: x = (q - 8) * d. */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  const n = checkByteLength("q4_0", bytes);
  const out = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const o = b * 18;
    const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 2 + j]!;
      out[b * 32 + j] = ((q & 0x0f) - 8) * d;
      out[b * 32 + 16 + j] = ((q >>> 4) - 8) * d;
    }
  }
  return out;
}

/** Encodes f32 values as `dtype` bytes (a copy for f32; rounding or quantizing otherwise). */
export function encodeTensor(dtype: StorageDType, values: Float32Array): Uint8Array {
  switch (dtype) {
    case "f32":
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case "f16":
      return encodeF16(values);
    case "bf16":
      return encodeBf16(values);
    case "q8_0":
      return quantizeQ8_0(values);
    case "q4_0":
      return quantizeQ4_0(values);
  }
}

/** Decodes `dtype` bytes to f32 values; the element count follows from the byte length. */
export function decodeTensor(dtype: StorageDType, bytes: Uint8Array): Float32Array {
  switch (dtype) {
    case "f32":
      checkByteLength("f32", bytes);
      return viewOf(bytes, Float32Array);
    case "f16":
      return decodeF16(bytes);
    case "bf16":
      return decodeBf16(bytes);
    case "q8_0":
      return dequantizeQ8_0(bytes);
    case "q4_0":
      return dequantizeQ4_0(bytes);
  }
}

// ---------------------------------------------------------------------------------------------
// On the device: one layout per dtype, read by the WGSL and the CUDA kernels alike
//
//   f32, f16, bf16   row-major elements (f16/bf16 as their 16-bit patterns)
//   q8_0, q4_0       ggml's blocks split into two regions so that both stay aligned: first every
//                    block's quants (q8_0: 32 int8 at byte 32b; q4_0: 16 bytes at byte 16b, element
//                    j in the low nibble of byte j, j + 16 in the high nibble), then every block's
//                    f16 scale at scaleOffset + 2b. A quantized row is a whole number of blocks, so
//                    both regions start on a 16-byte boundary.

export interface DeviceLayout {
  dtype: StorageDType;
  /** Bytes the tensor takes on the device (a multiple of 16). */
  bytes: number;
  /** q8_0 / q4_0: byte offset of the f16 scales (0 otherwise). */
  scaleOffset: number;
}

const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function deviceLayout(dtype: StorageDType, shape: readonly number[]): DeviceLayout {
  const n = count(shape);
  switch (dtype) {
    case "f32":
      return { dtype, bytes: align16(n * 4), scaleOffset: 0 };
    case "f16":
    case "bf16":
      return { dtype, bytes: align16(n * 2), scaleOffset: 0 };
    case "q8_0":
    case "q4_0": {
      const scaleOffset = dtype === "q8_0" ? n : n / 2;
      return { dtype, bytes: align16(scaleOffset + (n / 32) * 2), scaleOffset };
    }
  }
}

/** Why a weight of `shape` cannot be stored as `dtype` on a device, or null when it can: only
 *  matrices are stored other than f32, and quantized rows must be whole 32-element blocks. */
export function deviceStorageProblem(dtype: StorageDType, shape: readonly number[]): string | null {
  if (dtype === "f32") return null;
  if (shape.length !== 2) return `${dtype} weights must be matrices`;
  if (DTYPES[dtype].blockSize > 1 && shape[1]! % DTYPES[dtype].blockSize !== 0) {
    return `${dtype} needs rows of a multiple of ${DTYPES[dtype].blockSize} elements, not ${shape[1]}`;
  }
  return null;
}

/** The device bytes of a tensor of `shape` from its bytes in the file's (ggml's) layout of `dtype`. */
export function packForDevice(dtype: StorageDType, fileBytes: Uint8Array, shape: readonly number[]): Uint8Array {
  const n = count(shape);
  const expected = tensorByteSize(dtype, n);
  if (fileBytes.length !== expected) throw new RangeError(`a ${dtype} tensor of shape [${shape.join(", ")}] has ${expected} bytes, got ${fileBytes.length}`);
  const layout = deviceLayout(dtype, shape);
  const out = new Uint8Array(layout.bytes);
  if (dtype !== "q8_0" && dtype !== "q4_0") {
    out.set(fileBytes);
    return out;
  }
  packWords(words(fileBytes), words(out), n / 32, DTYPES[dtype].bytesPerBlock >> 1, layout.scaleOffset >> 1);
  return out;
}

/**
 * q8_0/q4_0 blocks move between ggml's layout (the file: per block an f16 scale, then the quants)
 * and the device's (every block's quants, then every scale from scaleOffset) in 16-bit words, a few
 * per block (load time of a multi-gigabyte quantized model): blocks and regions have even sizes.
 * `words` views bytes as such; bytes at an odd address are copied first (fresh arrays never are).
 */
function words(bytes: Uint8Array): Uint16Array {
  const even = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(even.buffer, even.byteOffset, even.length >> 1);
}

/** File words → device words: `wb` words a block (the scale, then the quants), the scales from word `ws`. */
function packWords(f: Uint16Array, d: Uint16Array, blocks: number, wb: number, ws: number): void {
  for (let b = 0, fo = 0, qo = 0; b < blocks; b++) {
    d[ws + b] = f[fo]!;
    const end = fo + wb;
    for (let i = fo + 1; i < end; i++) d[qo++] = f[i]!;
    fo = end;
  }
}

/** Device words → file words (packWords' inverse). */
function unpackWords(f: Uint16Array, d: Uint16Array, blocks: number, wb: number, ws: number): void {
  for (let b = 0, fo = 0, qo = 0; b < blocks; b++) {
    f[fo] = d[ws + b]!;
    const end = fo + wb;
    for (let i = fo + 1; i < end; i++) f[i] = d[qo++]!;
    fo = end;
  }
}

/** The inverse of packForDevice: a tensor's bytes in the file's (ggml's) layout from its device bytes. */
export function unpackFromDevice(dtype: StorageDType, device: Uint8Array, shape: readonly number[]): Uint8Array {
  const n = count(shape);
  const layout = deviceLayout(dtype, shape);
  if (device.length !== layout.bytes) throw new RangeError(`a ${dtype} tensor of shape [${shape.join(", ")}] has ${layout.bytes} device bytes, got ${device.length}`);
  const out = new Uint8Array(tensorByteSize(dtype, n));
  if (dtype !== "q8_0" && dtype !== "q4_0") {
    out.set(device.subarray(0, out.length));
    return out;
  }
  unpackWords(words(out), words(device), n / 32, DTYPES[dtype].bytesPerBlock >> 1, layout.scaleOffset >> 1);
  return out;
}

/** The largest number of rows (a multiple of `multiple`) of a [N, K] matrix of `dtype` whose device
 *  layout takes at most `limit` bytes; 0 when not even `multiple` rows fit. */
export function rowsWithin(dtype: StorageDType, K: number, limit: number, multiple = 1): number {
  let rows = Math.floor(limit / tensorByteSize(dtype, K)); // the device layout's bytes per row, as ggml's
  while (rows > 0 && deviceLayout(dtype, [rows, K]).bytes > limit) rows--;
  return rows - (rows % multiple);
}

/** Rows [first, first + count) of a matrix in its device layout (`bytes`, of `shape`), as a device
 *  tensor of their own: the same layout of a [count, K] matrix (for q8_0/q4_0 their quants, then
 *  their scales). A weight larger than one binding is uploaded as such row ranges. */
export function deviceRows(dtype: StorageDType, shape: readonly [number, number], bytes: Uint8Array, first: number, count: number): Uint8Array {
  const [N, K] = shape;
  if (first < 0 || count < 1 || first + count > N) throw new RangeError(`rows ${first}..${first + count} of a matrix of ${N} rows`);
  const whole = deviceLayout(dtype, shape);
  const part = deviceLayout(dtype, [count, K]);
  const out = new Uint8Array(part.bytes);
  if (dtype !== "q8_0" && dtype !== "q4_0") {
    const rowBytes = (K * DTYPES[dtype].bytesPerBlock) / DTYPES[dtype].blockSize;
    out.set(bytes.subarray(first * rowBytes, (first + count) * rowBytes));
    return out;
  }
  const quantRow = dtype === "q8_0" ? K : K / 2;
  const scaleRow = (K / 32) * 2;
  out.set(bytes.subarray(first * quantRow, (first + count) * quantRow));
  out.set(bytes.subarray(whole.scaleOffset + first * scaleRow, whole.scaleOffset + (first + count) * scaleRow), part.scaleOffset);
  return out;
}

/** A weight's values as a weight source gives them: f32, or the bytes the file stores. */
export type StoredTensor = Float32Array | { dtype: StorageDType; bytes: Uint8Array };

/** The device bytes of a weight stored as `dtype`: the file's bytes repacked when the file has that
 *  dtype, else the values converted (quantized, rounded) from f32. */
export function deviceBytes(dtype: StorageDType, shape: readonly number[], value: StoredTensor): Uint8Array {
  if (!(value instanceof Float32Array) && value.dtype === dtype) return packForDevice(dtype, value.bytes, shape);
  const f32 = value instanceof Float32Array ? value : decodeTensor(value.dtype, value.bytes);
  if (f32.length !== count(shape)) throw new RangeError(`${f32.length} values for shape [${shape.join(", ")}], expected ${count(shape)}`);
  if (dtype === "f32") return new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  return packForDevice(dtype, encodeTensor(dtype, f32), shape);
}

/**
 * The policy for a weight's device dtype: what the user asked for (`--weight-dtype`), else what the
 * file stores, else f32; f32 where the dtype cannot hold this shape (`demoted` says why). The target
 * layer demotes further where a kernel must read the weight as f32.
 */
export function deviceDType(shape: readonly number[], stored: StorageDType | undefined, requested?: StorageDType): { dtype: StorageDType; demoted?: string } {
  const wanted = requested ?? stored ?? "f32";
  const problem = deviceStorageProblem(wanted, shape);
  return problem ? { dtype: "f32", demoted: problem } : { dtype: wanted };
}

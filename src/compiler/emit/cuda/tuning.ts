// Kernel shape parameters of the CUDA templates, one profile per GPU generation (chosen by compute
// capability). The emitter reads them; nothing in a template hard-wires a block size or a tile.
// The values are starting points: scripts/gpu-check.sh measures decode against the bandwidth
// roofline, which is how they should be revised (docs/roofline.md has the model behind them).

import type { StorageDType } from "../../target/storage.js";

export interface ComputeCapability {
  major: number;
  minor: number;
}

export interface CudaTuning {
  /** Profile name, part of plan.json and of every kernel's identity. */
  profile: string;
  /** Lowest compute capability the profile's kernels need (tensor cores: 7.5 f16, 8.0 bf16). */
  minArch: ComputeCapability;
  /** Elementwise, copies, gather, rotary, kv append: threads per block and a cap on the grid
   *  (grid-stride loops cover the rest). */
  elementwise: { block: number; maxBlocks: number };
  /** Row programs (RMSNorm, softmax) and reductions: threads per block; a row gets a group of up to
   *  this many threads (at least one warp), several short rows share a block. */
  row: { block: number; elementsPerThread: number };
  /** Streaming multiprocessors of the generation's large parts: how many blocks fill the GPU. */
  sms: number;
  /** Decode matvec (memory-bound: what matters is bytes in flight per SM, ≈ bandwidth × latency /
   *  SMs ≈ 25 KB on an H200):
   *  - warps per block;
   *  - weight rows per warp by storage format, over all the weights of a launch (gate and up): x
   *    (f32, from L1) is read once per warp for all its rows, so formats with fewer bytes per
   *    element take more rows to keep x's loads at or below the weight's;
   *  - 16-byte weight loads each lane issues before using any (rows × weights × chunks ≤ this), so
   *    a warp keeps about loadsInFlight × 512 bytes in flight;
   *  - blocks per SM a launch should reach at least: when a weight has too few rows for that, the
   *    warps of a block split K between them (a power of two) and combine in shared memory;
   *  - the largest number of x rows it takes (more rows go to the tiled matmul). */
  matvec: { warps: number; rowsPerWarp: Record<StorageDType, number>; loadsInFlight: number; blocksPerSM: number; maxRows: number };
  /** Prefill on tensor cores (wmma 16x16x16, f16/bf16 in, f32 accumulate): block tiles, largest
   *  first, each as warps along M and N and 16x16 fragments per warp along M and N; a launch takes
   *  the first that fits shared memory and still gives every SM a block (else the one with the most
   *  blocks); and the K step of the shared-memory tiles. */
  wmma: { tiles: WmmaTile[]; bk: number };
  /** Prefill in f32 on the SIMT cores: a (threadsM·tm) × (threadsN·tn) tile per block, K step bk. */
  simt: { threadsM: number; threadsN: number; tm: number; tn: number; bk: number };
  attention: {
    /** Decode (few queries): warps per block, and how many blocks split one long past between
     *  them (flash-decoding); a second kernel combines the splits. */
    decodeWarps: number;
    decodeSplits: number;
    /** At most this many queries use the decode kernel; more use the tiled prefill kernel. */
    decodeMaxQueries: number;
    /** Prefill: warps per block and queries per warp (keys go through shared memory 32 at a time). */
    prefillWarps: number;
    prefillQueriesPerWarp: number;
  };
}

export interface WmmaTile {
  warpsM: number;
  warpsN: number;
  fragsM: number;
  fragsN: number;
}

/** Turing (sm_75): 64 warps per SM, 64 KiB shared memory; f16 tensor cores only. */
const TURING: CudaTuning = {
  profile: "sm75",
  minArch: { major: 7, minor: 5 },
  sms: 72,
  elementwise: { block: 256, maxBlocks: 4096 },
  row: { block: 256, elementsPerThread: 4 },
  matvec: { warps: 4, rowsPerWarp: { f32: 1, f16: 2, bf16: 2, q8_0: 4, q4_0: 4 }, loadsInFlight: 4, blocksPerSM: 2, maxRows: 4 },
  wmma: { tiles: [{ warpsM: 2, warpsN: 2, fragsM: 2, fragsN: 2 }, { warpsM: 2, warpsN: 2, fragsM: 1, fragsN: 1 }], bk: 32 },
  simt: { threadsM: 16, threadsN: 16, tm: 4, tn: 4, bk: 16 },
  attention: { decodeWarps: 4, decodeSplits: 16, decodeMaxQueries: 4, prefillWarps: 4, prefillQueriesPerWarp: 4 },
};

/** 128x128 (8 warps of 4x2 fragments) down to 32x64 tiles: a 128-token prefill chunk over a
 *  4096-row weight still gets a block per SM. */
const WIDE_TILES: WmmaTile[] = [
  { warpsM: 2, warpsN: 4, fragsM: 4, fragsN: 2 },
  { warpsM: 2, warpsN: 4, fragsM: 2, fragsN: 2 },
  { warpsM: 2, warpsN: 2, fragsM: 2, fragsN: 2 },
  { warpsM: 2, warpsN: 2, fragsM: 1, fragsN: 2 },
];

/** Ampere datacenter (A100, sm_80): 108 SMs, 1.6–2 TB/s: ≈ 12 KB in flight per SM. */
const AMPERE: CudaTuning = {
  ...TURING,
  profile: "sm80",
  minArch: { major: 8, minor: 0 },
  sms: 108,
  matvec: { warps: 4, rowsPerWarp: { f32: 2, f16: 2, bf16: 2, q8_0: 4, q4_0: 8 }, loadsInFlight: 8, blocksPerSM: 2, maxRows: 4 },
  wmma: { tiles: WIDE_TILES, bk: 32 },
  attention: { ...TURING.attention, decodeSplits: 32 },
};

/** Hopper and later (sm_90+): 132 SMs, 3.35–4.8 TB/s (≈ 25 KB in flight per SM): eight 16-byte
 *  loads per lane in flight, 8-warp blocks, at least two blocks per SM; bigger tiles. */
const HOPPER: CudaTuning = {
  ...AMPERE,
  profile: "sm90",
  minArch: { major: 9, minor: 0 },
  sms: 132,
  elementwise: { block: 256, maxBlocks: 8192 },
  row: { block: 512, elementsPerThread: 4 },
  matvec: { warps: 8, rowsPerWarp: { f32: 2, f16: 2, bf16: 2, q8_0: 4, q4_0: 8 }, loadsInFlight: 8, blocksPerSM: 2, maxRows: 4 },
  attention: { ...AMPERE.attention, decodeWarps: 8, decodeSplits: 64 },
};

export const CUDA_PROFILES: readonly CudaTuning[] = [TURING, AMPERE, HOPPER];

/** The profile for a GPU: the newest one whose minimum the device meets. */
export function tuningFor(cc: ComputeCapability): CudaTuning {
  const v = cc.major * 10 + cc.minor;
  let best: CudaTuning | null = null;
  for (const t of CUDA_PROFILES) if (t.minArch.major * 10 + t.minArch.minor <= v) best = t;
  if (!best) throw new Error(`compute capability ${cc.major}.${cc.minor} is too old for llmc's CUDA kernels (they need 7.5 or newer)`);
  return best;
}

/** `sm_80` → 8.0. */
export function parseArch(arch: string): ComputeCapability {
  const m = /^(?:sm_|compute_)?(\d+)(\d)$/.exec(arch.trim());
  if (!m) throw new Error(`'${arch}' is not a CUDA architecture (expected sm_80, sm_90, …)`);
  return { major: Number(m[1]), minor: Number(m[2]) };
}

export function archName(cc: ComputeCapability): string {
  return `sm_${cc.major}${cc.minor}`;
}

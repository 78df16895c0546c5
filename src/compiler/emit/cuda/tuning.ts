// Kernel shape parameters of the CUDA templates, one profile per GPU generation (chosen by compute
// capability). The emitter reads them; nothing in a template hard-wires a block size or a tile.
// The values are starting points: scripts/gpu-check.sh measures decode against the bandwidth
// roofline, which is how they should be revised.

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
  /** Decode matvec: warps per block, weight rows per warp (each lane streams 16-byte loads), and the
   *  largest number of x rows it takes (more rows go to the tiled matmul). */
  matvec: { warps: number; rowsPerWarp: number; maxRows: number };
  /** Prefill on tensor cores (wmma 16x16x16, f16/bf16 in, f32 accumulate): warps along M and N,
   *  16x16 fragments per warp along M and N, and the K step of a shared-memory tile. */
  wmma: { warpsM: number; warpsN: number; fragsM: number; fragsN: number; bk: number };
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

/** Turing (sm_75): 64 warps per SM, 64 KiB shared memory; f16 tensor cores only. */
const TURING: CudaTuning = {
  profile: "sm75",
  minArch: { major: 7, minor: 5 },
  elementwise: { block: 256, maxBlocks: 4096 },
  row: { block: 256, elementsPerThread: 4 },
  matvec: { warps: 4, rowsPerWarp: 1, maxRows: 4 },
  wmma: { warpsM: 2, warpsN: 2, fragsM: 2, fragsN: 2, bk: 32 },
  simt: { threadsM: 16, threadsN: 16, tm: 4, tn: 4, bk: 16 },
  attention: { decodeWarps: 4, decodeSplits: 16, decodeMaxQueries: 4, prefillWarps: 4, prefillQueriesPerWarp: 4 },
};

/** Ampere datacenter (A100, sm_80): 108 SMs, wide HBM; two rows per warp keeps more loads in flight. */
const AMPERE: CudaTuning = {
  ...TURING,
  profile: "sm80",
  minArch: { major: 8, minor: 0 },
  matvec: { warps: 4, rowsPerWarp: 2, maxRows: 4 },
  attention: { ...TURING.attention, decodeSplits: 32 },
};

/** Hopper and later (sm_90+): 132 SMs, 3+ TB/s: more rows in flight per block, bigger tiles. */
const HOPPER: CudaTuning = {
  ...AMPERE,
  profile: "sm90",
  minArch: { major: 9, minor: 0 },
  elementwise: { block: 256, maxBlocks: 8192 },
  row: { block: 512, elementsPerThread: 4 },
  matvec: { warps: 8, rowsPerWarp: 2, maxRows: 4 },
  wmma: { warpsM: 2, warpsN: 4, fragsM: 2, fragsN: 2, bk: 32 },
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

// Kernel shape parameters of the WGSL templates. The runtime picks them per adapter
// (src/runtime/webgpu/tuning.ts); the emitter only reads them, so a kernel's shape is never
// hard-wired into a template.

export interface WgslTuning {
  /** Which profile these values came from, for reports. */
  profile: string;
  /** Workgroup size of one-dimensional kernels (elementwise, copies, gather, rotary, kv append). */
  workgroupSize: number;
  /** Elements each invocation of an elementwise kernel computes. */
  elementsPerInvocation: number;
  /** Rows (of many) per invocation for row reductions and fused row programs. */
  reduceWorkgroupSize: number;
  linear: {
    workgroupSize: number;
    /** Invocations that share one tile, striding along K (1: an invocation computes its tile
     *  alone). Above 1 a workgroup of `lanes` invocations owns a tile, neighbouring lanes read
     *  neighbouring 16-byte words of each weight row (coalesced loads), and their partial sums meet
     *  in a workgroup-memory tree or a subgroupAdd (emit/wgsl/linear.ts). A power of two; the
     *  workgroup size is then `lanes`. */
    lanes: number;
    /** Output features (rows of W) per tile: per invocation, or per workgroup when lanes > 1. */
    rowsPerInvocation: number;
    /** Rows of x per invocation when x has several rows (prefill): a register tile of
     *  rowsPerInvocation × tileM outputs, each weight row read once per tile. */
    tileM: number;
    /** Rule `merge`: linears sharing x run as one dispatch (plan/merge.ts). */
    merge: boolean;
  };
  matmul: {
    workgroupSize: number;
    /** Register tile of the batched matmul: rows of a × columns of b per invocation (each a value
     *  loaded serves tileN outputs, each b value tileM). */
    tileM: number;
    tileN: number;
    /** Outputs below this many run one per invocation (emit/wgsl/layout.ts). */
    minTiledOutputs: number;
    /** Rule `transposed-matmul` (plan/build.ts): read operands stored transposed instead of
     *  copying them first, and compute products that are only transposed transposed. */
    readTransposed: boolean;
  };
  attention: {
    workgroupSize: number;
    /** Steps of at most this many queries (decode) run a workgroup per (query, head) row… */
    decodeMaxQueries: number;
    /** …whose lanes split the keys (fewer where head_dim is large: workgroup memory holds every
     *  lane's partial output). */
    decodeLanes: number;
  };
}

/** CPU rasterisers (llvmpipe, SwiftShader, lavapipe): barriers are expensive, invocations run as
 *  SIMD lanes of a few threads, so several rows per invocation and vec4 loads win (DESIGN.md).
 *  Linear on llvmpipe, 4096×4096 f32, 2 cores (noisy): decode 1 row/invocation 2.6–3.4 GB/s,
 *  4 rows 4.5–6.0 GB/s; prefill of 16 rows tileM 1 → 8: 334 → 87 ms. On the 27M LLaMA of DESIGN.md
 *  (decode, all fusion rules): 8 rows in workgroups of 32 against 4 in 64 take 9% less CPU time per
 *  token and prefill 64 tokens in 280 ms instead of 350 (16 rows: slower; workgroups of 32 keep two
 *  or more workgroups, so both threads busy, on the 512-row projections). What caps them: Mesa
 *  22.3's llvmpipe turns each storage-buffer load whose address is not a constant into a loop over
 *  the SIMD lanes with a bounds test per component, ~7 instructions a float, so a matvec stays near
 *  11–13 GB/s in any layout. Other paths measured no faster (test/webgpu/bench-load-paths.mjs,
 *  4096×4096): rgba32float textures with textureLoad 9.6–11.5 GB/s; LP_NATIVE_VECTOR_WIDTH=512 and
 *  Dawn's disable_robustness alike; fma() does not help either, llvmpipe lowers it to mul + add. */
export const CPU_TUNING: WgslTuning = {
  profile: "cpu",
  workgroupSize: 64,
  elementsPerInvocation: 4,
  reduceWorkgroupSize: 16,
  linear: { workgroupSize: 32, lanes: 1, rowsPerInvocation: 8, tileM: 8, merge: true },
  // Batched matmul on llvmpipe (test/webgpu/bench-matmul.mjs, 2 cores, noisy), GFLOP/s for one
  // element per invocation → 4×4 tiles → 8×8 tiles: 256³ 1.1 → 7.1 → 11–12; [2048,128]@[128,256]
  // 2.2 → 13 → 12–18; [128,256]@[256,688] 2.3 → 12 → 11–17 (16×16 and
  // 2×8 worse; workgroups of 8–64 alike). Tiles win down to 32×32 outputs. On the products of a
  // packed training step (2026-12-05, 9 interleaved rounds, p50) 8×16 beats 8×8:
  // [1024,4096]@[4096,256] 22.9 → 26.1, [256,1024]@[1024,4096] 22.0 → 26.9, [256,1024]@[1024,640]
  // 22.1 → 28.5, [1024,256]@[256,640] 20.7 → 22.9; 8×32, 16×8 and 16×16 no better. A step of
  // brown-llama (the 3.8M example of then): 1,346–1,506 → 1,292–1,328 ms of kernels
  // (test/webgpu/profile-train-step.mjs).
  // Reading an operand transposed is 7-25% slower here than the copy it saves (two strided streams
  // per k instead of one: [256,1024]@[1024,640] 25.0 → 19.7 GFLOP/s, VARIANTS=…:a in
  // bench-matmul), and a training step no faster for the 46 dispatches fewer: off.
  matmul: { workgroupSize: 16, tileM: 8, tileN: 16, minTiledOutputs: 64, readTransposed: false },
  attention: { workgroupSize: 8, decodeMaxQueries: 4, decodeLanes: 16 },
};

/** Discrete and integrated GPUs: many lanes, so one output per invocation and large workgroups; a
 *  linear's weight rows are read by a workgroup of 64 lanes each, side by side along K, so that a
 *  warp's loads of a row fall in consecutive bytes (one row per invocation, measured on an H200 at
 *  ~1.4% of the bandwidth, never coalesces). Two rows per workgroup reuse each x load; four rows of x
 *  per tile in prefill. Not measured on a GPU yet (docs/roofline.md says what to measure). */
export const GPU_TUNING: WgslTuning = {
  profile: "gpu",
  workgroupSize: 256,
  elementsPerInvocation: 1,
  reduceWorkgroupSize: 64,
  linear: { workgroupSize: 64, lanes: 64, rowsPerInvocation: 2, tileM: 4, merge: true },
  // Not measured on a GPU yet: moderate register tiles, outputs below a few waves one per invocation.
  matmul: { workgroupSize: 64, tileM: 4, tileN: 4, minTiledOutputs: 4096, readTransposed: true },
  attention: { workgroupSize: 32, decodeMaxQueries: 4, decodeLanes: 64 },
};

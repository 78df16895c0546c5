// Host emulation of the CUDA device code llmc generates, for testing kernels with g++ on machines
// without a GPU. Include it before the generated kernels (the cuda_fp16.h, cuda_bf16.h and mma.h
// beside it do), compile as C++17.
//
// Model: a launch runs its blocks one after another; the threads of a block run concurrently as
// fibers (ucontext), switching only at synchronisation points, so
//   - __syncthreads() is a real barrier over the block's live threads,
//   - __shfl_*_sync / __syncwarp exchange values between the 32 lanes of a warp (every lane named
//     in the mask must arrive; a lane that has exited is reported as an error),
//   - __shared__ variables are per block (function-local statics: blocks never overlap),
//   - wmma fragments hold whole tiles in every lane; load/mma/store are warp collectives with
//     f16/bf16 operands and f32 accumulation in k order (hardware order and rounding may differ).
// What it cannot show: timing, races between blocks, memory coalescing, bank conflicts, register
// pressure, shared-memory limits, and the rounding of the real tensor cores.
//
// A deadlock (threads waiting at different barriers) or a collective with exited lanes stops the
// launch with an error message instead of hanging.

#pragma once

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <sys/mman.h>

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#define LLMC_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace llmc_emu {

enum State { RUNNABLE, WAITING, DONE };

enum Wait { NONE, AT_BLOCK, AT_WARP };

struct Fiber {
  ucontext_t ctx;
  uint3 idx;
  State state;
  Wait wait;
};

struct Launch {
  dim3 grid, block;
  uint3 blockIdx;
  int nthreads = 0;
  std::vector<Fiber> fibers;
  int cur = 0;
  int live = 0;
  // Block barrier.
  int barArrived = 0;
  // Warp barriers and shuffle slots.
  int warpArrived[32] = {};
  int warpLive[32] = {};
  unsigned warpWaitMask[32] = {};
  unsigned char slots[32][32][16];
  ucontext_t sched;
  std::function<void()> body;
  std::string error;
  char* stacks = nullptr;
  size_t stackBytes = 0;
};

// Internal linkage: each emulated module (a shared library) has its own launch state.
static Launch g;
constexpr size_t STACK = 256 * 1024;

inline int flatTid() {
  const Fiber& f = g.fibers[g.cur];
  return (int)(f.idx.x + f.idx.y * g.block.x + f.idx.z * g.block.x * g.block.y);
}

/** Stops the current thread with an error: the launch fails with this message. */
[[noreturn]] inline void fail(const std::string& msg) {
  if (g.error.empty()) g.error = msg;
  g.fibers[g.cur].state = DONE;
  setcontext(&g.sched);
  abort();
}

inline void yield() { swapcontext(&g.fibers[g.cur].ctx, &g.sched); }

inline void wake(Fiber& f) {
  f.state = RUNNABLE;
  f.wait = NONE;
}

inline void releaseBlock() {
  g.barArrived = 0;
  for (auto& f : g.fibers) if (f.state == WAITING && f.wait == AT_BLOCK) wake(f);
}

inline void syncthreads() {
  if (++g.barArrived == g.live) { releaseBlock(); return; }
  g.fibers[g.cur].state = WAITING;
  g.fibers[g.cur].wait = AT_BLOCK;
  yield();
}

inline void warpBarrier(unsigned mask) {
  const int t = flatTid();
  const int w = t / 32, lane = t % 32;
  if (!(mask >> lane & 1u)) fail("a warp collective was called by a lane that is not in its mask");
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    const int other = w * 32 + l;
    if (other >= g.nthreads || g.fibers[other].state == DONE) fail("a warp collective names a lane that has exited (or does not exist): all lanes of its mask must call it");
  }
  if (g.warpArrived[w] == 0) g.warpWaitMask[w] = mask;
  else if (g.warpWaitMask[w] != mask) fail("lanes of one warp called a warp collective with different masks");
  if (++g.warpArrived[w] == __builtin_popcount(mask)) {
    g.warpArrived[w] = 0;
    for (int l = 0; l < 32; ++l) {
      const int other = w * 32 + l;
      if ((mask >> l & 1u) && other != t && g.fibers[other].state == WAITING && g.fibers[other].wait == AT_WARP) wake(g.fibers[other]);
    }
    return;
  }
  g.fibers[g.cur].state = WAITING;
  g.fibers[g.cur].wait = AT_WARP;
  yield();
}

enum ShuffleMode { IDX, UP, DOWN, XOR };

template <class T>
T shuffle(unsigned mask, T v, int arg, int width, ShuffleMode mode) {
  static_assert(sizeof(T) <= 16, "shuffled values are at most 16 bytes");
  const int t = flatTid();
  const int w = t / 32, lane = t % 32;
  memcpy(g.slots[w][lane], &v, sizeof(T));
  warpBarrier(mask);
  const int base = lane & ~(width - 1);
  int src = lane;
  switch (mode) {
    case IDX: src = base + (arg & (width - 1)); break;
    case UP: src = (lane - base) - arg >= 0 ? lane - arg : lane; break;
    case DOWN: src = (lane - base) + arg < width ? lane + arg : lane; break;
    case XOR: src = base + ((lane ^ arg) & (width - 1)); break;
  }
  if (!(mask >> src & 1u)) fail("a shuffle reads a lane outside its mask");
  T r;
  memcpy(&r, g.slots[w][src], sizeof(T));
  warpBarrier(mask);
  return r;
}

inline void entry(int i) {
  g.cur = i;
  g.body();
  Fiber& f = g.fibers[i];
  f.state = DONE;
  g.live--;
  const int t = (int)(f.idx.x + f.idx.y * g.block.x + f.idx.z * g.block.x * g.block.y);
  g.warpLive[t / 32]--;
  // A barrier everyone else already waits at opens when the last thread leaves.
  if (g.barArrived > 0 && g.barArrived == g.live) releaseBlock();
}

/** Runs `body` for every thread of every block; returns an error message, empty on success. */
inline std::string launch(dim3 grid, dim3 block, std::function<void()> body) {
  const long n = (long)block.x * block.y * block.z;
  if (n < 1 || n > 1024) return "a block must have 1 to 1024 threads, got " + std::to_string(n);
  if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535) return "bad grid dimensions";
  g.grid = grid;
  g.block = block;
  g.nthreads = (int)n;
  g.body = std::move(body);
  g.error.clear();
  g.fibers.assign(n, Fiber{});
  if (g.stackBytes < (size_t)n * STACK) {
    if (g.stacks) munmap(g.stacks, g.stackBytes);
    g.stackBytes = (size_t)n * STACK;
    g.stacks = (char*)mmap(nullptr, g.stackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (g.stacks == MAP_FAILED) { g.stacks = nullptr; g.stackBytes = 0; return "cannot map fiber stacks"; }
  }
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        g.blockIdx = {bx, by, bz};
        g.live = (int)n;
        g.barArrived = 0;
        for (int w = 0; w < 32; ++w) { g.warpArrived[w] = 0; g.warpLive[w] = 0; }
        for (int i = 0; i < n; ++i) {
          Fiber& f = g.fibers[i];
          f.idx = {(unsigned)(i % block.x), (unsigned)(i / block.x % block.y), (unsigned)(i / (block.x * block.y))};
          f.state = RUNNABLE;
          f.wait = NONE;
          g.warpLive[i / 32]++;
          getcontext(&f.ctx);
          f.ctx.uc_stack.ss_sp = g.stacks + (size_t)i * STACK;
          f.ctx.uc_stack.ss_size = STACK;
          f.ctx.uc_link = &g.sched;
          makecontext(&f.ctx, (void (*)())entry, 1, i);
        }
        while (g.live > 0) {
          int ran = 0;
          for (int i = 0; i < n && g.error.empty(); ++i) {
            if (g.fibers[i].state != RUNNABLE) continue;
            g.cur = i;
            swapcontext(&g.sched, &g.fibers[i].ctx);
            ++ran;
          }
          if (!g.error.empty()) {
            return g.error + " (block " + std::to_string(bx) + "," + std::to_string(by) + "," + std::to_string(bz) + ", thread " + std::to_string(g.cur) + ")";
          }
          if (ran == 0) return "deadlock: threads of block " + std::to_string(bx) + "," + std::to_string(by) + " wait at barriers that can never open (a __syncthreads or warp collective in divergent code)";
        }
      }
  return "";
}

}  // namespace llmc_emu

#define threadIdx (::llmc_emu::g.fibers[::llmc_emu::g.cur].idx)
#define blockIdx (::llmc_emu::g.blockIdx)
#define blockDim (::llmc_emu::g.block)
#define gridDim (::llmc_emu::g.grid)
#define warpSize 32

inline void __syncthreads() { llmc_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { llmc_emu::warpBarrier(mask); }
template <class T> T __shfl_sync(unsigned m, T v, int lane, int width = 32) { return llmc_emu::shuffle(m, v, lane, width, llmc_emu::IDX); }
template <class T> T __shfl_up_sync(unsigned m, T v, unsigned d, int width = 32) { return llmc_emu::shuffle(m, v, (int)d, width, llmc_emu::UP); }
template <class T> T __shfl_down_sync(unsigned m, T v, unsigned d, int width = 32) { return llmc_emu::shuffle(m, v, (int)d, width, llmc_emu::DOWN); }
template <class T> T __shfl_xor_sync(unsigned m, T v, int lm, int width = 32) { return llmc_emu::shuffle(m, v, lm, width, llmc_emu::XOR); }

template <class T> inline T __ldg(const T* p) { return *p; }

inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
// Byte n of the result is byte (s >> 4n) & 7 of the 8 bytes {y (high), x (low)}.
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long both = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int n = 0; n < 4; ++n) r |= (unsigned)((both >> (8 * ((s >> (4 * n)) & 7u))) & 0xffu) << (8 * n);
  return r;
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __fdividef(float a, float b) { return a / b; }

// ------------------------------------------------------------------------------------------ f16 / bf16

struct __half { unsigned short bits; };
struct __nv_bfloat16 { unsigned short bits; };

namespace llmc_emu {
/** f32 → f16, round to nearest even, overflow to infinity, subnormals kept. */
inline unsigned short f32_to_f16(float f) {
  unsigned x = __float_as_uint(f);
  const unsigned sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return (unsigned short)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (x >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // rounds past 65504
  if (x < 0x33000001u) return (unsigned short)sign;                 // below half the smallest subnormal
  const int e = (int)(x >> 23);
  unsigned mant = (x & 0x7fffffu) | 0x800000u;
  int shift;
  unsigned base;
  if (e < 113) {  // subnormal half
    shift = 126 - e;
    base = 0;
  } else {
    shift = 13;
    base = (unsigned)(e - 112) << 10;
    mant &= 0x7fffffu;
  }
  unsigned r = mant >> shift;
  const unsigned rem = mant & ((1u << shift) - 1u);
  const unsigned halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (r & 1u))) r++;
  return (unsigned short)(sign | (base + r));
}
inline float f16_to_f32(unsigned short h) {
  const unsigned sign = (unsigned)(h & 0x8000u) << 16;
  const unsigned e = (h >> 10) & 0x1fu;
  const unsigned m = h & 0x3ffu;
  if (e == 0) {
    const float v = (float)m * 5.9604644775390625e-8f;  // 2^-24
    return sign ? -v : v;
  }
  if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112) << 23) | (m << 13));
}
inline unsigned short f32_to_bf16(float f) {
  const unsigned x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
}  // namespace llmc_emu

inline __half __float2half(float f) { return {llmc_emu::f32_to_f16(f)}; }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __half2float(__half h) { return llmc_emu::f16_to_f32(h.bits); }
inline __half __ushort_as_half(unsigned short u) { return {u}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline __nv_bfloat16 __float2bfloat16(float f) { return {llmc_emu::f32_to_bf16(f)}; }
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((unsigned)b.bits << 16); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return {u}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }
inline float llmc_emu_to_float(__half h) { return __half2float(h); }
inline float llmc_emu_to_float(__nv_bfloat16 b) { return __bfloat162float(b); }

// ------------------------------------------------------------------------------------------ wmma

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K> struct shape_of;
template <int M, int N, int K> struct shape_of<matrix_a, M, N, K> { static const int rows = M, cols = K; };
template <int M, int N, int K> struct shape_of<matrix_b, M, N, K> { static const int rows = K, cols = N; };
template <int M, int N, int K> struct shape_of<accumulator, M, N, K> { static const int rows = M, cols = N; };

/** Every lane holds the whole tile, row-major in the matrix's own coordinates. */
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static const int rows = shape_of<Use, M, N, K>::rows, cols = shape_of<Use, M, N, K>::cols;
  static const int num_elements = rows * cols;
  T x[rows * cols];
};

inline void set_element(float& d, float v) { d = v; }
inline void set_element(__half& d, float v) { d = __float2half(v); }
inline void set_element(__nv_bfloat16& d, float v) { d = __float2bfloat16(v); }

template <class Use, int M, int N, int K, class T, class L>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, float v) {
  for (int i = 0; i < f.num_elements; ++i) set_element(f.x[i], v);
}

template <class Use, int M, int N, int K, class T, class L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const T* p, unsigned ldm) {
  __syncwarp();
  const bool row = std::is_same<L, row_major>::value;
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c) f.x[r * f.cols + c] = row ? p[r * ldm + c] : p[c * ldm + r];
  __syncwarp();
}

template <int M, int N, int K, class TA, class LA, class LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TA, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  __syncwarp();
  float out[M * N];
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.x[i * N + j];
      for (int k = 0; k < K; ++k) s += llmc_emu_to_float(a.x[i * K + k]) * llmc_emu_to_float(b.x[k * N + j]);
      out[i * N + j] = s;
    }
  for (int i = 0; i < M * N; ++i) d.x[i] = out[i];
  __syncwarp();
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
  __syncwarp();
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) {
      if (layout == mem_row_major) p[r * ldm + c] = f.x[r * N + c];
      else p[c * ldm + r] = f.x[r * N + c];
    }
  __syncwarp();
}
}  // namespace wmma
}  // namespace nvcuda

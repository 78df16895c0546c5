// A stand-in for libcuda.so.1 that runs on the CPU, for testing llmc's CUDA runtime (its koffi
// bindings, buffers, launches, CUDA graphs) on machines without a GPU. It implements the subset of
// the driver API llmc calls, on host memory. A "module image" is the text `LLMC-EMU:` followed by
// the path of a shared library built from the generated kernels with cuda_emu.h; cuModuleGetFunction
// finds the kernel's launcher in it.
//
// It is strict where the real driver is: synchronous copies and allocations during a global-mode
// stream capture fail, kernel parameters are copied when a launch is captured, and launch shapes
// are checked. Every allocation has guard bytes on both sides, checked after each launch, so a
// kernel writing out of bounds fails instead of corrupting memory; fresh allocations hold 0xff
// bytes (NaN as floats), so reading memory nobody wrote shows up in results.
//
// Environment: LLMC_FAKE_CUDA_CC ("8.0" by default) is the compute capability it reports.

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>
#include <string>
#include <vector>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
  OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_INITIALIZED = 3, INVALID_IMAGE = 200, INVALID_CONTEXT = 201,
  INVALID_HANDLE = 400, NOT_FOUND = 500, ILLEGAL_ADDRESS = 700, LAUNCH_OUT_OF_RESOURCES = 701, LAUNCH_FAILED = 719,
  CAPTURE_UNSUPPORTED = 900, CAPTURE_INVALIDATED = 901, CAPTURE_WRONG_THREAD = 908, NOT_SUPPORTED = 801,
};

namespace {

const size_t GUARD = 256;

struct Allocation {
  unsigned char* base;  // GUARD bytes, the user's bytes, GUARD bytes
  size_t bytes;
};

typedef const char* (*Launcher)(unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void**);

struct Function {
  std::string name;
  Launcher launch;
  const int* params;  // count, then the size of each
};

struct Node {
  Function* fn;
  unsigned grid[3], block[3];
  std::vector<std::vector<unsigned char>> args;
};

struct Graph {
  std::vector<Node> nodes;
};

struct Stream {
  bool capturing = false;
  int mode = 0;
  Graph* graph = nullptr;
};

struct Event {
  double t = 0;
};

bool initialized = false;
std::map<uintptr_t, Allocation> allocations;  // by user address
std::string lastError;
int capturesGlobal = 0;

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

CUresult fail(CUresult code, const std::string& msg) {
  lastError = msg;
  fprintf(stderr, "fake libcuda: %s\n", msg.c_str());
  return code;
}

bool guardsIntact(const Allocation& a, std::string& where) {
  for (size_t i = 0; i < GUARD; ++i) {
    if (a.base[i] != 0xa5) { where = "before"; return false; }
    if (a.base[GUARD + a.bytes + i] != 0xa5) { where = "after"; return false; }
  }
  return true;
}

CUresult checkGuards(const std::string& what) {
  for (auto& [addr, a] : allocations) {
    std::string where;
    if (!guardsIntact(a, where)) {
      memset(a.base, 0xa5, GUARD);
      memset(a.base + GUARD + a.bytes, 0xa5, GUARD);
      return fail(ILLEGAL_ADDRESS, what + " wrote " + where + " an allocation of " + std::to_string(a.bytes) + " bytes");
    }
  }
  return OK;
}

/** The allocation holding [p, p + n), or null. */
const Allocation* find(uintptr_t p, size_t n) {
  auto it = allocations.upper_bound(p);
  if (it == allocations.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  if (p >= it->first && p + n <= it->first + a.bytes) return &a;
  return nullptr;
}

CUresult checkRange(CUdeviceptr p, size_t n, const char* what) {
  if (n == 0) return OK;
  if (!find((uintptr_t)p, n)) return fail(INVALID_VALUE, std::string(what) + ": device range of " + std::to_string(n) + " bytes is not inside one allocation");
  return OK;
}

bool syncForbidden() { return capturesGlobal > 0; }

CUresult run(Function* f, const unsigned* grid, const unsigned* block, void** args) {
  const char* err = f->launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], args);
  if (err) return fail(LAUNCH_FAILED, "kernel " + f->name + ": " + err);
  return checkGuards("kernel " + f->name);
}

}  // namespace

extern "C" {

CUresult cuInit(unsigned) { initialized = true; return OK; }
CUresult cuDriverGetVersion(int* v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int* n) { *n = initialized ? 1 : 0; return initialized ? OK : NOT_INITIALIZED; }
CUresult cuDeviceGet(int* d, int ordinal) {
  if (!initialized) return NOT_INITIALIZED;
  if (ordinal != 0) return fail(INVALID_VALUE, "only device 0 exists");
  *d = 0;
  return OK;
}
CUresult cuDeviceGetName(char* name, int len, int) {
  snprintf(name, len, "llmc emulated GPU (fake libcuda)");
  return OK;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, int) { *bytes = (size_t)8 << 30; return OK; }
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
  const char* cc = getenv("LLMC_FAKE_CUDA_CC");
  int major = 8, minor = 0;
  if (cc) sscanf(cc, "%d.%d", &major, &minor);
  switch (attr) {
    case 1: *v = 1024; return OK;              // max threads per block
    case 8: *v = 49152; return OK;             // shared memory per block
    case 10: *v = 32; return OK;               // warp size
    case 16: *v = 4; return OK;                // multiprocessors
    case 36: *v = 1000000; return OK;          // memory clock, kHz
    case 37: *v = 256; return OK;              // memory bus width, bits
    case 75: *v = major; return OK;
    case 76: *v = minor; return OK;
    case 97: *v = 101376; return OK;           // shared memory per block, opt-in
    default: *v = 0; return OK;
  }
}
CUresult cuCtxCreate_v2(void** ctx, unsigned, int) { *ctx = (void*)0x1; return OK; }
CUresult cuCtxDestroy_v2(void*) { return OK; }
CUresult cuCtxSetCurrent(void*) { return OK; }
CUresult cuCtxSynchronize() { return OK; }
// LLMC_FAKE_CUDA_MEMORY (bytes, read at each call): the device's memory, so that tests can run out
// of it; unset, 8 GiB of which 6 are free and allocations never fail for size.
static size_t liveBytes() {
  size_t n = 0;
  for (auto& [addr, a] : allocations) n += a.bytes;
  return n;
}
static size_t memoryCap() {
  const char* m = getenv("LLMC_FAKE_CUDA_MEMORY");
  return m ? (size_t)strtoull(m, nullptr, 10) : 0;
}
CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* total) {
  if (size_t cap = memoryCap()) {
    const size_t live = liveBytes();
    *total = cap;
    *freeBytes = live < cap ? cap - live : 0;
    return OK;
  }
  *freeBytes = (size_t)6 << 30;
  *total = (size_t)8 << 30;
  return OK;
}

CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  if (syncForbidden()) return fail(CAPTURE_UNSUPPORTED, "cuMemAlloc during a global-mode stream capture");
  if (bytes == 0) return fail(INVALID_VALUE, "cuMemAlloc of 0 bytes");
  if (size_t cap = memoryCap(); cap && liveBytes() + bytes > cap) return OUT_OF_MEMORY;
  unsigned char* base = (unsigned char*)aligned_alloc(256, ((bytes + 2 * GUARD + 255) / 256) * 256);
  if (!base) return OUT_OF_MEMORY;
  memset(base, 0xa5, GUARD);
  memset(base + GUARD, 0xff, bytes);
  memset(base + GUARD + bytes, 0xa5, GUARD);
  const uintptr_t user = (uintptr_t)(base + GUARD);
  allocations[user] = {base, bytes};
  *p = (CUdeviceptr)user;
  return OK;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
  auto it = allocations.find((uintptr_t)p);
  if (it == allocations.end()) return fail(INVALID_VALUE, "cuMemFree of a pointer cuMemAlloc did not return");
  std::string where;
  const bool ok = guardsIntact(it->second, where);
  free(it->second.base);
  allocations.erase(it);
  return ok ? OK : fail(ILLEGAL_ADDRESS, "an allocation freed with its guard bytes " + where + " it overwritten");
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  if (syncForbidden()) return fail(CAPTURE_UNSUPPORTED, "synchronous cuMemcpyHtoD during a global-mode stream capture");
  if (CUresult r = checkRange(dst, n, "cuMemcpyHtoD")) return r;
  memcpy((void*)dst, src, n);
  return OK;
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  if (syncForbidden()) return fail(CAPTURE_UNSUPPORTED, "synchronous cuMemcpyDtoH during a global-mode stream capture");
  if (CUresult r = checkRange(src, n, "cuMemcpyDtoH")) return r;
  memcpy(dst, (const void*)src, n);
  return OK;
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  if (syncForbidden()) return fail(CAPTURE_UNSUPPORTED, "synchronous cuMemcpyDtoD during a global-mode stream capture");
  if (CUresult r = checkRange(src, n, "cuMemcpyDtoD")) return r;
  if (CUresult r = checkRange(dst, n, "cuMemcpyDtoD")) return r;
  memmove((void*)dst, (const void*)src, n);
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* stream) {
  if (stream && ((Stream*)stream)->capturing) return fail(CAPTURE_UNSUPPORTED, "llmc does not capture host-to-device copies");
  if (CUresult r = checkRange(dst, n, "cuMemcpyHtoDAsync")) return r;
  memcpy((void*)dst, src, n);
  return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* stream) {
  if (stream && ((Stream*)stream)->capturing) return fail(CAPTURE_UNSUPPORTED, "llmc does not capture device-to-host copies");
  if (CUresult r = checkRange(src, n, "cuMemcpyDtoHAsync")) return r;
  memcpy(dst, (const void*)src, n);
  return OK;
}
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
  if (syncForbidden()) return fail(CAPTURE_UNSUPPORTED, "synchronous cuMemset during a global-mode stream capture");
  if (CUresult r = checkRange(dst, n, "cuMemsetD8")) return r;
  memset((void*)dst, v, n);
  return OK;
}

CUresult cuModuleLoadData(void** module, const void* image) {
  const char* text = (const char*)image;
  const char* prefix = "LLMC-EMU:";
  if (strncmp(text, prefix, strlen(prefix)) != 0) return fail(INVALID_IMAGE, "the fake libcuda runs only emulation modules (LLMC-EMU:path), not PTX or cubins");
  void* h = dlopen(text + strlen(prefix), RTLD_NOW | RTLD_LOCAL);
  if (!h) return fail(INVALID_IMAGE, std::string("cannot load emulation module: ") + dlerror());
  *module = h;
  return OK;
}
CUresult cuModuleLoadDataEx(void** module, const void* image, unsigned, int*, void**) { return cuModuleLoadData(module, image); }
// Modules stay loaded: code of an unloaded library may still be referenced by fibers' state.
CUresult cuModuleUnload(void*) { return OK; }
CUresult cuModuleGetFunction(void** fn, void* module, const char* name) {
  Launcher l = (Launcher)dlsym(module, (std::string("llmc_emu_launch_") + name).c_str());
  const int* params = (const int*)dlsym(module, (std::string("llmc_emu_params_") + name).c_str());
  if (!l || !params) return fail(NOT_FOUND, std::string("no kernel named ") + name + " in the module");
  *fn = new Function{name, l, params};
  return OK;
}
CUresult cuFuncSetAttribute(void*, int, int) { return OK; }

CUresult cuStreamCreate(void** stream, unsigned) { *stream = new Stream(); return OK; }
CUresult cuStreamDestroy_v2(void* stream) {
  Stream* s = (Stream*)stream;
  if (s->capturing) return fail(INVALID_VALUE, "cuStreamDestroy of a capturing stream");
  delete s;
  return OK;
}
CUresult cuStreamSynchronize(void* stream) {
  if (stream && ((Stream*)stream)->capturing) return fail(CAPTURE_UNSUPPORTED, "cuStreamSynchronize of a capturing stream");
  return OK;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
  Function* fn = (Function*)f;
  if (!fn) return fail(INVALID_HANDLE, "cuLaunchKernel without a function");
  if (extra) return fail(NOT_SUPPORTED, "the fake libcuda takes kernel parameters, not extra");
  if ((unsigned long)bx * by * bz > 1024 || bx * by * bz == 0) return fail(INVALID_VALUE, "kernel " + fn->name + ": a block of " + std::to_string((unsigned long)bx * by * bz) + " threads");
  if (gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535) return fail(INVALID_VALUE, "kernel " + fn->name + ": bad grid");
  if (shared > 49152) return fail(INVALID_VALUE, "kernel " + fn->name + ": too much dynamic shared memory");
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  Stream* s = (Stream*)stream;
  if (s && s->capturing) {
    Node n{fn, {gx, gy, gz}, {bx, by, bz}, {}};
    for (int i = 0; i < fn->params[0]; ++i) {
      const unsigned char* p = (const unsigned char*)params[i];
      n.args.emplace_back(p, p + fn->params[1 + i]);
    }
    s->graph->nodes.push_back(std::move(n));
    return OK;
  }
  return run(fn, grid, block, params);
}

CUresult cuStreamBeginCapture_v2(void* stream, int mode) {
  Stream* s = (Stream*)stream;
  if (!s) return fail(CAPTURE_UNSUPPORTED, "the legacy default stream cannot be captured");
  if (s->capturing) return fail(INVALID_VALUE, "the stream is already capturing");
  s->capturing = true;
  s->mode = mode;
  s->graph = new Graph();
  if (mode == 0) capturesGlobal++;
  return OK;
}
CUresult cuStreamEndCapture(void* stream, void** graph) {
  Stream* s = (Stream*)stream;
  if (!s || !s->capturing) return fail(INVALID_VALUE, "cuStreamEndCapture of a stream that is not capturing");
  s->capturing = false;
  if (s->mode == 0) capturesGlobal--;
  *graph = s->graph;
  s->graph = nullptr;
  return OK;
}
CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long) {
  *exec = new Graph(*(Graph*)graph);
  return OK;
}
CUresult cuGraphLaunch(void* exec, void* stream) {
  if (stream && ((Stream*)stream)->capturing) return fail(NOT_SUPPORTED, "graph launch into a capturing stream");
  for (Node& n : ((Graph*)exec)->nodes) {
    std::vector<void*> args;
    for (auto& a : n.args) args.push_back(a.data());
    if (CUresult r = run(n.fn, n.grid, n.block, args.data())) return r;
  }
  return OK;
}
CUresult cuGraphExecDestroy(void* exec) { delete (Graph*)exec; return OK; }
CUresult cuGraphDestroy(void* graph) { delete (Graph*)graph; return OK; }

CUresult cuEventCreate(void** ev, unsigned) { *ev = new Event(); return OK; }
CUresult cuEventDestroy_v2(void* ev) { delete (Event*)ev; return OK; }
CUresult cuEventRecord(void* ev, void*) { ((Event*)ev)->t = now(); return OK; }
CUresult cuEventSynchronize(void*) { return OK; }
CUresult cuEventElapsedTime(float* ms, void* a, void* b) { *ms = (float)(((Event*)b)->t - ((Event*)a)->t); return OK; }

CUresult cuGetErrorName(CUresult code, const char** s) {
  switch (code) {
    case OK: *s = "CUDA_SUCCESS"; return OK;
    case INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return OK;
    case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return OK;
    case NOT_INITIALIZED: *s = "CUDA_ERROR_NOT_INITIALIZED"; return OK;
    case INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; return OK;
    case NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return OK;
    case ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; return OK;
    case LAUNCH_FAILED: *s = "CUDA_ERROR_LAUNCH_FAILED"; return OK;
    case CAPTURE_UNSUPPORTED: *s = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; return OK;
    case NOT_SUPPORTED: *s = "CUDA_ERROR_NOT_SUPPORTED"; return OK;
    default: *s = nullptr; return INVALID_VALUE;
  }
}
/** The fake's message for the last failure (the real driver has only fixed strings). */
CUresult cuGetErrorString(CUresult code, const char** s) {
  if (code != OK && !lastError.empty()) { *s = lastError.c_str(); return OK; }
  return cuGetErrorName(code, s);
}

}  // extern "C"

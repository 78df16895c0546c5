#!/usr/bin/env bash
# llmc's GPU check, for a Linux machine with an NVIDIA GPU and driver — no Node, npm or CUDA toolkit
# needed. Runs the CUDA backend on random tiny models against the CPU reference, then a decode
# benchmark of a Llama-3-8B-shaped model with random f16 weights against the bandwidth roofline.
#
#   Here (with the repository built):  scripts/gpu-check/build.sh      → gpu-check-bundle.tar.gz
#   There:  tar xzf gpu-check-bundle.tar.gz && gpu-check/gpu-check.sh [--tokens N] [--context N] [--skip-bench]
#   Here, without a GPU:  scripts/gpu-check.sh --dry-run   (compiles, emits, checks the prebuilt PTX,
#                                                           runs the CPU reference)
#
# Environment: LLMC_LIBCUDA=/path/to/libcuda.so.1 when the driver library is somewhere unusual;
# CUDA_VISIBLE_DEVICES picks the GPU (device 0 of those visible is used).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -x "$here/node/bin/node" ] && [ -d "$here/llmc/dist" ]; then
  # Inside an extracted bundle.
  node="$here/node/bin/node"
  app="$here/llmc"
else
  # In the repository.
  app="$(cd "$here/.." && pwd)"
  node="$(command -v node || true)"
  [ -n "$node" ] || { echo "gpu-check: no node here; build the bundle (scripts/gpu-check/build.sh) and run its gpu-check.sh" >&2; exit 2; }
  [ -d "$app/dist" ] || { echo "gpu-check: $app/dist is missing; run npx tsc -p tsconfig.json first" >&2; exit 2; }
fi

dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done

if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
  echo "gpu-check: the bundle is for Linux x86-64, this is $(uname -s) $(uname -m)" >&2
  exit 2
fi
if ! "$node" --version >/dev/null 2>&1; then
  echo "gpu-check: the bundled Node does not start here (it needs glibc 2.28 or newer):" >&2
  "$node" --version || true
  exit 2
fi

if [ "$dry" = 0 ]; then
  if [ -z "${LLMC_LIBCUDA:-}" ] && ! { ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; } \
     && ! ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/lib/wsl/lib/libcuda.so.1 >/dev/null 2>&1; then
    echo "gpu-check: libcuda.so.1 (the NVIDIA driver library) is not installed here; install the NVIDIA driver or set LLMC_LIBCUDA" >&2
    exit 2
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
  fi
fi

kernels="$app/kernels"
[ -d "$kernels" ] || kernels="$app/scripts/gpu-check/kernels"
exec "$node" "$app/scripts/gpu-check/run.mjs" --kernels "$kernels" "$@"

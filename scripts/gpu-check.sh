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
tool=gpu-check
dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if [ -f "$here/llmc/scripts/gpu-check/launch.sh" ]; then . "$here/llmc/scripts/gpu-check/launch.sh"; else . "$here/gpu-check/launch.sh"; fi

[ -d "$kernels" ] || kernels="$app/scripts/gpu-check/kernels"
exec "$node" "$app/scripts/gpu-check/run.mjs" --kernels "$kernels" "$@"

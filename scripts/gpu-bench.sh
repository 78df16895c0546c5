#!/usr/bin/env bash
# llmc's GPU benchmark, for a Linux machine with an NVIDIA GPU and driver — no Node, npm, CUDA
# toolkit or Vulkan loader needed. Checks the CUDA and the WebGPU (Dawn on Vulkan) backends on random
# tiny models against the CPU reference, then measures the Llama-3-8B shape with f16, q8_0 and q4_0
# weights on both: prefill of 512 tokens against the tensor-core peak, decode at contexts 128 and
# 4096 against the bandwidth roofline; a table, and JSON with --json. Within --budget seconds (480).
#
#   Here (with the repository built):  scripts/gpu-bench/build.sh      → gpu-bench-bundle.tar.xz
#   There:  tar xJf gpu-bench-bundle.tar.xz && gpu-bench/gpu-bench.sh --json bench.json
#   Here, without a GPU:  scripts/gpu-bench.sh --dry-run
#
# The Vulkan loader: when `ldconfig -p` lists no libvulkan.so.1, the bundled Debian packages are
# unpacked into a private folder (never into /) and only the libraries this machine lacks are put on
# LD_LIBRARY_PATH. VK_DRIVER_FILES points at NVIDIA's ICD unless it is set already.
# Environment: LLMC_LIBCUDA, CUDA_VISIBLE_DEVICES as for gpu-check.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool=gpu-bench
dry=0
for a in "$@"; do [ "$a" = "--dry-run" ] && dry=1; done
if [ -f "$here/llmc/scripts/gpu-check/launch.sh" ]; then . "$here/llmc/scripts/gpu-check/launch.sh"; else . "$here/gpu-check/launch.sh"; fi
[ -d "$kernels" ] || kernels="$app/scripts/gpu-bench/kernels"

has_lib() { ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 "; }

# unpack_deb DEB DIR: dpkg -x, or ar and tar where there is no dpkg.
unpack_deb() {
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
  local data
  data="$(ar t "$1" | grep '^data\.tar')"
  case "$data" in
    *.xz) ar p "$1" "$data" | xz -d | tar x -C "$2" ;;
    *.zst) ar p "$1" "$data" | zstd -d | tar x -C "$2" ;;
    *) ar p "$1" "$data" | tar xz -C "$2" ;;
  esac
}

# Also in a dry run, which so tries the unpacking.
if ! has_lib libvulkan.so.1; then
  debs=("$app"/vulkan/*.deb)
  if [ -e "${debs[0]}" ]; then
    private="${TMPDIR:-/tmp}/llmc-gpu-bench-vulkan"
    rm -rf "$private"
    mkdir -p "$private/root" "$private/lib"
    for deb in "${debs[@]}"; do unpack_deb "$deb" "$private/root"; done
    # Only what this machine lacks: its own libraries (and the driver's) stay first.
    for so in "$private"/root/usr/lib/x86_64-linux-gnu/*.so.*; do
      name="$(basename "$so")"
      case "$name" in *.so.[0-9]) ;; *) continue ;; esac
      has_lib "$name" || ln -sf "$so" "$private/lib/$name"
    done
    export LD_LIBRARY_PATH="$private/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "gpu-bench: no Vulkan loader here; using the bundled one ($(ls "$private/lib" | tr '\n' ' '))"
  elif [ "$dry" = 0 ]; then
    echo "gpu-bench: no Vulkan loader here and none bundled; the WebGPU rows will fail" >&2
  fi
fi
if [ "$dry" = 0 ]; then
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
    done
  fi
  echo "gpu-bench: Vulkan driver ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-as the loader finds it}}"
fi

exec "$node" "$app/scripts/gpu-bench/run.mjs" --kernels "$kernels" "$@"

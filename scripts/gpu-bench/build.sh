#!/usr/bin/env bash
# Builds gpu-bench-bundle.tar.gz: everything scripts/gpu-bench.sh needs on a GPU machine without
# Node, npm, the CUDA toolkit or a Vulkan loader — gpu-check's bundle (Node, llmc's JavaScript,
# koffi, models, templates; scripts/gpu-check/bundle.sh), plus Dawn's linux-x64 build (the npm
# package webgpu), the Debian packages of the Vulkan loader and the libraries NVIDIA's Vulkan driver
# loads (apt-get download), and PTX for sm_80 and sm_90 of every correctness case and of the
# Llama-3-8B shape in f16, q8_0 and q4_0. Run it from a built checkout (npm ci) on a Linux x86-64
# machine with nvcc and apt-get (Debian or Ubuntu):
#
#   scripts/gpu-bench/build.sh [OUT.tar.xz|OUT.tar.gz]     (default: gpu-bench-bundle.tar.xz)
#
# xz by default: the bundle then takes about 31 MB instead of 48, so that it travels to a lent GPU
# machine beside the repository within the 64 MiB a run may carry.
#
# It ends with a dry run of the bundle itself (its own Node, no GPU), and refuses bundles over 60 MiB.
set -euo pipefail

out="$(realpath -m "${1:-gpu-bench-bundle.tar.xz}")"
. "$(dirname "${BASH_SOURCE[0]}")/../gpu-check/bundle.sh"

# The Vulkan loader, and what NVIDIA's ICD (libGLX_nvidia.so.0) needs: glvnd's dispatch, X11's client.
VULKAN_PACKAGES=(libvulkan1 libglvnd0 libglx0 libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)

command -v apt-get >/dev/null || { echo "gpu-bench build: apt-get is needed here to download the Vulkan loader" >&2; exit 2; }
[ -f "$bundle_repo/node_modules/webgpu/dist/linux-x64/dawn.node" ] || { echo "gpu-bench build: node_modules/webgpu has no linux-x64 dawn.node; run npm ci" >&2; exit 2; }

bundle_begin gpu-bench
mkdir -p "$stage/llmc/scripts/gpu-bench" "$stage/llmc/vulkan"
cp scripts/gpu-bench/run.mjs "$stage/llmc/scripts/gpu-bench/"
cp scripts/gpu-bench.sh "$stage/gpu-bench.sh"
cp scripts/gpu-bench/README.md "$stage/README.md"
bundle_packages chevrotain handlebars koffi @koromix/koffi-linux-x64 webgpu

echo "downloading the Vulkan loader (${VULKAN_PACKAGES[*]}) …"
(cd "$stage/llmc/vulkan" && apt-get download "${VULKAN_PACKAGES[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
for p in "${VULKAN_PACKAGES[@]}"; do ls "$stage/llmc/vulkan/${p}_"*.deb >/dev/null || { echo "gpu-bench build: apt-get download $p failed" >&2; exit 1; }; done

echo "compiling PTX for every case (nvcc) …"
node "$stage/llmc/scripts/gpu-bench/run.mjs" --prebuild "$stage/llmc/kernels"

echo "dry run of the bundle (its own Node) …"
"$stage/gpu-bench.sh" --dry-run

bundle_pack "$out"

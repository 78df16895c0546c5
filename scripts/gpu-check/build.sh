#!/usr/bin/env bash
# Builds gpu-check-bundle.tar.gz: everything scripts/gpu-check.sh needs on a GPU machine without
# Node, npm or the CUDA toolkit — this machine's Node binary (stripped), llmc's compiled JavaScript,
# the packages it imports (koffi with only its linux-x64 glibc native module), the .llm models, the
# kernel templates, and PTX for every check (compiled here by nvcc, for sm_75, sm_80 and sm_90).
# Run it from a built checkout (npm ci) on a Linux x86-64 machine with nvcc:
#
#   scripts/gpu-check/build.sh [OUT.tar.gz]     (default: gpu-check-bundle.tar.gz)
#
# It ends with a dry run of the bundle itself (its own Node, no GPU), and refuses bundles over 60 MiB.
set -euo pipefail

out="$(realpath -m "${1:-gpu-check-bundle.tar.gz}")"
. "$(dirname "${BASH_SOURCE[0]}")/bundle.sh"

bundle_begin gpu-check
cp scripts/gpu-check.sh "$stage/gpu-check.sh"
cp scripts/gpu-check/README.md "$stage/README.md"
bundle_packages chevrotain handlebars koffi @koromix/koffi-linux-x64

echo "compiling PTX for every check (nvcc) …"
node "$stage/llmc/scripts/gpu-check/run.mjs" --prebuild "$stage/llmc/kernels"

echo "dry run of the bundle (its own Node) …"
"$stage/gpu-check.sh" --dry-run

bundle_pack "$out"

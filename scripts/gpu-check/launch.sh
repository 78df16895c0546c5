# Sourced by scripts/gpu-check.sh and scripts/gpu-bench.sh, in the repository or in an extracted
# bundle: finds the Node and the llmc to run ($node, $app), checks this machine can run them, and,
# unless $dry is 1, that the NVIDIA driver library is installed. Needs $tool (for messages), $here
# (the launcher's folder) and $dry.

if [ -x "$here/node/bin/node" ] && [ -d "$here/llmc/dist" ]; then
  # Inside an extracted bundle.
  node="$here/node/bin/node"
  app="$here/llmc"
else
  # In the repository.
  app="$(cd "$here/.." && pwd)"
  node="$(command -v node || true)"
  [ -n "$node" ] || { echo "$tool: no node here; build the bundle (scripts/$tool/build.sh) and run its $tool.sh" >&2; exit 2; }
  [ -d "$app/dist" ] || { echo "$tool: $app/dist is missing; run npx tsc -p tsconfig.json first" >&2; exit 2; }
fi

if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
  echo "$tool: the bundle is for Linux x86-64, this is $(uname -s) $(uname -m)" >&2
  exit 2
fi
if ! "$node" --version >/dev/null 2>&1; then
  echo "$tool: the bundled Node does not start here (it needs glibc 2.28 or newer):" >&2
  "$node" --version || true
  exit 2
fi

if [ "$dry" = 0 ]; then
  if [ -z "${LLMC_LIBCUDA:-}" ] && ! { ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; } \
     && ! ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/lib/wsl/lib/libcuda.so.1 >/dev/null 2>&1; then
    echo "$tool: libcuda.so.1 (the NVIDIA driver library) is not installed here; install the NVIDIA driver or set LLMC_LIBCUDA" >&2
    exit 2
  fi
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
  fi
fi

kernels="$app/kernels"

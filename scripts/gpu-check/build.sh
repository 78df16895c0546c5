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

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(realpath -m "${1:-gpu-check-bundle.tar.gz}")"
cd "$repo"

command -v node >/dev/null || { echo "build.sh: node is needed here" >&2; exit 2; }
command -v nvcc >/dev/null || [ -n "${LLMC_NVCC:-}" ] || { echo "build.sh: nvcc is needed here to compile the PTX" >&2; exit 2; }
[ -d node_modules/koffi ] || { echo "build.sh: run npm ci first" >&2; exit 2; }

echo "compiling TypeScript …"
npx tsc -p tsconfig.json

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/gpu-check"
mkdir -p "$stage/node/bin" "$stage/llmc/scripts/gpu-check" "$stage/llmc/node_modules"

echo "copying Node $(node --version) …"
nodebin="$(node -p process.execPath)"
if command -v strip >/dev/null; then strip -o "$stage/node/bin/node" "$nodebin"; else cp "$nodebin" "$stage/node/bin/node"; fi
chmod +x "$stage/node/bin/node"

echo "copying llmc …"
cp package.json "$stage/llmc/"
cp -r models codegen-templates "$stage/llmc/"
cp -r dist "$stage/llmc/"
find "$stage/llmc/dist" \( -name '*.map' -o -name '*.d.ts' \) -delete
cp scripts/gpu-check/run.mjs "$stage/llmc/scripts/gpu-check/"
cp scripts/gpu-check.sh "$stage/gpu-check.sh"
cp scripts/gpu-check/README.md "$stage/README.md" 2>/dev/null || true

echo "copying packages …"
node --input-type=module - "$repo" "$stage/llmc/node_modules" <<'JS'
// The runtime closure of the packages llmc's CUDA check imports, from package.json dependencies.
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
const [repo, dest] = process.argv.slice(2);
const want = ["chevrotain", "handlebars", "koffi", "@koromix/koffi-linux-x64"];
const done = new Set();
while (want.length) {
  const name = want.pop();
  if (done.has(name)) continue;
  done.add(name);
  const src = join(repo, "node_modules", name);
  if (!existsSync(src)) throw new Error(`package ${name} is not installed`);
  cpSync(src, join(dest, name), { recursive: true, dereference: true });
  const pkg = JSON.parse(readFileSync(join(src, "package.json"), "utf8"));
  want.push(...Object.keys(pkg.dependencies ?? {}));
}
// koffi: its C++ sources are not needed, nor the musl build of the native module.
for (const p of ["koffi/src/koffi/src/abi", "koffi/lib", "koffi/vendor", "koffi/doc", "@koromix/koffi-linux-x64/musl_x64"]) rmSync(join(dest, p), { recursive: true, force: true });
console.log(`  ${[...done].sort().join(", ")}`);
JS

echo "compiling PTX for every check (nvcc) …"
node "$stage/llmc/scripts/gpu-check/run.mjs" --prebuild "$stage/llmc/kernels"

echo "dry run of the bundle (its own Node) …"
"$stage/gpu-check.sh" --dry-run

tar czf "$out" -C "$work" gpu-check
size=$(stat -c %s "$out")
echo "wrote $out ($((size / 1048576)) MiB; $(du -sh "$stage" | cut -f1) unpacked)"
if [ "$size" -gt $((60 * 1048576)) ]; then echo "build.sh: the bundle is over 60 MiB" >&2; exit 1; fi

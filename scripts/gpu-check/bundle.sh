# Sourced by scripts/gpu-check/build.sh and scripts/gpu-bench/build.sh: the steps every GPU bundle
# shares. A bundle is a folder $stage (named after the tool) holding this machine's Node binary
# (stripped) in node/, and in llmc/ llmc's compiled JavaScript, the .llm models, the kernel
# templates, the scripts under scripts/gpu-check/ and the tool's own, and the npm packages it
# imports; bundle_pack makes the archive and refuses it over 60 MiB.

bundle_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# bundle_begin TOOL: checks the tools, compiles TypeScript, makes $work and $stage.
bundle_begin() {
  local tool=$1
  cd "$bundle_repo"
  command -v node >/dev/null || { echo "$tool build: node is needed here" >&2; exit 2; }
  command -v nvcc >/dev/null || [ -n "${LLMC_NVCC:-}" ] || { echo "$tool build: nvcc is needed here to compile the PTX" >&2; exit 2; }
  [ -d node_modules/koffi ] || { echo "$tool build: run npm ci first" >&2; exit 2; }
  echo "compiling TypeScript …"
  npx tsc -p tsconfig.json
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  stage="$work/$tool"
  mkdir -p "$stage/node/bin" "$stage/llmc/scripts/gpu-check" "$stage/llmc/node_modules"

  echo "copying Node $(node --version) …"
  local nodebin
  nodebin="$(node -p process.execPath)"
  if command -v strip >/dev/null; then strip -o "$stage/node/bin/node" "$nodebin"; else cp "$nodebin" "$stage/node/bin/node"; fi
  chmod +x "$stage/node/bin/node"

  echo "copying llmc …"
  cp package.json "$stage/llmc/"
  cp -r codegen-templates dist "$stage/llmc/"
  # The architectures only: models/examples also holds trained weights.
  find models -name '*.llm' -exec cp --parents {} "$stage/llmc/" \;
  find "$stage/llmc/dist" \( -name '*.map' -o -name '*.d.ts' \) -delete
  cp scripts/gpu-check/*.mjs scripts/gpu-check/launch.sh "$stage/llmc/scripts/gpu-check/"
}

# bundle_packages NAME…: the named npm packages and their dependencies, without what is not run here
# (koffi's sources and musl module; every Dawn build but linux-x64's).
bundle_packages() {
  echo "copying packages …"
  node --input-type=module - "$bundle_repo" "$stage/llmc/node_modules" "$@" <<'JS'
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
const [repo, dest, ...want] = process.argv.slice(2);
// webgpu's dependencies are for its build scripts and types; index.js needs only dawn.node.
const skipDependencies = new Set(["webgpu"]);
const done = new Set();
while (want.length) {
  const name = want.pop();
  if (done.has(name)) continue;
  done.add(name);
  const src = join(repo, "node_modules", name);
  if (!existsSync(src)) throw new Error(`package ${name} is not installed`);
  cpSync(src, join(dest, name), { recursive: true, dereference: true });
  const pkg = JSON.parse(readFileSync(join(src, "package.json"), "utf8"));
  if (!skipDependencies.has(name)) want.push(...Object.keys(pkg.dependencies ?? {}));
}
const drop = ["koffi/src/koffi/src/abi", "koffi/lib", "koffi/vendor", "koffi/doc", "@koromix/koffi-linux-x64/musl_x64"];
if (done.has("webgpu")) {
  drop.push("webgpu/build", "webgpu/test", "webgpu/types.d.ts");
  for (const d of ["darwin-universal", "linux-arm64", "win32-arm64", "win32-x64"]) drop.push(`webgpu/dist/${d}`);
}
for (const p of drop) rmSync(join(dest, p), { recursive: true, force: true });
console.log(`  ${[...done].sort().join(", ")}`);
JS
}

# bundle_pack OUT: packs $stage as OUT.tar.gz, or OUT.tar.xz (a third smaller, slower to make), and
# checks the size.
bundle_pack() {
  local out=$1
  case "$out" in
    *.tar.xz) tar cf - -C "$work" "$(basename "$stage")" | xz -T0 -6 >"$out" ;;
    *) tar czf "$out" -C "$work" "$(basename "$stage")" ;;
  esac
  local size
  size=$(stat -c %s "$out")
  echo "wrote $out ($((size / 1048576)) MiB; $(du -sh "$stage" | cut -f1) unpacked)"
  if [ "$size" -gt $((60 * 1048576)) ]; then echo "the bundle is over 60 MiB" >&2; exit 1; fi
}

// The browser bundle (scripts/build-web.mjs → dist/web/llmc.js) holds none of Node's modules: no
// node: builtin, no koffi, no Dawn (`webgpu`). Read from esbuild's metafile, so a new import of
// node:fs in a shared module fails here, not in a user's page.

import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { beforeAll, describe, expect, it } from "vitest";

interface Metafile {
  outputs: Record<string, { bytes: number; inputs: Record<string, unknown>; imports: { path: string; external?: boolean }[] }>;
}

let meta: Metafile;

beforeAll(() => {
  execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "pipe" });
  meta = JSON.parse(readFileSync("dist/web/meta.json", "utf8")) as Metafile;
}, 120_000);

const NODE_ONLY = [/^node:/, new RegExp(`^(${builtinModules.join("|")})(/|$)`), /(^|\/)node_modules\/koffi\//, /(^|\/)node_modules\/webgpu\//];

/** The inputs of an output that are Node-only, e.g. ["node:fs", "node_modules/koffi/index.js"]. */
function nodeOnlyInputs(output: string): string[] {
  const out = meta.outputs[output];
  if (!out) throw new Error(`${output} is not in the metafile`);
  const names = [...Object.keys(out.inputs), ...out.imports.map((i) => i.path)];
  return names.filter((n) => NODE_ONLY.some((re) => re.test(n)));
}

describe("the llmc/web bundle", () => {
  it("is one ESM file with a sourcemap", () => {
    expect(statSync("dist/web/llmc.js").size).toBeGreaterThan(100_000);
    expect(statSync("dist/web/llmc.js.map").size).toBeGreaterThan(0);
    expect(readFileSync("dist/web/llmc.js", "utf8")).toMatch(/export\{/);
  });

  it("has no Node builtin, koffi or Dawn among its inputs", () => {
    expect(nodeOnlyInputs("dist/web/llmc.js")).toEqual([]);
  });

  it("takes the browser twins of the Node-only modules", () => {
    const inputs = Object.keys(meta.outputs["dist/web/llmc.js"]!.inputs);
    for (const twin of ["src/compiler/base/files.browser.ts", "src/runtime/webgpu/device.browser.ts", "src/runtime/weights/file.browser.ts", "src/runtime/cuda/probe.browser.ts"]) {
      expect(inputs).toContain(twin);
    }
    expect(inputs).not.toContain("src/runtime/webgpu/device.ts");
    expect(inputs).not.toContain("src/runtime/cuda/driver.ts");
  });

  it("takes of @huggingface/tasks only the GGUF helpers @huggingface/gguf imports", () => {
    const tasks = Object.entries(meta.outputs["dist/web/llmc.js"]!.inputs as Record<string, { bytesInOutput: number }>).filter(([path]) => path.includes("node_modules/@huggingface/tasks/"));
    expect(tasks.map(([path]) => path)).toEqual(["node_modules/@huggingface/tasks/dist/esm/gguf.js"]);
    expect(tasks.reduce((a, [, i]) => a + i.bytesInOutput, 0)).toBeLessThan(20_000);
  });

  it("the check would catch a Node module", () => {
    const out = meta.outputs["dist/web/llmc.js"]!;
    const planted: Metafile = { outputs: { x: { ...out, inputs: { ...out.inputs, "node:fs": {}, "node_modules/koffi/index.js": {}, "node_modules/webgpu/index.js": {} } } } };
    const saved = meta;
    meta = planted;
    try {
      expect(nodeOnlyInputs("x")).toEqual(["node:fs", "node_modules/koffi/index.js", "node_modules/webgpu/index.js"]);
    } finally {
      meta = saved;
    }
  });
});

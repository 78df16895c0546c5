#!/usr/bin/env node
// Builds the browser entry (src/web/index.ts) into dist/web/llmc.js: one minified ESM file with a
// sourcemap and esbuild's metafile (test/web/bundle.test.ts reads it to prove no Node-only module got
// in). The playground page (web/main.ts, when it exists) is bundled beside it as dist/web/playground.js.
//
// Node-only modules have a browser twin: a relative import of `x.js` resolves to `x.browser.ts` when
// that file exists next to `x.ts` (file access, Dawn, koffi stay behind the Node entry). The std
// library, the bundled .llm files and the kernel templates are embedded as strings through the
// virtual module `llmc:embedded` (src/web/embedded.d.ts).

import { build } from "esbuild";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "dist", "web");

/** Every file under `dir` whose name ends with `ext`, by its path relative to `base`, sorted. */
function filesUnder(dir, ext, base = dir) {
  const out = {};
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(out, filesUnder(full, ext, base));
    else if (name.endsWith(ext)) out[relative(base, full).split("\\").join("/")] = readFileSync(full, "utf8");
  }
  return out;
}

const browserTwins = {
  name: "llmc-browser-twins",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const twin = resolve(args.resolveDir, args.path.replace(/\.js$/, ".browser.ts"));
      return existsSync(twin) ? { path: twin } : undefined;
    });
  },
};

/** @huggingface/gguf names its browser build only in the "browser" field, which its "exports" hide
 *  from esbuild; the Node build would bring its local-file reader (node:fs). */
const ggufBrowserBuild = {
  name: "llmc-gguf-browser",
  setup(b) {
    b.onResolve({ filter: /^@huggingface\/gguf$/ }, () => ({ path: join(root, "node_modules", "@huggingface", "gguf", "dist", "browser", "index.mjs") }));
  },
};

/** @huggingface/gguf takes an enum and a few quant-label helpers from @huggingface/tasks, whose
 *  package does not say it is free of side effects, so esbuild kept all of it (~235 KB of model
 *  task metadata): it is, and only what is used stays. */
const tasksWithoutSideEffects = {
  name: "llmc-tasks-pure",
  setup(b) {
    b.onResolve({ filter: /^@huggingface\/tasks$/ }, async (args) => {
      if (args.pluginData === "llmc-tasks-pure") return undefined;
      const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: "llmc-tasks-pure" });
      return r.errors.length ? { errors: r.errors } : { path: r.path, sideEffects: false };
    });
  },
};

const embedded = {
  name: "llmc-embedded",
  setup(b) {
    b.onResolve({ filter: /^llmc:embedded$/ }, () => ({ path: "embedded", namespace: "llmc" }));
    b.onLoad({ filter: /.*/, namespace: "llmc" }, () => ({
      loader: "js",
      contents: [
        `export const models = ${JSON.stringify(filesUnder(join(root, "models"), ".llm"))};`,
        `export const templates = ${JSON.stringify(filesUnder(join(root, "codegen-templates", "wgsl"), ".hbs"))};`,
      ].join("\n"),
      watchFiles: [join(root, "models"), join(root, "codegen-templates", "wgsl")],
    }));
  },
};

/** The hook for the playground (web/main.ts): bundled with the same rules when it exists. */
const entries = [{ in: join(root, "src", "web", "index.ts"), out: "llmc" }];
if (existsSync(join(root, "web", "main.ts"))) entries.push({ in: join(root, "web", "main.ts"), out: "playground" });

mkdirSync(outdir, { recursive: true });
const result = await build({
  entryPoints: entries,
  outdir,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: "none",
  plugins: [browserTwins, ggufBrowserBuild, tasksWithoutSideEffects, embedded],
  logLevel: "warning",
});
writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  if (file.endsWith(".js")) console.log(`${relative(root, join(root, file))}: ${(out.bytes / 1024).toFixed(1)} KiB`);
}

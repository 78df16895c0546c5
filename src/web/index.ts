// llmc in a browser: `import { compileModel, loadModel } from "llmc/web"`. The same compiler and
// runtime as in Node; only file access and the device differ, behind each Node-only module's browser
// twin (scripts/build-web.mjs picks `x.browser.ts` for `x.js`): the bundled .llm files are embedded,
// weights come as bytes, a Blob or a URL, and WebGPU is the page's navigator.gpu.

import { models } from "llmc:embedded";
import type { Diagnostic } from "../compiler/base/diagnostics.js";
import { resolve } from "../compiler/base/files.js";
import { compileFile } from "../compiler/compile.js";
import { architectureFile } from "../compiler/import/architectures.js";
import { printGraph } from "../compiler/ir/text.js";
import { compileWgsl, NOMINAL_LIMITS, wgslProfile } from "../compiler/target/wgsl.js";
import { InputError } from "../runtime/generate/errors.js";
import { ggufModelSource } from "../runtime/generate/source.js";
import { openModel, type Model } from "../runtime/model.js";
import { readGGUF } from "../runtime/weights/gguf-reader.js";
import { loadModelWeights } from "../runtime/weights/loader.js";
import { modelTensors } from "../runtime/weights/model-tensors.js";
import { weightBytes } from "./weights.js";

export type { Model, Logprobs, ModelGenerateOptions, TokenLogprob } from "../runtime/model.js";
export type { GeneratedToken } from "../runtime/generate/generate.js";
export { fetchWeights } from "./weights.js";

/** The .llm files llmc ships (models/**\/*.llm, the std library among them) by path: "models/llama.llm". */
export const bundledModels: Record<string, string> = Object.fromEntries(Object.entries(models).map(([path, text]) => [`models/${path}`, text]));

export interface WebDiagnostic {
  severity: "error" | "warning";
  code?: string;
  message: string;
  file: string;
  line: number;
  column: number;
  endLine?: number;
  endColumn?: number;
}

export interface CompileModelResult {
  diagnostics: WebDiagnostic[];
  info?: { name: string; config: Record<string, unknown>; weights: { name: string; shape: number[]; dtype: string }[]; params: number };
  /** The IR after the passes. */
  ir?: string;
  /** The decode step's kernels, named as `llmc compile --target wgsl` writes them. */
  wgsl?: { name: string; code: string }[];
}

export interface CompileModelOptions {
  /** The source's path (for diagnostics and relative imports); default "model.llm". */
  path?: string;
  /** Other files by path, for the source's imports; the bundled models are always there. */
  files?: Record<string, string>;
  /** Config values, as `llmc compile --set name=value`. */
  set?: Record<string, number | string | boolean>;
}

/** Checks and compiles a .llm source; every diagnostic comes back, nothing throws for bad input. */
export function compileModel(source: string, opts: CompileModelOptions = {}): CompileModelResult {
  const root = resolve(opts.path ?? "model.llm");
  const overlay = new Map<string, string>(Object.entries(opts.files ?? {}).map(([p, text]) => [resolve(p), text]));
  overlay.set(root, source);
  const overrides = new Map(Object.entries(opts.set ?? {}).map(([k, v]) => [k, String(v)]));
  const res = compileFile(root, { overlay, overrides });
  const diagnostics = res.diagnostics.flatMap(webDiagnostic);
  if (!res.compiled) return { diagnostics };
  const { model, graph, params } = res.compiled;
  const config: Record<string, unknown> = {};
  for (const [name, entry] of model.config) if (entry.value) config[name] = entry.value.value;
  const weights = modelTensors(model).map((t) => ({ name: t.irName, shape: [...t.shape], dtype: "f32" }));
  const result: CompileModelResult = { diagnostics, info: { name: model.name, config, weights, params }, ir: printGraph(graph) };
  try {
    // The kernels `llmc compile --target wgsl` writes by default (its llvmpipe tuning).
    const program = compileWgsl(graph, { profile: wgslProfile(true, NOMINAL_LIMITS.llvmpipe) });
    result.wgsl = program.step(1).kernels.map((k, i) => ({
      name: `decode-${String(i).padStart(3, "0")}.wgsl`,
      code: `// decode dispatch ${i}: ${k.label}; workgroups [${k.workgroups.join(", ")}]${program.step(1).greedyOnly[i] ? "; greedy decoding only" : ""}\n${k.code}`,
    }));
  } catch (e) {
    result.diagnostics.push({ severity: "error", message: `the WGSL target refused the model: ${(e as Error).message}`, file: res.check.program.root, line: 1, column: 1 });
  }
  return result;
}

function webDiagnostic(d: Diagnostic): WebDiagnostic[] {
  if (d.severity === "note") return [];
  const span = d.span;
  return [{
    severity: d.severity,
    code: d.code,
    message: d.message,
    file: span?.file ?? "",
    line: span?.start.line ?? 1,
    column: span?.start.column ?? 1,
    ...(span ? { endLine: span.end.line, endColumn: span.end.column } : {}),
  }];
}

export interface WebLoadModelOptions {
  /**
   * A .llm architecture source to use instead of the bundled one the file names (`--arch`); it may
   * import the bundled models and `files`.
   */
  llm?: string;
  /** The `llm` source's path (for diagnostics and relative imports); default "model.llm". */
  path?: string;
  /** Other .llm files by path, for the `llm` source's imports (as compileModel's `files`). */
  files?: Record<string, string>;
  /** Where to run: WebGPU (navigator.gpu) or the CPU reference interpreter; default WebGPU when the page has an adapter, else the CPU. */
  backend?: "webgpu" | "cpu";
  /** Bytes of the weight file had so far (downloaded for a URL, read for a Blob or buffer), of `total`. */
  onProgress?: (loaded: number, total?: number) => void;
  /** Keep a downloaded file in the Cache API and use it next time (default true). */
  cache?: boolean;
  /** Positions the KV cache holds; default the model's max_seq_len, at most 4096. */
  maxSeqLen?: number;
  /** Config values to set, as `llmc run --set name=value`. */
  set?: Record<string, number | string | boolean>;
  signal?: AbortSignal;
}

/** Loads a GGUF model from bytes, a Blob (a File the user picked) or a URL, and puts it on the page's GPU. */
export async function loadModel(weights: ArrayBuffer | Uint8Array | Blob | string, opts: WebLoadModelOptions = {}): Promise<Model> {
  const { name, source } = await weightBytes(weights, opts);
  const file = await readGGUF(name, source);
  try {
    let arch = null;
    // The caller's sources stay in memory for the whole load: the architecture is checked here, and
    // compiled later (in openModel) from the file the GGUF's values make of it, which imports it.
    const files = new Map<string, string>(Object.entries(opts.files ?? {}).map(([p, text]) => [resolve(p), text]));
    if (opts.llm !== undefined) {
      const path = resolve(opts.path ?? "model.llm");
      files.set(path, opts.llm);
      const res = architectureFile(path, { overlay: files });
      if (!("arch" in res)) throw new InputError(`the architecture source has errors: ${res.errors.map((d) => d.message).join("; ") || "it declares no model"}`);
      arch = res.arch;
    }
    const modelSource = ggufModelSource(file, arch, files.size > 0 ? files : undefined);
    const streamed = typeof weights !== "string";
    return await openModel(modelSource, (model, onProgress) => loadModelWeights(model, file, { onProgress }), {
      backend: opts.backend ?? "auto",
      onNote: (m) => console.warn(`llmc: ${m}`),
      ...(opts.maxSeqLen !== undefined ? { maxSeqLen: opts.maxSeqLen } : {}),
      ...(opts.set ? { overrides: opts.set } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      // A download reported its bytes as they came; bytes and Blobs are reported as their tensors are read.
      ...(streamed && opts.onProgress ? { onProgress: (p: { bytes: number; bytesTotal: number }) => opts.onProgress!(p.bytes, p.bytesTotal) } : {}),
    });
  } finally {
    await file.close();
  }
}

// Which .llm file describes a model file. A model declares the names file formats give its
// architecture in its header (`model qwen2 extends llama gguf "qwen2" hf "qwen2" { … }`): a GGUF
// file's general.architecture, a Hugging Face config.json's model_type. Loading a file finds the
// bundled model (models/*.llm, scanned once) that declares the file's name; `--arch FILE.llm` names
// the model instead.

import { filesIn, join, readSourceFile, resolve } from "../base/files.js";
import { checkFile } from "../check/index.js";
import type { LoadOptions } from "../check/sources.js";
import type { ModelDecls, ResolvedModel } from "../check/model.js";
import type { Diagnostic, SourceMap } from "../base/diagnostics.js";
import { parseModule, type KeyFormat, type ModelDecl } from "../parse/index.js";
import { bundledModelsDir } from "../../paths.js";

/** A model that a file's config values can be bound to. */
export interface Architecture {
  /** The model with no file values: abstract models leave some config values unbound. */
  model: ResolvedModel;
  /** The models its file and imports declare, to resolve it again with a file's values. */
  decls: ModelDecls;
  /** What a .llm file that extends it imports: "llama.llm" for a bundled model, else the file's absolute path. */
  importPath: string;
}

interface Declaration {
  file: string; // in models/
  model: string;
  base: boolean; // extends no other model
}

interface BundledIndex {
  byName: Record<KeyFormat, Map<string, Declaration>>;
  models: string[];
}

let index: BundledIndex | null = null;
const loaded = new Map<string, Architecture>();

/** The names every bundled model declares, read once from models/*.llm (parsed only). */
function bundledIndex(): BundledIndex {
  if (index) return index;
  const dir = bundledModelsDir();
  const decls: (Declaration & { format: KeyFormat; name: string })[] = [];
  const models: string[] = [];
  for (const file of filesIn(dir, ".llm")) {
    const text = readSourceFile(join(dir, file), Infinity);
    if (text instanceof Error) throw new Error(`cannot read bundled models/${file}: ${text.message}`);
    const { module } = parseModule(file, text);
    for (const item of module.items) {
      if (item.kind !== "Model") continue;
      models.push(item.name.name);
      for (const f of item.formatNames) {
        for (const name of f.names) decls.push({ file, model: item.name.name, base: item.extends === null, format: f.format, name });
      }
    }
  }
  // Base architectures first, so lists of supported names start with the families.
  decls.sort((a, b) => Number(b.base) - Number(a.base) || a.file.localeCompare(b.file));
  const byName: BundledIndex["byName"] = { gguf: new Map(), hf: new Map() };
  for (const d of decls) {
    const other = byName[d.format].get(d.name);
    if (other) throw new Error(`models/${other.file} and models/${d.file} both declare ${d.format} "${d.name}"`);
    byName[d.format].set(d.name, d);
  }
  return (index = { byName, models });
}

/** The names bundled models declare for a format (GGUF architectures, HF model types), families first. */
export function supportedNames(format: KeyFormat): string[] {
  return [...bundledIndex().byName[format].keys()];
}

/** The names of every bundled model: an imported model must not take one. */
export function bundledModelNames(): string[] {
  return bundledIndex().models;
}

/** The bundled model that declares this name for the format, or null. */
export function findArchitecture(format: KeyFormat, name: string): Architecture | null {
  const d = bundledIndex().byName[format].get(name);
  if (!d) return null;
  const key = `${d.file}:${d.model}`;
  let arch = loaded.get(key);
  if (!arch) {
    const res = checkFile(join(bundledModelsDir(), d.file), { model: d.model });
    const errors = res.diagnostics.filter((x) => x.severity === "error");
    if (errors.length > 0 || !res.model) throw new Error(`bundled models/${d.file} does not check: ${errors[0]?.message ?? "no model"}`);
    arch = { model: res.model, decls: { models: res.models }, importPath: d.file };
    loaded.set(key, arch);
  }
  return arch;
}

/** A .llm file given by the user (`--arch`): its last model, or the diagnostics that stop it. */
export function architectureFile(path: string, opts: LoadOptions = {}): { arch: Architecture } | { errors: Diagnostic[]; sources: SourceMap } {
  const res = checkFile(path, opts);
  const errors = res.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || !res.model) return { errors, sources: res.program.sources };
  return { arch: { model: res.model, decls: { models: res.models }, importPath: resolve(path) } };
}

/**
 * The names a format gives a model: those of the nearest model of its extends chain that declares
 * any (a model that declares none is known by its base's names: Mistral is "llama" to llama.cpp).
 */
export function declaredNames(model: ResolvedModel, format: KeyFormat): string[] {
  for (let i = model.chain.length - 1; i >= 0; i--) {
    const names = namesOf(model.chain[i]!, format);
    if (names.length > 0) return names;
  }
  return [];
}

/** Every name the model or a model it extends declares for the format. */
export function acceptedNames(model: ResolvedModel, format: KeyFormat): string[] {
  return model.chain.flatMap((m) => namesOf(m, format));
}

function namesOf(m: ModelDecl, format: KeyFormat): string[] {
  return m.formatNames.filter((f) => f.format === format).flatMap((f) => f.names);
}

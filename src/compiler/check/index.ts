// The checker's entry: load a file and its imports, resolve names, evaluate config, resolve weights
// and check every tensor shape of each model's forward pass. All diagnostics are collected.

import type * as A from "../parse/ast.js";
import { error, sortDiagnostics, type Diagnostic } from "../base/diagnostics.js";
import { loadProgram, type LoadOptions, type Program } from "./sources.js";
import { resolveModel, type ResolvedModel } from "./model.js";
import { checkNames, modelNames } from "./names.js";
import { Elaborator } from "./elaborate.js";
import { typeOnlyDomain } from "./values.js";

export interface CheckOptions extends LoadOptions {
  /** `--set name=value` config overrides. */
  overrides?: ReadonlyMap<string, string>;
  /** Which model of the root file to resolve; default: the last one declared there. */
  model?: string;
  /** Require every config value to be bound (compile/info); `check` accepts abstract models. */
  requireConcrete?: boolean;
}

export interface CheckResult {
  program: Program;
  fns: Map<string, A.FnDecl>;
  models: Map<string, { decl: A.ModelDecl; file: string }>;
  /** The resolved model (the selected one), if there is one and it resolved. */
  model: ResolvedModel | null;
  /** Models of the root file that were resolved and checked. */
  checked: ResolvedModel[];
  diagnostics: Diagnostic[]; // errors and notes, sorted by place
}

export function checkFile(path: string, opts: CheckOptions = {}): CheckResult {
  const program = loadProgram(path, opts);
  const diags = program.diagnostics;
  const fns = new Map<string, A.FnDecl>();
  const models = new Map<string, { decl: A.ModelDecl; file: string }>();
  const result: CheckResult = { program, fns, models, model: null, checked: [], diagnostics: diags };

  for (const [file, mod] of program.modules) {
    for (const item of mod.items) {
      const name = item.name.name;
      const prev = item.kind === "Fn" ? fns.get(name) : models.get(name)?.decl;
      if (prev) {
        diags.push(error("E0202", `${item.kind === "Fn" ? "function" : "model"} '${name}' is defined twice`, item.name.span, [{ message: "first defined here", span: prev.name.span }]));
        continue;
      }
      if (item.kind === "Fn") fns.set(name, item);
      else models.set(name, { decl: item, file });
    }
  }

  // Names in every function body, whether or not a model calls it.
  const topNames = new Set(fns.keys());
  for (const [file, mod] of program.modules) {
    if (program.parseFailed.has(file)) continue;
    for (const item of mod.items) {
      if (item.kind === "Fn") checkNames(item, topNames, null, diags);
      else {
        const chain = chainOf(item, models);
        const names = modelNames(chain);
        for (const mem of item.members) if (mem.kind === "Fn") checkNames(mem, topNames, names, diags);
      }
    }
  }

  const rootModule = program.modules.get(program.root);
  const rootModels = (rootModule?.items ?? []).filter((i): i is A.ModelDecl => i.kind === "Model");
  let selected: string[];
  if (opts.model) {
    if (!models.has(opts.model)) {
      diags.push(error("E0201", `no model named '${opts.model}' in ${program.root} or its imports (models: ${[...models.keys()].join(", ") || "none"})`, null));
      selected = [];
    } else selected = [opts.model];
  } else if (opts.requireConcrete) {
    selected = rootModels.length > 0 ? [rootModels[rootModels.length - 1]!.name.name] : [];
    if (selected.length === 0 && program.modules.size > 0 && !program.parseFailed.has(program.root)) {
      diags.push(error("E0209", `${program.root} declares no model`, null));
    }
  } else selected = rootModels.map((m) => m.name.name);

  const overrides = opts.overrides ?? new Map<string, string>();
  const parsedOk = program.parseFailed.size === 0;
  for (const name of selected) {
    const before = diags.length;
    const model = resolveModel(name, { models }, overrides, diags);
    if (!model) continue;
    const configOk = !diags.slice(before).some((d) => d.severity === "error");
    if (name === selected[selected.length - 1]) result.model = model;
    if (model.unbound.length > 0) {
      if (opts.requireConcrete) {
        for (const n of model.unbound) {
          const e = model.config.get(n)!;
          diags.push(error("E0401", `config '${n}' of model '${name}' has no value: pass --set ${n}=…, or use a model that extends '${name}' and binds it (see 'llmc import')`, e.decl.name.span));
        }
      }
      continue;
    }
    result.checked.push(model);
    // Shapes are checked only for a well-formed config: a failed requirement would only cascade.
    if (parsedOk && configOk) new Elaborator({ fns }, model, typeOnlyDomain, diags).run();
  }

  result.diagnostics = dedupe(sortDiagnostics(diags));
  return result;
}

function chainOf(m: A.ModelDecl, models: Map<string, { decl: A.ModelDecl }>): A.ModelDecl[] {
  const chain: A.ModelDecl[] = [];
  const seen = new Set<string>();
  let cur: A.ModelDecl | undefined = m;
  while (cur && !seen.has(cur.name.name)) {
    seen.add(cur.name.name);
    chain.unshift(cur);
    cur = cur.extends ? models.get(cur.extends.name)?.decl : undefined;
  }
  return chain;
}

/** Two phases may find the same fault at the same place; keep the first report. */
function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const key = d.span ? `${d.code}|${d.span.file}|${d.span.start.offset}` : `${d.code}|${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export { loadProgram } from "./sources.js";
export { parameterCount, type ResolvedModel } from "./model.js";

// The compiler driver: .llm file → checked model → graph IR → passes. Used by `llmc compile` and by
// the runtime when it loads a model.

import { checkFile, type CheckOptions, type CheckResult } from "./check/index.js";
import { parameterCount, type ResolvedModel } from "./check/model.js";
import type { Diagnostic, SourceMap } from "./base/diagnostics.js";
import { renumber, type Graph } from "./ir/graph.js";
import { lowerModel } from "./ir/lower.js";
import { runPasses, type PassOptions } from "./passes/index.js";

export interface CompileOptions extends CheckOptions, PassOptions {}

export interface Compiled {
  model: ResolvedModel;
  graph: Graph; // after passes, generic in T and P
  params: number;
}

export interface CompileResult {
  compiled: Compiled | null;
  diagnostics: Diagnostic[];
  sources: SourceMap;
  check: CheckResult;
}

export function compileFile(path: string, opts: CompileOptions = {}): CompileResult {
  const check = checkFile(path, { ...opts, requireConcrete: true });
  const fail = (diagnostics: Diagnostic[]): CompileResult => ({ compiled: null, diagnostics, sources: check.program.sources, check });
  if (check.diagnostics.some((d) => d.severity === "error") || !check.model) return fail(check.diagnostics);
  const lowered = lowerModel({ fns: check.fns }, check.model);
  if (!lowered.graph) return fail([...check.diagnostics, ...lowered.diagnostics]);
  const graph = renumber(runPasses(lowered.graph, opts));
  return {
    compiled: { model: check.model, graph, params: parameterCount(check.model) },
    diagnostics: check.diagnostics,
    sources: check.program.sources,
    check,
  };
}

// Loads a root .llm file and everything it imports (transitively), parsing each once. Imports are
// looked up next to the importing file, then in the bundled models/ folder. Missing files and cycles
// are diagnostics at the import that caused them.

import { dirname, isAbsolute, isFile, readSourceFile, relative, resolve, workingDirectory } from "../base/files.js";
import { parseModule, type Module } from "../parse/index.js";
import { error, type Diagnostic } from "../base/diagnostics.js";
import { bundledModelsDir } from "../../paths.js";

/** Source files larger than this are refused: a .llm file is a page of text, not data. */
const MAX_SOURCE_BYTES = 4 * 1024 * 1024;

export interface Program {
  root: string; // display name of the root file
  modules: Map<string, Module>; // by display name, in load order (dependencies first)
  sources: Map<string, string>; // by display name, for code frames
  diagnostics: Diagnostic[];
  parseFailed: Set<string>; // files with syntax errors (not checked further, to avoid cascades)
}

/** Paths shown in diagnostics: relative to the working directory when inside it. */
export function displayPath(abs: string): string {
  const rel = relative(workingDirectory(), abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : abs;
}

export interface LoadOptions {
  /** Extra sources by absolute path (tests, and `llmc import` checking its output before writing). */
  overlay?: ReadonlyMap<string, string>;
}

export function loadProgram(rootPath: string, opts: LoadOptions = {}): Program {
  const rootAbs = resolve(rootPath);
  const program: Program = {
    root: displayPath(rootAbs),
    modules: new Map(),
    sources: new Map(),
    diagnostics: [],
    parseFailed: new Set(),
  };
  const state = new Map<string, "loading" | "done">();

  const readSource = (abs: string): string | Error => {
    const over = opts.overlay?.get(abs);
    if (over !== undefined) return over;
    return readSourceFile(abs, MAX_SOURCE_BYTES);
  };

  const load = (abs: string, text: string): void => {
    const shown = displayPath(abs);
    state.set(abs, "loading");
    program.sources.set(shown, text);
    const { module, diagnostics } = parseModule(shown, text);
    program.diagnostics.push(...diagnostics);
    if (diagnostics.some((d) => d.severity === "error")) program.parseFailed.add(shown);

    for (const imp of module.imports) {
      const target = resolveImport(abs, imp.path, opts.overlay);
      if (!target) {
        program.diagnostics.push(
          error("E0203", `cannot find import "${imp.path}" (looked in ${displayPath(dirname(abs))} and in llmc's bundled models)`, imp.pathSpan),
        );
        continue;
      }
      const st = state.get(target);
      if (st === "loading") {
        program.diagnostics.push(error("E0204", `import cycle: "${imp.path}" (${displayPath(target)}) is already being imported by a file that ${shown} depends on`, imp.pathSpan));
        continue;
      }
      if (st === "done") continue;
      const text2 = readSource(target);
      if (text2 instanceof Error) {
        program.diagnostics.push(error("E0203", `cannot read import "${imp.path}" (${displayPath(target)}): ${text2.message}`, imp.pathSpan));
        state.set(target, "done");
        continue;
      }
      load(target, text2);
    }
    program.modules.set(shown, module);
    state.set(abs, "done");
  };

  const rootText = readSource(rootAbs);
  if (rootText instanceof Error) program.diagnostics.push(error("E0203", `cannot read ${program.root}: ${rootText.message}`, null));
  else load(rootAbs, rootText);
  return program;
}

function resolveImport(fromAbs: string, path: string, overlay?: ReadonlyMap<string, string>): string | null {
  const candidates = isAbsolute(path) ? [path] : [resolve(dirname(fromAbs), path), resolve(bundledModelsDir(), path)];
  for (const c of candidates) if (overlay?.has(c) || isFile(c)) return c;
  return null;
}

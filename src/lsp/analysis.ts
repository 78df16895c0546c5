// One open document checked as a root file, with its imports: the checker's result, the types it
// found (shapes.ts), and lookups the editor features share (the module of a file, a model's chain and
// resolved config).

import type * as A from "../compiler/parse/ast.js";
import { checkFile, type CheckResult } from "../compiler/check/index.js";
import { resolveModel, type ResolvedModel } from "../compiler/check/model.js";
import { displayPath } from "../compiler/check/sources.js";
import { recordShapes, type ShapeRecords } from "./shapes.js";

export class Analysis {
  readonly result: CheckResult;
  readonly shapes: ShapeRecords;
  private readonly resolved = new Map<string, ResolvedModel | null>();

  /** `overlay`: the texts of the documents open in the editor, by absolute path (they win over disk). */
  constructor(
    readonly path: string,
    overlay: ReadonlyMap<string, string>,
  ) {
    this.result = checkFile(path, { overlay });
    this.shapes = recordShapes(this.result);
  }

  /** The parsed module of a file of this program, by absolute path. */
  module(path: string): A.Module | undefined {
    return this.result.program.modules.get(displayPath(path));
  }

  source(path: string): string | undefined {
    return this.result.program.sources.get(displayPath(path));
  }

  /** The model and the models it extends, most derived first. */
  chain(model: A.ModelDecl): A.ModelDecl[] {
    const out: A.ModelDecl[] = [];
    const seen = new Set<string>();
    let cur: A.ModelDecl | undefined = model;
    while (cur && !seen.has(cur.name.name)) {
      seen.add(cur.name.name);
      out.push(cur);
      cur = cur.extends ? this.result.models.get(cur.extends.name)?.decl : undefined;
    }
    return out;
  }

  /** A model with its config evaluated (as far as its values are bound) and, when they all are, its weights. */
  resolvedModel(name: string): ResolvedModel | null {
    if (!this.resolved.has(name)) {
      const checked = this.result.checked.find((m) => m.name === name);
      let model: ResolvedModel | null = checked ?? null;
      if (!model) {
        try {
          model = resolveModel(name, { models: this.result.models }, new Map(), []);
        } catch {
          model = null;
        }
      }
      this.resolved.set(name, model);
    }
    return this.resolved.get(name)!;
  }
}

// The types the checker finds for names, kept for hover. The checker's elaborator is an abstract
// interpreter that computes every value's type but keeps none of them; this one runs it again with
// its `eval` observed and writes down, by source place, what each name, parameter and binding was.
// A function called from several places, or in a loop, gets one entry per distinct type.

import type * as A from "../compiler/parse/ast.js";
import { Elaborator } from "../compiler/check/elaborate.js";
import type { CheckResult, ResolvedModel } from "../compiler/check/index.js";
import { typeOnlyDomain, describe, type Value } from "../compiler/check/values.js";
import { formatScalar } from "../compiler/check/scalar.js";
import { formatDim, formatShape } from "../compiler/base/symbolic.js";
import { absPath, walk } from "./locate.js";

/** By place (`absolute path:offset` of a name's span): model name → the distinct types it had there. */
export type ShapeRecords = Map<string, Map<string, Set<string>>>;

export function placeKey(span: A.Span): string {
  return `${absPath(span.file)}:${span.start.offset}`;
}

/** Elaborates each checked model of a result again, recording types. Needs a program that parsed. */
export function recordShapes(result: CheckResult, into: ShapeRecords = new Map()): ShapeRecords {
  if (result.program.parseFailed.size > 0) return into;
  const bindings = bindingSites(result);
  for (const model of result.checked) {
    try {
      new ShapeRecorder({ fns: result.fns }, model, bindings, into).run();
    } catch {
      // A fault here must not take the editor's other features with it; the checker reports it.
    }
  }
  return into;
}

interface BindingSites {
  /** An assignment's value expression → its targets. */
  assigns: Map<A.Expr, A.Ident[]>;
  /** The first expression evaluated in a function body (its parameters are all bound by then) → the function. */
  bodyStart: Map<A.Expr, A.FnDecl>;
}

function bindingSites(result: CheckResult): BindingSites {
  const sites: BindingSites = { assigns: new Map(), bodyStart: new Map() };
  for (const mod of result.program.modules.values()) {
    for (const n of walk(mod)) {
      if (n.kind === "Assign") {
        const a = n as A.Assign;
        sites.assigns.set(a.value, a.targets);
      } else if (n.kind === "Fn") {
        const fn = n as A.FnDecl;
        const first = fn.body[0];
        if (!first) continue;
        const e = first.kind === "For" ? (first.iterable.kind === "Range" ? first.iterable.start : first.iterable) : first.value;
        sites.bodyStart.set(e, fn);
      }
    }
  }
  return sites;
}

type Frame = Parameters<Elaborator<null>["eval"]>[0];

class ShapeRecorder extends Elaborator<null> {
  private readonly modelName: string;

  constructor(
    program: { fns: Map<string, A.FnDecl> },
    model: ResolvedModel,
    private readonly sites: BindingSites,
    private readonly records: ShapeRecords,
  ) {
    super(program, model, typeOnlyDomain, []);
    this.modelName = model.name;
  }

  override eval(frame: Frame, e: A.Expr): Value<null> {
    const fn = this.sites.bodyStart.get(e);
    if (fn && frame.fn === fn) for (const p of fn.params) this.note(p.name.span, frame.scope.get(p.name.name));
    const v = super.eval(frame, e);
    if (e.kind === "Name") this.note(e.span, v);
    else if (e.kind === "Member") this.note(e.name.span, v);
    const targets = this.sites.assigns.get(e);
    if (targets?.length === 1) this.note(targets[0]!.span, v);
    else if (targets && v.k === "tuple") targets.forEach((t, i) => this.note(t.span, v.elems[i]));
    return v;
  }

  private note(span: A.Span, v: Value<null> | undefined): void {
    if (!v || v.k === "poison") return;
    const key = placeKey(span);
    let byModel = this.records.get(key);
    if (!byModel) this.records.set(key, (byModel = new Map()));
    let types = byModel.get(this.modelName);
    if (!types) byModel.set(this.modelName, (types = new Set()));
    types.add(valueType(v));
  }
}

/** A value's type as hover shows it: `[T, 4, 16] f32`, `int = 3`, `dim P + T`. */
export function valueType(v: Value<unknown>): string {
  switch (v.k) {
    case "tensor":
      return `${formatShape(v.ty.shape)} ${v.ty.dtype}`;
    case "scalar":
      return `${v.s.type} = ${formatScalar(v.s)}`;
    case "dim":
      return `dim ${formatDim(v.d)}`;
    case "tuple":
      return `(${v.elems.map(valueType).join(", ")})`;
    case "layer":
      return `one layer of '${v.info.name}'`;
    default:
      return describe(v);
  }
}

// Turning symbolic attributes and types into numbers for one step (T and P known).

import { evalDim, type Dim } from "../base/symbolic.js";
import type { Attrs } from "../ops/table.js";
import { attrSchema } from "./text.js";

import type { ConcreteAttrs } from "../ops/reference.js";
export type { ConcreteAttrs };
export type SymbolEnv = ReadonlyMap<string, number>;

export function concreteAttrs(op: string, attrs: Attrs, env: SymbolEnv): ConcreteAttrs {
  const schema = attrSchema(op) ?? {};
  const out: ConcreteAttrs = {};
  for (const [k, v] of Object.entries(attrs)) {
    const kind = schema[k];
    if (kind === "dim") out[k] = evalDim(v as Dim, env);
    else if (kind === "dims") out[k] = (v as Dim[]).map((d) => evalDim(d, env));
    else out[k] = v as number | boolean | string | number[];
  }
  return out;
}

export function concreteShape(shape: readonly Dim[], env: SymbolEnv): number[] {
  return shape.map((d) => evalDim(d, env));
}

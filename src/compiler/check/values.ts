// The values the elaborator computes with. Tensors carry their type and a domain-specific payload
// (nothing when checking, an IR value when lowering); everything else is known at compile time.

import type { Dim } from "../base/symbolic.js";
import type { Scalar } from "./scalar.js";
import type { TensorTy } from "../ops/table.js";
import type { StateInfo, WeightGroupInfo } from "./model.js";

export type Value<TV> =
  | { k: "scalar"; s: Scalar }
  | { k: "dim"; d: Dim } // a symbolic integer: a shape variable (T, N, …) or arithmetic on one
  | { k: "tensor"; ty: TensorTy; v: TV }
  | { k: "tuple"; elems: Value<TV>[] }
  | { k: "list"; elems: Value<TV>[] }
  | { k: "group"; info: WeightGroupInfo }
  | { k: "layer"; info: WeightGroupInfo; index: number }
  | { k: "state"; info: StateInfo }
  | { k: "stateLayer"; info: StateInfo; layer: number }
  | { k: "poison" }; // the result of an expression that already produced an error: silences cascades

export function describe<TV>(v: Value<TV>): string {
  switch (v.k) {
    case "scalar": return `a ${v.s.type} scalar`;
    case "dim": return "a dimension";
    case "tensor": return "a tensor";
    case "tuple": return `a tuple of ${v.elems.length}`;
    case "list": return "a list";
    case "group": return `the weight group '${v.info.name}'`;
    case "layer": return `layer ${v.index} of '${v.info.name}'`;
    case "state": return `the state '${v.info.name}'`;
    case "stateLayer": return `layer ${v.layer} of the state '${v.info.name}'`;
    case "poison": return "an erroneous value";
  }
}

/** The payload side of elaboration: what to do with each tensor that the program makes. */
export interface Domain<TV> {
  /** A forward() input such as `tokens: [T] i32`. */
  input(name: string, ty: TensorTy): TV;
  /** A model weight, e.g. path "layers.3.wq" (group "layers", index 3, field "wq") or "embed". */
  weight(path: string, ty: TensorTy): TV;
  /** A primitive op from the op table, already type-checked: `ty` is its result type. */
  op(name: string, inputs: TV[], attrs: import("../ops/table.js").Attrs, ty: TensorTy): TV;
  /** Stands in for the result of a call that had errors, so checking continues past it. */
  placeholder(ty: TensorTy): TV;
  /** The elaborator is entering (index) or leaving (null) one iteration of a loop over a weight group. */
  layer?(index: number | null): void;
}

/** The checking domain: types are all that matter. */
export const typeOnlyDomain: Domain<null> = {
  input: () => null,
  weight: () => null,
  op: () => null,
  placeholder: () => null,
};

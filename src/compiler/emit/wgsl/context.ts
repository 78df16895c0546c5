// Reading a dispatch's tensors out of the step plan (emit/shared/context.ts), and the WGSL spelling of
// P-dependent dims and offsets.

import type { Dim } from "../../base/symbolic.js";
import { dimExprWith, PlanContext } from "../shared/context.js";
import type { KernelParams } from "../shared/params.js";
import { u32Literal } from "./lang.js";

export { constOf } from "../shared/context.js";
export { product } from "../shared/indexing.js";

/** WGSL kernels need nothing beyond the shared plan context. */
export class DispatchContext extends PlanContext {}

/** A dim as a WGSL u32 expression: a constant, or a·P + c read from the per-step parameters. */
export function dimExpr(d: Dim, b: KernelParams): string {
  return dimExprWith(d, () => b.past(), u32Literal);
}

/** `"16u + "` for an offset of 16, `""` for 0: prefixes an index expression. */
export function plus(offset: number): string {
  return offset === 0 ? "" : `${u32Literal(offset)} + `;
}


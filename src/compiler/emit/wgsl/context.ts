// Reading a dispatch's tensors out of the step plan (emit/shared/context.ts), and the WGSL spelling of
// placement offsets.

import { PlanContext } from "../shared/context.js";
import { u32Literal } from "./lang.js";

export { constOf } from "../shared/context.js";

/** WGSL kernels need nothing beyond the shared plan context. */
export class DispatchContext extends PlanContext {}

/** `"16u + "` for an offset of 16, `""` for 0: prefixes an index expression. */
export function plus(offset: number): string {
  return offset === 0 ? "" : `${u32Literal(offset)} + `;
}


// Reading a dispatch's tensors out of the step plan (emit/shared/context.ts), what the device lets
// kernels use beyond core WGSL, and the WGSL spelling of placement offsets.

import type { Dispatch, StepPlan } from "../../plan/plan.js";
import { PlanContext } from "../shared/context.js";
import { u32Literal } from "./lang.js";

export { constOf } from "../shared/context.js";

/** Optional WebGPU features the device was created with; kernels use them only when granted. */
export interface WgslFeatures {
  /** `subgroups`: subgroupAdd and friends (`enable subgroups;`). */
  subgroups: boolean;
  /** `shader-f16`: f16 values in shaders (`enable f16;`), so f16 weights load as vec4<f16>. */
  shaderF16: boolean;
  /** The smallest subgroup the adapter runs (adapter.info.subgroupMinSize); 0 when unknown. A
   *  workgroup no larger is one subgroup, whose subgroupAdd completes a reduction. */
  subgroupMinSize: number;
}

/** Core WGSL only: what llvmpipe and `llmc compile` get. */
export const NO_FEATURES: WgslFeatures = { subgroups: false, shaderF16: false, subgroupMinSize: 0 };

export class DispatchContext extends PlanContext {
  constructor(
    plan: StepPlan,
    dispatch: Dispatch,
    readonly features: WgslFeatures = NO_FEATURES,
  ) {
    super(plan, dispatch);
  }
}

/** `"16u + "` for an offset of 16, `""` for 0: prefixes an index expression. */
export function plus(offset: number): string {
  return offset === 0 ? "" : `${u32Literal(offset)} + `;
}

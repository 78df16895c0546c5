// WGSL emission: one kernel per dispatch of a step plan, from the family's template.

import type { Dispatch, StepPlan } from "../../plan/plan.js";
import { kernelFamilies } from "../shared/families.js";
import { emitAttention, emitKvAppend } from "./attention.js";
import { emitAttentionGrad } from "./attention-grad.js";
import { emitGatherGrad } from "./gather-grad.js";
import { emitCrossEntropy } from "./cross-entropy.js";
import { DispatchContext, NO_FEATURES, type WgslFeatures } from "./context.js";
import { emitElementwise, emitReduce } from "./elementwise.js";
import type { WgslKernel } from "./kernel.js";
import { emitCopy, emitGather, emitMatmul, emitRotary } from "./layout.js";
import { emitLinear } from "./linear.js";
import type { WgslTuning } from "./tuning.js";

export { PARAMS_BYTES, type KernelBinding, type WgslKernel } from "./kernel.js";
export { CPU_TUNING, GPU_TUNING, type WgslTuning } from "./tuning.js";
export { NO_FEATURES, type WgslFeatures } from "./context.js";

const families = kernelFamilies<(ctx: DispatchContext, tuning: WgslTuning) => WgslKernel>({
  elementwise: emitElementwise,
  reduce: emitReduce,
  linear: emitLinear,
  matmul: emitMatmul,
  gather: emitGather,
  rotary: emitRotary,
  attention: emitAttention,
  attention_grad: emitAttentionGrad,
  gather_grad: emitGatherGrad,
  cross_entropy: emitCrossEntropy,
  kv_append: emitKvAppend,
  copy: emitCopy,
});

export function emitKernel(plan: StepPlan, dispatch: Dispatch, tuning: WgslTuning, features: WgslFeatures = NO_FEATURES): WgslKernel {
  return families[dispatch.kernel](new DispatchContext(plan, dispatch, features), tuning);
}

/** Every dispatch's kernel, in dispatch order (`features`: what the device granted beyond core WGSL). */
export function emitPlan(plan: StepPlan, tuning: WgslTuning, features: WgslFeatures = NO_FEATURES): WgslKernel[] {
  return plan.dispatches.map((d) => emitKernel(plan, d, tuning, features));
}

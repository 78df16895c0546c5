// Reading a dispatch's tensors out of the step plan: concrete shapes, placements (as byte offsets),
// element types, weight storage formats; and the two buffers the CUDA step adds to the plan's —
// the step parameters (P) and scratch space (flash-decoding partials).

import type { Dim } from "../../base/symbolic.js";
import type { StorageDType } from "../../target/storage.js";
import type { Dispatch, StepPlan } from "../../plan/plan.js";
import { dimExprWith, PlanContext } from "../shared/context.js";
import { ELEMENT_BYTES } from "../shared/params.js";
import type { BufferArg } from "./kernel.js";
import { intLiteral } from "./lang.js";
import type { CudaTuning } from "./tuning.js";

export { ELEMENT_BYTES };

export interface EmitEnv {
  plan: StepPlan;
  tuning: CudaTuning;
  /** Storage format of a weight buffer (plan buffer id). */
  weightFormat(buffer: number): StorageDType;
  /** The buffer holding this step's parameters: int32 [P]. */
  paramsBuffer: number;
  /** Scratch space for one dispatch (reused by the next). */
  scratch(bytes: number): BufferArg;
  /** Prefill with f32 weights on tensor cores (activations and weights rounded to f16) instead of
   *  exact f32 SIMT products. */
  f32TensorCores: boolean;
}

export class DispatchContext extends PlanContext {
  constructor(
    readonly env: EmitEnv,
    dispatch: Dispatch,
  ) {
    super(env.plan, dispatch);
  }

  get tuning(): CudaTuning {
    return this.env.tuning;
  }

  /** The tensor's buffer and byte offset, for a launch argument. */
  arg(id: number): BufferArg {
    const p = this.placement(id);
    if (p.perPast) throw new Error(`internal: ${this.label()} reads %${id}, which is written into the KV cache at position P`);
    return { buffer: p.buffer, offsetBytes: p.offset * ELEMENT_BYTES };
  }

  /** Where a kernel writes `id`: the launch argument, plus P · perPast elements for rows written
   *  straight into the KV cache at the step's first position. */
  output(id: number): { arg: BufferArg; perPast: number } {
    const p = this.placement(id);
    return { arg: { buffer: p.buffer, offsetBytes: p.offset * ELEMENT_BYTES }, perPast: p.perPast ?? 0 };
  }

  /** Storage format of a weight input; f32 for everything that is not a weight. */
  format(id: number): StorageDType {
    const p = this.placement(id);
    const b = this.env.plan.buffers[p.buffer]!;
    if (b.kind !== "weight") return "f32";
    const f = this.env.weightFormat(p.buffer);
    if (f !== "f32" && p.offset !== 0) throw new Error(`internal: a view into ${f} weight '${b.holds}' reached a kernel`);
    return f;
  }
}

export { constOf } from "../shared/context.js";

/** The name kernels give the past length read from the step parameters. */
export const PAST = "llmc_P";

/** A dim as an int expression: a constant, or a·P + c with P read from the step parameters. */
export function dimExpr(d: Dim): string {
  return dimExprWith(d, () => PAST, intLiteral);
}

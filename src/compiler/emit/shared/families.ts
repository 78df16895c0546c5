// Which kernel family emits each kind of dispatch, for every target: a fused program is emitted by
// the elementwise family and a fused linear by the linear one; a target supplies one emitter each.

import type { KernelKind } from "../../plan/plan.js";

export type FamilyEmitters<F> = Omit<Record<KernelKind, F>, "fused" | "fused_linear">;

export function kernelFamilies<F>(emitters: FamilyEmitters<F>): Record<KernelKind, F> {
  return { ...emitters, fused: emitters.elementwise, fused_linear: emitters.linear };
}

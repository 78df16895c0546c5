// Which kernel family emits each kind of dispatch, for every target: a fused program is emitted by
// the elementwise family, a fused linear by the linear one, and transposes, slices and concats are
// all copies (emit/shared/layout.ts); a target supplies one emitter per family.

import type { KernelKind } from "../../plan/plan.js";

export type FamilyEmitters<F> = Omit<Record<KernelKind, F>, "fused" | "fused_linear" | "transpose" | "slice" | "concat"> & { copy: F };

export function kernelFamilies<F>({ copy, ...emitters }: FamilyEmitters<F>): Record<KernelKind, F> {
  return { ...emitters, fused: emitters.elementwise, fused_linear: emitters.linear, transpose: copy, slice: copy, concat: copy };
}

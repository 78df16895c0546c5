// The table a target gives the shared kernel emitters, as tinygrad's renderers override a C-style one:
// the expression table (expr.ts) plus index arithmetic, locals, how tensors sit in storage and how
// kernel parameters are named and declared. Kernel bodies written against it exist once.

import type { DType } from "../../ops/table.js";
import type { ExprLang } from "./expr.js";

export type ParamAccess = "read" | "write" | "uniform";

/** One buffer a kernel binds (a WGSL storage binding, a CUDA pointer parameter). */
export interface KernelParam {
  name: string;
  /** A buffer of the step, or the per-step parameter block (WGSL's uniform). */
  buffer: number | "params";
  /** Where the parameter starts in its buffer (0 where bindings are whole buffers). */
  offsetBytes: number;
  access: ParamAccess;
  /** The element type, in the language's syntax. */
  elem: string;
  /** Which row range of a weight split across bindings (plan.ts PlanBuffer.parts). */
  part?: number;
}

export interface KernelLang extends ExprLang {
  /** An index constant (indices are u32 in WGSL, int in CUDA). */
  indexLiteral(v: number): string;
  /** An immutable index local. */
  letIndex(name: string, value: string): string;
  /** A mutable local, assigned later. */
  declare(name: string, dtype: DType): string;
  /** The element type of storage holding a tensor of `d`. */
  storageType(d: DType): string;
  /** A value loaded from storage (`raw`, of storageType) as a value of `d`. */
  loadAs(d: DType, raw: string): string;
  /** A value of `d` converted for storing. */
  storeAs(d: DType, value: string): string;
  /** The name of a kernel's i-th parameter. */
  paramName(i: number): string;
  /** A parameter's declaration: a WGSL binding, an entry of a CUDA signature. */
  paramDecl(p: KernelParam, index: number): string;
  /** Where a tensor's offset in its buffer goes: into every index (WGSL binds whole buffers) or into
   *  the parameter (CUDA pointers). */
  offsets: "index" | "param";
  /** A constant array of the kernel's code holding `values` (a literal the plan marks `inline`);
   *  a target without it binds every literal. */
  constArray?(name: string, dtype: DType, values: ArrayLike<number>): string;
}

// What every WGSL kernel family shares: the kernel record handed to the runtime, binding
// declarations, the dispatch grid and the Handlebars templates (index arithmetic is shared with
// CUDA: emit/shared/indexing.ts).
//
// Generated WGSL contains only generated identifiers (b0, v3, acc_0_1), numbers and template text.
// Names from the model (weights, inputs, states) never reach it: `checkGenerated` enforces that
// nothing but the characters WGSL code needs is present.

import type { Placement } from "../../plan/plan.js";
import type { DispatchContext } from "./context.js";
import { KernelParams } from "../shared/params.js";
import { checkGenerated as checkText, Templates } from "../shared/templates.js";
import { wgsl } from "./lang.js";

export type Access = "read" | "read_write" | "uniform";

export interface KernelBinding {
  /** A plan buffer id, or the per-step parameter block. */
  buffer: number | "params";
  access: Access;
  /** Which part of a weight split into row ranges (PlanBuffer.parts); absent for whole buffers. */
  part?: number;
}

export interface WgslKernel {
  /** Family and dispatch index; for labels and error messages. */
  label: string;
  code: string;
  /** Binding i of group 0. */
  bindings: KernelBinding[];
  workgroups: [number, number, number];
}

/** Per-step parameters, one uniform block shared by every kernel that needs one. */
export const PARAMS_STRUCT = "struct Params {\n  past: u32,\n  pad0: u32,\n  pad1: u32,\n  pad2: u32,\n}";
export const PARAMS_BYTES = 16;

/** The bindings of one kernel (emit/shared/params.ts): whole buffers, each (buffer, access, element
 *  type) once, named b0, b1, …; P is read from the uniform block `params`. */
export class BindingSet extends KernelParams {
  constructor(ctx: DispatchContext) {
    super(ctx, wgsl);
  }

  override buffer(buffer: number, offsetBytes: number, elem: string, access: "read" | "write"): string {
    // WebGPU refuses a buffer bound both read-only and writable in one dispatch.
    if (this.list.some((d) => d.buffer === buffer && (d.access === "write" || access === "write") && (d.access !== access || d.elem !== elem))) {
      throw new Error(`internal: buffer ${buffer} is both read and written by one kernel`);
    }
    return super.buffer(buffer, offsetBytes, elem, access);
  }

  /** A whole plan buffer as a storage array of `elem` (indices add the tensor's offset). */
  storage(p: Placement, access: "read" | "write", elem: string): string {
    if (this.ctx.plan.buffers[p.buffer]?.parts) throw new Error(`internal: buffer ${p.buffer} is split into row ranges: bind its parts`);
    return this.buffer(p.buffer, 0, elem, access);
  }

  /** Part `part` of a weight split into row ranges, as a storage array of `elem`. */
  part(p: Placement, part: number, elem: string): string {
    return this.add({ buffer: p.buffer, offsetBytes: 0, elem, access: "read", part });
  }

  past(): string {
    return `${this.add({ buffer: "params", offsetBytes: 0, access: "uniform", elem: "Params" }, "params")}.past`;
  }

  get usesParams(): boolean {
    return this.list.some((d) => d.buffer === "params");
  }

  bindings(): KernelBinding[] {
    return this.list.map((d) => ({ buffer: d.buffer, access: d.access === "write" ? "read_write" : d.access, ...(d.part !== undefined ? { part: d.part } : {}) }));
  }
}

export const MAX_WORKGROUPS_PER_DIM = 65535;

/** Workgroups covering `invocations`: x first, spilling into y past the per-dimension limit. The
 *  kernel's linear invocation id is gid.x + gid.y · rowStride. */
export function grid(invocations: number, workgroupSize: number): { workgroups: [number, number, number]; rowStride: number } {
  const groups = Math.max(1, Math.ceil(invocations / workgroupSize));
  const x = Math.min(groups, MAX_WORKGROUPS_PER_DIM);
  const y = Math.ceil(groups / x);
  if (y > MAX_WORKGROUPS_PER_DIM) throw new Error(`a kernel of ${invocations} invocations exceeds the dispatch limit`);
  return { workgroups: [x, y, 1], rowStride: x * workgroupSize };
}

// ------------------------------------------------------------------------------------------ templates

const templates = new Templates("wgsl", { header: "_header" });

/** Renders codegen-templates/wgsl/<family>.hbs. The context holds generated code and numbers only. */
export function renderTemplate(family: string, context: Record<string, unknown>): string {
  const code = templates.render(family, context);
  checkGenerated(code, family);
  return code;
}

/** WGSL needs no strings or non-ASCII: anything else in generated code means text from outside
 *  (a model's names) leaked into it. */
export function checkGenerated(code: string, family: string): void {
  checkText(code, `WGSL ${family} kernel`);
}

/** The header partial's context: extensions enabled (`f16`, `subgroups`), binding declarations,
 *  parameter struct, helper functions. */
export function headerContext(family: string, b: BindingSet, helpers: string[] = [], enables: readonly string[] = []): Record<string, unknown> {
  return { kernel: family, enables, bindings: [...b.declarations(), ...b.constants()], params: b.usesParams ? PARAMS_STRUCT : "", helpers };
}

// What every WGSL kernel family shares: the kernel record handed to the runtime, binding
// declarations, the dispatch grid, index arithmetic and the Handlebars templates.
//
// Generated WGSL contains only generated identifiers (b0, v3, acc_0_1), numbers and template text.
// Names from the model (weights, inputs, states) never reach it: `checkGenerated` enforces that
// nothing but the characters WGSL code needs is present.

import type { Placement } from "../../plan/plan.js";
import { offsetTerms } from "../shared/indexing.js";
import { Templates } from "../shared/templates.js";
import { u32Literal } from "./lang.js";

export { broadcastStrides, stridesOf } from "../shared/indexing.js";

export type Access = "read" | "read_write" | "uniform";

export interface KernelBinding {
  /** A plan buffer id, or the per-step parameter block. */
  buffer: number | "params";
  access: Access;
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

interface Decl {
  name: string;
  buffer: number | "params";
  access: Access;
  type: string;
}

/** The bindings of one kernel: each (buffer, access, element type) once, named b0, b1, …. */
export class BindingSet {
  private readonly decls: Decl[] = [];

  /** A storage array over a plan buffer; returns its generated name. */
  storage(p: Placement, access: "read" | "read_write", elem: string): string {
    const type = `array<${elem}>`;
    const found = this.decls.find((d) => d.buffer === p.buffer && d.access === access && d.type === type);
    if (found) return found.name;
    if (this.decls.some((d) => d.buffer === p.buffer && (d.access === "read_write" || access === "read_write"))) {
      throw new Error(`internal: buffer ${p.buffer} is both read and written by one kernel`);
    }
    const name = `b${this.decls.length}`;
    this.decls.push({ name, buffer: p.buffer, access, type });
    return name;
  }

  params(): string {
    if (!this.decls.some((d) => d.buffer === "params")) this.decls.push({ name: "params", buffer: "params", access: "uniform", type: "Params" });
    return "params";
  }

  get usesParams(): boolean {
    return this.decls.some((d) => d.buffer === "params");
  }

  bindings(): KernelBinding[] {
    return this.decls.map((d) => ({ buffer: d.buffer, access: d.access }));
  }

  /** For the header partial. */
  declarations(): { index: number; space: string; name: string; type: string }[] {
    return this.decls.map((d, index) => ({
      index,
      space: d.access === "uniform" ? "uniform" : d.access === "read" ? "storage, read" : "storage, read_write",
      name: d.name,
      type: d.type,
    }));
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

/** The u32 offset of element `i` (row-major over `shape`) of a tensor read through `strides` (one
 *  per dim of `shape`; 0 where it is broadcast), plus `base`: `i`, `i % 32u` or a constant in the
 *  common cases. */
export function offsetExpr(i: string, shape: readonly number[], strides: readonly number[], base = 0): string {
  const terms = offsetTerms(i, shape, strides, u32Literal);
  if (base !== 0) terms.unshift(u32Literal(base));
  return terms.length ? terms.join(" + ") : "0u";
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
  const bad = /[^\x20-\x7e\n]|["'`\\$]/.exec(code);
  if (bad) throw new Error(`internal: generated ${family} kernel contains a character (${JSON.stringify(bad[0])}) that generated WGSL never has`);
}

/** The header partial's context: bindings, parameter struct, helper functions. */
export function headerContext(family: string, b: BindingSet, helpers: string[] = []): Record<string, unknown> {
  return { kernel: family, bindings: b.declarations(), params: b.usesParams ? PARAMS_STRUCT : "", helpers };
}

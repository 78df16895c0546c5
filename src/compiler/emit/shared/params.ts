// A kernel's parameters, for every target: the buffers it binds, named and declared by the language
// table (WGSL storage bindings, CUDA pointer parameters), and the dispatch's tensors read and written
// through them. Where a tensor starts (its offset, plus P · perPast for rows written into the KV
// cache) is decided here once.

import type { Dim } from "../../base/symbolic.js";
import { dimExprWith, type PlanContext } from "./context.js";
import type { KernelLang, KernelParam } from "./lang.js";

/** Bytes of one element in the plan's buffers (f32, i32, and bool as a 32-bit 0/1). */
export const ELEMENT_BYTES = 4;

/** A size in a kernel: its index expression, and its value at the largest P (what a launch is
 *  sized for; the kernel bounds itself by the expression). */
export interface Extent {
  dim: Dim;
  code: string;
  max: number;
}

/** A tensor a kernel writes: stores of its elements, and loads of what was stored. */
export interface TensorOutput {
  store(index: string, value: string): string;
  load(index: string): string;
}

export abstract class KernelParams {
  readonly list: KernelParam[] = [];
  /** Declarations of the literals written into the kernel (KernelLang.constArray), by buffer. */
  private readonly consts = new Map<number, string>();

  constructor(
    readonly ctx: PlanContext,
    readonly lang: KernelLang,
  ) {}

  /** The step's past length P as an index expression; binds the step parameters. */
  abstract past(): string;

  /** A dim as an index expression: a literal, or a polynomial of P (binding the step parameters). */
  readonly dim = (d: Dim): string => dimExprWith(d, () => this.past(), this.lang.indexLiteral);

  extent(d: Dim): Extent {
    return { dim: d, code: this.dim(d), max: this.ctx.atMax(d) };
  }

  /** An array of `elem` from `offsetBytes` into `buffer`; asking again gets the same parameter. */
  buffer(buffer: number, offsetBytes: number, elem: string, access: "read" | "write"): string {
    return this.add({ buffer, offsetBytes, elem, access });
  }

  protected add(p: Omit<KernelParam, "name">, name?: string): string {
    const found = this.list.find((q) => q.buffer === p.buffer && q.offsetBytes === p.offsetBytes && q.elem === p.elem && q.access === p.access && q.part === p.part);
    if (found) return found.name;
    const param = { ...p, name: name ?? this.lang.paramName(this.list.length) };
    this.list.push(param);
    return param.name;
  }

  declarations(): string[] {
    return this.list.map((p, i) => this.lang.paramDecl(p, i));
  }

  /** The constant arrays of the literals the kernel reads without binding them. */
  constants(): string[] {
    return [...this.consts.values()];
  }

  /** Tensor `id` for reading: its element `index` as a value of its type. */
  read(id: number): (index: string) => string {
    const dtype = this.ctx.node(id).ty.dtype;
    const at = this.tensor(id, "read", this.lang.storageType(dtype));
    return (index) => this.lang.loadAs(dtype, at(index));
  }

  /** Tensor `id` for writing. */
  output(id: number): TensorOutput {
    const dtype = this.ctx.node(id).ty.dtype;
    const at = this.tensor(id, "write", this.lang.storageType(dtype));
    return {
      store: (index, value) => `${at(index)} = ${this.lang.storeAs(dtype, value)};`,
      load: (index) => this.lang.loadAs(dtype, at(index)),
    };
  }

  /** Binds the buffer of tensor `id`; returns the storage element at an index into the tensor. */
  private tensor(id: number, access: "read" | "write", elem: string): (index: string) => string {
    const p = this.ctx.placement(id);
    const lit = this.lang.indexLiteral;
    const buf = this.ctx.plan.buffers[p.buffer];
    if (access === "read" && buf?.inline && buf.data && this.lang.constArray) {
      const name = `lit${p.buffer}`;
      if (!this.consts.has(p.buffer)) this.consts.set(p.buffer, this.lang.constArray(name, this.ctx.node(id).ty.dtype, buf.data));
      return (index) => `${name}[${p.offset === 0 ? "" : `${lit(p.offset)} + `}${index}]`;
    }
    const inParam = this.lang.offsets === "param";
    const name = this.buffer(p.buffer, inParam ? p.offset * ELEMENT_BYTES : 0, elem, access);
    const past = p.perPast ? `${this.past()} * ${lit(p.perPast)} + ` : "";
    const base = past + (inParam || p.offset === 0 ? "" : `${lit(p.offset)} + `);
    return (index) => `${name}[${base}${index}]`;
  }
}

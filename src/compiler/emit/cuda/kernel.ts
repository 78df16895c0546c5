// What every CUDA kernel family shares: the kernel and launch records, parameters, index arithmetic
// and the Handlebars templates (codegen-templates/cuda/<family>.hbs).
//
// Buffers reach a kernel as pointer parameters (p0, p1, …) with the tensor's offset already added by
// the launch, so one kernel serves every layer: the module has one copy of each distinct kernel,
// named by a hash of its code (`llmc_linear_3f9a0c21d4e8`). Generated code holds only generated
// identifiers, numbers and template text: `checkGenerated` refuses anything a model's names could
// have brought in (quotes, backslashes, non-ASCII).

import { createHash } from "node:crypto";
import { offsetTerms } from "../shared/indexing.js";
import { Templates } from "../shared/templates.js";
import { intLiteral } from "./lang.js";

export { broadcastStrides, product, stridesOf } from "../shared/indexing.js";

export interface CudaKernel {
  family: string;
  /** Generated from the code's hash: equal kernels get equal names. */
  name: string;
  /** The `extern "C" __global__` function. */
  code: string;
  /** Module-scope device helpers it calls (deduplicated by text in the module). */
  helpers: string[];
  /** C type of each parameter, in order (all pointers). */
  params: string[];
}

/** A pointer argument: a step-plan buffer plus a byte offset into it. */
export interface BufferArg {
  buffer: number;
  offsetBytes: number;
}

export interface CudaLaunch {
  kernel: string;
  grid: [number, number, number];
  block: [number, number, number];
  args: BufferArg[];
  /** The step-plan dispatch this launch computes (a dispatch may take two launches). */
  dispatch: number;
}

/** A kernel's pointer parameters, in order, with the launch arguments that fill them. */
export class ParamSet {
  private readonly decls: { type: string; name: string }[] = [];
  readonly args: BufferArg[] = [];

  /** A pointer to `elem` at `offsetBytes` into buffer `buffer`; returns the parameter's name. */
  pointer(buffer: number, offsetBytes: number, elem: string, access: "read" | "write"): string {
    const name = `p${this.decls.length}`;
    const type = access === "read" ? `const ${elem}* __restrict__` : `${elem}* __restrict__`;
    this.decls.push({ type, name });
    this.args.push({ buffer, offsetBytes });
    return name;
  }

  signature(): string {
    return this.decls.map((d) => `${d.type} ${d.name}`).join(", ");
  }

  types(): string[] {
    return this.decls.map((d) => d.type);
  }
}

/** The int offset of element `i` (row-major over `shape`) of a tensor read through `strides` (one
 *  per dim of `shape`; 0 where it is broadcast): `i`, `i % 32`, `0` in the common cases. */
export function offsetExpr(i: string, shape: readonly number[], strides: readonly number[]): string {
  const terms = offsetTerms(i, shape, strides, intLiteral);
  return terms.length ? terms.join(" + ") : "0";
}

/** Blocks for a grid-stride loop over `count` items. */
export function strideGrid(count: number, block: number, maxBlocks: number): [number, number, number] {
  return [Math.max(1, Math.min(maxBlocks, Math.ceil(count / block))), 1, 1];
}

export function checkIndexRange(count: number, what: string): void {
  if (count > 2147483647) throw new Error(`${what} has ${count} elements; the CUDA kernels index with 32-bit ints (at most 2^31 - 1 elements per tensor)`);
}

// ------------------------------------------------------------------------------------------ templates

const NAME_PLACEHOLDER = "LLMC_KERNEL_NAME";

const templates = new Templates("cuda");

/** Renders codegen-templates/cuda/<template>.hbs; the context holds generated code and numbers only. */
export function renderTemplate(template: string, context: Record<string, unknown>): string {
  return templates.render(template, context);
}

/** Renders a kernel template (which names its function `{{name}}` and its parameters `{{params}}`),
 *  names the kernel by its code and checks it. */
export function makeKernel(family: string, template: string, params: ParamSet, helpers: readonly string[], context: Record<string, unknown>): CudaKernel {
  const text = renderTemplate(template, { ...context, name: NAME_PLACEHOLDER, params: params.signature() });
  const hash = createHash("sha256").update(family).update("\0").update(text).update("\0").update(helpers.join("\n")).digest("hex").slice(0, 12);
  const name = `llmc_${family}_${hash}`;
  const code = text.split(NAME_PLACEHOLDER).join(name);
  checkGenerated(code, family);
  for (const h of helpers) checkGenerated(h, family);
  return { family, name, code, helpers: [...new Set(helpers)], params: params.types() };
}

/** Generated CUDA needs no string or character literals and no non-ASCII, except `extern "C"`:
 *  anything else means text from outside (a model's names) leaked into it. */
export function checkGenerated(code: string, what: string): void {
  const bad = /[^\x20-\x7e\n]|["'`\\$]/.exec(code.split('extern "C"').join(""));
  if (bad) throw new Error(`internal: generated CUDA (${what}) contains a character (${JSON.stringify(bad[0])}) that generated code never has`);
}

// What every CUDA kernel family shares: the kernel and launch records, parameters, launch grids and
// the Handlebars templates (codegen-templates/cuda/<family>.hbs; index arithmetic is shared with
// WGSL: emit/shared/indexing.ts).
//
// Buffers reach a kernel as pointer parameters (p0, p1, …) with the tensor's offset already added by
// the launch, so one kernel serves every layer: the module has one copy of each distinct kernel,
// named by a hash of what it is rendered from (`llmc_linear_3f9a0c21d4e8`). Generated code holds
// only generated identifiers, numbers and template text: `checkGenerated` refuses anything a model's
// names could have brought in (quotes, backslashes, non-ASCII).

import { createHash } from "node:crypto";
import { KernelParams } from "../shared/params.js";
import { checkGenerated as checkText, Templates } from "../shared/templates.js";
import { PAST, type DispatchContext } from "./context.js";
import { cudaLang, pointerType } from "./lang.js";

export interface CudaKernel {
  family: string;
  /** A hash of the code: equal kernels get equal names. */
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

/** A kernel's pointer parameters (emit/shared/params.ts), in order, with the launch arguments that
 *  fill them; P is read from the step parameters into `llmc_P` by kernels that have `step`. */
export class ParamSet extends KernelParams {
  /** The pointer to the step parameters; "" while the kernel does not read P. */
  step = "";

  constructor(override readonly ctx: DispatchContext) {
    super(ctx, cudaLang());
  }

  past(): string {
    if (!this.step) this.step = this.buffer(this.ctx.env.paramsBuffer, 0, "int", "read");
    return PAST;
  }

  get args(): BufferArg[] {
    return this.list.map((p) => ({ buffer: p.buffer as number, offsetBytes: p.offsetBytes }));
  }

  signature(): string {
    return this.declarations().join(", ");
  }

  types(): string[] {
    return this.list.map(pointerType);
  }
}

/** Blocks for a grid-stride loop over `count` items. */
export function strideGrid(count: number, block: number, maxBlocks: number): [number, number, number] {
  return [Math.max(1, Math.min(maxBlocks, Math.ceil(count / block))), 1, 1];
}

export function checkIndexRange(count: number, what: string): void {
  if (count > 2147483647) throw new Error(`${what} has ${count} elements; the CUDA kernels index with 32-bit ints (at most 2^31 - 1 elements per tensor)`);
}

// ------------------------------------------------------------------------------------------ templates

const templates = new Templates("cuda");

/** Renders codegen-templates/cuda/<template>.hbs; the context holds generated code and numbers only. */
export function renderTemplate(template: string, context: Record<string, unknown>): string {
  return templates.render(template, context);
}

/** Renders a kernel template (which names its function `{{name}}`, its parameters `{{params}}` and,
 *  when it reads P, the step-parameter pointer `{{step}}`) and checks it. The name is a hash of the code as rendered under the family's name, so equal
 *  kernels get equal names and a name stands for one code. */
export function makeKernel(family: string, template: string, params: ParamSet, helpers: readonly string[], context: Record<string, unknown>): CudaKernel {
  const full = { ...context, params: params.signature(), step: params.step };
  const anonymous = renderTemplate(template, { ...full, name: `llmc_${family}` });
  const hash = createHash("sha256").update(family).update("\0").update(anonymous).update("\0").update(helpers.join("\n")).digest("hex").slice(0, 12);
  const name = `llmc_${family}_${hash}`;
  const code = renderTemplate(template, { ...full, name });
  checkGenerated(code, family);
  for (const h of helpers) checkGenerated(h, family);
  return { family, name, code, helpers: [...new Set(helpers)], params: params.types() };
}

/** Generated CUDA needs no string or character literals and no non-ASCII, except `extern "C"`:
 *  anything else means text from outside (a model's names) leaked into it. */
export function checkGenerated(code: string, what: string): void {
  checkText(code, `CUDA (${what})`, ['extern "C"']);
}

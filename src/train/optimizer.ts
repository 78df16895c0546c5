// Optimisers over named f32 parameters: SGD with momentum and AdamW, as PyTorch defines them (so a
// few steps can be checked against torch.optim), plus global-norm gradient clipping and the sum of
// micro-batch gradients for gradient accumulation. Arithmetic is in f64, parameters and moments are
// stored in f32; every step is a pure function of (parameters, gradients, state), so a run resumed
// from saved state takes exactly the steps the uninterrupted run would have taken.

import type { DeviceOptimizerConfig, OptimizerRule } from "../compiler/target/optimizer.js";

export type { DeviceOptimizerConfig } from "../compiler/target/optimizer.js";

/** Parameters or gradients by name ("embed", "layers.0.wq"), row-major f32. */
export type Tensors = Map<string, Float32Array>;

export type OptimizerKind = "adamw" | "sgd";

export interface OptimizerConfig {
  kind: OptimizerKind;
  /** Weight decay: decoupled for AdamW (p ← p·(1 − lr·wd)), L2 added to the gradient for SGD (as torch.optim.SGD). Default 0. */
  weightDecay?: number;
  /**
   * Whether a parameter is decayed. Default: matrices are, 1-D tensors (norm gains, biases) are not,
   * as is usual for transformers.
   */
  decays?: (name: string, shape: readonly number[]) => boolean;
  /** AdamW: β1, β2 (default 0.9, 0.999) and ε (default 1e-8). */
  betas?: readonly [number, number];
  eps?: number;
  /** SGD: momentum (default 0) and Nesterov momentum (default off). */
  momentum?: number;
  nesterov?: boolean;
}

/** What an optimiser must save to continue exactly: its step count and per-parameter slots (moments). */
export interface OptimizerState {
  kind: OptimizerKind;
  /** Steps taken so far (AdamW's bias correction depends on it). */
  step: number;
  /** slot name ("m", "v", "momentum") → parameter name → values. */
  slots: Map<string, Tensors>;
}

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Updates `params` in place from `grads` at learning rate `lr`. */
  step(params: Tensors, grads: ReadonlyMap<string, Float32Array>, lr: number): void;
  /** The state to save (the arrays themselves, not copies: write them before the next step). */
  state(): OptimizerState;
  /** Continues from saved state. */
  restore(state: OptimizerState): void;
}

export const defaultDecays = (_name: string, shape: readonly number[]): boolean => shape.length >= 2;

/** The device kernels' view of an optimiser (its scalars computed here in f64, as the host optimiser
 *  computes them, so the kernels' f32 arithmetic follows the reference below). */
export function deviceOptimizerConfig(config: OptimizerConfig, shapes: ReadonlyMap<string, readonly number[]>): DeviceOptimizerConfig {
  createOptimizer(config, shapes); // the same checks of the settings
  const wd = config.weightDecay ?? 0;
  const decays = config.decays ?? defaultDecays;
  const decayed = (name: string) => wd > 0 && decays(name, shapes.get(name) ?? []);
  const [beta1, beta2] = config.betas ?? [0.9, 0.999];
  const eps = config.eps ?? 1e-8;
  const momentum = config.momentum ?? 0;
  const rule: OptimizerRule = config.kind === "adamw" ? { kind: "adamw" } : { kind: "sgd", nesterov: config.nesterov ?? false };
  return {
    rule,
    decayed,
    scalars: (t, lr, gradScale) => ({
      gradScale,
      beta1,
      beta2,
      stepSize: lr / (1 - beta1 ** t),
      sqrtCorrection2: Math.sqrt(1 - beta2 ** t),
      eps,
      keep: 1 - lr * wd,
      lr,
      momentum: config.kind === "sgd" ? momentum : 0,
      weightDecay: wd,
    }),
  };
}

export function createOptimizer(config: OptimizerConfig, shapes: ReadonlyMap<string, readonly number[]>): Optimizer {
  const wd = config.weightDecay ?? 0;
  if (!(wd >= 0)) throw new RangeError(`weight decay must be ≥ 0, got ${wd}`);
  const decays = config.decays ?? defaultDecays;
  const decayOf = new Map([...shapes].map(([name, shape]) => [name, decays(name, shape) ? wd : 0]));
  switch (config.kind) {
    case "adamw": {
      const [b1, b2] = config.betas ?? [0.9, 0.999];
      const eps = config.eps ?? 1e-8;
      if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) throw new RangeError(`Adam betas must lie in [0, 1), got ${b1}, ${b2}`);
      return new AdamW(shapes, decayOf, b1, b2, eps);
    }
    case "sgd": {
      const momentum = config.momentum ?? 0;
      if (!(momentum >= 0 && momentum < 1)) throw new RangeError(`momentum must lie in [0, 1), got ${momentum}`);
      return new Sgd(shapes, decayOf, momentum, config.nesterov ?? false);
    }
  }
}

function zeros(shapes: ReadonlyMap<string, readonly number[]>): Tensors {
  return new Map([...shapes].map(([name, shape]) => [name, new Float32Array(shape.reduce((a, b) => a * b, 1))]));
}

function gradOf(grads: ReadonlyMap<string, Float32Array>, name: string, n: number): Float32Array {
  const g = grads.get(name);
  if (!g) throw new Error(`no gradient for parameter '${name}'`);
  if (g.length !== n) throw new Error(`the gradient of '${name}' has ${g.length} values, the parameter ${n}`);
  return g;
}

function restoreSlots(own: Map<string, Tensors>, state: OptimizerState, kind: OptimizerKind): void {
  if (state.kind !== kind) throw new Error(`the saved optimiser state is ${state.kind}, this run uses ${kind}`);
  for (const [slot, tensors] of own) {
    const saved = state.slots.get(slot);
    if (!saved) throw new Error(`the saved ${kind} state has no '${slot}' values`);
    for (const [name, values] of tensors) {
      const s = saved.get(name);
      if (!s || s.length !== values.length) throw new Error(`the saved ${kind} state has no '${slot}' values of the right size for '${name}'`);
      values.set(s);
    }
  }
}

/** torch.optim.AdamW: decoupled decay, then the bias-corrected Adam step. */
class AdamW implements Optimizer {
  readonly kind = "adamw";
  private t = 0;
  private readonly m: Tensors;
  private readonly v: Tensors;

  constructor(
    shapes: ReadonlyMap<string, readonly number[]>,
    private readonly decayOf: ReadonlyMap<string, number>,
    private readonly b1: number,
    private readonly b2: number,
    private readonly eps: number,
  ) {
    this.m = zeros(shapes);
    this.v = zeros(shapes);
  }

  step(params: Tensors, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.t++;
    const { b1, b2, eps } = this;
    const correction1 = 1 - b1 ** this.t;
    const sqrtCorrection2 = Math.sqrt(1 - b2 ** this.t);
    const stepSize = lr / correction1;
    for (const [name, p] of params) {
      const m = this.m.get(name);
      const v = this.v.get(name);
      if (!m || !v) throw new Error(`the optimiser was not made for parameter '${name}'`);
      const g = gradOf(grads, name, p.length);
      const keep = 1 - lr * this.decayOf.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
        const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
        p[i] = p[i]! * keep - (stepSize * mi) / (Math.sqrt(vi) / sqrtCorrection2 + eps);
      }
    }
  }

  state(): OptimizerState {
    return { kind: this.kind, step: this.t, slots: new Map([["m", this.m], ["v", this.v]]) };
  }

  restore(state: OptimizerState): void {
    restoreSlots(new Map([["m", this.m], ["v", this.v]]), state, this.kind);
    this.t = state.step;
  }
}

/** torch.optim.SGD (dampening 0): g += wd·p; buf = μ·buf + g; p −= lr·(Nesterov ? g + μ·buf : buf). */
class Sgd implements Optimizer {
  readonly kind = "sgd";
  private t = 0;
  private readonly buf: Tensors;

  constructor(
    shapes: ReadonlyMap<string, readonly number[]>,
    private readonly decayOf: ReadonlyMap<string, number>,
    private readonly momentum: number,
    private readonly nesterov: boolean,
  ) {
    this.buf = zeros(shapes);
  }

  step(params: Tensors, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.t++;
    const mu = this.momentum;
    for (const [name, p] of params) {
      const buf = this.buf.get(name);
      if (!buf) throw new Error(`the optimiser was not made for parameter '${name}'`);
      const g = gradOf(grads, name, p.length);
      const wd = this.decayOf.get(name)!;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! + wd * p[i]!;
        const b = (buf[i] = mu * buf[i]! + gi);
        p[i] = p[i]! - lr * (this.nesterov ? gi + mu * b : b);
      }
    }
  }

  state(): OptimizerState {
    return { kind: this.kind, step: this.t, slots: new Map([["momentum", this.buf]]) };
  }

  restore(state: OptimizerState): void {
    restoreSlots(new Map([["momentum", this.buf]]), state, this.kind);
    this.t = state.step;
  }
}

/** The L2 norm of all gradients together. */
export function globalNorm(grads: ReadonlyMap<string, Float32Array>): number {
  let sum = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  return Math.sqrt(sum);
}

/** The factor clipGradNorm scales gradients of global norm `norm` by. */
export function clipScale(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
}

/**
 * Scales the gradients in place so their global norm is at most `maxNorm` (exactly `maxNorm` when it
 * was larger); returns the norm before clipping. `maxNorm` 0 or Infinity: no clipping.
 */
export function clipGradNorm(grads: ReadonlyMap<string, Float32Array>, maxNorm: number): number {
  const norm = globalNorm(grads);
  const scale = clipScale(norm, maxNorm);
  if (scale !== 1) {
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = g[i]! * scale;
  }
  return norm;
}

/**
 * Gradient accumulation: the mean of the gradients (and losses) of several micro-batches, so B
 * sequences × K micro-batches step as one batch of B·K would.
 */
export class GradientAccumulator {
  private sums: Map<string, Float64Array> | null = null;
  private lossSum = 0;
  private count = 0;

  add(loss: number, grads: ReadonlyMap<string, Float32Array>): void {
    if (!this.sums) this.sums = new Map([...grads].map(([n, g]) => [n, new Float64Array(g.length)]));
    for (const [name, sum] of this.sums) {
      const g = gradOf(grads, name, sum.length);
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + g[i]!;
    }
    this.lossSum += loss;
    this.count++;
  }

  /** The mean loss and gradients so far; starts over. */
  take(): { loss: number; grads: Tensors } {
    if (!this.sums || this.count === 0) throw new Error("no micro-batch gradients to average");
    const n = this.count;
    const grads: Tensors = new Map();
    for (const [name, sum] of this.sums) {
      const g = new Float32Array(sum.length);
      for (let i = 0; i < g.length; i++) g[i] = sum[i]! / n;
      grads.set(name, g);
    }
    const loss = this.lossSum / n;
    this.sums = null;
    this.lossSum = 0;
    this.count = 0;
    return { loss, grads };
  }
}

// What the WGSL and CUDA optimiser kernels share: the flat layout of the trained parameters (and of
// their gradient sums and moments, which have the same layout), and the per-step scalars the update
// kernel reads. The host optimiser (src/train/optimizer.ts) is the reference these kernels follow.

/** The update rule the kernel applies. */
export type OptimizerRule = { kind: "adamw" } | { kind: "sgd"; nesterov: boolean };

export interface FlatSegment {
  name: string;
  /** Offset and size in floats. */
  offset: number;
  count: number;
}

export interface FlatLayout {
  /** Where the parameters start: [0, start) holds the summed loss of the step's sequences. */
  start: number;
  /** Floats in all (padding included). */
  total: number;
  /** Parameters below this offset are decayed, the rest not. */
  decayEnd: number;
  segments: FlatSegment[];
}

/** Each tensor starts on a 64-float (256-byte) boundary: CUDA's step kernels read the weights in
 *  place, some with wide loads. */
export const FLAT_ALIGN = 64;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** The decayed parameters first (so one bound tells decay apart), each in the given order. */
export function flatLayout(shapes: ReadonlyMap<string, readonly number[]>, decayed: (name: string) => boolean): FlatLayout {
  const names = [...shapes.keys()];
  const ordered = [...names.filter(decayed), ...names.filter((n) => !decayed(n))];
  const segments: FlatSegment[] = [];
  let at = FLAT_ALIGN;
  let decayEnd = at;
  for (const name of ordered) {
    const count = shapes.get(name)!.reduce((a, b) => a * b, 1);
    segments.push({ name, offset: at, count });
    at = roundUp(at + count, FLAT_ALIGN);
    if (decayed(name)) decayEnd = at;
  }
  return { start: FLAT_ALIGN, total: at, decayEnd, segments };
}

/** The update kernel's scalars, in the order of its parameter block (WGSL `Hyper`, CUDA `h`). */
export interface UpdateScalars {
  /** Multiplies the gradient sums: 1/sequences, times the clipping factor. */
  gradScale: number;
  beta1: number;
  beta2: number;
  /** AdamW: lr / (1 − β1ᵗ). */
  stepSize: number;
  /** AdamW: √(1 − β2ᵗ). */
  sqrtCorrection2: number;
  eps: number;
  /** AdamW: 1 − lr·wd for decayed parameters. */
  keep: number;
  lr: number;
  momentum: number;
  /** SGD: the L2 term of decayed parameters. */
  weightDecay: number;
}

/** Floats of the packed scalars (48 bytes, a whole number of 16-byte uniform rows). */
export const UPDATE_SCALARS_FLOATS = 12;

/** An optimiser as the device kernels take it: the update rule, which parameters are decayed, and
 *  the scalars of optimiser step `t` (1-based) at rate `lr`, the gradient sums scaled by `gradScale`
 *  (src/train/optimizer.ts makes one from the host optimiser's settings). */
export interface DeviceOptimizerConfig {
  rule: OptimizerRule;
  decayed: (name: string) => boolean;
  scalars(t: number, lr: number, gradScale: number): UpdateScalars;
}

export function packUpdateScalars(s: UpdateScalars): Float32Array<ArrayBuffer> {
  return Float32Array.of(
    s.gradScale, s.beta1, 1 - s.beta1, s.beta2, 1 - s.beta2, s.stepSize, s.sqrtCorrection2, s.eps, s.keep, s.lr, s.momentum, s.weightDecay,
  );
}

/** The update kernel's optimiser slots, in binding order (their names are the host optimiser's). */
export function optimizerSlots(rule: OptimizerRule): string[] {
  return rule.kind === "adamw" ? ["m", "v"] : ["momentum"];
}

/** Checks saved optimiser state (the host optimiser's form) against a device optimiser: the same
 *  rule and every slot of every parameter at its size. Returns the saved step count. */
export function checkSavedOptimizer(
  state: { kind: string; step: number; slots: ReadonlyMap<string, ReadonlyMap<string, Float32Array>> },
  rule: OptimizerRule,
  layout: FlatLayout,
): number {
  if (state.kind !== rule.kind) throw new Error(`the saved optimiser state is ${state.kind}, this run uses ${rule.kind}`);
  for (const slot of optimizerSlots(rule)) {
    const saved = state.slots.get(slot);
    if (!saved) throw new Error(`the saved ${rule.kind} state has no '${slot}' values`);
    for (const seg of layout.segments) {
      if (saved.get(seg.name)?.length !== seg.count) throw new Error(`the saved ${rule.kind} state has no '${slot}' values of the right size for '${seg.name}'`);
    }
  }
  return state.step;
}

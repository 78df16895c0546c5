// Learning-rate schedules: the rate for a 0-based step, a pure function of the step so a resumed run
// follows the same curve. Every schedule starts with an optional linear warm-up from lr/W to lr over
// W steps; then constant, cosine decay to a floor over the remaining steps, or step decay.

export type ScheduleKind = "constant" | "cosine" | "step";

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** The peak learning rate. */
  lr: number;
  /** The total number of steps (cosine reaches minLr at this step). */
  steps: number;
  /** Warm-up steps (default 0). */
  warmup?: number;
  /** The floor of cosine and step decay (default 0). */
  minLr?: number;
  /** Step decay: multiply by `factor` (default 0.1) every `every` steps after warm-up (default a third of the steps after warm-up). */
  every?: number;
  factor?: number;
}

export function learningRate(s: ScheduleConfig, step: number): number {
  const warmup = s.warmup ?? 0;
  const minLr = s.minLr ?? 0;
  if (step < warmup) return (s.lr * (step + 1)) / warmup;
  const after = step - warmup;
  const decaySteps = Math.max(1, s.steps - warmup);
  switch (s.kind) {
    case "constant":
      return s.lr;
    case "cosine": {
      const progress = Math.min(1, after / decaySteps);
      return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * progress));
    }
    case "step": {
      const every = s.every ?? Math.max(1, Math.ceil(decaySteps / 3));
      return Math.max(minLr, s.lr * (s.factor ?? 0.1) ** Math.floor(after / every));
    }
  }
}

/** Checks a schedule's numbers; returns the problems, each naming the setting. */
export function scheduleProblems(s: ScheduleConfig): string[] {
  const out: string[] = [];
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) out.push(`the learning rate must be a positive number, got ${s.lr}`);
  if (!Number.isSafeInteger(s.steps) || s.steps <= 0) out.push(`the number of steps must be a positive integer, got ${s.steps}`);
  const warmup = s.warmup ?? 0;
  if (!Number.isSafeInteger(warmup) || warmup < 0) out.push(`warm-up must be an integer ≥ 0, got ${warmup}`);
  const minLr = s.minLr ?? 0;
  if (!(minLr >= 0) || minLr > s.lr) out.push(`the minimum learning rate must lie in [0, lr], got ${minLr}`);
  if (s.every !== undefined && (!Number.isSafeInteger(s.every) || s.every <= 0)) out.push(`the decay interval must be a positive integer, got ${s.every}`);
  if (s.factor !== undefined && !(s.factor > 0 && s.factor <= 1)) out.push(`the decay factor must lie in (0, 1], got ${s.factor}`);
  return out;
}

// Learning-rate schedules at known steps.

import { describe, expect, it } from "vitest";
import { learningRate, scheduleProblems, type ScheduleConfig } from "../../src/train/schedule.js";

describe("learning-rate schedules", () => {
  it("constant is lr at every step, after a linear warm-up from lr/W", () => {
    const s: ScheduleConfig = { kind: "constant", lr: 0.01, steps: 100, warmup: 4 };
    expect([0, 1, 2, 3].map((i) => learningRate(s, i))).toEqual([0.0025, 0.005, 0.0075, 0.01]);
    expect(learningRate(s, 4)).toBe(0.01);
    expect(learningRate(s, 99)).toBe(0.01);
  });

  it("cosine falls from lr at the end of warm-up through the midpoint to min-lr at the last step", () => {
    const s: ScheduleConfig = { kind: "cosine", lr: 1, steps: 110, warmup: 10, minLr: 0.1 };
    expect(learningRate(s, 9)).toBe(1);
    expect(learningRate(s, 10)).toBe(1);
    expect(learningRate(s, 60)).toBeCloseTo(0.55, 12); // halfway: (lr + min)/2
    expect(learningRate(s, 35)).toBeCloseTo(0.1 + 0.45 * (1 + Math.SQRT1_2), 12); // a quarter: cos(π/4)
    expect(learningRate(s, 110)).toBeCloseTo(0.1, 12);
    expect(learningRate(s, 500)).toBeCloseTo(0.1, 12); // past the end it stays at the floor
  });

  it("cosine without warm-up or floor starts at lr and ends at 0", () => {
    const s: ScheduleConfig = { kind: "cosine", lr: 0.5, steps: 4 };
    expect([0, 1, 2, 3, 4].map((i) => learningRate(s, i))).toEqual([0.5, expect.closeTo(0.4267766952966369, 12), expect.closeTo(0.25, 12), expect.closeTo(0.07322330470336313, 12), expect.closeTo(0, 12)]);
  });

  it("step decay multiplies by the factor every K steps, down to the floor", () => {
    const s: ScheduleConfig = { kind: "step", lr: 1, steps: 100, every: 10, factor: 0.5, minLr: 0.2 };
    expect([0, 9, 10, 19, 20, 30, 99].map((i) => learningRate(s, i))).toEqual([1, 1, 0.5, 0.5, 0.25, 0.2, 0.2]);
  });

  it("step decay counts from the end of warm-up, every third of the rest by default", () => {
    const s: ScheduleConfig = { kind: "step", lr: 1, steps: 32, warmup: 2 };
    expect(learningRate(s, 0)).toBe(0.5);
    expect(learningRate(s, 11)).toBe(1);
    expect(learningRate(s, 12)).toBeCloseTo(0.1, 12);
    expect(learningRate(s, 22)).toBeCloseTo(0.01, 12);
  });

  it("names each bad setting", () => {
    expect(scheduleProblems({ kind: "cosine", lr: 0, steps: 0, warmup: -1, minLr: 2 })).toEqual([
      expect.stringMatching(/learning rate must be a positive/),
      expect.stringMatching(/number of steps/),
      expect.stringMatching(/warm-up/),
      expect.stringMatching(/minimum learning rate/),
    ]);
    expect(scheduleProblems({ kind: "cosine", lr: 0.1, steps: 10 })).toEqual([]);
  });
});

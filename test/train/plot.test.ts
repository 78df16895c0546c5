// The loss-curve SVG: well-formed, one polyline per curve with a point per step, in the plot area.

import { describe, expect, it } from "vitest";
import { lossCurveSvg, ticks } from "../../src/train/plot.js";

describe("lossCurveSvg", () => {
  it("draws the training and validation curves as polylines inside the plot", () => {
    const train: [number, number][] = Array.from({ length: 20 }, (_, i) => [i + 1, 5 - i * 0.2]);
    const val: [number, number][] = [[10, 3.5], [20, 1.5]];
    const svg = lossCurveSvg({ train, val, title: "tiny <model> & co" });
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("tiny &lt;model&gt; &amp; co");
    const points = (cls: string) =>
      svg
        .match(new RegExp(`class="${cls}"[^>]*points="([^"]*)"`))![1]!
        .split(" ")
        .map((p) => p.split(",").map(Number) as [number, number]);
    const t = points("train");
    const v = points("val");
    expect(t.length).toBe(20);
    expect(v.length).toBe(2);
    for (const [x, y] of [...t, ...v]) {
      expect(x).toBeGreaterThanOrEqual(56);
      expect(x).toBeLessThanOrEqual(640 - 16);
      expect(y).toBeGreaterThanOrEqual(32);
      expect(y).toBeLessThanOrEqual(360 - 40);
    }
    // Loss falls, so y (down the page) grows; later steps lie further right.
    expect(t[19]![1]).toBeGreaterThan(t[0]![1]);
    expect(t[19]![0]).toBeGreaterThan(t[0]![0]);
    // The validation point at step 10 lies between training steps 9 and 11 horizontally.
    expect(v[0]![0]).toBeGreaterThan(t[8]![0]);
    expect(v[0]![0]).toBeLessThan(t[10]![0]);
    // Every element is closed.
    expect((svg.match(/<(line|text|rect|polyline|circle)\b/g) ?? []).length).toBe((svg.match(/\/>|<\/text>/g) ?? []).length);
  });

  it("draws one step, a flat curve, and no validation without failing", () => {
    expect(lossCurveSvg({ train: [[1, 2]], val: [] })).toContain("<circle");
    expect(lossCurveSvg({ train: [[1, 2], [2, 2]], val: [] })).toContain('class="train"');
    expect(lossCurveSvg({ train: [], val: [] })).toContain("</svg>");
  });
});

describe("ticks", () => {
  it("are 1, 2 or 5 × 10^k apart and cover the range", () => {
    expect(ticks(0, 100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(ticks(1.93, 2.61)).toEqual([2, 2.2, 2.4, 2.6]); // a range of 0.68 in at most 5 steps: 0.2 apart
    expect(ticks(0, 7)).toEqual([0, 2, 4, 6]);
  });
});

// ROUGE against Google's rouge-score: the values in its rouge_scorer_test.py (some of them ROUGE-1.5.5's
// own output, on the test data files copied to fixtures/rouge-*.txt from google-research/rouge/testdata,
// Apache 2.0), and cases derived by hand.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lcsIndices, rouge, rougeScore, rougeTokens, sentenceRouge } from "../../src/eval/rouge.js";

const fixture = (name: string) => readFileSync(join("test", "eval", "fixtures", name), "utf8");
const lines = (name: string) => fixture(name).split("\n");

function expectScore(s: { precision: number; recall: number; fmeasure: number } | undefined, p: number, r: number, f: number, digits = 10) {
  expect(s!.precision).toBeCloseTo(p, digits);
  expect(s!.recall).toBeCloseTo(r, digits);
  expect(s!.fmeasure).toBeCloseTo(f, digits);
}

describe("rouge-score's unit cases", () => {
  it("ROUGE-1, ROUGE-2, ROUGE-L on 'testing one two'", () => {
    expectScore(rougeScore("testing one two", "testing").rouge1, 1, 1 / 3, 1 / 2);
    expectScore(rougeScore("testing one two", "testing one").rouge2, 1, 1 / 2, 2 / 3);
    expectScore(rougeScore("testing one two", "testing one").rougeL, 1, 2 / 3, 4 / 5);
    expectScore(rougeScore("testing one two", "testing two").rougeL, 1, 2 / 3, 4 / 5);
  });

  it("an empty prediction scores 0 everywhere", () => {
    const r = rougeScore("testing one two", "");
    for (const t of ["rouge1", "rouge2", "rougeL", "rougeLsum"] as const) expectScore(r[t], 0, 0, 0);
    expectScore(rougeScore("", "w1").rougeLsum, 0, 0, 0);
    expectScore(rougeScore("w1 w2 w3 w4 w5", "/").rougeLsum, 0, 0, 0);
  });

  it("LCS read-back and the union LCS of the ROUGE paper's section 3.2", () => {
    expect(lcsIndices(["1", "2", "3", "4", "5"], ["2", "5", "3", "4"])).toEqual([1, 2, 3]);
    expect(lcsIndices(["1", "2", "3", "4", "5"], ["8", "9"])).toEqual([]);
    // ref w1…w5 against two candidate sentences: union LCS {w1, w2, w3, w5}: recall 4/5, precision 4/10.
    const r = rougeScore("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5").rougeLsum;
    expectScore(r, 0.4, 0.8, (2 * 0.4 * 0.8) / 1.2);
  });
});

describe("against ROUGE-1.5.5 (rouge_scorer_test.py)", () => {
  const targets = lines("rouge-target.txt");
  const predictions = lines("rouge-prediction.txt");

  it("ROUGE-1 and ROUGE-L, without stemming", () => {
    for (const t of ["rouge1", "rougeL"] as const) {
      expectScore(rougeScore(targets[0]!, predictions[0]!)[t], 0.6875, 0.40741, 0.51163, 5);
      expectScore(rougeScore(targets[1]!, predictions[1]!)[t], 0.65385, 0.40476, 0.5, 5);
    }
  });

  it("ROUGE-1 with stemming", () => {
    expectScore(rougeScore(targets[0]!, predictions[0]!, { stem: true }).rouge1, 0.6875, 0.40741, 0.51163, 5);
    expectScore(rougeScore(targets[1]!, predictions[1]!, { stem: true }).rouge1, 0.69231, 0.42857, 0.52941, 5);
  });

  it("ROUGE-2, with and without stemming", () => {
    for (const stem of [false, true]) {
      expectScore(rougeScore(targets[0]!, predictions[0]!, { stem }).rouge2, 0.53333, 0.30769, 0.39024, 5);
      expectScore(rougeScore(targets[1]!, predictions[1]!, { stem }).rouge2, 0.48, 0.29268, 0.36364, 5);
    }
  });

  it("ROUGE-Lsum with stemming on a multi-sentence summary", () => {
    const r = rougeScore(fixture("rouge-target-multi.txt"), fixture("rouge-prediction-multi.txt"), { stem: true }).rougeLsum;
    expectScore(r, 0.66667, 0.36538, 0.47205, 5);
  });
});

describe("tokens, several references, a set", () => {
  it("lowercases, splits on anything but a-z0-9, stems only tokens longer than 3 characters", () => {
    expect(rougeTokens("The quick-brown FOX's 2 dogs!")).toEqual(["the", "quick", "brown", "fox", "s", "2", "dogs"]);
    expect(rougeTokens("running dogs ran cats", true)).toEqual(["run", "dog", "ran", "cat"]);
    expect(rougeTokens("Ünïcode café")).toEqual(["n", "code", "caf"]);
  });

  it("takes, per type, the reference with the best F1", () => {
    // Against "a b c" the prediction "a b" has R1 F = 0.8; against "a x" 0.5; against "b a" R1 F = 1 but RL F = 0.5.
    const r = sentenceRouge("a b", ["a x", "b a", "a b c"]);
    expectScore(r.rouge1, 1, 1, 1);
    expectScore(r.rougeL, 1, 2 / 3, 0.8);
  });

  it("averages each score over the set", () => {
    const r = rouge(["a b", "c d"], [["a b"], ["x y"]], { types: ["rouge1"] });
    expect(Object.keys(r)).toEqual(["rouge1"]);
    expectScore(r.rouge1, 0.5, 0.5, 0.5);
  });
});

// BLEU against sacreBLEU: its README's corpus example and the values in its test suite
// (test/test_bleu.py, test/test_sentence_bleu.py), and cases derived by hand from the definition.

import { describe, expect, it } from "vitest";
import { bleu, bleuFromStatistics, segmentStatistics, sentenceBleu, tokenize } from "../../src/eval/bleu.js";

// sacreBLEU's README: two reference streams; here references are grouped per hypothesis.
const HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
const REFS = [
  ["The dog bit the man.", "The dog had bit the man."],
  ["It was not unexpected.", "No one was surprised."],
  ["The man bit him first.", "The man had bitten the dog."],
];

describe("corpus BLEU (sacreBLEU defaults: 13a, exp smoothing)", () => {
  it("the README example scores 48.530827", () => {
    expect(bleu(HYPS, REFS).score).toBeCloseTo(48.530827, 6);
    // test_bleu.py: the same with smoothing 'none' (every order has a match), and tokenize 'none'.
    expect(bleu(HYPS, REFS, { smooth: "none" }).score).toBeCloseTo(48.530827, 6);
    expect(bleu(HYPS, REFS, { tokenize: "none" }).score).toBeCloseTo(49.1919566, 6);
  });

  it("empty hypotheses are scored, not dropped: 0", () => {
    expect(bleu(["", "", ""], REFS).score).toBe(0);
  });

  it("statistics of one segment, counted by hand", () => {
    // hyp: am I am a character sequence; ref: I am a symbol string sequence a a.
    // 1-grams: am (2, clipped to 1), I, a, sequence match, character not: 4 of 6.
    // 2-grams: "I am", "am a" of 5; 3-grams: "I am a" of 4; 4-grams: none of 3.
    const s = segmentStatistics("am I am a character sequence", ["I am a symbol string sequence a a"]);
    expect(s).toEqual({ sysLen: 6, refLen: 8, counts: [4, 2, 1, 0], totals: [6, 5, 4, 3] });
  });

  it("score from statistics (test_bleu.py test_scoring: 0.8375922397)", () => {
    const r = bleuFromStatistics({ counts: [9, 7, 5, 3], totals: [10, 8, 6, 4], sysLen: 11, refLen: 11 });
    expect(r.score / 100).toBeCloseTo(0.8375922397, 9);
    // By hand: bp 1, geometric mean of 9/10, 7/8, 5/6, 3/4.
    expect(r.score).toBeCloseTo(100 * Math.pow((9 / 10) * (7 / 8) * (5 / 6) * (3 / 4), 1 / 4), 10);
  });

  it("exp smoothing halves the precision again for each further order without matches", () => {
    // 1-grams 2/4 match, 2-grams 0/3, 3-grams 0/2, 4-grams 0/1: precisions 50, 100/(2·3), 100/(4·2), 100/(8·1).
    const r = bleuFromStatistics({ counts: [2, 0, 0, 0], totals: [4, 3, 2, 1], sysLen: 4, refLen: 4 });
    expect(r.precisions).toEqual([50, 100 / 6, 100 / 8, 100 / 8]);
    expect(r.score).toBeCloseTo(Math.exp((Math.log(50) + Math.log(100 / 6) + 2 * Math.log(12.5)) / 4), 10);
  });

  it("brevity penalty uses the closest reference length, the shorter on ties", () => {
    // Hypothesis of 4 tokens; references of 3 and 5 tokens are equally close: 3 is taken, no penalty.
    const tie = bleu(["a b c d"], [["a b c", "a b c d e"]]);
    expect(tie.refLen).toBe(3);
    expect(tie.bp).toBe(1);
    // References of 6 and 9 tokens: 6 is closest; bp = exp(1 − 6/4).
    const short = bleu(["a b c d"], [["a b c d e f", "a b c d e f g h i"]]);
    expect(short.refLen).toBe(6);
    expect(short.bp).toBeCloseTo(Math.exp(1 - 6 / 4), 12);
    expect(short.score).toBeCloseTo(100 * Math.exp(1 - 6 / 4), 10);
  });

  it("clips each n-gram by the reference that has most of it", () => {
    // "the" ×3 in the hypothesis; refs have it twice and once: 2 matches of 3 1-grams.
    const s = segmentStatistics("the the the", ["the cat the", "the"]);
    expect(s.counts[0]).toBe(2);
    expect(s.totals[0]).toBe(3);
  });

  it("sums statistics over the corpus before scoring", () => {
    const one = bleu(["a b c d"], [["a b c d"]]);
    const two = bleu(["a b c d", "w x y z"], [["a b c d"], ["p q r s"]]);
    expect(one.score).toBeCloseTo(100, 10);
    // Corpus counts [4,3,2,1] of [8,6,4,2]: every precision is 1/2.
    expect(two.counts).toEqual([4, 3, 2, 1]);
    expect(two.score).toBeCloseTo(50, 10);
  });
});

describe("sentence BLEU (effective order)", () => {
  // test_sentence_bleu.py, the example from sacreBLEU issue #98.
  const REF = "produc\u0163ia de zah\u0103r brut se exprim\u0103 \u00een zah\u0103r alb;";
  const SYS = "Produc\u021Bia de zah\u0103r prim\u0103 va fi exprimat\u0103 \u00een ceea ce prive\u0219te zah\u0103rul alb;";

  it("matches sacreBLEU's published values for each smoothing (to its test's 1e-3)", () => {
    const cases: [Parameters<typeof sentenceBleu>[2], number][] = [
      [{}, 8.493],
      [{ smooth: "none" }, 0],
      [{ smooth: "floor" }, 4.51688],
      [{ smooth: "floor", smoothValue: 0.5 }, 10.1],
      [{ smooth: "add-k" }, 14.882],
      [{ smooth: "add-k", smoothValue: 2 }, 21.389],
      [{ tokenize: "none" }, 7.347],
    ];
    for (const [opts, expected] of cases) expect(Math.abs(sentenceBleu(SYS, [REF], opts).score - expected), JSON.stringify(opts)).toBeLessThan(1e-3);
  });

  it("no match at all is 0 whatever the smoothing (sacreBLEU #141)", () => {
    for (const smooth of ["exp", "none", "floor", "add-k"] as const) expect(sentenceBleu("this is a cat", ["okay thanks"], { smooth }).score).toBe(0);
  });

  it("averages only the orders the hypothesis has (test_bleu.py effective order cases)", () => {
    // "test" vs "a test": one 1-gram, matched; bp = exp(1 − 2/1).
    expect(sentenceBleu("test", ["a test"], { smooth: "floor", smoothValue: 0.01, tokenize: "none" }).score / 100).toBeCloseTo(0.3678794411714425, 12);
    expect(sentenceBleu("a test", ["a test"], { smooth: "floor", smoothValue: 0.01, tokenize: "none" }).score / 100).toBeCloseTo(1, 12);
    expect(sentenceBleu("a little test", ["a test"], { smooth: "floor", smoothValue: 0.01, tokenize: "none" }).score / 100).toBeCloseTo(0.03218297948685433, 12);
  });
});

describe("the 13a tokeniser", () => {
  it("splits punctuation and symbols, keeps decimals, thousands and dates", () => {
    expect(tokenize("The dog bit the man.")).toBe("The dog bit the man .");
    expect(tokenize("It wasn't surprising.")).toBe("It wasn't surprising .");
    expect(tokenize("3.14, 1,000 and 10-12 (approx.)")).toBe("3.14 , 1,000 and 10 - 12 ( approx . )");
    expect(tokenize('a&amp;b &quot;q&quot; x&lt;y')).toBe('a & b " q " x < y');
    expect(tokenize("e-mail: user@host/path")).toBe("e-mail : user @ host / path");
    expect(tokenize("  spaced \t out  ")).toBe("spaced out");
  });
});

// Stop strings over streamed text: whatever the chunking, the text shown is exactly the text before
// the first stop string, and no part of a stop string is ever shown.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StopMatcher } from "../../src/runtime/generate/generate.js";

const runs = process.env["CI"] ? 1000 : 200;
const alphabet = fc.constantFrom("a", "b", "c", "ab", "ba", "\n", "é", "");

describe("StopMatcher", () => {
  it("shows the text before the first stop string, however the text is split", () => {
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 30 }),
        fc.array(fc.array(fc.constantFrom("a", "b", "c", "\n"), { minLength: 1, maxLength: 4 }).map((c) => c.join("")), { maxLength: 3 }),
        (chunks, stops) => {
          const full = chunks.join("");
          const at = Math.min(...stops.map((s) => full.indexOf(s)).filter((i) => i >= 0), Infinity);
          const expected = at === Infinity ? full : full.slice(0, at);

          const m = new StopMatcher(stops);
          let shown = "";
          let stopped = false;
          for (let i = 0; i < chunks.length && !stopped; i++) {
            const r = i === chunks.length - 1 ? m.end(chunks[i]!) : m.push(chunks[i]!);
            shown += r.text;
            stopped = r.stopped;
            // Nothing shown so far goes past the text before the first stop string.
            expect(expected.startsWith(shown)).toBe(true);
          }
          if (chunks.length === 0) shown += m.end("").text;
          expect(shown).toBe(expected);
          expect(stopped).toBe(at !== Infinity);
        },
      ),
      { numRuns: runs },
    );
  });

  it("holds back a possible start of a stop string until it is decided", () => {
    const m = new StopMatcher(["</s>", "User:"]);
    expect(m.push("Hello <")).toEqual({ text: "Hello ", stopped: false });
    expect(m.push("/")).toEqual({ text: "", stopped: false });
    expect(m.push("b>")).toEqual({ text: "</b>", stopped: false });
    expect(m.push(" Us")).toEqual({ text: " ", stopped: false });
    expect(m.push("er: hi")).toEqual({ text: "", stopped: true });
  });

  it("with no stop strings, shows everything at once", () => {
    const m = new StopMatcher(["", ""]);
    expect(m.push("abc")).toEqual({ text: "abc", stopped: false });
  });
});

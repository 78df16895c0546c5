import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { renderOpsDoc } from "../../src/compiler/ops/doc.js";
import { opTable } from "../../src/compiler/ops/table.js";

describe("docs/ops.md", () => {
  it("is the op table's current documentation (regenerate: node scripts/gen-ops-doc.mjs)", () => {
    expect(readFileSync("docs/ops.md", "utf8")).toBe(renderOpsDoc());
  });
  it("lists every op", () => {
    const doc = readFileSync("docs/ops.md", "utf8");
    for (const name of opTable.keys()) expect(doc).toContain(`| \`${name}\` |`);
  });
});

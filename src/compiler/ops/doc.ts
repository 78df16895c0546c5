// docs/ops.md is generated from the op table, so the documentation cannot drift from the rules.
// Regenerate with `node scripts/gen-ops-doc.mjs`; a test fails when the file is stale.

import { opTable } from "./table.js";

const SEMANTICS = `## Numeric semantics shared by every backend
- Floating-point ops compute in f32 (f16/bf16 weights are widened on load); the CPU reference computes
  in f64 and rounds each result to the op's element type, which bounds every backend's error.
- i32 arithmetic wraps (two's complement); \`div\` truncates toward zero and division by zero is an
  error; \`pow\` with a negative exponent truncates \`1 / a^|b|\`; \`cast\` to i32 truncates toward zero
  and saturates, NaN → 0.
- \`amax\` propagates NaN; a fully masked attention row is 0.
- Broadcasting follows NumPy: shapes align from the right and a dim of 1 stretches.
`;

export function renderOpsDoc(): string {
  const lines = [
    "# Primitive ops",
    "",
    "Generated from `src/compiler/ops/table.ts` by `node scripts/gen-ops-doc.mjs`; do not edit by hand.",
    "Every op is defined once there: attributes, shape/dtype rule (`infer`), and its CPU reference in",
    "`src/compiler/ops/reference.ts`. `fused`, `linear` and `fused_linear` are made by the fusion passes",
    "(rules in `src/compiler/passes/fuse.ts`), never written in `.llm`.",
    "",
    "| op | kind | inputs | attributes | meaning |",
    "|---|---|---|---|---|",
  ];
  for (const d of opTable.values()) {
    const attrs = Object.entries(d.attrs).map(([k, v]) => `${k}${d.optionalAttrs?.includes(k) ? "?" : ""}: ${v}`).join(", ") || "—";
    const arity = d.arity < 0 ? "any" : String(d.arity);
    lines.push(`| \`${d.name}\` | ${d.kind} | ${arity} | ${attrs} | ${d.doc.replace(/\|/g, "\\|")} |`);
  }
  lines.push("", SEMANTICS);
  return lines.join("\n");
}

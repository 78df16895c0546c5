// `llmc check FILE… [--set k=v]`: report every error in the files, located, with code frames.

import { parseArgs } from "node:util";
import { checkFile } from "../../compiler/check/index.js";
import type { CliIO } from "../io.js";
import { parseSetFlags, printDiagnostics, UsageError } from "./common.js";

export const checkUsage = `usage: llmc check FILE.llm… [--set name=value]… [--model NAME]

Checks names, config values and constraints, weight declarations and the shapes of every model's
forward pass. Shapes are checked for models whose config values are all bound (use --set, or check a
file that extends the architecture with values, as 'llmc import' writes).`;

export async function runCheck(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { set: { type: "string", multiple: true }, model: { type: "string" } },
  });
  if (positionals.length === 0) throw new UsageError("llmc check needs at least one .llm file", checkUsage);
  const overrides = parseSetFlags(values.set);
  let failed = false;
  for (const file of positionals) {
    const res = checkFile(file, { overrides, ...(values.model ? { model: values.model } : {}) });
    const errors = printDiagnostics(res.diagnostics, res.program.sources, io);
    if (errors > 0) {
      failed = true;
      io.err(`${file}: ${errors} error${errors === 1 ? "" : "s"}\n`);
      continue;
    }
    const abstract = [...res.models.values()].filter((m) => m.file === res.program.root && !res.checked.some((c) => c.name === m.decl.name.name));
    for (const m of abstract) {
      io.err(`${file}: note: shapes of model '${m.decl.name.name}' not checked: config values without a value (pass --set, or check a model that binds them)\n`);
    }
    io.out(`${file}: ok${res.checked.length > 0 ? ` (${res.checked.map((m) => m.name).join(", ")}: shapes checked)` : ""}\n`);
  }
  return failed ? 1 : 0;
}

// Pieces every command shares: --set parsing, printing diagnostics, usage errors, the backend report.

import { formatDiagnostic, type Diagnostic, type SourceMap } from "../../compiler/base/diagnostics.js";
import type { Backend } from "../../runtime/backend.js";
import type { CliIO } from "../io.js";

/** A wrong command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly usage?: string) {
    super(message);
  }
}

/** `--set a=1 --set b=2` (also `--set a=1,b=2`) → map. */
export function parseSetFlags(sets: string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of sets ?? []) {
    for (const part of s.split(",")) {
      if (part.trim() === "") continue;
      const eq = part.indexOf("=");
      if (eq <= 0) throw new UsageError(`--set takes name=value, got '${part}'`);
      out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
  }
  return out;
}

/** Prints diagnostics to stderr; returns the number of errors among them. */
export function printDiagnostics(diags: readonly Diagnostic[], sources: SourceMap, io: CliIO): number {
  for (const d of diags) io.err(formatDiagnostic(d, sources, io.color) + "\n\n");
  return diags.filter((d) => d.severity === "error").length;
}

/** For `-v`: prints the backend chosen and why "auto" passed over each one before it. */
export function printBackendChoice(io: CliIO, prefix: string): (backend: Backend, skipped: readonly string[]) => void {
  return (backend, skipped) => {
    io.err(`${prefix}: backend ${backend.description}\n`);
    for (const s of skipped) io.err(`${prefix}:   skipped ${s}\n`);
  };
}

// `llmc fmt FILE… [--write|--check]`: print, rewrite or check the canonical layout of .llm files.
// A file with syntax errors is never formatted; its diagnostics are printed instead.

import { readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { parseModule } from "../../compiler/parse/index.js";
import { hasErrors, sortDiagnostics } from "../../compiler/base/diagnostics.js";
import { formatModule } from "../../compiler/fmt/format.js";
import type { CliIO } from "../io.js";
import { printDiagnostics, UsageError } from "./common.js";

export const fmtUsage = `usage: llmc fmt FILE.llm… [--write | --check]

Prints each file in the canonical .llm layout. Comments are kept; a file with syntax errors is
never formatted (its errors are printed instead).
  --write, -w  rewrite the files whose layout differs (each is replaced whole, never half-written)
  --check      list the files whose layout differs, and exit 1 if there are any`;

export async function runFmt(args: string[], io: CliIO): Promise<number> {
  const { values, positionals: files } = parseArgs({
    args,
    allowPositionals: true,
    options: { write: { type: "boolean", short: "w" }, check: { type: "boolean" } },
  });
  if (values.write && values.check) throw new UsageError("--write and --check cannot be combined", fmtUsage);
  if (files.length === 0) throw new UsageError("llmc fmt needs at least one .llm file", fmtUsage);

  let status = 0;
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      io.err(`llmc fmt: cannot read ${file}: ${reason(e)}\n`);
      status = 1;
      continue;
    }
    const { module, diagnostics } = parseModule(file, text);
    if (hasErrors(diagnostics)) {
      printDiagnostics(sortDiagnostics(diagnostics), new Map([[file, text]]), io);
      io.err(`${file}: not formatted: it has syntax errors\n`);
      status = 1;
      continue;
    }
    const formatted = formatModule(module, text);
    if (values.check) {
      if (formatted !== text) {
        io.out(`${file}\n`);
        status = 1;
      }
    } else if (values.write) {
      if (formatted === text) continue;
      try {
        await replaceFile(file, formatted);
      } catch (e) {
        io.err(`llmc fmt: cannot write ${file}: ${reason(e)}\n`);
        status = 1;
      }
    } else {
      io.out(formatted);
    }
  }
  return status;
}

/** Writes beside the file, then renames over it, so a crash leaves the old or the new text, never half. */
async function replaceFile(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now().toString(36)}.fmt-tmp`);
  const mode = (await stat(file)).mode & 0o777;
  try {
    await writeFile(tmp, text, { encoding: "utf8", mode, flag: "wx" });
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "ENOENT":
      return "no such file";
    case "EISDIR":
      return "it is a directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return err.message ?? String(e);
  }
}

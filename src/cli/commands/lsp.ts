// `llmc lsp`: the .llm language server, speaking LSP over stdin/stdout (editors start it; see
// docs/editors.md). It runs until the editor closes the connection.

import { StreamMessageReader, StreamMessageWriter } from "vscode-languageserver/node";
import { startLanguageServer } from "../../lsp/server.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";

export const lspUsage = `usage: llmc lsp [--stdio]

Runs the .llm language server on stdin/stdout: diagnostics, hover (shapes, config values, signatures),
go to definition, formatting, completion and document symbols. Editors start it; docs/editors.md
says how (editors/vscode is a VS Code extension that does).`;

export async function runLsp(args: string[], _io: CliIO): Promise<number> {
  // Language clients commonly pass --stdio; it is the only transport.
  const unknown = args.filter((a) => a !== "--stdio");
  if (unknown.length > 0) throw new UsageError(`unknown argument '${unknown[0]}'`, lspUsage);
  const reader = new StreamMessageReader(process.stdin);
  startLanguageServer(reader, new StreamMessageWriter(process.stdout));
  // The `exit` notification ends the process; a client that just goes away closes stdin.
  await new Promise<void>((resolve) => reader.onClose(() => resolve()));
  return 0;
}

// The .llm language server (`llmc lsp`): diagnostics, hover, go to definition, formatting, completion
// and document symbols over the compiler's own parser, checker and formatter, so the editor says
// exactly what `llmc check` and `llmc fmt` say.

import {
  createConnection, TextDocuments, TextDocumentSyncKind,
  type Connection, type Location, type MessageReader, type MessageWriter, type TextEdit,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import type * as A from "../compiler/parse/ast.js";
import { parseModule } from "../compiler/parse/index.js";
import { hasErrors } from "../compiler/base/diagnostics.js";
import { formatModule } from "../compiler/fmt/format.js";
import { Workspace } from "./workspace.js";
import { offsetAt, rangeOf } from "./locate.js";
import { targetAt, type Target } from "./resolve.js";
import { hover } from "./hover.js";
import { complete } from "./completion.js";
import { documentSymbols } from "./symbols.js";

/** Edits arriving closer together than this are checked once. */
const CHECK_DELAY_MS = 150;

export function startLanguageServer(reader: MessageReader, writer: MessageWriter): Connection {
  const connection = createConnection(reader, writer);
  const documents = new TextDocuments(TextDocument);
  const workspace = new Workspace(documents);

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      documentFormattingProvider: true,
      documentSymbolProvider: true,
      completionProvider: { triggerCharacters: ["."] },
    },
    serverInfo: { name: "llmc" },
  }));

  let timer: NodeJS.Timeout | null = null;
  const publishSoon = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      try {
        for (const [uri, diagnostics] of workspace.diagnostics()) void connection.sendDiagnostics({ uri, diagnostics });
      } catch (err) {
        // A fault in the checker is a bug to report, not a reason for the editor to lose its server.
        connection.console.error(`llmc: internal error while checking (this is a bug in llmc): ${(err as Error).stack ?? String(err)}`);
      }
    }, CHECK_DELAY_MS);
  };
  documents.onDidChangeContent(() => {
    workspace.changed();
    publishSoon();
  });
  documents.onDidClose((e) => {
    workspace.closed(e.document.uri);
    publishSoon();
  });

  /** The analysis of a document and the offset of a position in it. */
  const at = (uri: string, position: { line: number; character: number }) => {
    const doc = documents.get(uri);
    const an = doc && workspace.analysis(uri);
    return doc && an ? { doc, an, path: workspace.pathOf(uri), offset: offsetAt(doc.getText(), position) } : null;
  };

  connection.onHover(({ textDocument, position }) => {
    const ctx = at(textDocument.uri, position);
    const found = ctx && targetAt(ctx.an, ctx.path, ctx.offset);
    return found ? hover(ctx.an, found, (key) => workspace.shapesAt(key)) : null;
  });

  connection.onDefinition(({ textDocument, position }) => {
    const ctx = at(textDocument.uri, position);
    const found = ctx && targetAt(ctx.an, ctx.path, ctx.offset);
    return found ? definition(found.target, (file) => workspace.uriOf(file)) : null;
  });

  connection.onCompletion(({ textDocument, position }) => {
    const ctx = at(textDocument.uri, position);
    const module = ctx && workspace.moduleForCompletion(textDocument.uri, ctx.an);
    return ctx && module ? complete(ctx.an, module, ctx.doc.getText(), ctx.offset) : [];
  });

  connection.onDocumentSymbol(({ textDocument }) => {
    const an = workspace.analysis(textDocument.uri);
    const mod = an?.module(workspace.pathOf(textDocument.uri));
    return mod ? documentSymbols(mod) : [];
  });

  connection.onDocumentFormatting(({ textDocument }) => {
    const doc = documents.get(textDocument.uri);
    return doc ? formatEdits(workspace.pathOf(doc.uri), doc.getText()) : null;
  });

  documents.listen(connection);
  connection.listen();
  return connection;
}

/** `llmc fmt`'s text as one edit; none for a file with syntax errors (fmt refuses those too). */
export function formatEdits(path: string, text: string): TextEdit[] {
  const { module, diagnostics } = parseModule(path, text);
  if (hasErrors(diagnostics)) return [];
  const formatted = formatModule(module, text);
  if (formatted === text) return [];
  const lines = text.split("\n");
  const end = { line: lines.length - 1, character: lines[lines.length - 1]!.length };
  return [{ range: { start: { line: 0, character: 0 }, end }, newText: formatted }];
}

function definition(t: Target, uriOf: (displayFile: string) => string): Location | null {
  const loc = (span: A.Span): Location => ({ uri: uriOf(span.file), range: rangeOf(span) });
  switch (t.kind) {
    case "import":
      return t.file ? { uri: uriOf(t.file), range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } } : null;
    case "fn":
    case "config":
    case "weight":
    case "state":
    case "model":
      return loc(t.decl.name.span);
    case "local":
      return loc(t.def.span);
    default:
      return null;
  }
}

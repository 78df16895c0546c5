// The VS Code side of .llm support: highlighting comes from syntaxes/llm.tmLanguage.json; everything
// else (diagnostics, hover, definitions, formatting, completion, outline) from `llmc lsp`, which this
// starts for .llm files. Plain CommonJS so the folder installs without a build step.

const { window, workspace } = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

/** @type {LanguageClient | undefined} */
let client;

function activate(context) {
  const command = workspace.getConfiguration("llmc").get("path") || "llmc";
  // TransportKind.stdio adds --stdio, which `llmc lsp` accepts.
  const server = { command, args: ["lsp"], transport: TransportKind.stdio, options: { shell: process.platform === "win32" } };
  client = new LanguageClient("llmc", "llmc language server", { run: server, debug: server }, {
    documentSelector: [{ language: "llm" }],
  });
  context.subscriptions.push(client);
  client.start().catch((err) => {
    window.showErrorMessage(`llmc: cannot start '${command} lsp' (${err.message}). Install llmc or set "llmc.path" to its bin/llmc.`);
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };

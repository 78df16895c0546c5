// A minimal LSP client for the tests: JSON-RPC over a pair of streams, either to the server started
// in this process (startLanguageServer over in-memory pipes) or to a child process's stdio
// (`node bin/llmc lsp`). It records every publishDiagnostics so a test can wait for the one it expects.

import { PassThrough, type Readable, type Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import type { Diagnostic, PublishDiagnosticsParams } from "vscode-languageserver-protocol";
import { startLanguageServer } from "../../src/lsp/server.js";

export class LspClient {
  readonly diagnostics = new Map<string, Diagnostic[]>();
  private waiters: (() => void)[] = [];
  private version = new Map<string, number>();

  constructor(readonly rpc: MessageConnection) {
    rpc.onNotification("textDocument/publishDiagnostics", (p: PublishDiagnosticsParams) => {
      this.diagnostics.set(p.uri, p.diagnostics);
      for (const w of this.waiters) w();
    });
    rpc.listen();
  }

  /** A client talking to a server started in this process. */
  static inProcess(): LspClient {
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    startLanguageServer(new StreamMessageReader(toServer), new StreamMessageWriter(toClient));
    return LspClient.over(toClient, toServer);
  }

  static over(input: Readable, output: Writable): LspClient {
    return new LspClient(createMessageConnection(new StreamMessageReader(input), new StreamMessageWriter(output)));
  }

  async initialize(): Promise<{ capabilities: Record<string, unknown> }> {
    const result = await this.rpc.sendRequest("initialize", { processId: null, rootUri: null, capabilities: {} });
    await this.rpc.sendNotification("initialized", {});
    return result as { capabilities: Record<string, unknown> };
  }

  async open(path: string, text: string): Promise<string> {
    const uri = pathToFileURL(path).href;
    this.version.set(uri, 1);
    await this.rpc.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "llm", version: 1, text } });
    return uri;
  }

  async change(uri: string, text: string): Promise<void> {
    const v = (this.version.get(uri) ?? 1) + 1;
    this.version.set(uri, v);
    await this.rpc.sendNotification("textDocument/didChange", { textDocument: { uri, version: v }, contentChanges: [{ text }] });
  }

  request<R>(method: string, uri: string, line?: number, character?: number): Promise<R> {
    const position = line === undefined ? {} : { position: { line, character } };
    const options = method === "textDocument/formatting" ? { options: { tabSize: 2, insertSpaces: true } } : {};
    return this.rpc.sendRequest(method, { textDocument: { uri }, ...position, ...options }) as Promise<R>;
  }

  /** Resolves with a URI's diagnostics once they satisfy `ok` (they are published a moment after each edit). */
  waitForDiagnostics(uri: string, ok: (d: Diagnostic[]) => boolean, timeoutMs = 20_000): Promise<Diagnostic[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const d = this.diagnostics.get(uri);
        if (d && ok(d)) {
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          resolve(d);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no matching diagnostics for ${uri}; last: ${JSON.stringify(this.diagnostics.get(uri))}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  dispose(): void {
    this.rpc.dispose();
  }
}

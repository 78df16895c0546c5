// `llmc serve [--port N] [--open]`: the playground page on 127.0.0.1. The page itself is static
// (web/ beside the bundle dist/web/, built by `npm run build:web`); the server adds one thing a
// static host cannot: random weights for the model in the editor, written by `llmc init-weights`'s
// code in Node, so the page can run a model without a file.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, normalize, sep } from "node:path";
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { checkFile } from "../../compiler/check/index.js";
import { formatDiagnostic } from "../../compiler/base/diagnostics.js";
import { parameterCount } from "../../compiler/check/model.js";
import { initWeights } from "../../runtime/weights/init.js";
import { packageRoot } from "../../paths.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";

export const DEFAULT_PORT = 8737;

export const serveUsage = `usage: llmc serve [--port N] [--open]

Serves the llmc playground (an editor for .llm files with live diagnostics, the model's config,
weights, IR and WGSL kernels, and text generation in the browser through WebGPU) on
http://127.0.0.1:${DEFAULT_PORT}/. Build the page first with 'npm run build:web'.

options:
  --port N   the port to listen on (default ${DEFAULT_PORT}; 0 picks a free one)
  --open     open the page in the default browser`;

/** The bundle the page loads; without it there is no page to serve. */
const BUNDLE = "playground.js";

/** Random weights are for trying a model in a browser tab, not for writing an 8B file. */
export const MAX_RANDOM_PARAMS = 64 * 2 ** 20;
const MAX_SOURCE_BYTES = 1 << 20;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".llm": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

/** A reason the server cannot start, for the user (no stack trace). */
export class ServeError extends Error {}

export interface PlaygroundServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  port?: number;
  /** The package root holding web/ and dist/web/; default llmc's own. */
  root?: string;
}

/** Starts the playground server; rejects with ServeError when the bundle is missing or the port taken. */
export async function startPlaygroundServer(opts: ServeOptions = {}): Promise<PlaygroundServer> {
  const root = opts.root ?? packageRoot();
  // The built files win over web/'s, so a static export (dist/web/ alone) is what the server shows.
  const folders = [join(root, "dist", "web"), join(root, "web")];
  if (!existsSync(join(folders[0]!, BUNDLE))) {
    throw new ServeError(`the playground is not built (${join("dist", "web", BUNDLE)} is missing): run 'npm run build:web' in ${root}`);
  }
  const server = createServer((req, res) => {
    handle(req, res, folders, root).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  const port = opts.port ?? DEFAULT_PORT;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new ServeError(`port ${port} is already in use: pass --port N (or --port 0 for any free port)`));
      else if (err.code === "EACCES") reject(new ServeError(`not allowed to listen on port ${port}: pass --port N above 1023`));
      else reject(err);
    });
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${bound}/`, port: bound, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections from a browser tab would hold close() open.
    server.closeAllConnections();
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, folders: string[], root: string): Promise<void> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (url.pathname === "/api/random-weights") {
    if (req.method !== "POST") return send(res, 405, "text/plain; charset=utf-8", "POST the .llm source\n");
    return randomWeights(req, res, url, root);
  }
  if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return send(res, 400, "text/plain; charset=utf-8", "bad path\n");
  }
  if (path.endsWith("/")) path += "index.html";
  const type = CONTENT_TYPES[extname(path)];
  // Only page assets: web/ also holds the page's TypeScript sources, which are not served.
  if (!type) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  for (const folder of folders) {
    const file = normalize(join(folder, path));
    if (!file.startsWith(folder + sep)) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    if (existsSync(file) && statSync(file).isFile()) {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": type, "content-length": body.length, "cache-control": "no-cache" });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
  }
  send(res, 404, "text/plain; charset=utf-8", "not found\n");
}

/**
 * POST /api/random-weights?seed=N with the .llm source as the body: a GGUF of random weights and a
 * trained vocabulary, exactly what `llmc init-weights` writes. A source that does not check is a 422
 * with the diagnostics as text.
 */
async function randomWeights(req: IncomingMessage, res: ServerResponse, url: URL, root: string): Promise<void> {
  const source = await readBody(req, MAX_SOURCE_BYTES);
  if (source === null) return send(res, 413, "text/plain; charset=utf-8", `the source is over ${MAX_SOURCE_BYTES} bytes\n`);
  const seedText = url.searchParams.get("seed") ?? "0";
  if (!/^\d+$/.test(seedText) || Number(seedText) > 0xffffffff) return send(res, 400, "text/plain; charset=utf-8", "seed must be an integer from 0 to 4294967295\n");
  // Imports resolve as for the bundled examples: next to models/examples/, then models/.
  const path = join(root, "models", "examples", "playground.llm");
  const checked = checkFile(path, { overlay: new Map([[path, source]]), requireConcrete: true });
  const errors = checked.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || !checked.model) {
    return send(res, 422, "text/plain; charset=utf-8", errors.map((d) => formatDiagnostic(d, checked.program.sources)).join("\n\n") + "\n");
  }
  const params = parameterCount(checked.model);
  if (params > MAX_RANDOM_PARAMS) {
    return send(res, 422, "text/plain; charset=utf-8", `the model has ${params.toLocaleString("en-US")} parameters; random weights are written for at most ${MAX_RANDOM_PARAMS.toLocaleString("en-US")} (use 'llmc init-weights' for bigger ones)\n`);
  }
  const dir = await mkdtemp(join(tmpdir(), "llmc-serve-"));
  try {
    const file = join(dir, "random.gguf");
    await initWeights(checked.model, file, { seed: Number(seedText) });
    const body = await readFile(file);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length, "cache-control": "no-store" });
    res.end(body);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on("end", () => resolve(size > limit ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

function openInBrowser(url: string): void {
  const cmd = process.platform === "darwin" ? "open" : process.platform === "win32" ? "cmd" : "xdg-open";
  const args = process.platform === "win32" ? ["/c", "start", "", url] : [url];
  const child = spawn(cmd, args, { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`llmc serve: could not run '${cmd}' to open the browser; open ${url} yourself\n`));
  child.unref();
}

export async function runServe(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: "string" }, open: { type: "boolean", default: false } },
  });
  if (positionals.length > 0) throw new UsageError("llmc serve takes no files", serveUsage);
  let port = DEFAULT_PORT;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) throw new UsageError(`--port takes an integer from 0 to 65535, got '${values.port}'`, serveUsage);
    port = Number(values.port);
  }
  let server: PlaygroundServer;
  try {
    server = await startPlaygroundServer({ port });
  } catch (err) {
    if (err instanceof ServeError) {
      io.err(`llmc serve: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const root = packageRoot();
  if (bundleIsStale(root)) io.err(`llmc serve: note: web/ has changed since dist/web/${BUNDLE} was built; run 'npm run build:web' to see the changes\n`);
  io.out(`llmc playground: ${server.url}  (Ctrl-C stops it)\n`);
  if (values.open) openInBrowser(server.url);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void server.close().then(resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  io.err("llmc serve: stopped\n");
  return 0;
}

/** True when a TypeScript source under web/ is newer than the bundle made from it (HTML and CSS are served as they are). */
function bundleIsStale(root: string): boolean {
  const built = statSync(join(root, "dist", "web", BUNDLE)).mtimeMs;
  const web = join(root, "web");
  if (!existsSync(web)) return false;
  const newer = (dir: string): boolean => {
    for (const name of readdirNames(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory() ? newer(p) : name.endsWith(".ts") && st.mtimeMs > built) return true;
    }
    return false;
  };
  return newer(web);
}

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

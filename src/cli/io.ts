// What a command needs from the outside world: where to print. Tests pass buffers; the CLI passes the process streams.

export interface CliIO {
  out(text: string): void; // stdout; the text includes its own newlines
  err(text: string): void; // stderr
  color: boolean; // ANSI colours in diagnostics (a TTY without NO_COLOR)
  progress?: boolean; // progress bars on stderr (a TTY)
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    color: Boolean(process.stderr.isTTY) && !process.env["NO_COLOR"],
    progress: Boolean(process.stderr.isTTY),
  };
}

export function bufferIO(): CliIO & { stdout: () => string; stderr: () => string } {
  let o = "";
  let e = "";
  return { out: (t) => void (o += t), err: (t) => void (e += t), color: false, stdout: () => o, stderr: () => e };
}


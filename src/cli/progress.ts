// A progress bar on standard error while a model is read and uploaded, for terminals only (pipes
// and tests see nothing). Small models finish before it would be worth drawing one.

import cliProgress from "cli-progress";
import type { CliIO } from "./io.js";

/** Bytes below which no bar is drawn. */
const WORTH_A_BAR = 64 * 2 ** 20;

export interface LoadingProgress {
  update(stage: "reading" | "uploading", done: number, total: number): void;
  stop(): void;
}

export function loadingProgress(io: CliIO): LoadingProgress {
  if (!io.progress) return { update: () => undefined, stop: () => undefined };
  let bar: cliProgress.SingleBar | null = null;
  let stage = "";
  const mib = (n: number) => (n / 2 ** 20).toFixed(0);
  return {
    update(next, done, total) {
      if (total < WORTH_A_BAR) return;
      if (next !== stage) {
        bar?.stop();
        stage = next;
        bar = new cliProgress.SingleBar(
          { format: `llmc: ${next.padEnd(9)} [{bar}] {percentage}% {done}/{all} MiB`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0, { done: "0", all: mib(total) });
      }
      bar!.update(done, { done: mib(done), all: mib(total) });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

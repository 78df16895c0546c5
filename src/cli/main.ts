// The llmc command line: dispatch to one module per command. Bad input becomes diagnostics and an
// exit code; only an internal fault prints a stack trace (and says it is a bug).

import { processIO, type CliIO } from "./io.js";
import { UsageError } from "./commands/common.js";
import { runCheck, checkUsage } from "./commands/check.js";
import { runInfo, infoUsage } from "./commands/info.js";
import { runFmt, fmtUsage } from "./commands/fmt.js";
import { runCompile, compileUsage } from "./commands/compile.js";
import { runImport, importUsage } from "./commands/import.js";
import { runRun, runUsage } from "./commands/run.js";
import { runBench, benchUsage } from "./commands/bench.js";
import { runInitWeights, initWeightsUsage } from "./commands/init-weights.js";
import { runChat, chatUsage } from "./commands/chat.js";
import { runLogprobs, logprobsUsage } from "./commands/logprobs.js";
import { runEval, evalUsage } from "./commands/eval.js";
import { runTokenizer, tokenizerUsage } from "./commands/tokenizer.js";
import { runTrain, trainUsage } from "./commands/train.js";
import { runServe, serveUsage } from "./commands/serve.js";
import { runLsp, lspUsage } from "./commands/lsp.js";

type Command = (args: string[], io: CliIO) => Promise<number>;

const commands: Record<string, { run: Command; usage: string; summary: string }> = {
  bench: { run: runBench, usage: benchUsage, summary: "measure prefill and decode speed, dispatches and host time per step" },
  check: { run: runCheck, usage: checkUsage, summary: "check .llm files and report every error" },
  compile: { run: runCompile, usage: compileUsage, summary: "compile a model: IR (--emit ir), passes, report" },
  fmt: { run: runFmt, usage: fmtUsage, summary: "format .llm files (--write, --check)" },
  import: { run: runImport, usage: importUsage, summary: "write a .llm for an HF config.json or a GGUF file" },
  "init-weights": { run: runInitWeights, usage: initWeightsUsage, summary: "write a GGUF with random weights and a vocabulary for a .llm model" },
  info: { run: runInfo, usage: infoUsage, summary: "show a model's config, weights and parameter count" },
  run: { run: runRun, usage: runUsage, summary: "generate text from a model (.gguf or Hugging Face folder)" },
  chat: { run: runChat, usage: chatUsage, summary: "chat with a model in its chat template" },
  logprobs: { run: runLogprobs, usage: logprobsUsage, summary: "next-token log-probabilities and perplexity of a sequence" },
  eval: { run: runEval, usage: evalUsage, summary: "perplexity of a text; BLEU and ROUGE of generated or given outputs" },
  tokenizer: { run: runTokenizer, usage: tokenizerUsage, summary: "train a BPE tokenizer on text (tokenizer train), written as tokenizer.json" },
  train: { run: runTrain, usage: trainUsage, summary: "train a model on text (WebGPU, CUDA or the CPU): from scratch for a .llm, fine-tuning for a .gguf" },
  serve: { run: runServe, usage: serveUsage, summary: "the playground page: edit a .llm with live diagnostics, run it in the browser" },
  lsp: { run: runLsp, usage: lspUsage, summary: "the .llm language server for editors (LSP over stdio)" },
};

export const VERSION = "0.1.0";

/**
 * A reader that has had enough (`llmc run … | head`) closes the pipe, and the next write fails with
 * EPIPE: that is the end of the output, not an error. Stop at once, quietly and successfully.
 */
function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(0);
  });
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    "usage: llmc <command> [options]",
    "",
    "commands:",
    ...Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'llmc <command> --help' for a command's options.",
  ].join("\n");
}

/** Runs a command; without `io`, on the process's streams. */
export async function main(argv: string[], io?: CliIO): Promise<number> {
  if (!io) {
    io = processIO();
    endQuietlyWhenStdoutCloses();
  }
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    io.out(usage() + "\n");
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") {
    io.out(`llmc ${VERSION}\n`);
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    io.err(`llmc: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  // -v shows what Dawn prints while it opens an adapter too (runtime/webgpu/quiet.ts).
  if (rest.includes("-v") || rest.includes("--verbose")) process.env["LLMC_DAWN_LOG"] ??= "1";
  try {
    if (rest.includes("--help") || rest.includes("-h")) {
      io.out(`${cmd.usage}\n`);
      return 0;
    }
    return await cmd.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`llmc ${name}: ${err.message}\n${err.usage ? "\n" + err.usage + "\n" : ""}`);
      return 2;
    }
    // node:util parseArgs reports unknown or malformed options with these codes.
    const code = (err as NodeJS.ErrnoException).code;
    if (code && code.startsWith("ERR_PARSE_ARGS")) {
      io.err(`llmc ${name}: ${(err as Error).message}\n`);
      return 2;
    }
    io.err(`llmc ${name}: internal error (this is a bug in llmc, please report it):\n${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}

// `llmc chat MODEL`: a conversation in the model's chat template (its own Jinja template, or LLaMA 2, LLaMA 3 or Mistral built in, from
// the file or --template). One user message per line — typed at a prompt, or piped in — and each
// reply streamed to standard output. `/reset` starts over, `/exit` (or the end of input) quits.
// Ctrl-C stops a reply; at the prompt, or twice within a second, it quits.

import { createInterface, type Interface } from "node:readline";
import { parseArgs } from "node:util";
import { ContextOverflowError } from "../../runtime/executor.js";
import { encodeChat, type ChatMessage, type ChatTemplate, type ChatTemplateKind } from "../../runtime/tokenizer/index.js";
import type { Model } from "../../runtime/model.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";
import { loadModelForCli, modelOptionSpec, modelOptionsUsage, reportRuntimeError, samplingOptionSpec, samplingOptions, samplingUsage } from "./run.js";

const TEMPLATES: readonly ChatTemplateKind[] = ["llama2", "llama3", "mistral"];

/** The exit code after Ctrl-C quits, as for a process that SIGINT ends (128 + 2). */
const INTERRUPTED = 130;

export const chatUsage = `usage: llmc chat MODEL [--template llama2|llama3|mistral] [--system TEXT] [options]

Chat with MODEL (a .gguf file or a Hugging Face model folder): one message per line, from the
terminal or piped in; each reply is printed as it is generated. /reset forgets the conversation,
/exit (or end of input) quits. Ctrl-C stops a reply; at the prompt, or a second time within a
second, it quits (exit code ${INTERRUPTED}).

options:
  --template T           a built-in chat template (default: the model file's own, rendered as Jinja,
                         or the built-in one it matches)
  --system TEXT          a system message at the start of the conversation
  --parse-special        read special tokens written in messages (</s>, <|eot_id|>) as those tokens,
                         as Hugging Face's apply_chat_template does (default: as plain text, so a
                         message cannot end its turn or forge another)

${samplingUsage}

${modelOptionsUsage}`;

interface ChatSettings {
  template: ChatTemplate;
  system: string | undefined;
  parseSpecial: boolean;
  sampling: ReturnType<typeof samplingOptions>;
}

export async function runChat(args: string[], io: CliIO, input: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      template: { type: "string" },
      system: { type: "string" },
      "parse-special": { type: "boolean", default: false },
      ...samplingOptionSpec,
      ...modelOptionSpec,
    },
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "missing MODEL" : `expected one MODEL, got ${positionals.length}`, chatUsage);
  if (values.template !== undefined && !(TEMPLATES as readonly string[]).includes(values.template)) {
    throw new UsageError(`--template must be one of ${TEMPLATES.join(", ")}, got '${values.template}'`, chatUsage);
  }
  const sampling = samplingOptions(values, chatUsage);

  let model: Model | undefined;
  try {
    model = await loadModelForCli(positionals[0]!, values, io, chatUsage);
    const template: ChatTemplate | undefined = (values.template as ChatTemplateKind | undefined) ?? model.chatTemplate;
    if (!template) {
      io.err(`llmc chat: ${positionals[0]} has no chat template; pass --template ${TEMPLATES.join("|")}\n`);
      return 1;
    }
    if (values.verbose) io.err(`llmc: chat template ${typeof template === "string" ? template : "from the model file (Jinja)"}, seed ${sampling.seed}\n`);
    return await converse(model, { template, system: values.system, parseSpecial: values["parse-special"], sampling }, io, input);
  } catch (e) {
    return reportRuntimeError(e, "chat", io);
  } finally {
    model?.dispose();
  }
}

/** Reads messages and prints replies until /exit, the end of input, or Ctrl-C at the prompt; returns the exit code. */
async function converse(model: Model, chat: ChatSettings, io: CliIO, input: NodeJS.ReadableStream): Promise<number> {
  const interactive = Boolean((input as { isTTY?: boolean }).isTTY);
  const lines = createInterface({ input, output: interactive ? process.stdout : undefined, terminal: interactive });
  const ctrlC = new CtrlC(lines);
  const start = (): ChatMessage[] => (chat.system === undefined ? [] : [{ role: "system", content: chat.system }]);
  let messages = start();
  let turn = 0;
  // The prompt is shown and nothing typed yet: quitting now must end its line.
  let atPrompt = false;
  const prompt = () => {
    if (!interactive) return;
    lines.prompt();
    atPrompt = true;
  };
  /** Streams the reply to `asked`; undefined when the conversation no longer fits the context. */
  const replyTo = async (asked: ChatMessage[]): Promise<string | undefined> => {
    const ids = encodeChat(model.tokenizer, chat.template, asked, { addGenerationPrompt: true, parseSpecialInContent: chat.parseSpecial });
    const signal = ctrlC.replyStarts();
    let reply = "";
    try {
      // Each turn gets its own seed, so a fixed --seed repeats the whole conversation.
      for await (const t of model.generate(ids, { ...chat.sampling, seed: chat.sampling.seed + turn, signal })) {
        reply += t.text;
        io.out(t.text);
      }
      io.out("\n");
      return reply;
    } catch (e) {
      io.out("\n");
      if (e instanceof ContextOverflowError) {
        io.err(`llmc chat: the conversation no longer fits the context (max_seq_len ${model.maxSeqLen}); /reset to start over\n`);
        return undefined;
      }
      if (!(signal.aborted && e === signal.reason)) throw e;
      if (interactive && !ctrlC.quit) io.err("(reply stopped; Ctrl-C at the prompt quits)\n");
      // A stopped reply stays in the conversation as far as it got.
      return reply;
    } finally {
      ctrlC.replyEnds();
    }
  };

  try {
    if (interactive) io.err("llmc chat: one message per line; /reset starts over, /exit quits, Ctrl-C stops a reply\n");
    prompt();
    for await (const raw of lines) {
      atPrompt = false;
      const line = raw.trim();
      if (ctrlC.quit || line === "/exit" || line === "/quit") break;
      if (line === "/reset") {
        messages = start();
        turn = 0;
        model.reset();
        if (interactive) io.err("(conversation reset)\n");
      } else if (line !== "") {
        const asked = [...messages, { role: "user" as const, content: line }];
        const reply = await replyTo(asked);
        if (reply !== undefined) {
          messages = [...asked, { role: "assistant", content: reply }];
          turn++;
        }
      }
      if (ctrlC.quit) break;
      prompt();
    }
  } finally {
    ctrlC.dispose();
    lines.close();
  }
  if (atPrompt) io.out("\n");
  return ctrlC.quit ? INTERRUPTED : 0;
}

/**
 * Ctrl-C during a chat. A terminal in raw mode (interactive input) delivers it to readline, which
 * emits SIGINT; otherwise (piped input, or `kill -INT`) the process gets the signal. During a reply it
 * aborts the reply; at the prompt, or within a second of the last one, it quits: the input is closed
 * (and a running reply aborted).
 */
class CtrlC {
  private static readonly AGAIN_MS = 1000;
  quit = false;
  private reply: AbortController | undefined;
  private last = -Infinity;

  constructor(private readonly lines: Interface) {
    lines.on("SIGINT", this.interrupt);
    process.on("SIGINT", this.interrupt);
  }

  /** The signal that aborts the reply about to be generated. */
  replyStarts(): AbortSignal {
    this.reply = new AbortController();
    return this.reply.signal;
  }

  replyEnds(): void {
    this.reply = undefined;
  }

  dispose(): void {
    this.lines.off("SIGINT", this.interrupt);
    process.off("SIGINT", this.interrupt);
  }

  private readonly interrupt = (): void => {
    const now = performance.now();
    const again = now - this.last < CtrlC.AGAIN_MS;
    this.last = now;
    if (this.reply && !again) {
      this.reply.abort();
      return;
    }
    this.quit = true;
    this.reply?.abort();
    this.lines.close();
  };
}

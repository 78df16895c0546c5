// `llmc chat MODEL`: a conversation in the model's chat template (LLaMA 2, LLaMA 3 or Mistral, from
// the file or --template). One user message per line — typed at a prompt, or piped in — and each
// reply streamed to standard output. `/reset` starts over, `/exit` (or the end of input) quits.

import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ContextOverflowError } from "../../runtime/executor.js";
import { applyChatTemplate, type ChatMessage, type ChatTemplateKind } from "../../runtime/tokenizer/index.js";
import type { Model } from "../../runtime/model.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";
import { loadModelForCli, modelOptionSpec, modelOptionsUsage, reportRuntimeError, samplingOptionSpec, samplingOptions, samplingUsage } from "./run.js";

const TEMPLATES: readonly ChatTemplateKind[] = ["llama2", "llama3", "mistral"];

export const chatUsage = `usage: llmc chat MODEL [--template llama2|llama3|mistral] [--system TEXT] [options]

Chat with MODEL (a .gguf file or a Hugging Face model folder): one message per line, from the
terminal or piped in; each reply is printed as it is generated. /reset forgets the conversation,
/exit (or end of input) quits.

options:
  --template T           the chat template (default: the one the model file names)
  --system TEXT          a system message at the start of the conversation

${samplingUsage}

${modelOptionsUsage}`;

export async function runChat(args: string[], io: CliIO, input: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      template: { type: "string" },
      system: { type: "string" },
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
    const template = (values.template as ChatTemplateKind | undefined) ?? model.chatTemplate;
    if (!template) {
      io.err(`llmc chat: ${positionals[0]} names no chat template llmc knows; pass --template ${TEMPLATES.join("|")}\n`);
      return 1;
    }
    if (values.verbose) io.err(`llmc: chat template ${template}, seed ${sampling.seed}\n`);
    await converse(model, template, values.system, sampling, io, input);
    return 0;
  } catch (e) {
    return reportRuntimeError(e, "chat", io);
  } finally {
    model?.dispose();
  }
}

async function converse(
  model: Model,
  template: ChatTemplateKind,
  system: string | undefined,
  sampling: ReturnType<typeof samplingOptions>,
  io: CliIO,
  input: NodeJS.ReadableStream,
): Promise<void> {
  const interactive = Boolean((input as { isTTY?: boolean }).isTTY);
  const lines = createInterface({ input, output: interactive ? process.stdout : undefined, terminal: interactive });
  const start = (): ChatMessage[] => (system === undefined ? [] : [{ role: "system", content: system }]);
  let messages = start();
  let turn = 0;
  if (interactive) io.err("llmc chat: one message per line; /reset starts over, /exit quits\n");
  const prompt = () => interactive && lines.prompt();
  prompt();
  for await (const raw of lines) {
    const line = raw.trim();
    if (line === "/exit" || line === "/quit") break;
    if (line === "/reset") {
      messages = start();
      turn = 0;
      model.reset();
      if (interactive) io.err("(conversation reset)\n");
    } else if (line !== "") {
      const asked = [...messages, { role: "user" as const, content: line }];
      const ids = model.tokenizer.encode(applyChatTemplate(template, asked, { addGenerationPrompt: true }), { addBos: false, parseSpecial: true });
      let reply = "";
      try {
        // Each turn gets its own seed, so a fixed --seed repeats the whole conversation.
        for await (const t of model.generate(ids, { ...sampling, seed: sampling.seed + turn })) {
          reply += t.text;
          io.out(t.text);
        }
        io.out("\n");
        messages = [...asked, { role: "assistant", content: reply }];
        turn++;
      } catch (e) {
        if (!(e instanceof ContextOverflowError)) throw e;
        io.out("\n");
        io.err(`llmc chat: the conversation no longer fits the context (max_seq_len ${model.maxSeqLen}); /reset to start over\n`);
      }
    }
    prompt();
  }
  lines.close();
}

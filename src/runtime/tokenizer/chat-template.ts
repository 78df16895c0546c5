// Chat prompts. A model's own Jinja `chat_template` (GGUF tokenizer.chat_template, HF
// tokenizer_config.json) is rendered by @huggingface/jinja; LLaMA 2, LLaMA 3 and Mistral instruct
// formats are built in, written as the official templates do, for files that carry none. A prompt is
// rendered as parts, the template's own markup and the messages' contents, so that `encodeChat` can
// recognise special tokens in the markup only: a user who types `</s>` gets those characters, not
// the end of the turn.

import { Template } from "@huggingface/jinja";
import type { TextPart, Tokenizer } from "./types.js";

export type ChatTemplateKind = "llama2" | "llama3" | "mistral";

/** A model's own Jinja chat template, with the BOS/EOS token texts it may write. */
export interface JinjaChatTemplate {
  readonly jinja: string;
  readonly bosToken?: string;
  readonly eosToken?: string;
}

/** A built-in template or the model's own. */
export type ChatTemplate = ChatTemplateKind | JinjaChatTemplate;

/** A message's text that a Jinja template changed beyond trimming, so llmc cannot tell it from markup. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}
export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

export interface ChatTemplateOptions {
  /**
   * End with the header that asks the model for an assistant turn (LLaMA 3). LLaMA 2 and Mistral
   * need none: the `[/INST]` that closes a user turn is the cue.
   */
  readonly addGenerationPrompt: boolean;
}

export interface EncodeChatOptions extends ChatTemplateOptions {
  /**
   * Recognise special tokens written in the messages too, as Hugging Face's `apply_chat_template`
   * does (it tokenizes the rendered text as a whole). Default false: only the template's markup
   * holds special tokens.
   */
  readonly parseSpecialInContent?: boolean;
}

/** The prompt as text; encode it with `encodeChat`, or with `{ addBos: false, parseSpecial: true }` to trust its contents. */
export function applyChatTemplate(kind: ChatTemplate, messages: readonly ChatMessage[], opts: ChatTemplateOptions): string {
  return joined(chatTemplateParts(kind, messages, opts));
}

/** The prompt as parts: the template's markup (`parseSpecial: true`) and the messages' contents (false). */
function chatTemplateParts(kind: ChatTemplate, messages: readonly ChatMessage[], opts: EncodeChatOptions): TextPart[] {
  if (typeof kind !== "string") return jinjaParts(kind, messages, opts);
  switch (kind) {
    case "llama2":
      return llama2(messages);
    case "llama3":
      return llama3(messages, opts);
    case "mistral":
      return mistral(messages);
  }
}

/** The prompt's token ids (the template writes BOS itself, so none is added). */
export function encodeChat(tokenizer: Tokenizer, kind: ChatTemplate, messages: readonly ChatMessage[], opts: EncodeChatOptions): number[] {
  const parts = chatTemplateParts(kind, messages, opts);
  return tokenizer.encodeParts(opts.parseSpecialInContent ? [{ text: joined(parts), parseSpecial: true }] : parts, { addBos: false });
}

const markup = (text: string): TextPart => ({ text, parseSpecial: true });
const content = (text: string): TextPart => ({ text, parseSpecial: false });
const joined = (parts: readonly TextPart[]): string => parts.map((p) => p.text).join("");

/** The parts with the whitespace at the start and end of their joined text removed (Jinja's `trim`). */
function trimmed(parts: readonly TextPart[]): TextPart[] {
  const texts = parts.map((p) => p.text);
  for (let i = 0; i < texts.length; i++) {
    texts[i] = texts[i]!.trimStart();
    if (texts[i] !== "") break;
  }
  for (let i = texts.length - 1; i >= 0; i--) {
    texts[i] = texts[i]!.trimEnd();
    if (texts[i] !== "") break;
  }
  return parts.map((p, i) => ({ ...p, text: texts[i]! }));
}

/**
 * Meta's Llama-2-chat template: the system prompt goes inside the first [INST]; contents are trimmed.
 * Encoded with the "▁" our tokenizer adds after <s>, it gives Meta's reference tokens.
 */
function llama2(messages: readonly ChatMessage[]): TextPart[] {
  const { system, turns } = alternatingTurns(messages, "llama2");
  return turns.flatMap((m, i) => {
    const body = i === 0 && system !== undefined ? [markup("<<SYS>>\n"), content(system), markup("\n<</SYS>>\n\n"), content(m.content)] : [content(m.content)];
    return m.role === "user" ? [markup("<s>[INST] "), ...trimmed(body), markup(" [/INST]")] : [markup(" "), ...trimmed(body), markup(" </s>")];
  });
}

/** Meta's Llama-3-instruct template. */
function llama3(messages: readonly ChatMessage[], opts: ChatTemplateOptions): TextPart[] {
  const header = (role: string) => markup(`<|start_header_id|>${role}<|end_header_id|>\n\n`);
  const turns = messages.flatMap((m) => [header(m.role), content(m.content.trim()), markup("<|eot_id|>")]);
  return [markup("<|begin_of_text|>"), ...turns, ...(opts.addGenerationPrompt ? [header("assistant")] : [])];
}

/**
 * Mistral-7B-Instruct v0.1/v0.2, where [INST] is plain text. Mistral's reference tokenization is
 * `<s> ▁[INST] ▁Hi ▁[/INST] ▁Hello </s> ▁[INST] …`; as our SentencePiece tokenizer (like llama.cpp's)
 * adds the "▁" before text that follows a special token, the prompt has no space before [INST] and
 * one before the assistant's reply. There is no system role: as llama.cpp does, a system prompt goes
 * before the first user message, separated by a blank line.
 */
function mistral(messages: readonly ChatMessage[]): TextPart[] {
  const { system, turns } = alternatingTurns(messages, "mistral");
  const body = turns.flatMap((m, i) => {
    const text = i === 0 && system !== undefined ? [content(system), markup("\n\n"), content(m.content)] : [content(m.content)];
    return m.role === "user" ? [markup("[INST] "), ...text, markup(" [/INST]")] : [markup(" "), ...text, markup("</s>")];
  });
  return [markup("<s>"), ...body];
}

const compiledTemplates = new Map<string, Template>();


/**
 * A Jinja template rendered as Hugging Face's apply_chat_template renders it (messages, bos_token,
 * eos_token, add_generation_prompt; raise_exception is Jinja's own), then cut into parts. To know
 * where the markup ends and a message begins, the template is rendered a second time with each
 * content replaced by a sentinel of private-use characters; the real rendering must then be that
 * markup with each content in place, as written or trimmed (as many templates do). A template that
 * changes a content otherwise cannot be told from markup, so it is an error unless special tokens in
 * contents are allowed anyway.
 */
function jinjaParts(t: JinjaChatTemplate, messages: readonly ChatMessage[], opts: EncodeChatOptions): TextPart[] {
  const text = renderJinja(t, messages, opts);
  if (opts.parseSpecialInContent) return [markup(text)];
  const sentinel = (i: number) => `\uE000${i}\uE001`;
  const marked = renderJinja(t, messages.map((m, i) => ({ ...m, content: sentinel(i) })), opts);
  const parts: TextPart[] = [];
  let rest = marked; // the sentinel rendering still to match
  let at = 0; // how much of `text` is matched
  const refuse = (i: number) =>
    new ChatTemplateError(
      `the model's chat template changes the text of message ${i} ("${messages[i]!.role}"), so llmc cannot keep special ` +
        "tokens typed in it from acting as markup; allow them (--parse-special, parseSpecialInContent) or pick a built-in template",
    );
  for (;;) {
    const next = /\uE000(\d+)\uE001/.exec(rest);
    const before = next ? rest.slice(0, next.index) : rest;
    if (!text.startsWith(before, at)) throw refuse(next ? Number(next[1]) : messages.length - 1);
    if (before !== "") parts.push(markup(before));
    at += before.length;
    if (!next) break;
    const i = Number(next[1]);
    const c = messages[i]!.content;
    const written = [c, c.trim(), c.trimStart(), c.trimEnd()].find((x) => text.startsWith(x, at) && x !== "");
    if (written === undefined && c.trim() !== "") throw refuse(i);
    if (written) parts.push(content(written));
    at += written?.length ?? 0;
    rest = rest.slice(next.index + next[0].length);
  }
  if (at !== text.length) throw refuse(messages.length - 1);
  return parts;
}

function renderJinja(t: JinjaChatTemplate, messages: readonly ChatMessage[], opts: ChatTemplateOptions): string {
  let template = compiledTemplates.get(t.jinja);
  if (!template) {
    template = new Template(t.jinja);
    compiledTemplates.set(t.jinja, template);
  }
  try {
    return template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: t.bosToken ?? "",
      eos_token: t.eosToken ?? "",
      add_generation_prompt: opts.addGenerationPrompt,
      // apply_chat_template passes these as None when the caller gives none; templates test them
      // with `is not none`, which an undefined name would pass.
      tools: null,
      documents: null,
    });
  } catch (e) {
    // raise_exception(…) in the template, or a template this Jinja cannot run.
    throw new ChatTemplateError(`the model's chat template failed on this conversation: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** An optional leading system message, then user/assistant/user/… as these templates require. */
function alternatingTurns(
  messages: readonly ChatMessage[],
  kind: ChatTemplateKind,
): { system: string | undefined; turns: readonly ChatMessage[] } {
  const system = messages[0]?.role === "system" ? messages[0].content : undefined;
  const turns = system === undefined ? messages : messages.slice(1);
  turns.forEach((m, i) => {
    const expected = i % 2 === 0 ? "user" : "assistant";
    if (m.role !== expected) {
      throw new Error(
        `${kind} chat template: message ${i + (system === undefined ? 0 : 1)} is "${m.role}", expected "${expected}" ` +
          "(an optional system message first, then user and assistant alternating)",
      );
    }
  });
  return { system, turns };
}

/**
 * Picks the template for a model file: its own `tokenizer.chat_template` (GGUF) or tokenizer_config.json
 * template, rendered as Jinja, whenever it has one (the built-in formats differ from revisions of
 * the official templates, e.g. Llama 3.1's system turn); otherwise a built-in one guessed from the
 * vocabulary, its special tokens and the model's name, never from its architecture. `special`
 * gives the BOS/EOS texts of a tokenizer_config.json; for a GGUF they are read from its vocabulary.
 */
export function detectChatTemplate(metadata: Record<string, unknown>, special: { bosToken?: string; eosToken?: string } = {}): ChatTemplate | undefined {
  const template = metadata["tokenizer.chat_template"];
  const tokens = metadata["tokenizer.ggml.tokens"];
  const tokenText = (key: string) => {
    const id = metadata[key];
    const text = Array.isArray(tokens) && typeof id === "number" ? tokens[id] : undefined;
    return typeof text === "string" ? text : undefined;
  };
  if (typeof template === "string") {
    const bosToken = special.bosToken ?? tokenText("tokenizer.ggml.bos_token_id");
    const eosToken = special.eosToken ?? tokenText("tokenizer.ggml.eos_token_id");
    return { jinja: template, ...(bosToken !== undefined ? { bosToken } : {}), ...(eosToken !== undefined ? { eosToken } : {}) };
  }
  const vocab = new Set(Array.isArray(tokens) ? tokens : []);
  if (vocab.has("<|start_header_id|>") && vocab.has("<|eot_id|>")) return "llama3";
  if (vocab.has("[INST]") && vocab.has("[/INST]")) return "mistral";
  const name = [metadata["general.name"], metadata["general.basename"]].filter((v): v is string => typeof v === "string").join(" ");
  if (/mistral|mixtral/i.test(name)) return "mistral";
  // LLaMA 2's format is [INST] text between <s> and </s>: it fits a SentencePiece vocabulary with
  // those BOS and EOS tokens, whatever architecture the file declares.
  const sentencePiece = metadata["tokenizer.ggml.model"] === "llama";
  if (sentencePiece && tokenText("tokenizer.ggml.bos_token_id") === "<s>" && tokenText("tokenizer.ggml.eos_token_id") === "</s>") return "llama2";
  return undefined;
}

// Chat prompts for LLaMA 2, LLaMA 3 and Mistral instruct models, written as the official templates
// do (the Jinja `chat_template` those models ship), special tokens included as text. A prompt is
// rendered as parts, the template's own markup and the messages' contents, so that `encodeChat` can
// recognise special tokens in the markup only: a user who types `</s>` gets those characters, not
// the end of the turn.

import type { TextPart, Tokenizer } from "./types.js";

export type ChatTemplateKind = "llama2" | "llama3" | "mistral";
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
export function applyChatTemplate(kind: ChatTemplateKind, messages: readonly ChatMessage[], opts: ChatTemplateOptions): string {
  return joined(chatTemplateParts(kind, messages, opts));
}

/** The prompt as parts: the template's markup (`parseSpecial: true`) and the messages' contents (false). */
function chatTemplateParts(kind: ChatTemplateKind, messages: readonly ChatMessage[], opts: ChatTemplateOptions): TextPart[] {
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
export function encodeChat(tokenizer: Tokenizer, kind: ChatTemplateKind, messages: readonly ChatMessage[], opts: EncodeChatOptions): number[] {
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
 * Picks the template for a GGUF file: from `tokenizer.chat_template` when present (undefined if it is
 * none of ours), otherwise guessed from the vocabulary and the model's name and tokenizer.
 */
export function detectChatTemplate(metadata: Record<string, unknown>): ChatTemplateKind | undefined {
  const template = metadata["tokenizer.chat_template"];
  if (typeof template === "string") {
    if (template.includes("<|start_header_id|>") && template.includes("<|end_header_id|>")) return "llama3";
    if (template.includes("[INST]")) return template.includes("<<SYS>>") ? "llama2" : "mistral";
    return undefined;
  }
  const tokens = metadata["tokenizer.ggml.tokens"];
  const vocab = new Set(Array.isArray(tokens) ? tokens : []);
  if (vocab.has("<|start_header_id|>") && vocab.has("<|eot_id|>")) return "llama3";
  if (vocab.has("[INST]") && vocab.has("[/INST]")) return "mistral";
  const name = [metadata["general.name"], metadata["general.basename"], metadata["general.architecture"]]
    .filter((v): v is string => typeof v === "string")
    .join(" ");
  if (/mistral|mixtral/i.test(name)) return "mistral";
  if (metadata["general.architecture"] === "llama" && metadata["tokenizer.ggml.model"] === "llama") return "llama2";
  return undefined;
}

// Tokenizers (GGUF vocabularies and tokenizer.json) and chat templates.

export { tokenizerFromGGUF } from "./gguf.js";
export { tokenizerFromJSON } from "./json.js";
export {
  applyChatTemplate,
  detectChatTemplate,
  encodeChat,
  type ChatMessage,
  ChatTemplateError,
  type ChatRole,
  type ChatTemplate,
  type ChatTemplateKind,
  type JinjaChatTemplate,
  type ChatTemplateOptions,
  type EncodeChatOptions,
} from "./chat-template.js";
export {
  TokenType,
  type DecodeOptions,
  type EncodeOptions,
  type StreamingDecoder,
  type TextPart,
  type Tokenizer,
  type TokenizerKind,
} from "./types.js";

// Tokenizer from a Hugging Face tokenizer.json (+ tokenizer_config.json). Its normalizer,
// pre-tokenizer and model run in @huggingface/tokenizers; added tokens, BOS/EOS and decoding go
// through the same code as GGUF vocabularies (vocab-tokenizer.ts), so both sources behave alike.

import { createHFTokenizer } from "./hf.js";
import { END_OF_TURN_TEXTS, endOfTurnIds } from "./special-tokens.js";
import { TokenType, type Tokenizer, type TokenizerKind } from "./types.js";
import { VocabTokenizer } from "./vocab-tokenizer.js";

type Json = Record<string, unknown>;

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;
const METASPACE = "\u2581";

export function tokenizerFromJSON(tokenizerJson: unknown, tokenizerConfigJson?: unknown): Tokenizer {
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
    throw new Error("tokenizer.json must be an object with a `model`");
  }
  const config = tokenizerConfigJson ?? {};
  if (!isObject(config)) throw new Error("tokenizer_config.json must be an object");
  const json = tokenizerJson;
  const model = json.model as Json;

  const { tokens, types } = vocabulary(model, json.added_tokens);
  const kind = tokenizerKind(json);
  const { preTokenizer, spaceBeforeText } = prefixHandledByUs(json.pre_tokenizer);
  const textEncoder = createHFTokenizer(
    {
      ...json,
      // Added tokens are split off before the text reaches this tokenizer (special-tokens.ts).
      added_tokens: [],
      normalizer: json.normalizer ?? null,
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: null,
    },
    config,
  );

  const idOf = (value: unknown): number | undefined => {
    const text = typeof value === "string" ? value : isObject(value) ? value.content : undefined;
    if (typeof text !== "string") return undefined;
    const id = tokens.lastIndexOf(text);
    return id < 0 ? undefined : id;
  };
  const bosId = idOf(config.bos_token);
  const eosId = idOf(config.eos_token);
  const template = templateSpecialTokens(json.post_processor);
  const bosText = bosId === undefined ? undefined : tokens[bosId];
  const eosText = eosId === undefined ? undefined : tokens[eosId];
  const added = Array.isArray(json.added_tokens) ? json.added_tokens.filter(isObject) : [];
  const flagged = (flag: string) => new Set(added.filter((t) => t[flag] === true).map((t) => Number(t.id)));

  return new VocabTokenizer({
    kind,
    tokens,
    types,
    textEncoder,
    spaceBeforeText,
    stripLeadingSpace: kind === "sentencepiece" && decoderStripsLeadingSpace(json.decoder),
    lstrip: flagged("lstrip"),
    rstrip: flagged("rstrip"),
    special: {
      bosId,
      eosId,
      unkId: idOf(config.unk_token) ?? idOf(model.unk_token),
      padId: idOf(config.pad_token),
      eotIds: endOfTurnIds(tokens, [eosId]),
      addBos: asBoolean(config.add_bos_token) ?? (bosText !== undefined && template.first === bosText),
      addEos: asBoolean(config.add_eos_token) ?? (eosText !== undefined && template.last === eosText),
    },
  });
}

function vocabulary(model: Json, addedTokens: unknown): { tokens: string[]; types: TokenType[] } {
  const vocab = model.vocab;
  let entries: [string, number][];
  if (Array.isArray(vocab)) {
    entries = vocab.map((entry, id) => [Array.isArray(entry) ? String(entry[0]) : String(entry), id]);
  } else if (isObject(vocab)) {
    entries = Object.entries(vocab).map(([text, id]) => [text, Number(id)]);
  } else {
    throw new Error("tokenizer.json model has no vocab");
  }
  const added = Array.isArray(addedTokens) ? addedTokens.filter(isObject) : [];
  const ids = [...entries.map(([, id]) => id), ...added.map((t) => Number(t.id))];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) throw new Error("tokenizer.json has an invalid token id");

  const size = ids.length === 0 ? 0 : Math.max(...ids) + 1;
  // Ids nobody names stay "" and unused.
  const tokens = new Array<string>(size).fill("");
  const types = new Array<TokenType>(size).fill(TokenType.Unused);
  const byteFallback = model.byte_fallback === true;
  for (const [text, id] of entries) {
    tokens[id] = text;
    types[id] = byteFallback && BYTE_TOKEN.test(text) ? TokenType.Byte : TokenType.Normal;
  }
  for (const t of added) {
    const id = Number(t.id);
    tokens[id] = String(t.content);
    types[id] = t.special === true ? TokenType.Control : TokenType.UserDefined;
  }
  tokens.forEach((text, id) => {
    if (END_OF_TURN_TEXTS.includes(text)) types[id] = TokenType.Control;
  });
  return { tokens, types };
}

function tokenizerKind(json: Json): TokenizerKind {
  const parts = [json.normalizer, json.pre_tokenizer, json.decoder].flatMap(components);
  if (parts.some((c) => c.type === "ByteLevel")) return "byte-level";
  const metaspace = parts.some(
    (c) =>
      c.type === "Metaspace" ||
      c.type === "ByteFallback" ||
      (c.type === "Replace" && (c.content === METASPACE || (c.pattern as Json | undefined)?.String === METASPACE)),
  );
  if (metaspace) return "sentencepiece";
  throw new Error(
    "unsupported tokenizer.json: expected a byte-level (ByteLevel) or SentencePiece-style (Metaspace / ▁ / ByteFallback) tokenizer",
  );
}

/**
 * Our text encoder sees one fragment between special tokens at a time, so a Metaspace pre-tokenizer
 * that prefixes only the first section of the text (`prepend_scheme: "first"`) would prefix every
 * fragment. Such prefixes are turned off in the copy we run and added by VocabTokenizer instead.
 */
function prefixHandledByUs(preTokenizer: unknown): { preTokenizer: unknown; spaceBeforeText: boolean } {
  if (preTokenizer === undefined || preTokenizer === null) return { preTokenizer: null, spaceBeforeText: false };
  const copy = structuredClone(preTokenizer);
  let spaceBeforeText = false;
  for (const c of components(copy)) {
    if (c.type !== "Metaspace") continue;
    const scheme = prependScheme(c);
    if (scheme === "first") spaceBeforeText = true;
    // Older files say add_prefix_space; @huggingface/tokenizers reads only prepend_scheme.
    c.prepend_scheme = scheme === "always" ? "always" : "never";
  }
  return { preTokenizer: copy, spaceBeforeText };
}

function decoderStripsLeadingSpace(decoder: unknown): boolean {
  return components(decoder).some(
    (c) =>
      (c.type === "Metaspace" && prependScheme(c) !== "never") ||
      (c.type === "Strip" && c.content === " " && Number(c.start) > 0),
  );
}

function prependScheme(metaspace: Json): string {
  if (typeof metaspace.prepend_scheme === "string") return metaspace.prepend_scheme;
  return metaspace.add_prefix_space === false ? "never" : "always";
}

/** Special tokens the post-processor puts before and after a single sequence. */
function templateSpecialTokens(postProcessor: unknown): { first?: string; last?: string } {
  const template = components(postProcessor).find((c) => c.type === "TemplateProcessing");
  const single = Array.isArray(template?.single) ? template.single.filter(isObject) : [];
  const specialId = (item: Json | undefined) =>
    isObject(item?.SpecialToken) && typeof item.SpecialToken.id === "string" ? item.SpecialToken.id : undefined;
  return { first: specialId(single[0]), last: single.length > 1 ? specialId(single.at(-1)) : undefined };
}

/** A component and, for a Sequence, its members, flattened. */
function components(node: unknown): Json[] {
  if (!isObject(node)) return [];
  if (node.type !== "Sequence") return [node];
  const members = node.normalizers ?? node.pretokenizers ?? node.decoders ?? node.processors;
  return Array.isArray(members) ? members.flatMap(components) : [];
}

function asBoolean(value: unknown): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

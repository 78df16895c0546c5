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

/**
 * Checks the file's shape before building anything, so a malformed file fails here, with the JSON
 * path of what is wrong (`model.vocab must be …`), and not at the first encode.
 */
export function tokenizerFromJSON(tokenizerJson: unknown, tokenizerConfigJson?: unknown): Tokenizer {
  if (!isObject(tokenizerJson)) throw invalid("the top level", "must be an object", tokenizerJson);
  const config = tokenizerConfigJson ?? {};
  if (!isObject(config)) throw new Error("tokenizer_config.json must be an object");
  const json = tokenizerJson;
  const model = checkedModel(json.model);
  const added = checkedAddedTokens(json.added_tokens);
  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) {
    const component = json[key];
    if (component !== undefined && component !== null && !isObject(component)) throw invalid(key, "must be an object or null", component);
  }

  const { tokens, types } = vocabulary(model, added);
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
  const flagged = (flag: string) => new Set(added.filter((t) => t[flag] === true).map((t) => t.id as number));

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

/** Ids from here on are refused: far above any vocabulary in use (~256k), and a stray id cannot allocate gigabytes. */
const MAX_TOKEN_ID = 1 << 24;

/** The model, if it is one we run: BPE (LLaMA, Mistral, Qwen2, …) or Unigram, with its fields well typed. */
function checkedModel(model: unknown): Json {
  if (!isObject(model)) throw invalid("model", "must be an object", model);
  if (model.type !== "BPE" && model.type !== "Unigram") {
    const type = model.type === undefined ? "is missing" : `${describe(model.type)} is unsupported`;
    throw new Error(`model.type ${type}: expected "BPE" or "Unigram"`);
  }
  if (model.type === "Unigram") {
    if (!Array.isArray(model.vocab)) throw invalid("model.vocab", "must be an array of [token, score] for a Unigram model", model.vocab);
    if (model.vocab.length === 0) throw new Error("model.vocab is empty");
    model.vocab.forEach((entry: unknown, id) => {
      if (!Array.isArray(entry) || typeof entry[0] !== "string" || typeof entry[1] !== "number") {
        throw invalid(`model.vocab[${id}]`, "must be [token, score]", entry);
      }
    });
    // Without an unknown token, text the vocabulary cannot cover would have no id.
    if (!(isTokenId(model.unk_id) && model.unk_id < model.vocab.length)) {
      throw invalid("model.unk_id", `must be the id of a token in model.vocab (0 to ${model.vocab.length - 1})`, model.unk_id);
    }
    return model;
  }
  if (!isObject(model.vocab)) throw invalid("model.vocab", "must be an object of token → id", model.vocab);
  const vocab = Object.entries(model.vocab);
  if (vocab.length === 0) throw new Error("model.vocab is empty");
  for (const [text, id] of vocab) {
    if (!isTokenId(id)) throw invalid(`model.vocab[${JSON.stringify(text)}]`, tokenIdRule, id);
  }
  checkMerges(model.merges);
  const unk = model.unk_token;
  if (unk !== undefined && unk !== null && !(typeof unk === "string" && Object.hasOwn(model.vocab, unk))) {
    throw invalid("model.unk_token", "must be a token of model.vocab (or null)", unk);
  }
  return model;
}

/** Each merge is "left right" or ["left", "right"], all in one form (the tokenizer looks at the first). */
function checkMerges(merges: unknown): void {
  if (!Array.isArray(merges)) throw invalid("model.merges", "must be an array", merges);
  const pairs = Array.isArray(merges[0]);
  merges.forEach((m: unknown, i) => {
    const ok = pairs
      ? Array.isArray(m) && m.length === 2 && m.every((part) => typeof part === "string")
      : typeof m === "string" && m.split(" ").length === 2;
    if (!ok) throw invalid(`model.merges[${i}]`, i === 0 ? 'must be "left right" or ["left", "right"]' : `must be ${pairs ? '["left", "right"]' : '"left right"'} like model.merges[0]`, m);
  });
}

const tokenIdRule = `must be a token id (an integer from 0 to ${MAX_TOKEN_ID - 1})`;

function isTokenId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < MAX_TOKEN_ID;
}

function checkedAddedTokens(addedTokens: unknown): Json[] {
  if (addedTokens === undefined || addedTokens === null) return [];
  if (!Array.isArray(addedTokens)) throw invalid("added_tokens", "must be an array", addedTokens);
  addedTokens.forEach((t: unknown, i) => {
    if (!isObject(t)) throw invalid(`added_tokens[${i}]`, "must be an object", t);
    if (!isTokenId(t.id)) throw invalid(`added_tokens[${i}].id`, tokenIdRule, t.id);
    if (typeof t.content !== "string") throw invalid(`added_tokens[${i}].content`, "must be a string", t.content);
  });
  return addedTokens as Json[];
}

/** Token texts and types by id, from a checked model and added tokens. */
function vocabulary(model: Json, added: readonly Json[]): { tokens: string[]; types: TokenType[] } {
  const entries: [string, number][] = Array.isArray(model.vocab)
    ? model.vocab.map((entry: [string, number], id) => [entry[0], id])
    : Object.entries(model.vocab as Record<string, number>);
  // Not Math.max(...ids): spreading a 128k-token vocabulary overflows the stack.
  const size = [...entries.map(([, id]) => id), ...added.map((t) => t.id as number)].reduce((a, b) => Math.max(a, b), 0) + 1;
  // Ids nobody names stay "" and unused.
  const tokens = new Array<string>(size).fill("");
  const types = new Array<TokenType>(size).fill(TokenType.Unused);
  const byteFallback = model.byte_fallback === true;
  for (const [text, id] of entries) {
    tokens[id] = text;
    types[id] = byteFallback && BYTE_TOKEN.test(text) ? TokenType.Byte : TokenType.Normal;
  }
  for (const t of added) {
    const id = t.id as number;
    tokens[id] = t.content as string;
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

function invalid(path: string, rule: string, value: unknown): Error {
  return new Error(`${path} ${rule}, got ${describe(value)}`);
}

/** A value as a message names it: an array, null, the number 5, "text". */
function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${typeof value} ${String(value)}`;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

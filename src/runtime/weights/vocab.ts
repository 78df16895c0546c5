// The vocabulary a GGUF file carries (`tokenizer.ggml.*`), from one of two places:
// - trainSentencePieceVocab: the default of `llmc init-weights`, a SentencePiece vocabulary trained
//   (by the tokenizer trainer, tokenizer/train/) on a small bundled corpus, so that random-weight
//   models tokenize and detokenize text like any other;
// - ggufVocabFromTokenizerJSON: a Hugging Face tokenizer.json, e.g. one `llmc tokenizer train` wrote
//   (`llmc init-weights --tokenizer`).
//
// The default's layout is LLaMA's: <unk>, <s>, </s>, the 256 byte tokens <0x00>…<0xFF> (so any text
// can be encoded, through byte fallback), the learned pieces scored in merge order ("▁" marks a
// space), then the corpus's characters. A vocabulary larger than the corpus can fill gets
// `<unused_N>` tokens at the end; one too small for the byte tokens has none, and text outside its
// characters becomes <unk>.

import { TOKENIZER_KEYS } from "../../compiler/import/gguf-keys.js";
import { byteLevelPreTokenizerJSON, preTokenizerFor } from "../tokenizer/pre-tokenizers.js";
import { countWords, SENTENCEPIECE_SPECIALS, trainTokenizer } from "../tokenizer/train/index.js";
import { TokenType } from "../tokenizer/types.js";
import { CORPUS } from "./corpus.js";
import { meta, type GGUFMetadataEntry } from "./gguf-writer.js";

/** A vocabulary as GGUF metadata holds it: llama.cpp's `llama` (SentencePiece) or `gpt2` (byte-level BPE) model. */
export interface GGUFVocab {
  readonly model: "llama" | "gpt2";
  /** gpt2: the pre-tokenizer's name (llama.cpp's `tokenizer.ggml.pre`). */
  readonly pre?: string;
  readonly tokens: readonly string[];
  /** llama: SentencePiece scores, higher merges first. */
  readonly scores?: readonly number[];
  readonly types: readonly number[];
  /** gpt2: "left right", in rank order. */
  readonly merges?: readonly string[];
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** llama: a "▁" goes before the text. */
  readonly addSpacePrefix?: boolean;
  /** For summaries: special tokens, byte tokens, and tokens learned from text (characters and pieces). */
  readonly specials: number;
  readonly bytes: number;
  readonly learned: number;
}

export interface SentencePieceVocab extends GGUFVocab {
  readonly model: "llama";
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Whether the 256 byte tokens are in the vocabulary. */
  readonly byteFallback: boolean;
}

/** The smallest vocabulary: the three special tokens. */
export const MIN_VOCAB_SIZE = SENTENCEPIECE_SPECIALS.length;

export function trainSentencePieceVocab(vocabSize: number, corpus: string = CORPUS): SentencePieceVocab {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new RangeError(`a vocabulary needs at least ${MIN_VOCAB_SIZE} tokens (<unk>, <s>, </s>), got ${vocabSize}`);
  }
  // Bytes only when there is room for them and at least one piece besides.
  const byteFallback = vocabSize >= MIN_VOCAB_SIZE + 256 + 1;
  // The corpus is tiny: every character gets a token and every pair may merge.
  const trained = trainTokenizer(countWords("sentencepiece", corpus.split("\n")).counts, {
    kind: "sentencepiece",
    vocabSize,
    byteFallback,
    minFrequency: 1,
    characterCoverage: 1,
  });
  const tokens = [...trained.tokens];
  const scores = [...trained.scores];
  const types: number[] = [...trained.types];
  const learned = trained.counts.characters + trained.counts.pieces;
  for (let k = 0; tokens.length < vocabSize; k++) {
    tokens.push(`<unused_${k}>`);
    scores.push(-1e9);
    types.push(TokenType.Unused);
  }
  return {
    model: "llama",
    tokens,
    scores,
    types,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
    byteFallback,
    specials: trained.counts.specials,
    bytes: trained.counts.bytes,
    learned,
  };
}

/** The `tokenizer.ggml.*` entries of a vocabulary. */
export function ggufVocabMetadata(v: GGUFVocab): GGUFMetadataEntry[] {
  const out = [meta.string(TOKENIZER_KEYS.model, v.model)];
  if (v.pre !== undefined) out.push(meta.string(TOKENIZER_KEYS.pre, v.pre));
  out.push(meta.array(TOKENIZER_KEYS.tokens, "string", v.tokens));
  if (v.scores !== undefined) out.push(meta.array(TOKENIZER_KEYS.scores, "float32", v.scores));
  out.push(meta.array(TOKENIZER_KEYS.tokenType, "int32", v.types));
  if (v.merges !== undefined) out.push(meta.array(TOKENIZER_KEYS.merges, "string", v.merges));
  if (v.bosId !== undefined) out.push(meta.uint32(TOKENIZER_KEYS.bosId, v.bosId));
  if (v.eosId !== undefined) out.push(meta.uint32(TOKENIZER_KEYS.eosId, v.eosId));
  if (v.unkId !== undefined) out.push(meta.uint32(TOKENIZER_KEYS.unkId, v.unkId));
  out.push(meta.bool(TOKENIZER_KEYS.addBos, v.addBos), meta.bool(TOKENIZER_KEYS.addEos, v.addEos));
  if (v.addSpacePrefix !== undefined) out.push(meta.bool(TOKENIZER_KEYS.addSpacePrefix, v.addSpacePrefix));
  return out;
}

/** The GGUF metadata of a vocabulary as a plain object, as a GGUF reader returns it (for tokenizerFromGGUF). */
export function ggufVocabMetadataObject(v: GGUFVocab): Record<string, unknown> {
  return Object.fromEntries(ggufVocabMetadata(v).map((e) => [e.key, e.value]));
}

type Json = Record<string, unknown>;

const METASPACE = "\u2581";
const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;
/** Pre-tokenizers a byte-level tokenizer.json may use, by their GGUF names (one regex list each). */
const BYTE_LEVEL_PRES = ["llama-bpe", "gpt-2", "qwen2", "starcoder"] as const;

/**
 * A tokenizer.json (+ tokenizer_config.json) as a GGUF vocabulary: BPE models of LLaMA 2's form
 * (normalizer Prepend "▁" + Replace " " → "▁", byte fallback) become `llama`, those with a ByteLevel
 * pre-tokenizer `gpt2`. SentencePiece scores are recovered from the merge ranks (a piece scores
 * minus the rank of its first merge), from which llama.cpp and llmc derive the same merges again.
 * Throws an Error saying what the file lacks.
 */
export function ggufVocabFromTokenizerJSON(json: unknown, config: unknown = {}): GGUFVocab {
  if (!isObject(json) || !isObject(json.model)) throw new Error("not a tokenizer.json: it has no model object");
  const model = json.model;
  if (model.type !== "BPE") throw new Error(`model.type is ${JSON.stringify(model.type)}: only BPE tokenizers can be written to a GGUF file`);
  if (!isObject(model.vocab)) throw new Error("model.vocab must be an object of token → id");
  const cfg = isObject(config) ? config : {};
  const added = Array.isArray(json.added_tokens) ? json.added_tokens.filter(isObject) : [];

  // Not Math.max(...ids): spreading a 128k-token vocabulary overflows the stack.
  const size = [...Object.values(model.vocab).map(Number), ...added.map((t) => Number(t.id))].reduce((a, b) => Math.max(a, b), -1) + 1;
  const tokens = new Array<string>(size).fill("");
  const types = new Array<number>(size).fill(TokenType.Unused);
  for (const [text, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new Error(`model.vocab[${JSON.stringify(text)}] must be a token id`);
    tokens[id as number] = text;
    types[id as number] = model.byte_fallback === true && BYTE_TOKEN.test(text) ? TokenType.Byte : TokenType.Normal;
  }
  for (const t of added) {
    if (!Number.isInteger(t.id) || typeof t.content !== "string") throw new Error("added_tokens entries must have an integer id and a string content");
    tokens[t.id as number] = t.content;
    types[t.id as number] = t.special === true ? TokenType.Control : TokenType.UserDefined;
  }
  const missing = tokens.indexOf("");
  if (missing >= 0) throw new Error(`token id ${missing} has no token (ids must run from 0 without gaps)`);

  const idOf = (value: unknown): number | undefined => {
    const text = typeof value === "string" ? value : isObject(value) ? value.content : undefined;
    const id = typeof text === "string" ? tokens.lastIndexOf(text) : -1;
    return id < 0 ? undefined : id;
  };
  const templateBos = bosOfTemplate(json.post_processor);
  const bosId = idOf(cfg.bos_token) ?? idOf(templateBos);
  const eosId = idOf(cfg.eos_token);
  const unkId = idOf(cfg.unk_token) ?? idOf(model.unk_token);
  if (unkId !== undefined) types[unkId] = TokenType.Unknown;
  const addBos = typeof cfg.add_bos_token === "boolean" ? cfg.add_bos_token : bosId !== undefined && templateBos === tokens[bosId];
  const addEos = cfg.add_eos_token === true;
  const merges = mergePairs(model.merges);
  const counted = (type: number) => types.filter((t) => t === type).length;
  const specials = counted(TokenType.Control) + counted(TokenType.Unknown);
  const common = { tokens, types, bosId, eosId, unkId, addBos, addEos, specials };

  if (hasComponent(json.pre_tokenizer, "ByteLevel")) {
    const pre = byteLevelPreName(json.pre_tokenizer);
    if (model.ignore_merges === true !== preTokenizerFor(pre).ignoreMerges) {
      throw new Error(`model.ignore_merges must be ${preTokenizerFor(pre).ignoreMerges} with the ${pre} pre-tokenizer, as llama.cpp runs it`);
    }
    return { ...common, model: "gpt2", pre, merges: merges.map(([l, r]) => `${l} ${r}`), bytes: 256, learned: counted(TokenType.Normal) - 256 };
  }

  const normalizers = components(json.normalizer);
  const replacesSpaces = normalizers.some((c) => c.type === "Replace" && isObject(c.pattern) && c.pattern.String === " " && c.content === METASPACE);
  if (!replacesSpaces || (json.pre_tokenizer !== null && json.pre_tokenizer !== undefined)) {
    throw new Error(
      'only byte-level (ByteLevel pre-tokenizer) and LLaMA-2-style SentencePiece tokenizers (normalizer Replace " " → "▁", no pre-tokenizer) can be written to a GGUF file',
    );
  }
  const addSpacePrefix = normalizers.some((c) => c.type === "Prepend" && c.prepend === METASPACE);
  // A piece scores minus the rank of the first merge that makes it; pieces no merge makes (single
  // characters) score below all of them, special and byte tokens 0.
  const firstRank = new Map<string, number>();
  merges.forEach(([l, r], rank) => {
    if (!firstRank.has(l + r)) firstRank.set(l + r, rank);
  });
  const scores = tokens.map((text, id) => {
    if (types[id] !== TokenType.Normal) return 0;
    return -(firstRank.get(text) ?? merges.length + id);
  });
  const bytes = counted(TokenType.Byte);
  return { ...common, model: "llama", scores, addSpacePrefix, bytes, learned: counted(TokenType.Normal) };
}

function mergePairs(merges: unknown): [string, string][] {
  if (!Array.isArray(merges)) throw new Error("model.merges must be an array");
  return merges.map((m: unknown, i) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") return [m[0], m[1]];
    if (typeof m === "string") {
      const at = m.indexOf(" ", 1);
      if (at > 0) return [m.slice(0, at), m.slice(at + 1)];
    }
    throw new Error(`model.merges[${i}] must be "left right" or ["left", "right"]`);
  });
}

/** The GGUF name of a byte-level pre-tokenizer, found by its split regexes. */
function byteLevelPreName(preTokenizer: unknown): string {
  const regexes = (pre: unknown) =>
    components(pre)
      .filter((c) => c.type === "Split")
      .map((c) => (isObject(c.pattern) ? c.pattern.Regex : undefined));
  const mine = JSON.stringify(regexes(preTokenizer));
  const name = BYTE_LEVEL_PRES.find((n) => JSON.stringify(regexes(byteLevelPreTokenizerJSON(preTokenizerFor(n)))) === mine);
  if (name === undefined) {
    throw new Error(`the pre-tokenizer's split regexes are not one llama.cpp knows by name (known here: ${BYTE_LEVEL_PRES.join(", ")})`);
  }
  return name;
}

/** The special token a TemplateProcessing post-processor puts first, if any. */
function bosOfTemplate(postProcessor: unknown): string | undefined {
  const template = components(postProcessor).find((c) => c.type === "TemplateProcessing");
  const first = Array.isArray(template?.single) ? template.single[0] : undefined;
  return isObject(first) && isObject(first.SpecialToken) && typeof first.SpecialToken.id === "string" ? first.SpecialToken.id : undefined;
}

function hasComponent(node: unknown, type: string): boolean {
  return components(node).some((c) => c.type === type);
}

/** A component and, for a Sequence, its members, flattened. */
function components(node: unknown): Json[] {
  if (!isObject(node)) return [];
  if (node.type !== "Sequence") return [node];
  const members = node.normalizers ?? node.pretokenizers ?? node.decoders ?? node.processors;
  return Array.isArray(members) ? members.flatMap(components) : [];
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

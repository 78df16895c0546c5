// Tokenizer from a GGUF file's `tokenizer.ggml.*` metadata, behaving as llama.cpp's llama-vocab.
// The vocabulary is turned into a tokenizer.json-shaped model and run by @huggingface/tokenizers:
//   llama (SentencePiece BPE): normalizer [Prepend "▁" if add_space_prefix, Replace " " → "▁"],
//     BPE with byte fallback, merges derived from the scores (see sentencepiece-merges.ts);
//   gpt2 (byte-level BPE): pre-tokenizer [Split by the `pre` regexes, ByteLevel], BPE with the merges.

import { createHFTokenizer } from "./hf.js";
import { byteLevelPreTokenizerJSON, preTokenizerFor } from "./pre-tokenizers.js";
import { installScoreRanks, sentencePieceMerges } from "./sentencepiece-merges.js";
import { END_OF_TURN_TEXTS, endOfTurnIds } from "./special-tokens.js";
import { TokenType, type Tokenizer } from "./types.js";
import { VocabTokenizer, type SpecialIds } from "./vocab-tokenizer.js";

type Metadata = Record<string, unknown>;

const KEY = {
  model: "tokenizer.ggml.model",
  pre: "tokenizer.ggml.pre",
  tokens: "tokenizer.ggml.tokens",
  scores: "tokenizer.ggml.scores",
  types: "tokenizer.ggml.token_type",
  merges: "tokenizer.ggml.merges",
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  eot: "tokenizer.ggml.eot_token_id",
  eom: "tokenizer.ggml.eom_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  pad: "tokenizer.ggml.padding_token_id",
  addBos: "tokenizer.ggml.add_bos_token",
  addEos: "tokenizer.ggml.add_eos_token",
  addSpacePrefix: "tokenizer.ggml.add_space_prefix",
} as const;

export function tokenizerFromGGUF(metadata: Metadata): Tokenizer {
  const model = metadata[KEY.model];
  if (model !== "llama" && model !== "gpt2") {
    throw new Error(`unsupported ${KEY.model} ${JSON.stringify(model)} (supported: "llama", "gpt2")`);
  }
  const spm = model === "llama";
  // llama.cpp renames empty tokens so that every text maps back to one id.
  const tokens = stringArray(metadata, KEY.tokens).map((t, i) => (t === "" ? `[EMPTY_${i}]` : t));
  const rawTypes = optionalNumberArray(metadata, KEY.types);
  const types = tokens.map((_, i) => tokenType(rawTypes?.[i] ?? TokenType.Normal));

  const id = (key: string, fallback: number | undefined): number | undefined => {
    const value = optionalNumber(metadata, key);
    const valid = (v: number | undefined) => v !== undefined && Number.isInteger(v) && v >= 0 && v < tokens.length;
    if (valid(value)) return value;
    return valid(fallback) ? fallback : undefined;
  };
  // Defaults are llama.cpp's for files that do not say.
  const bosId = id(KEY.bos, spm ? 1 : undefined);
  const eosId = id(KEY.eos, spm ? 2 : undefined);
  const unkId = id(KEY.unk, spm ? 0 : undefined);
  const padId = id(KEY.pad, undefined);
  const eotIds = endOfTurnIds(tokens, [eosId, id(KEY.eot, undefined), id(KEY.eom, undefined)]);
  // As llama.cpp: end-of-turn tokens are control tokens even when the file says otherwise.
  tokens.forEach((text, i) => {
    if (END_OF_TURN_TEXTS.includes(text)) types[i] = TokenType.Control;
  });

  const special = (addBosByDefault: boolean): SpecialIds => ({
    bosId,
    eosId,
    unkId,
    padId,
    eotIds,
    addBos: optionalBoolean(metadata, KEY.addBos) ?? addBosByDefault,
    addEos: optionalBoolean(metadata, KEY.addEos) ?? false,
  });

  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const unk_token = unkId === undefined ? undefined : tokens[unkId];
  const common = { version: "1.0", added_tokens: [], post_processor: null, decoder: null };

  if (spm) {
    const addSpacePrefix = optionalBoolean(metadata, KEY.addSpacePrefix) ?? true;
    const scored = sentencePieceMerges(tokens, optionalNumberArray(metadata, KEY.scores) ?? []);
    const textEncoder = createHFTokenizer(
      {
        ...common,
        normalizer: {
          type: "Sequence",
          normalizers: [
            ...(addSpacePrefix ? [{ type: "Prepend", prepend: "\u2581" }] : []),
            { type: "Replace", pattern: { String: " " }, content: "\u2581" },
          ],
        },
        pre_tokenizer: null,
        model: { type: "BPE", vocab, merges: scored.merges, byte_fallback: true, fuse_unk: false, unk_token },
      },
      {},
    );
    installScoreRanks(textEncoder, scored);
    return new VocabTokenizer({
      kind: "sentencepiece",
      tokens,
      types,
      textEncoder,
      // The Prepend normalizer runs on every fragment, i.e. at the start and after each special
      // token, which is where llama.cpp adds the space.
      spaceBeforeText: false,
      stripLeadingSpace: addSpacePrefix,
      special: special(true),
    });
  }

  const pre = preTokenizerFor(optionalString(metadata, KEY.pre));
  const textEncoder = createHFTokenizer(
    {
      ...common,
      normalizer: null,
      pre_tokenizer: byteLevelPreTokenizerJSON(pre),
      model: {
        type: "BPE",
        vocab,
        merges: stringArray(metadata, KEY.merges).map(splitMerge),
        byte_fallback: false,
        fuse_unk: false,
        ignore_merges: pre.ignoreMerges,
        unk_token,
      },
    },
    {},
  );
  return new VocabTokenizer({
    kind: "byte-level",
    tokens,
    types,
    textEncoder,
    spaceBeforeText: false,
    stripLeadingSpace: false,
    special: special(pre.addBos),
  });
}

/** "a b" → ["a", "b"]; as llama.cpp, the separator is the first space after the first character. */
function splitMerge(merge: string): [string, string] {
  const at = merge.indexOf(" ", 1);
  if (at < 0) throw new Error(`malformed ${KEY.merges} entry ${JSON.stringify(merge)}`);
  return [merge.slice(0, at), merge.slice(at + 1)];
}

function tokenType(value: number): TokenType {
  return Number.isInteger(value) && value >= 0 && value <= 6 ? (value as TokenType) : TokenType.Undefined;
}

function optionalString(metadata: Metadata, key: string): string | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new Error(`${key} must be a string`);
  return value;
}

function optionalBoolean(metadata: Metadata, key: string): boolean | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new Error(`${key} must be a boolean`);
  return value;
}

function optionalNumber(metadata: Metadata, key: string): number | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (typeof value === "bigint") return Number(value);
  if (typeof value !== "number") throw new Error(`${key} must be a number`);
  return value;
}

function stringArray(metadata: Metadata, key: string): string[] {
  const value = metadata[key];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new Error(`${key} must be an array of strings`);
  }
  return value;
}

/** Plain or typed arrays; 64-bit integers may arrive as bigint. */
function optionalNumberArray(metadata: Metadata, key: string): ArrayLike<number> | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "number" || typeof v === "bigint")) {
    return value.map(Number);
  }
  throw new Error(`${key} must be an array of numbers`);
}

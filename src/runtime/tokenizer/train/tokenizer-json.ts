// A trained tokenizer as Hugging Face files: tokenizer.json and tokenizer_config.json, in the forms
// LLaMA 2 (sentencepiece) and LLaMA 3 (byte-level) ship them, so that llmc, @huggingface/tokenizers
// and transformers all load them.
//
// The sentencepiece merges are not the learned list but the one SentencePiece's scores imply (every
// split of a piece into two tokens, ranked by the piece's score; sentencepiece-merges.ts), the list
// the GGUF loader derives from the same scores: the tokenizer.json and a GGUF carrying the vocabulary
// encode alike.

import { byteLevelPreTokenizerJSON, preTokenizerFor } from "../pre-tokenizers.js";
import { sentencePieceMerges } from "../sentencepiece-merges.js";
import { TokenType } from "../types.js";
import type { TrainedTokenizer } from "./index.js";
import { BYTE_LEVEL_PRE, METASPACE } from "./words.js";

type Json = Record<string, unknown>;

export function tokenizerJSON(t: TrainedTokenizer): Json {
  const special = (id: number) => ({ id, content: t.tokens[id]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const addedTokens = t.tokens.flatMap((_, id) => (t.types[id] === TokenType.Control || t.types[id] === TokenType.Unknown ? [special(id)] : []));
  const vocab = Object.fromEntries(t.tokens.map((text, id) => [text, id]));
  const bos = t.tokens[t.bosId]!;
  const common = { version: "1.0", truncation: null, padding: null, added_tokens: addedTokens };

  if (t.kind === "sentencepiece") {
    // Only ordinary pieces take part in merges; specials and <0xNN> are whole tokens.
    const pieces = t.tokens.map((text, id) => (t.types[id] === TokenType.Normal ? text : ""));
    return {
      ...common,
      normalizer: {
        type: "Sequence",
        normalizers: [
          { type: "Prepend", prepend: METASPACE },
          { type: "Replace", pattern: { String: " " }, content: METASPACE },
        ],
      },
      pre_tokenizer: null,
      post_processor: bosTemplate(bos, t.bosId),
      decoder: {
        type: "Sequence",
        decoders: [
          { type: "Replace", pattern: { String: METASPACE }, content: " " },
          { type: "ByteFallback" },
          { type: "Fuse" },
          { type: "Strip", content: " ", start: 1, stop: 0 },
        ],
      },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: t.unkId === undefined ? null : t.tokens[t.unkId],
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: t.counts.bytes > 0,
        ignore_merges: false,
        vocab,
        merges: sentencePieceMerges(pieces, t.scores).merges,
      },
    };
  }
  return {
    ...common,
    normalizer: null,
    pre_tokenizer: byteLevelPreTokenizerJSON(preTokenizerFor(BYTE_LEVEL_PRE)),
    post_processor: bosTemplate(bos, t.bosId),
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      // As LLaMA 3: a word that is itself a token is not split (its pre-tokenizer spec says so).
      ignore_merges: preTokenizerFor(BYTE_LEVEL_PRE).ignoreMerges,
      vocab,
      merges: t.merges,
    },
  };
}

/** tokenizer_config.json: the special tokens by name, and that BOS starts every text. */
export function tokenizerConfigJSON(t: TrainedTokenizer): Json {
  return {
    tokenizer_class: t.kind === "sentencepiece" ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast",
    bos_token: t.tokens[t.bosId],
    eos_token: t.tokens[t.eosId],
    ...(t.unkId !== undefined ? { unk_token: t.tokens[t.unkId] } : {}),
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    ...(t.kind === "sentencepiece" ? { legacy: true } : {}),
  };
}

/** The post-processor that puts BOS before a sequence (and before each of a pair). */
function bosTemplate(bos: string, bosId: number): Json {
  const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const token = (typeId: number) => ({ SpecialToken: { id: bos, type_id: typeId } });
  return {
    type: "TemplateProcessing",
    single: [token(0), sequence("A", 0)],
    pair: [token(0), sequence("A", 0), token(1), sequence("B", 1)],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

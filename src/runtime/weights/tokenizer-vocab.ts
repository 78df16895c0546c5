// A trained tokenizer.json (`llmc tokenizer train`, or any BPE tokenizer.json) as the GGUF
// vocabulary a model file embeds: `llmc init-weights --tokenizer` and `llmc train --tokenizer` write it.

import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { tokenizerFromGGUF, tokenizerFromJSON } from "../tokenizer/index.js";
import { ggufVocabFromTokenizerJSON, ggufVocabMetadataObject, type GGUFVocab } from "./vocab.js";

/** Text the vocabulary check encodes: words, digits, punctuation, spacing, non-ASCII. */
const CHECK_TEXT = 'The quick brown fox, 12,345 times: "don\'t!"\n\tIndented  twice.\nCafé naïve 東京 😀 — ok?';

/**
 * The GGUF vocabulary of a tokenizer.json (+ the tokenizer_config.json beside it), checked to encode
 * as the tokenizer.json does; or what is wrong, as a message.
 */
export async function readTokenizerVocab(path: string): Promise<GGUFVocab | string> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return `cannot read --tokenizer ${path}: ${err.code === "ENOENT" ? "no such file" : err.message}`;
  }
  let config: unknown;
  try {
    config = JSON.parse(await readFile(join(dirname(path), "tokenizer_config.json"), "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return `cannot read ${join(dirname(path), "tokenizer_config.json")}: ${(e as Error).message}`;
  }
  try {
    const vocab = ggufVocabFromTokenizerJSON(json, config);
    const expected = tokenizerFromJSON(json, config).encode(CHECK_TEXT);
    const written = tokenizerFromGGUF(ggufVocabMetadataObject(vocab)).encode(CHECK_TEXT);
    if (expected.join() !== written.join()) {
      return `--tokenizer ${path}: as GGUF metadata this tokenizer would encode text differently (llama.cpp's SentencePiece and BPE rules), so it cannot be embedded`;
    }
    return vocab;
  } catch (e) {
    return `--tokenizer ${path}: ${(e as Error).message}`;
  }
}

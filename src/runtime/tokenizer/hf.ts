// The part of @huggingface/tokenizers we use, typed here: the package's .d.ts files import without
// file extensions, which NodeNext resolution cannot follow, so its own types arrive as `any`.

import * as lib from "@huggingface/tokenizers";

export interface HFEncoding {
  /** `undefined` where a piece is not in the vocabulary and there is no unknown token. */
  readonly ids: readonly (number | undefined)[];
  readonly tokens: readonly string[];
}

export interface HFTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): HFEncoding;
  readonly model: unknown;
}

/** The BPE model's merge table: merge key → rank (its position in the merges list). */
export interface HFBPEModel {
  readonly bpe_ranks: Map<string, number>;
}

const runtime = lib as unknown as {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HFTokenizer;
  BPE: abstract new (...args: never[]) => HFBPEModel;
};

export function createHFTokenizer(tokenizerJson: object, tokenizerConfig: object): HFTokenizer {
  try {
    return new runtime.Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (e) {
    // The library reads nested components without checking them (a TypeError for a number where a
    // list belongs): that is a malformed file, not a fault of llmc's.
    throw new Error(`tokenizer.json has a component the tokenizer cannot build: ${(e as Error).message}`);
  }
}

export function isBPEModel(model: unknown): model is HFBPEModel {
  return model instanceof runtime.BPE;
}

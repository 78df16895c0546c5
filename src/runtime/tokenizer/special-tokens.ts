// Splits text around special tokens before the text itself is tokenized, as llama.cpp does:
// longer tokens first, each one cut out of every remaining text fragment.

import { TokenType } from "./types.js";

export type Fragment =
  | { readonly id: number }
  /** `atStart`: the fragment begins the whole text (nothing, not even a special token, before it). */
  | { readonly text: string; readonly atStart: boolean };

interface SpecialToken {
  readonly id: number;
  readonly text: string;
  /** Control and unknown tokens are only matched with `parseSpecial`; user-defined ones always. */
  readonly onlyWhenParsingSpecial: boolean;
  /** Whitespace beside the token belongs to it (Hugging Face `lstrip` / `rstrip`). */
  readonly lstrip: boolean;
  readonly rstrip: boolean;
}

export interface SpecialTokenFlags {
  readonly lstrip?: ReadonlySet<number>;
  readonly rstrip?: ReadonlySet<number>;
}

export class SpecialTokenSplitter {
  private readonly specials: SpecialToken[];

  constructor(tokens: readonly string[], types: readonly TokenType[], flags: SpecialTokenFlags = {}) {
    const specials: SpecialToken[] = [];
    tokens.forEach((text, id) => {
      const type = types[id];
      const special = type === TokenType.Control || type === TokenType.Unknown;
      if (text === "" || !(special || type === TokenType.UserDefined)) return;
      specials.push({
        id,
        text,
        onlyWhenParsingSpecial: special,
        lstrip: flags.lstrip?.has(id) ?? false,
        rstrip: flags.rstrip?.has(id) ?? false,
      });
    });
    // Stable sort: equal lengths keep id order, so the result does not depend on the engine.
    this.specials = specials.sort((a, b) => b.text.length - a.text.length);
  }

  split(text: string, parseSpecial: boolean): Fragment[] {
    type Piece = { id: number } | { text: string; start: number };
    let pieces: Piece[] = text === "" ? [] : [{ text, start: 0 }];
    for (const special of this.specials) {
      if (special.onlyWhenParsingSpecial && !parseSpecial) continue;
      if (!pieces.some((p) => "text" in p && p.text.includes(special.text))) continue;
      const next: Piece[] = [];
      for (const piece of pieces) {
        if (!("text" in piece)) {
          next.push(piece);
          continue;
        }
        let rest = piece.text;
        let start = piece.start;
        for (let at = rest.indexOf(special.text); at >= 0; at = rest.indexOf(special.text)) {
          let left = rest.slice(0, at);
          if (special.lstrip) left = left.trimEnd();
          if (left !== "") next.push({ text: left, start });
          next.push({ id: special.id });
          const cut = at + special.text.length;
          rest = rest.slice(cut);
          start += cut;
          if (special.rstrip) {
            const trimmed = rest.trimStart();
            start += rest.length - trimmed.length;
            rest = trimmed;
          }
        }
        if (rest !== "") next.push({ text: rest, start });
      }
      pieces = next;
    }
    return pieces.map((p) => ("text" in p ? { text: p.text, atStart: p.start === 0 } : p));
  }
}

/**
 * Token texts that end a turn or the generation, recognised by text as llama.cpp does because
 * files rarely list them all (`<|eot_id|>` and `<|eom_id|>` for LLaMA 3, `<|im_end|>` for Qwen2, …).
 * `<|end_of_text|>` is ours: an instruct LLaMA 3 names `<|eot_id|>` as EOS but may still emit it.
 */
export const END_OF_TURN_TEXTS: readonly string[] = [
  "<|eot_id|>",
  "<|end_of_text|>",
  "<|eom_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<EOT>",
];

/** `declared` (EOS, EOT, … where known) plus every token whose text is in END_OF_TURN_TEXTS. */
export function endOfTurnIds(tokens: readonly string[], declared: readonly (number | undefined)[]): Set<number> {
  const ids = new Set<number>();
  for (const id of declared) if (id !== undefined) ids.add(id);
  tokens.forEach((text, id) => {
    if (END_OF_TURN_TEXTS.includes(text)) ids.add(id);
  });
  return ids;
}

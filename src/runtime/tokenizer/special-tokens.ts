// Splits text around special tokens before the text itself is tokenized, as llama.cpp does:
// longer tokens first, each one cut out of every remaining text fragment.

import { TokenType, type TextPart } from "./types.js";

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
  private readonly byId: Map<number, SpecialToken>;

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
    this.byId = new Map(specials.map((s) => [s.id, s]));
  }

  /**
   * Cuts special tokens out of the joined text of `parts`. Control and unknown tokens are matched
   * only inside parts with `parseSpecial`, and never across two parts; text left beside each other
   * in adjacent parts is one fragment, as if the parts had been one text.
   */
  split(parts: readonly TextPart[]): Fragment[] {
    type TextPiece = { text: string; start: number; parseSpecial: boolean };
    type Piece = { id: number } | TextPiece;
    let pieces: Piece[] = [];
    let offset = 0;
    for (const part of parts) {
      if (part.text !== "") pieces.push({ text: part.text, start: offset, parseSpecial: part.parseSpecial });
      offset += part.text.length;
    }
    for (const special of this.specials) {
      const applies = (p: Piece) => "text" in p && (p.parseSpecial || !special.onlyWhenParsingSpecial) && p.text.includes(special.text);
      if (!pieces.some(applies)) continue;
      const next: Piece[] = [];
      for (const piece of pieces) {
        if (!("text" in piece) || !applies(piece)) {
          next.push(piece);
          continue;
        }
        const { parseSpecial } = piece;
        let rest = piece.text;
        let start = piece.start;
        for (let at = rest.indexOf(special.text); at >= 0; at = rest.indexOf(special.text)) {
          let left = rest.slice(0, at);
          if (special.lstrip) left = left.trimEnd();
          if (left !== "") next.push({ text: left, start, parseSpecial });
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
        if (rest !== "") next.push({ text: rest, start, parseSpecial });
      }
      pieces = next;
    }

    const out: ({ id: number } | { text: string; start: number })[] = [];
    for (const piece of pieces) {
      const prev = out.at(-1);
      if (!("text" in piece)) out.push(piece);
      else if (prev && "text" in prev) prev.text += piece.text;
      else out.push({ text: piece.text, start: piece.start });
    }
    // Whitespace that a token strips may lie in the next (or previous) part.
    out.forEach((f, i) => {
      if (!("id" in f)) return;
      const special = this.byId.get(f.id)!;
      const before = out[i - 1];
      const after = out[i + 1];
      if (special.lstrip && before && "text" in before) before.text = before.text.trimEnd();
      if (special.rstrip && after && "text" in after) {
        const trimmed = after.text.trimStart();
        after.start += after.text.length - trimmed.length;
        after.text = trimmed;
      }
    });
    return out.flatMap((f): Fragment[] => ("id" in f ? [f] : f.text === "" ? [] : [{ text: f.text, atStart: f.start === 0 }]));
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

// GPT-2's byte-level alphabet: every byte is written as one printable code point, so byte-level BPE
// vocabularies ("Ġhello" for " hello") are plain strings.

function buildTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    byteToChar[b] = String.fromCodePoint(printable ? b : next++);
  }
  const charToByte = new Map(byteToChar.map((c, b) => [c, b]));
  return { byteToChar, charToByte };
}

const { byteToChar, charToByte } = buildTables();

/** The code point GPT-2 uses for each byte value. */
export const BYTE_TO_CHAR: readonly string[] = byteToChar;

/** Byte-level text (e.g. "ĠhÃ©") to the bytes it stands for; `undefined` if a character is outside the alphabet. */
export function byteLevelToBytes(text: string): Uint8Array | undefined {
  const out: number[] = [];
  for (const c of text) {
    const b = charToByte.get(c);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return Uint8Array.from(out);
}

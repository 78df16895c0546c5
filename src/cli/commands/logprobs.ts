// `llmc logprobs MODEL (--tokens 1,2,3 | --text TEXT) [--top K] [--json]`: the model's next-token
// distribution after each prefix of a token sequence, and the sequence's perplexity. The JSON form is
// one object, for comparing llmc with other runtimes:
//   {"tokens": [...], "positions": [{"token": id, "top": [{"id": id, "logprob": x}, ...]}, ...], "perplexity": x}

import { parseArgs } from "node:util";
import type { Logprobs, Model } from "../../runtime/model.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";
import { loadModelForCli, modelOptionSpec, modelOptionsUsage, reportRuntimeError } from "./run.js";

export const logprobsUsage = `usage: llmc logprobs MODEL (--tokens ID,ID,… | --text TEXT) [--top K] [--json]

For each prefix tokens[0..i] of the sequence, the K most likely next tokens and their
log-probabilities; and the perplexity of the sequence (of each token after the first, given the ones
before it).

options:
  --tokens IDS           token ids, separated by commas
  --text TEXT            text, tokenized as the model does (with BOS if the model adds one)
  --top K                how many of the most likely tokens to list at each position (default 5)
  --json                 print one JSON object: {"tokens", "positions": [{"token", "top": [{"id", "logprob"}]}], "perplexity"}

${modelOptionsUsage}`;

export async function runLogprobs(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tokens: { type: "string" },
      text: { type: "string" },
      top: { type: "string" },
      json: { type: "boolean", default: false },
      ...modelOptionSpec,
    },
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "missing MODEL" : `expected one MODEL, got ${positionals.length}`, logprobsUsage);
  if ((values.tokens === undefined) === (values.text === undefined)) throw new UsageError("give either --tokens or --text", logprobsUsage);
  const ids = values.tokens === undefined ? undefined : parseTokenList(values.tokens);
  const top = values.top === undefined ? 5 : Number(values.top);
  if (!/^\d+$/.test(values.top ?? "5") || !Number.isSafeInteger(top)) throw new UsageError(`--top takes an integer ≥ 0, got '${values.top}'`, logprobsUsage);

  let model: Model | undefined;
  try {
    model = await loadModelForCli(positionals[0]!, values, io, logprobsUsage);
    const tokens = ids ?? model.tokenizer.encode(values.text!);
    const result = await model.logprobs(tokens, { top });
    io.out(values.json ? `${JSON.stringify(result)}\n` : formatTable(result, model));
    return 0;
  } catch (e) {
    return reportRuntimeError(e, "logprobs", io);
  } finally {
    model?.dispose();
  }
}

function parseTokenList(text: string): number[] {
  const parts = text.split(",").map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^-?\d+$/.test(p))) {
    throw new UsageError(`--tokens takes integers separated by commas, got '${text}'`, logprobsUsage);
  }
  return parts.map(Number);
}

/** One line per position: the token, its log-probability given what precedes it, the top next tokens. */
function formatTable(r: Logprobs, model: Model): string {
  const shown = (id: number) => JSON.stringify(model.tokenizer.idToToken(id) ?? `#${id}`);
  const lines = r.tokens.map((token, i) => {
    const prev = i === 0 ? undefined : r.positions[i - 1]!;
    // The previous position's logprob of this token, when it is among that position's top.
    const lp = prev?.top.find((t) => t.id === token)?.logprob;
    const own = i === 0 ? "" : lp === undefined ? "  (not in the top)" : `  ${lp.toFixed(4)}`;
    const next = r.positions[i]!.top.map((t) => `${shown(t.id)} ${t.logprob.toFixed(4)}`).join(", ");
    return `${String(i).padStart(4)}  ${String(token).padStart(6)} ${shown(token)}${own}  →  ${next}`;
  });
  const ppl = r.perplexity === null ? "n/a (one token)" : r.perplexity.toFixed(4);
  return `${lines.join("\n")}\nperplexity: ${ppl} over ${Math.max(0, r.tokens.length - 1)} predicted tokens\n`;
}

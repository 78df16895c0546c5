// `llmc eval`: a model's perplexity on a text (--data), its BLEU and ROUGE on a generation task
// (--task), or BLEU and ROUGE of text files without a model (--hyp, --ref). The metrics live in
// src/eval; this reads the files, checks the flags and prints.

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { bleu, type BleuScore } from "../../eval/bleu.js";
import { perplexity } from "../../eval/perplexity.js";
import { rouge, ROUGE_TYPES, type RougeType } from "../../eval/rouge.js";
import { generateOutputs, parseTask } from "../../eval/task.js";
import { InputError } from "../../runtime/generate/errors.js";
import type { Model } from "../../runtime/model.js";
import type { CliIO } from "../io.js";
import { UsageError } from "./common.js";
import { beamOptions, beamOptionSpec, beamUsage, loadModelForCli, modelOptionSpec, modelOptionsUsage, reportRuntimeError } from "./run.js";

export const evalUsage = `usage: llmc eval MODEL --data FILE [--context N] [--stride S] [--json]
       llmc eval MODEL --task FILE.jsonl [--max-tokens N] [--beams N] [--metrics bleu,rouge] [--json]
       llmc eval --hyp FILE --ref FILE [--ref FILE…] [--metrics bleu,rouge] [--json]

Perplexity (--data): the text of FILE, tokenized as the model does, scored with sliding windows of
--context tokens every --stride tokens (Hugging Face's strided perplexity); prints the perplexity,
the tokens and the windows.

Generation (--task): each line of FILE.jsonl is {"prompt": "…", "references": ["…", …]} (or
"reference": "…"); the model continues each prompt (greedy, or by beam search) and the outputs are
scored: corpus BLEU (sacreBLEU's defaults) and ROUGE-1/2/L/Lsum F1 (rouge-score's, the mean over
items, against each item's best reference).

Text files (--hyp, --ref): line i of the hypothesis file against line i of each reference file.

options:
  --data FILE            a text to compute the perplexity of
  --context N            tokens per window (default: the model's context)
  --stride S             tokens between windows (default: context / 2)
  --task FILE.jsonl      prompts and references to generate and score
  -n, --max-tokens N     the most tokens per output (default 256)
  --hyp FILE             hypotheses, one per line
  --ref FILE             references, one per line (repeatable: several references per hypothesis)
  --metrics LIST         bleu, rouge or both, separated by commas (default both)
  --stem                 Porter-stem words for ROUGE (rouge-score's use_stemmer)
  --json                 print one JSON object (with ROUGE precision and recall, and the outputs of --task)

${beamUsage}

${modelOptionsUsage}`;

type Metric = "bleu" | "rouge";
const METRICS: readonly Metric[] = ["bleu", "rouge"];

export async function runEval(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      data: { type: "string" },
      context: { type: "string" },
      stride: { type: "string" },
      task: { type: "string" },
      "max-tokens": { type: "string", short: "n" },
      hyp: { type: "string" },
      ref: { type: "string", multiple: true },
      metrics: { type: "string" },
      stem: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      ...beamOptionSpec,
      ...modelOptionSpec,
    },
  });
  const modes = (["data", "task", "hyp"] as const).filter((m) => values[m] !== undefined);
  if (modes.length !== 1) throw new UsageError(modes.length === 0 ? "give --data, --task or --hyp" : `give one of --data, --task, --hyp, not ${modes.map((m) => `--${m}`).join(" and ")}`, evalUsage);
  const mode = modes[0]!;
  const only = (flags: readonly (keyof typeof values)[], owner: string) => {
    const stray = flags.find((f) => values[f] !== undefined);
    if (stray) throw new UsageError(`--${stray} goes with ${owner}`, evalUsage);
  };
  if (mode !== "data") only(["context", "stride"], "--data");
  if (mode !== "task") only(["max-tokens", "beams", "length-penalty"], "--task");
  if (mode !== "hyp") only(["ref"], "--hyp");
  if (mode === "data") only(["metrics"], "--task or --hyp");
  if (mode === "hyp") {
    if (positionals.length > 0) throw new UsageError("--hyp scores text files: give no MODEL", evalUsage);
    if (!values.ref?.length) throw new UsageError("--hyp needs at least one --ref", evalUsage);
  } else if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "missing MODEL" : `expected one MODEL, got ${positionals.length}`, evalUsage);
  const metrics = metricList(values.metrics);
  const context = positiveInteger(values.context, "--context");
  const stride = positiveInteger(values.stride, "--stride");
  const maxTokens = positiveInteger(values["max-tokens"], "--max-tokens", 0);
  const beam = beamOptions(values, evalUsage);

  let model: Model | undefined;
  try {
    if (mode === "hyp") {
      const hyps = await readLines(values.hyp!);
      const refFiles = await Promise.all(values.ref!.map(readLines));
      refFiles.forEach((refs, k) => {
        if (refs.length !== hyps.length) throw new InputError(`${values.ref![k]} has ${refs.length} lines but ${values.hyp} has ${hyps.length}: give one reference per hypothesis line`);
      });
      printScores(io, values.json, metrics, values.stem, hyps, hyps.map((_, i) => refFiles.map((refs) => refs[i]!)));
      return 0;
    }
    const input = await readText(mode === "data" ? values.data! : values.task!);
    // A task file is checked before the model is loaded.
    const items = mode === "task" ? parseTask(input, values.task!) : [];
    model = await loadModelForCli(positionals[0]!, values, io, evalUsage);
    if (mode === "data") {
      const r = await perplexity(model, input, { ...(context !== undefined ? { context } : {}), ...(stride !== undefined ? { stride } : {}) });
      if (values.json) io.out(`${JSON.stringify({ perplexity: r.perplexity, tokens: r.tokens, scored: r.scored, nll: r.nll, windows: r.windows, context: r.context, stride: r.stride })}\n`);
      else io.out(`perplexity ${r.perplexity.toFixed(4)}\ntokens ${r.tokens} (${r.scored} scored), windows ${r.windows}, context ${r.context}, stride ${r.stride}\n`);
      return 0;
    }
    const outputs = await generateOutputs(model, items, { ...beam, ...(maxTokens !== undefined ? { maxTokens } : {}) });
    printScores(io, values.json, metrics, values.stem, outputs, items.map((it) => it.references), outputs);
    return 0;
  } catch (e) {
    return reportRuntimeError(e, "eval", io);
  } finally {
    model?.dispose();
  }
}

function metricList(text: string | undefined): Metric[] {
  if (text === undefined) return [...METRICS];
  const names = text.split(",").map((s) => s.trim());
  const bad = names.find((n) => !(METRICS as readonly string[]).includes(n));
  if (bad !== undefined || names.length === 0) throw new UsageError(`--metrics takes ${METRICS.join(", ")} separated by commas, got '${text}'`, evalUsage);
  return METRICS.filter((m) => names.includes(m));
}

function positiveInteger(text: string | undefined, flag: string, min = 1): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v) || v < min) throw new UsageError(`${flag} takes an integer ≥ ${min}, got '${text}'`, evalUsage);
  return v;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === "ENOENT" ? "no such file" : `cannot read it (${(e as Error).message})`}`);
  }
}

/** The lines of a text file, as sacreBLEU reads them: the newline at the end of the file ends the last line. */
async function readLines(path: string): Promise<string[]> {
  const lines = (await readText(path)).split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

const ROUGE_NAMES: Record<RougeType, string> = { rouge1: "ROUGE-1", rouge2: "ROUGE-2", rougeL: "ROUGE-L", rougeLsum: "ROUGE-Lsum" };

function printScores(io: CliIO, json: boolean, metrics: readonly Metric[], stem: boolean, hyps: string[], refs: string[][], outputs?: string[]): void {
  const b = metrics.includes("bleu") ? bleu(hyps, refs) : undefined;
  const r = metrics.includes("rouge") ? rouge(hyps, refs, { stem }) : undefined;
  if (json) {
    io.out(
      `${JSON.stringify({
        items: hyps.length,
        ...(b ? { bleu: bleuJson(b) } : {}),
        ...(r ? { rouge: r } : {}),
        ...(outputs ? { outputs } : {}),
      })}\n`,
    );
    return;
  }
  if (b) io.out(`${bleuLine(b)}\n`);
  if (r) for (const t of ROUGE_TYPES) io.out(`${ROUGE_NAMES[t].padEnd(10)} F ${r[t]!.fmeasure.toFixed(4)}\n`);
}

/** sacreBLEU's names for the parts of a score. */
function bleuJson(b: BleuScore) {
  return { score: b.score, counts: b.counts, totals: b.totals, precisions: b.precisions, bp: b.bp, sys_len: b.sysLen, ref_len: b.refLen };
}

/** As sacreBLEU prints it: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18). */
function bleuLine(b: BleuScore): string {
  const ratio = b.refLen > 0 ? b.sysLen / b.refLen : 0;
  return `BLEU = ${b.score.toFixed(2)} ${b.precisions.map((p) => p.toFixed(1)).join("/")} (BP = ${b.bp.toFixed(3)} ratio = ${ratio.toFixed(3)} hyp_len = ${b.sysLen} ref_len = ${b.refLen})`;
}

// `llmc init-weights FILE.llm [--set k=v] [--dtype f32|f16|q8_0|q4_0] [--seed N] -o model.gguf`:
// a GGUF file of random weights for the model, with llama.cpp's metadata and a trained vocabulary,
// that llmc and llama.cpp both load.

import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { checkFile } from "../../compiler/check/index.js";
import type { StorageDType } from "../../compiler/target/storage.js";
import { WeightFileError } from "../../runtime/weights/errors.js";
import { initWeights, type InitWeightsSummary } from "../../runtime/weights/init.js";
import { readTokenizerVocab } from "../../runtime/weights/tokenizer-vocab.js";
import type { GGUFVocab } from "../../runtime/weights/vocab.js";
import type { CliIO } from "../io.js";
import { parseSetFlags, printDiagnostics, UsageError } from "./common.js";

const DTYPE_CHOICES = ["f32", "f16", "q8_0", "q4_0"] as const;

export const initWeightsUsage = `usage: llmc init-weights FILE.llm [--set name=value]… [--model NAME]
                         [--dtype f32|f16|q8_0|q4_0] [--seed N] [--name NAME]
                         [--tokenizer tokenizer.json] -o OUT.gguf

Writes a GGUF file of random weights for the model, loadable by llmc and by llama.cpp: every tensor
under its GGUF name, llama.cpp's metadata, and a SentencePiece vocabulary of vocab_size tokens
trained on a small bundled English text (or the tokenizer given with --tokenizer).

options:
  -o, --output OUT.gguf  the file to write (required)
  --dtype TYPE           storage type of the matrices (default f32); 1-D tensors stay f32
  --seed N               random seed, 0 to 4294967295 (default 0); the same seed gives the same file
  --name NAME            general.name (default: the model's name)
  --perturb STD          add normal(0, STD) noise to every weight after its initialiser, so that test
                         models have biases and norm gains that are not all zeros and ones
  --tokenizer FILE       write this tokenizer.json's vocabulary instead (e.g. from 'llmc tokenizer train';
                         tokenizer_config.json beside it names BOS/EOS); it must have vocab_size tokens`;

export async function runInitWeights(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: "string", multiple: true },
      model: { type: "string" },
      dtype: { type: "string", default: "f32" },
      seed: { type: "string", default: "0" },
      name: { type: "string" },
      output: { type: "string", short: "o" },
      perturb: { type: "string" },
      tokenizer: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("llmc init-weights takes one .llm file", initWeightsUsage);
  if (values.output === undefined) throw new UsageError("missing -o OUT.gguf", initWeightsUsage);
  const dtype = values.dtype!;
  if (!(DTYPE_CHOICES as readonly string[]).includes(dtype)) {
    throw new UsageError(`--dtype must be one of ${DTYPE_CHOICES.join(", ")}, got '${dtype}'`, initWeightsUsage);
  }
  const seedText = values.seed!;
  if (!/^\d+$/.test(seedText) || Number(seedText) > 0xffffffff) throw new UsageError(`--seed takes an integer from 0 to 4294967295, got '${seedText}'`);
  const perturb = values.perturb === undefined ? 0 : Number(values.perturb);
  if (!Number.isFinite(perturb) || perturb < 0 || values.perturb?.trim() === "") throw new UsageError(`--perturb takes a standard deviation ≥ 0, got '${values.perturb}'`, initWeightsUsage);

  let vocab: GGUFVocab | undefined;
  if (values.tokenizer !== undefined) {
    const loaded = await readTokenizerVocab(values.tokenizer);
    if (typeof loaded === "string") {
      io.err(`llmc init-weights: ${loaded}\n`);
      return 1;
    }
    vocab = loaded;
  }

  const res = checkFile(positionals[0]!, { overrides: parseSetFlags(values.set), requireConcrete: true, ...(values.model ? { model: values.model } : {}) });
  if (printDiagnostics(res.diagnostics, res.program.sources, io) > 0 || !res.model) return 1;

  const bar = progressBar();
  try {
    const summary = await initWeights(res.model, values.output, {
      dtype: dtype as StorageDType,
      seed: Number(seedText),
      ...(perturb > 0 ? { perturb } : {}),
      ...(values.name !== undefined ? { name: values.name } : {}),
      ...(vocab ? { vocab } : {}),
      ...(bar ? { onProgress: bar.update } : {}),
    });
    bar?.stop();
    io.out(formatSummary(summary, dtype, Number(seedText)));
    for (const n of summary.notes) io.err(`llmc init-weights: note: ${n}\n`);
    return 0;
  } catch (err) {
    bar?.stop();
    if (err instanceof WeightFileError) {
      io.err(`llmc init-weights: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** A progress bar on stderr when it is a terminal; none otherwise (pipes, logs, tests). */
function progressBar(): { update: (p: { bytesDone: number; bytesTotal: number; tensor: string }) => void; stop: () => void } | null {
  if (!process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: "writing {bar} {percentage}% | {value}/{total} MiB | {tensor}", hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
  let started = false;
  return {
    update: (p) => {
      if (!started) {
        bar.start(mib(p.bytesTotal), 0, { tensor: "" });
        started = true;
      }
      bar.update(mib(p.bytesDone), { tensor: p.tensor });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

function formatSummary(s: InitWeightsSummary, requested: string, seed: number): string {
  const types = Object.entries(s.dtypes)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n} ${t}`)
    .join(", ");
  const bytes = s.vocab.byteFallback ? 256 : 0;
  const specials = `${s.vocab.specials} special${bytes > 0 ? ", 256 byte" : ""}`;
  const unused = s.vocab.size - s.vocab.learned - bytes - s.vocab.specials;
  return [
    `wrote ${s.path}: ${s.tensors} tensors, ${s.bytes.toLocaleString("en-US")} bytes`,
    `  architecture  ${s.architecture}`,
    `  dtype         ${requested} (${types}${requested === "f32" ? "" : "; 1-D tensors stay f32"})`,
    `  vocabulary    ${s.vocab.size.toLocaleString("en-US")} tokens (${specials}, ${s.vocab.learned} learned${unused > 0 ? `, ${unused.toLocaleString("en-US")} unused` : ""})`,
    `  seed          ${seed}`,
    "",
  ].join("\n");
}

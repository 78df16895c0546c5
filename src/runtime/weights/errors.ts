// The one error type of the weight-file layer. Every message names the file, the tensor or metadata
// key when there is one, what is wrong, and what the user can do about it, so the CLI can print it
// as is, without a stack trace.

export interface WeightFileErrorDetails {
  tensor?: string;
  key?: string; // a metadata key
  hint?: string; // what to do about it
  cause?: unknown;
}

export class WeightFileError extends Error {
  override readonly name = "WeightFileError";
  readonly file: string;
  readonly tensor: string | undefined;
  readonly key: string | undefined;
  readonly problem: string;
  readonly hint: string | undefined;

  constructor(file: string, problem: string, details: WeightFileErrorDetails = {}) {
    const where = [file];
    if (details.tensor !== undefined) where.push(`tensor "${details.tensor}"`);
    if (details.key !== undefined) where.push(`metadata key "${details.key}"`);
    const sentence = (s: string) => (/[.!?]$/.test(s) ? s : `${s}.`);
    const message = `${where.join(": ")}: ${sentence(problem)}${details.hint ? ` ${sentence(details.hint)}` : ""}`;
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.file = file;
    this.tensor = details.tensor;
    this.key = details.key;
    this.problem = problem;
    this.hint = details.hint;
  }
}

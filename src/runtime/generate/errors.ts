// Bad input to the runtime — a file that is not a model, a token id outside the vocabulary, an empty
// prompt, an option out of range. The message says what is wrong and where, so the CLI prints it as
// is, without a stack trace.

import type { Diagnostic, SourceMap } from "../../compiler/base/diagnostics.js";

export class InputError extends Error {
  override name = "InputError";

  constructor(
    message: string,
    /** When the model's architecture did not compile: what the compiler said, and its sources. */
    readonly diagnostics?: { list: readonly Diagnostic[]; sources: SourceMap },
  ) {
    super(message);
  }
}

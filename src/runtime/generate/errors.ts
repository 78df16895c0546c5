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

// What a model refuses while it is busy or after it is gone. Each says what to do instead; they are
// InputErrors because the caller, not the input files, is at fault.

/** The model methods that need its KV cache to themselves. */
export type ModelCall = "generate" | "logprobs" | "reset";

/** A step of a generation (or logprobs) is running; this call would corrupt its KV cache. */
export class ModelBusyError extends InputError {
  override name = "ModelBusyError";

  constructor(readonly call: ModelCall) {
    super(`${call}() was called while a step of another generation (or logprobs) is running on this model; wait for it to end, or abort it with its signal`);
  }
}

/** The model was disposed: before this call, or during the generation that now ends with it. */
export class ModelDisposedError extends InputError {
  override name = "ModelDisposedError";

  constructor() {
    super("the model was disposed");
  }
}

/**
 * A generation that waited for its consumer (between two tokens, or abandoned) was ended because the
 * model was used for something else: another generation, logprobs, or reset().
 */
export class GenerationSupersededError extends InputError {
  override name = "GenerationSupersededError";

  constructor(readonly by: ModelCall) {
    super(`this generation was ended by a call to ${by}() on the same model while it waited for its consumer; a model runs one generation at a time`);
  }
}

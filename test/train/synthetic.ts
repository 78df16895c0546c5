// A model small enough to differentiate by hand, for testing the trainer without the compiler: a
// bigram softmax model, logits(next | token) = W[token] + b, with the mean cross-entropy loss and its
// gradients written out: dL/dlogits = (softmax − onehot(target)) / N.

import type { Batch } from "../../src/train/data.js";
import type { Tensors } from "../../src/train/optimizer.js";
import type { Trainable } from "../../src/train/train.js";

export function bigramModel(vocab: number, seed = 1): Trainable {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2;
  const params: Tensors = new Map([
    ["W", Float32Array.from({ length: vocab * vocab }, rand)],
    ["b", new Float32Array(vocab)],
  ]);
  const shapes = new Map<string, readonly number[]>([
    ["W", [vocab, vocab]],
    ["b", [vocab]],
  ]);
  return { params, shapes, lossAndGrad: (batch) => bigramLossAndGrad(params, vocab, batch) };
}

export function bigramLossAndGrad(params: Tensors, vocab: number, batch: Batch): { loss: number; grads: Tensors } {
  const W = params.get("W")!;
  const b = params.get("b")!;
  const dW = new Float32Array(W.length);
  const db = new Float32Array(b.length);
  const n = batch.tokens.length;
  let loss = 0;
  const p = new Float64Array(vocab);
  for (let i = 0; i < n; i++) {
    const tok = batch.tokens[i]!;
    const target = batch.targets[i]!;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, W[tok * vocab + j]! + b[j]!);
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += p[j] = Math.exp(W[tok * vocab + j]! + b[j]! - max);
    loss -= Math.log(p[target]! / sum);
    for (let j = 0; j < vocab; j++) {
      const d = (p[j]! / sum - (j === target ? 1 : 0)) / n;
      dW[tok * vocab + j] = dW[tok * vocab + j]! + d;
      db[j] = db[j]! + d;
    }
  }
  return { loss: loss / n, grads: new Map([["W", dW], ["b", db]]) };
}

/** A stream that repeats a short pattern, so a bigram model can learn it. */
export function patternStream(length: number, pattern = [1, 2, 3, 1, 4, 2, 5, 3]): Int32Array {
  return Int32Array.from({ length }, (_, i) => pattern[i % pattern.length]!);
}

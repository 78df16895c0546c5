// What every attention kernel shares: an attention node's score and mask programs (ops/table.ts,
// made by passes/attention.ts) rendered as one program into the loop over keys, with two outputs —
// the new score and whether the key is seen. Templates run `pre` once per (query, head) row and
// `body` per key, after the dot product.

import { appendProgram, type ExprNode, type ExprProgram } from "../../ops/expr.js";
import type { Attrs, DType } from "../../ops/table.js";
import { renderExpr, type ExprLang } from "./expr.js";

export interface ScoreModifier {
  helpers: string[];
  pre: string[];
  body: string[];
  /** The new score (an f32 expression), or null when the node has no score program. */
  score: string | null;
  /** Whether the key is seen (a bool expression), or null when the node has no mask program. */
  visible: string | null;
}

/** Expressions for the modifier inputs at the current key: the scaled score (f32), and the query
 *  position, key position and query head (each as f32). */
export interface ModifierInputs {
  score: string;
  qPos: string;
  kPos: string;
  head: string;
}

/** The combined program over (s, q_pos, k_pos, head): outputs the score (when there is a score
 *  program) then the mask (when there is one). Null without either. */
export function modifierProgram(attrs: Attrs): ExprProgram | null {
  const score = attrs["score"] as ExprProgram | undefined;
  const mask = attrs["mask"] as ExprProgram | undefined;
  if (!score && !mask) return null;
  const nodes: ExprNode[] = [];
  const outputs: number[] = [];
  if (score) outputs.push(...appendProgram(nodes, score, (i) => i));
  // The mask reads (q_pos, k_pos, head): inputs 1, 2, 3 of the combined program.
  if (mask) outputs.push(...appendProgram(nodes, mask, (i) => i + 1));
  return { nodes, outputs };
}

export function renderScoreModifier(attrs: Attrs, lang: ExprLang, inputs: ModifierInputs): ScoreModifier | null {
  const p = modifierProgram(attrs);
  if (!p) return null;
  const names = [inputs.score, inputs.qPos, inputs.kPos, inputs.head];
  const types: DType[] = ["f32", "f32", "f32", "f32"];
  const r = renderExpr(p, lang, (i) => names[i]!, undefined, types);
  const hasScore = attrs["score"] !== undefined;
  const hasMask = attrs["mask"] !== undefined;
  return {
    helpers: r.helpers,
    pre: r.pre,
    body: r.body,
    score: hasScore ? r.outputs[0]! : null,
    visible: hasMask ? r.outputs[hasScore ? 1 : 0]! : null,
  };
}

/** Which keys a query sees and how its scores scale, as every attention kernel (forward and
 *  gradient, WGSL and CUDA) reads them from its node: causal, window (0: none), segment (packed
 *  training sequences; 0: one) and the scale as a literal of the target (1/√D when unset). */
export function attentionMasking(attrs: Attrs, headDim: number, literal: (x: number) => string): { causal: boolean; window: number; segment: number; scale: string } {
  const window = (attrs["window"] as number | undefined) ?? 0;
  return {
    causal: attrs["causal"] === true,
    window: window > 0 ? window : 0,
    segment: (attrs["segment"] as number | undefined) ?? 0,
    scale: literal(typeof attrs["scale"] === "number" ? attrs["scale"] : 1 / Math.sqrt(headDim)),
  };
}

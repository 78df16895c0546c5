// Rule `gain` (documented with the fusion rules in passes/fuse.ts): a factor of a linear's prologue
// that reads only weight vectors along K — RMSNorm's g, Gemma's 1 + g — is folded into the linear's
// weights when they are uploaded, W'[n, k] = W[n, k] · f(v)[k], and dropped from the kernel. The
// norm's reductions stay in the kernel; the gain is no longer loaded at every step of k, which on a
// CPU adapter is what made the prologue cost more than the norm kernel it replaced. A weight is
// folded only when every use of it is a fused_linear folding the same factor, so no kernel sees
// the weight unscaled. Targets opt in (PlanOptions.foldGains) because their runtime must upload the
// scaled weights: `gainFolds` tells it which.

import { constValue } from "../base/symbolic.js";
import { nodeMap, type Graph, type Node } from "../ir/graph.js";
import {
  evalProgramRow, factorRowScale, formatProgram, isIdentityProgram, productProgram, programInputs, renumberInputs, subProgram, type ExprProgram,
} from "../ops/expr.js";

/** A weight stored scaled along its rows: W[n, k] · program(inputs)[k], each input a weight [K]. */
export interface WeightScale {
  program: ExprProgram;
  /** Weight names. */
  inputs: string[];
}

export interface GainFolds {
  /** Weights uploaded scaled, by name. */
  weights: Map<string, WeightScale>;
  /** fused_linear nodes whose prologue loses the folded factors: their new sources and prologue. */
  prologues: Map<number, { sources: number[]; prologue: ExprProgram }>;
}

interface Candidate {
  node: Node;
  key: string;
  scale: WeightScale;
  sources: number[];
  prologue: ExprProgram;
  weights: number[];
}

/** A weight whose values are the same for every row of x [.., M, K]: shape [K] or [1, …, K]. */
function alongK(n: Node, k: number): boolean {
  const s = n.ty.shape.map(constValue);
  return n.op === "weight" && s.length >= 1 && s[s.length - 1] === k && s.slice(0, -1).every((d) => d === 1);
}

function candidate(n: Node, byId: ReadonlyMap<number, Node>): Candidate | null {
  if (n.op !== "fused_linear") return null;
  const p = n.attrs["x_inputs"] as number;
  const w = n.attrs["weights"] as number;
  const prologue = n.attrs["prologue"] as ExprProgram;
  if (isIdentityProgram(prologue)) return null;
  const f = factorRowScale(prologue);
  const sources = n.inputs.slice(0, p);
  const weights = n.inputs.slice(p, p + w);
  const k = constValue(byId.get(weights[0]!)!.ty.shape[1]!);
  if (!f || k === null) return null;
  const folded: number[] = [];
  const kept: number[] = [];
  for (const factor of f.elementwiseFactors) {
    const ins = programInputs({ nodes: prologue.nodes, outputs: [factor] });
    (ins.length > 0 && ins.every((i) => alongK(byId.get(sources[i]!)!, k)) ? folded : kept).push(factor);
  }
  if (folded.length === 0) return null;
  // The folded factor over its own inputs (weight names); the prologue without it.
  const scaleFull = productProgram(prologue, folded);
  const scaleInputs = programInputs(scaleFull);
  const scale: WeightScale = {
    program: renumberInputs(scaleFull, (i) => scaleInputs.indexOf(i)),
    inputs: scaleInputs.map((i) => String(byId.get(sources[i]!)!.attrs["name"])),
  };
  const rest = productProgram(prologue, [...kept, ...f.uniformFactors], f.denominators);
  const used = programInputs(rest);
  return {
    node: n,
    key: `${formatProgram(scale.program)} ${JSON.stringify(scale.inputs)}`,
    scale,
    sources: used.map((i) => sources[i]!),
    prologue: renumberInputs(subProgram(rest, rest.outputs), (i) => used.indexOf(i)),
    weights,
  };
}

/** `keep`: weights that must be uploaded as they are (a target storing them quantized cannot scale
 *  them): linears reading any of them keep the gain in their prologue. */
export function gainFolds(g: Graph, keep?: (weightName: string) => boolean): GainFolds {
  const byId = nodeMap(g);
  const users = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of new Set(n.inputs)) users.set(i, [...(users.get(i) ?? []), n]);
  const cands = new Map<number, Candidate>();
  for (const n of g.nodes) {
    const c = candidate(n, byId);
    if (c && !(keep && c.weights.some((w) => keep(String(byId.get(w)!.attrs["name"]))))) cands.set(n.id, c);
  }
  // Drop candidates until every weight they fold is used only by candidates folding it the same
  // way, only as a weight.
  for (let changed = true; changed; ) {
    changed = false;
    for (const c of [...cands.values()]) {
      const ok = c.weights.every((w) => {
        const us = users.get(w) ?? [];
        return (
          !g.outputs.includes(w) &&
          us.every((u) => {
            const other = cands.get(u.id);
            if (!other || other.key !== c.key) return false;
            const p = u.attrs["x_inputs"] as number;
            const nw = u.attrs["weights"] as number;
            return u.inputs.every((x, i) => x !== w || (i >= p && i < p + nw));
          })
        );
      });
      if (!ok) {
        cands.delete(c.node.id);
        changed = true;
      }
    }
  }
  const weights = new Map<string, WeightScale>();
  const prologues = new Map<number, { sources: number[]; prologue: ExprProgram }>();
  for (const c of cands.values()) {
    for (const w of c.weights) weights.set(String(byId.get(w)!.attrs["name"]), c.scale);
    prologues.set(c.node.id, { sources: c.sources, prologue: c.prologue });
  }
  return { weights, prologues };
}

/** W · scale along its rows, for uploading: `weight(name)` gives any weight's values. */
export function scaleWeight(values: Float32Array, k: number, scale: WeightScale, weight: (name: string) => Float32Array): Float32Array {
  const ins = scale.inputs.map((name) => Float64Array.from(weight(name).subarray(0, k)));
  const [s] = evalProgramRow(scale.program, k, (i) => ins[i]!, scale.inputs.map(() => "f32"));
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i]! * s![i % k]!;
  return out;
}

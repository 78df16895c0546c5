// Packing: several training sequences of one length in one step. A step's kernels cost about the
// same to launch whether they cover 64 tokens or 512, so on devices where launches are dear (llvmpipe
// waits ~60 µs for its threads at every dispatch) k sequences run as one of k·L tokens. That is exact
// when every row of the forward graph depends only on its own token, except through attention, whose
// `segment` attribute then keeps each query to the keys of its own sequence; RoPE reads the `pos`
// input, which restarts at 0 for each sequence.
//
// packingBlocker says why a forward graph cannot be packed (null: it can): a value that mixes rows —
// attention written out (its scores are a matmul of two activations), a reduction or slice along
// the tokens, a reshape or transpose that moves them.

import { dimEquals, symDim } from "../base/symbolic.js";
import type { Graph, Node } from "../ir/graph.js";
import { getOp } from "../ops/table.js";

const T = symDim("T");

/** Why the rows of this forward graph (no KV cache, P = 0) are not independent but through
 *  attention; null when k sequences can run as one step of k·T tokens. */
export function packingBlocker(g: Graph): string | null {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const perToken = new Set<number>();
  const rowsLead = (id: number) => {
    const s = byId.get(id)!.ty.shape;
    return s.length > 0 && dimEquals(s[0]!, T);
  };
  for (const n of g.nodes) {
    const tokenInputs = n.inputs.filter((i) => perToken.has(i));
    if (n.op !== "input" && tokenInputs.length === 0) continue;
    perToken.add(n.id);
    const why = rowLocal(n, tokenInputs, byId, rowsLead);
    if (why) return `%${n.id} ${n.op}: ${why}`;
  }
  return null;
}

function rowLocal(n: Node, tokenInputs: number[], byId: Map<number, Node>, rowsLead: (id: number) => boolean): string | null {
  if (!rowsLead(n.id)) return "its first axis is not the tokens";
  if (!tokenInputs.every(rowsLead)) return "an input's first axis is not the tokens";
  const axis = (a: number) => (a < 0 ? a + byId.get(n.inputs[0]!)!.ty.shape.length : a);
  switch (n.op) {
    case "input":
    case "rotary":
    case "attention":
      return null;
    case "reshape":
      return null; // both ends lead with T rows of the same size, so each row stays itself
    case "transpose":
      return (n.attrs["perm"] as number[])[0] === 0 ? null : "it moves the tokens' axis";
    case "slice":
    case "concat":
      return axis(n.attrs["axis"] as number) === 0 ? "it cuts or joins along the tokens" : null;
    case "gather":
      return tokenInputs.includes(n.inputs[0]!) ? "its table depends on the tokens" : null;
    case "matmul":
      // x @ W: rows of x times a matrix of weights (attention written out multiplies two activations).
      return tokenInputs.length === 1 && tokenInputs[0] === n.inputs[0] && byId.get(n.inputs[1]!)!.ty.shape.length === 2 ? null : "it multiplies values of several tokens";
    default: {
      const kind = getOp(n.op).kind;
      if (kind === "elementwise") return null;
      if (kind === "reduction") return axis(n.attrs["axis"] as number) === 0 ? "it reduces over the tokens" : null;
      return "not known to keep tokens apart";
    }
  }
}

/** The forward graph with every attention kept to sequences of `segment` positions. */
export function segmentAttention(g: Graph, segment: number): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.op === "attention" ? { ...n, attrs: { ...n.attrs, segment } } : n)) };
}

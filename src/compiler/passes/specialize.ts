// Shape specialisation: substitute the step length T (1 for decode, the prompt length for prefill)
// into every type and dim attribute. P (the past length) stays symbolic: it changes every step.

import { substDim, constDim, type Dim } from "../base/symbolic.js";
import type { Graph } from "../ir/graph.js";
import { attrSchema } from "../ir/text.js";

export function specialize(g: Graph, symbols: Record<string, number>): Graph {
  const env = new Map<string, Dim>(Object.entries(symbols).map(([k, v]) => [k, constDim(v)]));
  return {
    ...g,
    nodes: g.nodes.map((n) => {
      const schema = attrSchema(n.op) ?? {};
      const attrs = { ...n.attrs };
      for (const [k, kind] of Object.entries(schema)) {
        if (kind === "dim") attrs[k] = substDim(attrs[k] as Dim, env);
        else if (kind === "dims") attrs[k] = (attrs[k] as Dim[]).map((d) => substDim(d, env));
      }
      return { ...n, attrs, ty: { ...n.ty, shape: n.ty.shape.map((d) => substDim(d, env)) } };
    }),
  };
}

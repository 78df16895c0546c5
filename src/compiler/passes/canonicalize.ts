// Canonicalisation: algebraic identities that make later matching (fusion) see one form.
//   x * 1, x / 1, x + 0, x - 0      → x        (when the constant does not change the shape)
//   reshape to the same shape       → x
//   reshape(reshape(x))             → reshape(x)
//   transpose by the identity       → x
//   transpose(transpose(x))         → one transpose
//   cast to the same element type   → x
//   a slice of a whole dim          → x
//   reshape(u(x)), u a unary elementwise op used only there  → u(reshape(x))
//                                   (reshapes sink towards the leaves, so elementwise regions grow
//                                   across them: RoPE's angle cast(pos)·freqs becomes one region
//                                   over a view of pos)

import { constValue, dimEquals, type Dim } from "../base/symbolic.js";
import { nextId, nodeMap, type Graph, type Node } from "../ir/graph.js";
import { opTable } from "../ops/table.js";
import { applyAliases } from "../ir/rewrite.js";

const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));

export function canonicalize(g: Graph): Graph {
  const byId = nodeMap(g);
  const uses = new Map<number, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of g.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  let fresh = nextId(g);
  const alias = new Map<number, number>();
  const out: Node[] = [];
  const get = (id: number) => byId.get(alias.get(id) ?? id)!;
  const isConst = (id: number, v: number) => {
    const n = get(id);
    return n.op === "const" && n.attrs["value"] === v;
  };

  for (const orig of g.nodes) {
    const n: Node = { ...orig, inputs: orig.inputs.map((i) => alias.get(i) ?? i) };
    const [a, b] = n.inputs;
    let replacement: number | null = null;
    switch (n.op) {
      case "mul":
        if (isConst(b!, 1) && sameShape(get(a!).ty.shape, n.ty.shape)) replacement = a!;
        else if (isConst(a!, 1) && sameShape(get(b!).ty.shape, n.ty.shape)) replacement = b!;
        break;
      case "div":
        if (isConst(b!, 1) && sameShape(get(a!).ty.shape, n.ty.shape)) replacement = a!;
        break;
      case "add":
        if (isConst(b!, 0) && sameShape(get(a!).ty.shape, n.ty.shape)) replacement = a!;
        else if (isConst(a!, 0) && sameShape(get(b!).ty.shape, n.ty.shape)) replacement = b!;
        break;
      case "sub":
        if (isConst(b!, 0) && sameShape(get(a!).ty.shape, n.ty.shape)) replacement = a!;
        break;
      case "cast":
        if (get(a!).ty.dtype === n.ty.dtype) replacement = a!;
        break;
      case "reshape": {
        const src = get(a!);
        if (sameShape(src.ty.shape, n.ty.shape)) replacement = a!;
        else if (src.op === "reshape") n.inputs = [src.inputs[0]!];
        else if (opTable.get(src.op)?.kind === "elementwise" && src.inputs.length === 1 && uses.get(src.id) === 1) {
          const x = get(src.inputs[0]!);
          const view: Node = { ...n, id: fresh++, inputs: [x.id], ty: { shape: n.ty.shape, dtype: x.ty.dtype } };
          out.push(view);
          byId.set(view.id, view);
          n.op = src.op;
          n.attrs = src.attrs;
          n.inputs = [view.id];
        }
        break;
      }
      case "transpose": {
        const perm = n.attrs["perm"] as number[];
        const src = get(a!);
        if (perm.every((p, i) => p === i)) replacement = a!;
        else if (src.op === "transpose") {
          const inner = src.attrs["perm"] as number[];
          const composed = perm.map((p) => inner[p]!);
          if (composed.every((p, i) => p === i)) replacement = src.inputs[0]!;
          else {
            n.inputs = [src.inputs[0]!];
            n.attrs = { perm: composed };
          }
        }
        break;
      }
      case "slice": {
        const src = get(a!);
        const axis = n.attrs["axis"] as number;
        const ax = axis < 0 ? axis + src.ty.shape.length : axis;
        if (constValue(n.attrs["start"] as Dim) === 0 && dimEquals(n.attrs["end"] as Dim, src.ty.shape[ax]!)) replacement = a!;
        break;
      }
    }
    if (replacement !== null) {
      alias.set(n.id, replacement);
      continue;
    }
    out.push(n);
    byId.set(n.id, n);
  }
  return applyAliases({ ...g, nodes: out }, alias);
}

// Fusion: turn chains of small ops into kernels. Every decision is one of these rules:
//
//  linear      matmul(x, transpose(W)) with W a 2-D weight  →  linear(x, W)
//              (weights are stored [out, in]; the kernel reads them row by row, never transposed)
//  region      a maximal region of elementwise ops, grown from a root towards producers that are
//              used only inside it and broadcast to the root's shape  →  one `fused` kernel
//  row         a reduction over the last axis (keepdim) whose input has the root's shape joins the
//              region: RMSNorm and softmax become one kernel each
//  epilogue    a `linear` used only by a region (and no reduction in it) joins it as the accumulator:
//              bias, residual add, scaling, activation run in the matmul's epilogue
//  gate        two linears of one x with equal output sizes in one region share the kernel: the
//              SwiGLU/GeGLU gate and up projections are one dispatch with two accumulators
//
// Rank-0 constants are copied into every program that uses them.

import { broadcastShapes, getOp } from "../ops/table.js";
import type { ExprNode, ExprProgram } from "../ops/expr.js";
import { dimEquals, type Dim } from "../check/symbolic.js";
import { nodeMap, type Graph, type Node } from "../ir/graph.js";

const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));

function useCounts(g: Graph): Map<number, number> {
  const uses = new Map<number, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of g.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  return uses;
}

const IDENTITY: ExprProgram = { nodes: [{ kind: "input", index: 0 }], outputs: [0] };

/** Rule `linear`. */
export function fuseLinear(g: Graph): Graph {
  const byId = nodeMap(g);
  const nodes = g.nodes.map((n) => {
    if (n.op !== "matmul") return n;
    const t = byId.get(n.inputs[1]!)!;
    if (t.op !== "transpose") return n;
    const w = byId.get(t.inputs[0]!)!;
    const perm = t.attrs["perm"] as number[];
    if (w.op !== "weight" || w.ty.shape.length !== 2 || perm[0] !== 1 || perm[1] !== 0) return n;
    const x = byId.get(n.inputs[0]!)!;
    if (x.ty.shape.length < 2) return n;
    return { ...n, op: "linear", inputs: [n.inputs[0]!, w.id], attrs: { weights: 1, epilogue: IDENTITY } };
  });
  return { ...g, nodes };
}

function isConstScalar(n: Node): boolean {
  return n.op === "const" && n.ty.shape.length === 0;
}

function isRowReduction(n: Node, rootShape: readonly Dim[], byId: Map<number, Node>): boolean {
  if (n.op !== "sum" && n.op !== "mean" && n.op !== "amax") return false;
  const src = byId.get(n.inputs[0]!)!;
  const rank = src.ty.shape.length;
  const axis = n.attrs["axis"] as number;
  return n.attrs["keepdim"] === true && (axis === -1 || axis === rank - 1) && sameShape(src.ty.shape, rootShape);
}

function isPlainLinear(n: Node): boolean {
  if (n.op !== "linear" || n.attrs["weights"] !== 1) return false;
  const p = n.attrs["epilogue"] as ExprProgram;
  return p.nodes.length === 1 && p.nodes[0]!.kind === "input";
}

/** Rules `region`, `row`, `epilogue` and `gate`. */
export function fuseRegions(g: Graph): Graph {
  const byId = nodeMap(g);
  const uses = useCounts(g);
  const absorbed = new Set<number>();
  const replaced = new Map<number, Node>();

  for (let idx = g.nodes.length - 1; idx >= 0; idx--) {
    const root = g.nodes[idx]!;
    if (absorbed.has(root.id)) continue;
    const rootDef = root.op === "const" ? null : getOpSafe(root.op);
    if (!rootDef || rootDef.kind !== "elementwise") continue;
    const rootShape = root.ty.shape;

    // Phase 1: membership. Grow towards producers used only here that broadcast to the root.
    const members = new Set<number>([root.id]);
    const linears: Node[] = [];
    let hasReduce = false;
    const grow = (n: Node) => {
      for (const i of n.inputs) {
        const p = byId.get(i)!;
        if (members.has(p.id) || absorbed.has(p.id) || isConstScalar(p) || uses.get(p.id) !== 1) continue;
        const def = getOpSafe(p.op);
        const fitsShape = (() => {
          try {
            return sameShape(broadcastShapes(p.ty.shape, rootShape), rootShape);
          } catch {
            return false;
          }
        })();
        if (!fitsShape) continue;
        if (def?.kind === "elementwise") {
          members.add(p.id);
          grow(p);
        } else if (isRowReduction(p, rootShape, byId)) {
          members.add(p.id);
          hasReduce = true;
          grow(p);
        } else if (isPlainLinear(p) && sameShape(p.ty.shape, rootShape)) {
          linears.push(p);
        }
      }
    };
    grow(root);
    // Rule `epilogue` needs every accumulator element on its own: no reductions over the row.
    // Rule `gate`: accumulators share x and the output size.
    const accs = hasReduce ? [] : linears.filter((l) => l.inputs[0] === linears[0]!.inputs[0] && dimEquals(byId.get(l.inputs[1]!)!.ty.shape[0]!, byId.get(linears[0]!.inputs[1]!)!.ty.shape[0]!));
    if (members.size < 2 && accs.length === 0) continue;

    // Phase 2: the program, in topological order of the members.
    const accIndex = new Map(accs.map((a, i) => [a.id, i]));
    const leaves: number[] = [];
    const exprNodes: ExprNode[] = [];
    const slot = new Map<number, number>();
    const emit = (id: number): number => {
      const have = slot.get(id);
      if (have !== undefined) return have;
      const n = byId.get(id)!;
      let node: ExprNode;
      if (accIndex.has(id)) node = { kind: "input", index: accIndex.get(id)! };
      else if (isConstScalar(n)) node = { kind: "const", value: n.attrs["value"] as number, dtype: n.ty.dtype };
      else if (!members.has(id)) {
        let li = leaves.indexOf(id);
        if (li < 0) li = leaves.push(id) - 1;
        node = { kind: "input", index: accs.length + li };
      } else if (n.op === "sum" || n.op === "mean" || n.op === "amax") node = { kind: "reduce", op: n.op, arg: emit(n.inputs[0]!) };
      else {
        const args = n.inputs.map(emit);
        node = n.op === "cast" ? { kind: "op", op: "cast", args, dtype: n.ty.dtype } : { kind: "op", op: n.op, args };
      }
      exprNodes.push(node);
      slot.set(id, exprNodes.length - 1);
      return exprNodes.length - 1;
    };
    const out = emit(root.id);
    const program: ExprProgram = { nodes: exprNodes, outputs: [out] };
    // A region of constants only is the fold pass's business.
    if (leaves.length === 0 && accs.length === 0) continue;

    for (const m of members) if (m !== root.id) absorbed.add(m);
    for (const a of accs) absorbed.add(a.id);
    if (accs.length > 0) {
      const x = accs[0]!.inputs[0]!;
      replaced.set(root.id, {
        ...root,
        op: "linear",
        inputs: [x, ...accs.map((a) => a.inputs[1]!), ...leaves],
        attrs: { weights: accs.length, epilogue: program },
      });
    } else {
      replaced.set(root.id, { ...root, op: "fused", inputs: leaves, attrs: { program } });
    }
  }

  const nodes = g.nodes.filter((n) => !absorbed.has(n.id)).map((n) => replaced.get(n.id) ?? n);
  // A linear's x may be defined after the weights it now sits with; inputs all precede the root, since
  // the root came after every member. Keep the original order.
  return { ...g, nodes };
}

function getOpSafe(op: string) {
  try {
    return getOp(op);
  } catch {
    return null;
  }
}


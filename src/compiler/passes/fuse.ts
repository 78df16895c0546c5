// Fusion: turn chains of small ops into kernels. Every decision is one of these rules:
//
//  linear      matmul(x, transpose(W)) with W a 2-D weight  →  linear(x, W)
//              (weights are stored [out, in]; the kernel reads them row by row, never transposed)
//  region      a maximal region of elementwise ops, grown from a root towards producers whose
//              every use is inside it and that broadcast to the root's shape  →  one `fused` kernel
//  row         a reduction over the last axis (keepdim) whose input has the root's shape joins the
//              region: RMSNorm and softmax become one kernel each
//  epilogue    a `linear` used only by a region (and no reduction in it) joins it as the accumulator:
//              bias, residual add, scaling, activation run in the matmul's epilogue
//  gate        two linears of one x with equal output sizes in one region share the kernel: the
//              SwiGLU/GeGLU gate and up projections are one dispatch with two accumulators
//  rotary      rotary(reshape(L), cos, sin), L a linear used only there whose [.., M, H·D] output
//              the reshape splits into heads, and cos/sin cheap elementwise functions of small
//              tensors (`recompute`)  →  a `fused_linear` that rotates each adjacent pair of its
//              result in its epilogue, computing cos and sin itself (RoPE costs no kernel and the
//              per-step angle/cos/sin kernels disappear)
//  recompute   an elementwise value read by a rotation is recomputed where it is read, through
//              multi-use producers (`angle` feeds both cos and sin), from leaves that are not
//              elementwise (positions, folded inverse frequencies, weights), up to
//              MAX_RECOMPUTE program nodes
//  prologue    a row program (`fused` with reductions) whose users are all linears reading it as x,
//              and which factors as (row scale from reductions) × (elementwise function of its
//              inputs) — RMSNorm x·rsqrt(mean(x²)+ε)·g, Gemma's ·(1+g) — becomes each linear's
//              prologue: the kernel accumulates Σₖ W·e(x) and the reductions in one pass over x,
//              then scales by s before the epilogue (exact up to rounding: the product is linear)
//
// Rank-0 constants are copied into every program that uses them. Attention written out (scores,
// masks, softmax, values) became one `attention` node before these rules: passes/attention.ts.
//
// Four more rules are decided by the step plan (src/compiler/plan/), which knows the device's
// limits and where tensors live; their tests sit beside these (test/passes, test/webgpu/plan):
//  merge       independent linears with the same x (and prologue) run as one dispatch whose
//              workgroups map to segments, each with its own weights, epilogue and output: the
//              q, k and v projections of a layer — within the device's storage-buffer limit
//              (plan/merge.ts)
//  in-place    a kv_append whose rows are computed by a linear kernel used only there costs no
//              dispatch: the linear writes its rows straight into the cache at position P
//              (plan/build.ts)
//  gain        a prologue factor that reads only weight vectors along K (RMSNorm's g) is folded
//              into the weights at upload, W·diag(g), when every use of those weights agrees: the
//              kernel no longer loads g at each step of k (plan/fold.ts; targets opt in)
//  transposed-matmul  a matmul reads an operand transposed in its last two dims from the tensor
//              before the transpose, and a product read only through such a transpose is computed
//              transposed, (a·b)ᵀ = bᵀ·aᵀ: a linear's weight gradient, transpose(transpose(x) @ dy),
//              is one kernel instead of three (plan/build.ts; WGSL's CPU profile opts out: there the
//              copy costs less than the strided reads)
//
// With all of them a LLaMA decoder layer is 5 kernels per decode step: q·k·v (norm, RoPE, KV
// rows written in place), attention, o (+ residual), gate·up (norm), down (+ residual).

import { broadcastShapes, getOp } from "../ops/table.js";
import { factorRowScale, IDENTITY_PROGRAM, isIdentityProgram, type ExprNode, type ExprProgram } from "../ops/expr.js";
import { constValue, dimEquals, mulDim, type Dim } from "../base/symbolic.js";
import { nodeMap, type Graph, type Node } from "../ir/graph.js";

const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));

function useCounts(g: Graph): Map<number, number> {
  const uses = new Map<number, number>();
  for (const n of g.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of g.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  return uses;
}


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
    return { ...n, op: "linear", inputs: [n.inputs[0]!, w.id], attrs: { weights: 1, epilogue: IDENTITY_PROGRAM } };
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
  const outputs = new Set(g.outputs);
  const users = new Map<number, number[]>();
  for (const n of g.nodes) for (const i of new Set(n.inputs)) users.set(i, [...(users.get(i) ?? []), n.id]);
  const absorbed = new Set<number>();
  const replaced = new Map<number, Node>();

  for (let idx = g.nodes.length - 1; idx >= 0; idx--) {
    const root = g.nodes[idx]!;
    if (absorbed.has(root.id)) continue;
    const rootDef = root.op === "const" ? null : getOpSafe(root.op);
    if (!rootDef || rootDef.kind !== "elementwise") continue;
    const rootShape = root.ty.shape;

    // Phase 1: membership. Grow towards producers whose every use is inside the region and that
    // broadcast to the root, until nothing more joins (a value used twice joins once both of its
    // users have).
    const members = new Set<number>([root.id]);
    const linears = new Set<Node>();
    let hasReduce = false;
    const usedOnlyBy = (p: Node) => !outputs.has(p.id) && (users.get(p.id) ?? []).every((u) => members.has(u));
    for (let grown = true; grown; ) {
      grown = false;
      for (const m of [...members]) {
        for (const i of byId.get(m)!.inputs) {
          const p = byId.get(i)!;
          if (members.has(p.id) || absorbed.has(p.id) || isConstScalar(p) || !usedOnlyBy(p)) continue;
          const def = getOpSafe(p.op);
          const fitsShape = (() => {
            try {
              return sameShape(broadcastShapes(p.ty.shape, rootShape), rootShape);
            } catch {
              return false;
            }
          })();
          if (!fitsShape) continue;
          if (def?.kind === "elementwise" || isRowReduction(p, rootShape, byId)) {
            members.add(p.id);
            hasReduce ||= def?.kind !== "elementwise";
            grown = true;
          } else if (isPlainLinear(p) && sameShape(p.ty.shape, rootShape)) {
            linears.add(p);
          }
        }
      }
    }
    // Rule `epilogue` needs every accumulator element on its own: no reductions over the row.
    // Rule `gate`: accumulators share x and the output size.
    const first = [...linears][0];
    const accs = hasReduce || !first ? [] : [...linears].filter((l) => l.inputs[0] === first.inputs[0] && dimEquals(byId.get(l.inputs[1]!)!.ty.shape[0]!, byId.get(first.inputs[1]!)!.ty.shape[0]!));
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


// ------------------------------------------------------------------------------------------ fused_linear

/** The rotation program of a fused_linear that does not rotate: cos 1, sin 0. */
export const NO_ROTATION: ExprProgram = { nodes: [{ kind: "const", value: 1, dtype: "f32" }, { kind: "const", value: 0, dtype: "f32" }], outputs: [0, 1] };

/** A linear or fused_linear in fused_linear's terms. */
interface LinearParts {
  sources: number[];
  prologue: ExprProgram;
  weights: number[];
  epilogue: ExprProgram;
  extras: number[];
  headDim: number;
  rotation: ExprProgram;
  rotationInputs: number[];
}

function linearParts(n: Node): LinearParts | null {
  if (n.op === "linear") {
    const w = n.attrs["weights"] as number;
    return {
      sources: [n.inputs[0]!],
      prologue: IDENTITY_PROGRAM,
      weights: n.inputs.slice(1, 1 + w),
      epilogue: n.attrs["epilogue"] as ExprProgram,
      extras: n.inputs.slice(1 + w),
      headDim: 0,
      rotation: NO_ROTATION,
      rotationInputs: [],
    };
  }
  if (n.op === "fused_linear") {
    const p = n.attrs["x_inputs"] as number;
    const w = n.attrs["weights"] as number;
    const e = n.attrs["extras"] as number;
    return {
      sources: n.inputs.slice(0, p),
      prologue: n.attrs["prologue"] as ExprProgram,
      weights: n.inputs.slice(p, p + w),
      epilogue: n.attrs["epilogue"] as ExprProgram,
      extras: n.inputs.slice(p + w, p + w + e),
      headDim: n.attrs["head_dim"] as number,
      rotation: n.attrs["rotation"] as ExprProgram,
      rotationInputs: n.inputs.slice(p + w + e),
    };
  }
  return null;
}

function fusedLinearNode(base: Node, parts: LinearParts): Node {
  return {
    ...base,
    op: "fused_linear",
    inputs: [...parts.sources, ...parts.weights, ...parts.extras, ...parts.rotationInputs],
    attrs: {
      prologue: parts.prologue,
      x_inputs: parts.sources.length,
      weights: parts.weights.length,
      epilogue: parts.epilogue,
      extras: parts.extras.length,
      head_dim: parts.headDim,
      rotation: parts.rotation,
    },
  };
}

/** Program nodes a recomputed value may take (`recompute`): angle, cast, cos, sin and a scaling
 *  are a handful; a bound keeps a long chain from being evaluated per output element. */
export const MAX_RECOMPUTE = 24;

/**
 * Rule `recompute`: the value of `roots` as one program (an output per root) over leaves that are
 * not elementwise. Grows through elementwise ops and row-free `fused` nodes whatever their use
 * counts; every leaf must broadcast to `shape`. Null past MAX_RECOMPUTE nodes.
 */
export function recomputeProgram(roots: readonly number[], shape: readonly Dim[], byId: ReadonlyMap<number, Node>): { program: ExprProgram; leaves: number[] } | null {
  const nodes: ExprNode[] = [];
  const leaves: number[] = [];
  const memo = new Map<number, number>();
  const fits = (n: Node) => {
    try {
      const b = broadcastShapes(n.ty.shape, shape);
      return sameShape(b, shape);
    } catch {
      return false;
    }
  };
  const emit = (id: number): number | null => {
    const have = memo.get(id);
    if (have !== undefined) return have;
    const n = byId.get(id)!;
    let slot: number | null;
    if (isConstScalar(n)) slot = nodes.push({ kind: "const", value: n.attrs["value"] as number, dtype: n.ty.dtype }) - 1;
    else if (n.op === "fused" && !(n.attrs["program"] as ExprProgram).nodes.some((x) => x.kind === "reduce") && fits(n)) {
      const p = n.attrs["program"] as ExprProgram;
      const args: number[] = [];
      for (const i of n.inputs) {
        const a = emit(i);
        if (a === null) return null;
        args.push(a);
      }
      const local: number[] = [];
      for (const x of p.nodes) {
        if (x.kind === "input") local.push(args[x.index]!);
        else local.push(nodes.push(x.kind === "op" ? { ...x, args: x.args.map((a) => local[a]!) } : x) - 1);
      }
      slot = local[p.outputs[0]!]!;
    } else if (getOpSafe(n.op)?.kind === "elementwise" && fits(n)) {
      const args: number[] = [];
      for (const i of n.inputs) {
        const a = emit(i);
        if (a === null) return null;
        args.push(a);
      }
      slot = nodes.push(n.op === "cast" ? { kind: "op", op: "cast", args, dtype: n.ty.dtype } : { kind: "op", op: n.op, args }) - 1;
    } else {
      if (!fits(n)) return null;
      let li = leaves.indexOf(id);
      if (li < 0) li = leaves.push(id) - 1;
      slot = nodes.push({ kind: "input", index: li }) - 1;
    }
    if (nodes.length > MAX_RECOMPUTE) return null;
    memo.set(id, slot);
    return slot;
  };
  const outputs: number[] = [];
  for (const r of roots) {
    const o = emit(r);
    if (o === null) return null;
    outputs.push(o);
  }
  return { program: { nodes, outputs }, leaves };
}

/** Rule `rotary` (with `recompute` for its cos and sin). */
export function fuseRotary(g: Graph): Graph {
  const byId = nodeMap(g);
  const uses = useCounts(g);
  const removed = new Set<number>();
  const replaced = new Map<number, Node[]>();
  for (const n of g.nodes) {
    if (n.op !== "rotary") continue;
    const [xId, cosId, sinId] = n.inputs as [number, number, number];
    const view = byId.get(xId)!;
    if (view.op !== "reshape" || uses.get(view.id) !== 1) continue;
    const lin = byId.get(view.inputs[0]!)!;
    const parts = linearParts(lin);
    if (!parts || parts.headDim !== 0 || uses.get(lin.id) !== 1 || removed.has(lin.id)) continue;
    // The reshape splits the last dim N into [H, D] and keeps the rows: [M, N] → [M, H, D].
    const [m, h, d] = n.ty.shape as [Dim, Dim, Dim];
    const ls = lin.ty.shape;
    const headDim = constValue(d);
    if (ls.length !== 2 || !dimEquals(ls[0]!, m) || !dimEquals(ls[1]!, mulDim(h, d)) || headDim === null) continue;
    if (lin.ty.dtype !== "f32" && lin.ty.dtype !== "f16" && lin.ty.dtype !== "bf16") continue;
    const angles = byId.get(cosId)!.ty.shape;
    const rot = recomputeProgram([cosId, sinId], angles, byId);
    if (!rot) continue;
    removed.add(lin.id);
    removed.add(view.id);
    const fused = fusedLinearNode(lin, { ...parts, headDim, rotation: rot.program, rotationInputs: rot.leaves });
    // The fused node sits where the rotary was: the rotation's leaves may come after the linear.
    replaced.set(n.id, [fused, { ...n, op: "reshape", inputs: [lin.id], attrs: { ...view.attrs } }]);
  }
  if (replaced.size === 0) return g;
  return { ...g, nodes: g.nodes.filter((n) => !removed.has(n.id)).flatMap((n) => replaced.get(n.id) ?? [n]) };
}

/** Rule `prologue`. */
export function fusePrologue(g: Graph): Graph {
  const byId = nodeMap(g);
  const users = new Map<number, Node[]>();
  for (const n of g.nodes) for (const i of new Set(n.inputs)) users.set(i, [...(users.get(i) ?? []), n]);
  const outputs = new Set(g.outputs);
  const replaced = new Map<number, Node>();
  for (const norm of g.nodes) {
    if (norm.op !== "fused" || outputs.has(norm.id)) continue;
    const program = norm.attrs["program"] as ExprProgram;
    if (!program.nodes.some((x) => x.kind === "reduce")) continue;
    const sources = norm.inputs.map((i) => byId.get(i)!);
    if (norm.ty.dtype !== "f32" || sources.some((s) => s.ty.dtype !== "f32") || !factorRowScale(program)) continue;
    const us = users.get(norm.id) ?? [];
    if (us.length === 0) continue;
    const fits = us.every((u) => {
      const parts = linearParts(replaced.get(u.id) ?? u);
      return (
        parts !== null &&
        parts.sources.length === 1 &&
        parts.sources[0] === norm.id &&
        isIdentityProgram(parts.prologue) &&
        ![...parts.weights, ...parts.extras, ...parts.rotationInputs].includes(norm.id)
      );
    });
    if (!fits) continue;
    for (const u of us) {
      const cur = replaced.get(u.id) ?? u;
      replaced.set(u.id, fusedLinearNode(cur, { ...linearParts(cur)!, sources: [...norm.inputs], prologue: program }));
    }
  }
  if (replaced.size === 0) return g;
  return { ...g, nodes: g.nodes.map((n) => replaced.get(n.id) ?? n) };
}

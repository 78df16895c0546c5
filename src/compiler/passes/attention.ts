// Attention as a pattern: attention written out in .llm — scores, a score function, masks, softmax,
// values — becomes one `attention` node whose kernels never hold a [T, S] score tensor.
//
//  pattern     softmax(x) @ Vh, the softmax spelt exp(x − amax(x)) / sum(…) or without the max,
//              divided or times recip, over the last axis with keepdim
//  masks       x = where(c, y, f) with f ≤ −1e20 (or where(c, f, y)), peeled while they are the
//              outermost ops: c becomes a mask; k_pos ≤ q_pos becomes `causal`, k_pos > q_pos − n
//              becomes `window: n`, anything else the node's mask program
//  score       y is an elementwise region over Qh @ Khᵀ (the one matmul), scalar constants and
//              position tensors: it becomes the score program over (s, q_pos, k_pos, head); a
//              leading ·c or /c is the `scale`
//  positions   a leaf of the score or mask region that reads no input or weight is evaluated on
//              two probe sizes of T and P and must equal, broadcast to the scores, the query
//              position S − T + t, the key position j or the query head h (arange(S)[S−T:] as
//              [T, 1], arange(S) as [1, S], arange(heads) reshaped over the head axes)
//  heads       Qh, Khᵀ and Vh are chains of reshapes, transposes and slices of q [T, Hq, D] and
//              k/v [S, Hkv, D], and the matmuls' batch axes [.., h] broadcast so that query head h
//              reads kv head h / (Hq / Hkv) — checked by running the chains on index tensors at the
//              probe sizes, so any spelling of GQA (reshape + broadcast, transposes) is accepted
//  output      the softmax·V product (through a chain of layout ops used only there) is replaced
//              by the attention's [T, Hq, D] result, or a view of it that the chain's end equals
//
// Every score-shaped value of the pattern must be used only inside it (a training graph's backward
// reads them, so it is never rewritten; training fuses the forward graph before differentiating it,
// and only matches without programs: see fuse-attention-plain). Anything
// that does not match stays as written and runs unfused, correct but with [T, S] scores.

import { constValue, dimEquals, evalDim, type Dim } from "../base/symbolic.js";
import { concreteAttrs } from "../ir/concrete.js";
import { nextId, nodeMap, type Graph, type Node } from "../ir/graph.js";
import { evalProgramRow, programTypes, renumberInputs, subProgram, type ExprNode, type ExprProgram } from "../ops/expr.js";
import { reference, sizeOf, stridesOf, tensor, type HostTensor } from "../ops/reference.js";
import { ATTENTION_SCORE_INPUTS, getOp, opTable, type DType } from "../ops/table.js";
import { dce } from "./dce.js";

/** Two step sizes to check the pattern's index maps on: equal maps at both are taken as equal. */
const PROBES: ReadonlyMap<string, number>[] = [new Map([["T", 3], ["P", 2]]), new Map([["T", 2], ["P", 5]])];

/** A fill at or below this hides a key as surely as −∞ does (exp underflows to 0). */
const MASK_FILL = -1e20;

/** Program inputs of the score region (the mask's are these less one: ATTENTION_MASK_INPUTS). */
const [S_IN, QPOS_IN, KPOS_IN, HEAD_IN] = (["s", "q_pos", "k_pos", "head"] as const).map((name) => ATTENTION_SCORE_INPUTS.indexOf(name)) as [number, number, number, number];

class NoMatch extends Error {}
const no = (why: string): never => { throw new NoMatch(why); };

export interface FuseAttentionOptions {
  /** Whether a match may need score or mask programs (default true). Training graphs take only
   *  the plain ones (causal, window, scale): the attention gradient kernels have no programs. */
  programs?: boolean;
}

export function fuseAttention(g: Graph, opts: FuseAttentionOptions = {}): Graph {
  let cur = g;
  // A product that did not match stays unmatched after other rewrites: each is tried once.
  const tried = new Set<number>();
  for (;;) {
    const byId = nodeMap(cur);
    const users = usersOf(cur);
    let rewritten: Graph | null = null;
    for (const n of cur.nodes) {
      if (n.op !== "matmul" || tried.has(n.id)) continue;
      tried.add(n.id);
      try {
        rewritten = rewrite(cur, byId, users, n, opts.programs ?? true);
        break;
      } catch (e) {
        if (!(e instanceof NoMatch)) throw e;
      }
    }
    if (!rewritten) break;
    cur = rewritten;
  }
  return cur === g ? g : dce(cur);
}

function usersOf(g: Graph): Map<number, number[]> {
  const users = new Map<number, number[]>();
  for (const n of g.nodes) for (const i of new Set(n.inputs)) users.set(i, [...(users.get(i) ?? []), n.id]);
  for (const o of g.outputs) users.set(o, [...(users.get(o) ?? []), -1]);
  return users;
}

const isScalarConst = (n: Node) => n.op === "const" && n.ty.shape.length === 0;
const isLastAxis = (n: Node, rank: number) => n.attrs["keepdim"] === true && ((n.attrs["axis"] as number) === -1 || (n.attrs["axis"] as number) === rank - 1);
const LAYOUT = new Set(["reshape", "transpose", "slice"]);

/** Matches softmax(x) at `pm`; returns x and the softmax's own nodes. */
function matchSoftmax(byId: Map<number, Node>, pm: Node): { x: Node; nodes: Node[] } {
  const rank = pm.ty.shape.length;
  let e: Node, total: Node;
  const inner: Node[] = [pm];
  if (pm.op === "div") {
    [e, total] = [byId.get(pm.inputs[0]!)!, byId.get(pm.inputs[1]!)!];
  } else if (pm.op === "mul") {
    const [a, b] = [byId.get(pm.inputs[0]!)!, byId.get(pm.inputs[1]!)!];
    const r = b.op === "recip" ? b : a.op === "recip" ? a : no("not a softmax");
    e = r === b ? a : b;
    total = byId.get(r.inputs[0]!)!;
    inner.push(r);
  } else return no("not a softmax");
  if (total.op !== "sum" || total.inputs[0] !== e.id || !isLastAxis(total, rank) || e.op !== "exp") no("not a softmax");
  inner.push(total, e);
  let x = byId.get(e.inputs[0]!)!;
  if (x.op === "sub") {
    const [y, mx] = [byId.get(x.inputs[0]!)!, byId.get(x.inputs[1]!)!];
    if (mx.op === "amax" && mx.inputs[0] === y.id && isLastAxis(mx, rank)) {
      inner.push(x, mx);
      x = y;
    }
  }
  if (!sameShape(x.ty.shape, pm.ty.shape)) no("softmax over a broadcast");
  return { x, nodes: inner };
}

const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));

// ------------------------------------------------------------------------------------------ probes

/** Evaluates node `id` at one probe size, with `leaf` giving values for some nodes; inputs,
 *  weights and state have no value here. */
function evaluate(g: Graph, byId: Map<number, Node>, id: number, env: ReadonlyMap<string, number>, leaf: (n: Node) => HostTensor | null = () => null): HostTensor {
  const memo = new Map<number, HostTensor>();
  const go = (nid: number): HostTensor => {
    const hit = memo.get(nid);
    if (hit) return hit;
    const n = byId.get(nid)!;
    const shape = n.ty.shape.map((d) => evalDim(d, env));
    let out = leaf(n);
    if (!out) {
      if (n.op === "literal") out = { shape, dtype: n.ty.dtype, data: g.literals.get(n.id)! };
      else if (!opTable.has(n.op) || getOp(n.op).kind === "state" || n.op === "attention") return no(`${n.op} is not a position`);
      else out = reference[n.op]!(n.inputs.map(go), concreteAttrs(n.op, n.attrs, env));
    }
    memo.set(nid, out);
    return out;
  };
  return go(id);
}

const iota = (shape: number[]): HostTensor => tensor(shape, "f32", Float32Array.from({ length: sizeOf(shape) }, (_, i) => i));

/** `t`'s values broadcast to `shape` (NumPy rules), as plain numbers. */
function broadcastValues(t: HostTensor, shape: readonly number[]): Float64Array {
  const lead = shape.length - t.shape.length;
  if (lead < 0) no("does not broadcast");
  const src = stridesOf(t.shape);
  const strides = shape.map((d, i) => {
    if (i < lead) return 0;
    const di = t.shape[i - lead]!;
    return di === d ? src[i - lead]! : di === 1 ? 0 : no("does not broadcast");
  });
  const out = new Float64Array(sizeOf(shape));
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let off = 0;
    for (let a = 0; a < shape.length; a++) off += idx[a]! * strides[a]!;
    out[i] = t.data[off]!;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** Values of `shape` from a function of the multi-index. */
function tabulate(shape: readonly number[], f: (idx: readonly number[]) => number): Float64Array {
  const out = new Float64Array(sizeOf(shape));
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    out[i] = f(idx);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

const equal = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (x: number, i: number) => x === b[i]);

/** The layout chain below `top` (reshapes, transposes, slices), nearest first, then its base. */
function layoutChain(byId: Map<number, Node>, top: Node): Node[] {
  const chain = [top];
  for (let n = top; LAYOUT.has(n.op); ) chain.push((n = byId.get(n.inputs[0]!)!));
  return chain;
}

// ------------------------------------------------------------------------------------------ rewrite

function rewrite(g: Graph, byId: Map<number, Node>, users: Map<number, number[]>, pv: Node, programs: boolean): Graph {
  const rank = pv.ty.shape.length;
  if (rank < 3) no("one head");
  const pm = byId.get(pv.inputs[0]!)!;
  const vh = byId.get(pv.inputs[1]!)!;
  const soft = matchSoftmax(byId, pm);
  const internal = new Set<number>([pv.id, ...soft.nodes.map((n) => n.id)]);

  // Masks: the outermost where(c, y, −∞)s.
  const masks: Node[] = [];
  const negated = new Set<Node>();
  let x = soft.x;
  for (;;) {
    if (x.op !== "where") break;
    const [c, a, b] = x.inputs.map((i) => byId.get(i)!) as [Node, Node, Node];
    const fill = (f: Node) => isScalarConst(f) && (f.attrs["value"] as number) <= MASK_FILL;
    let next: Node;
    if (fill(b) && sameShape(a.ty.shape, x.ty.shape)) next = a;
    else if (fill(a) && sameShape(b.ty.shape, x.ty.shape)) { next = b; negated.add(c); }
    else break;
    masks.push(c);
    internal.add(x.id);
    x = next;
  }

  // The score region: find Qh @ Khᵀ and the nodes that depend on it.
  const dependsOnScores = new Map<number, boolean>();
  let qk: Node | null = null;
  const depends = (n: Node): boolean => {
    const hit = dependsOnScores.get(n.id);
    if (hit !== undefined) return hit;
    let r = false;
    if (n.op === "matmul") {
      if (qk && qk.id !== n.id) no("two score matmuls");
      if (!sameShape(n.ty.shape, x.ty.shape)) no("scores of another shape");
      qk = n;
      r = true;
    } else if (opTable.has(n.op) && getOp(n.op).kind === "elementwise") {
      r = n.inputs.map((i) => depends(byId.get(i)!)).some(Boolean);
    }
    dependsOnScores.set(n.id, r);
    if (r) internal.add(n.id);
    return r;
  };
  if (!depends(x)) no("no scores");
  for (const c of masks) if (depends(c)) no("a mask that reads the scores");
  const scores = qk as unknown as Node;
  if (scores.ty.dtype !== "f32") no("not f32");
  // Every score-shaped value must be ours alone.
  for (const id of internal) {
    if (id !== pv.id && (users.get(id) ?? []).some((u) => !internal.has(u))) no("a score-shaped value is used elsewhere");
  }

  // Heads: the sources of q, k and v and their layouts.
  const qh = byId.get(scores.inputs[0]!)!;
  const kt = byId.get(scores.inputs[1]!)!;
  const probeShape = (n: Node, env: ReadonlyMap<string, number>) => n.ty.shape.map((d) => evalDim(d, env));
  const qSrc = findSource(g, byId, qh, (src, env, value) => {
    const [t, hq, d] = probeShape(src, env) as [number, number, number];
    const shape = probeShape(qh, env);
    const batch = probeShape(scores, env).slice(0, -2);
    if (sizeOf(batch) !== hq || shape[shape.length - 2] !== t || shape[shape.length - 1] !== d) return false;
    return equal(broadcastValues(value, [...batch, t, d]), tabulate([...batch, t, d], (ix) => (ix[batch.length]! * hq + flat(ix, batch)) * d + ix[batch.length + 1]!));
  }) ?? no("queries are not [T, heads, D] in head order");
  const hqDim = qSrc.ty.shape[1]!;
  const hq = constValue(hqDim) ?? no("symbolic heads");
  const kvCheck = (operand: Node, transposed: boolean) => (src: Node, env: ReadonlyMap<string, number>, value: HostTensor) => {
    const [s, hkv, d] = probeShape(src, env) as [number, number, number];
    const batch = probeShape(scores, env).slice(0, -2);
    if (hkv === 0 || hq % hkv !== 0) return false;
    const group = hq / hkv;
    const shape = transposed ? [...batch, d, s] : [...batch, s, d];
    const expect = tabulate(shape, (ix) => {
      const h = flat(ix, batch);
      const [j, e] = transposed ? [ix[batch.length + 1]!, ix[batch.length]!] : [ix[batch.length]!, ix[batch.length + 1]!];
      return (j * hkv + Math.floor(h / group)) * d + e;
    });
    const got = probeShape(operand, env);
    if (got.length < 2 || got[got.length - 2] !== shape[shape.length - 2] || got[got.length - 1] !== shape[shape.length - 1]) return false;
    return equal(broadcastValues(value, shape), expect);
  };
  const kSrc = findSource(g, byId, kt, kvCheck(kt, true)) ?? no("keys are not [S, kv heads, D] read by query head h / group");
  const vSrc = findSource(g, byId, vh, kvCheck(vh, false)) ?? no("values are not [S, kv heads, D] read by query head h / group");
  if (!sameShape(kSrc.ty.shape, vSrc.ty.shape) || [qSrc, kSrc, vSrc].some((n) => n.ty.dtype !== "f32")) no("k and v differ");
  // At each probe: the scores' batch shape (its flattened index is the query head) and lengths.
  const batches = PROBES.map((env) => probeShape(scores, env).slice(0, -2));
  const lens = PROBES.map((env) => ({ t: evalDim(qSrc.ty.shape[0]!, env), s: evalDim(kSrc.ty.shape[0]!, env) }));
  PROBES.forEach((env, i) => {
    const shape = probeShape(scores, env);
    if (shape[shape.length - 2] !== lens[i]!.t || shape[shape.length - 1] !== lens[i]!.s) no("scores are not [.., T, S]");
  });

  // Programs: the score region, then each mask.
  const positionOf = (leaf: Node): number | null => {
    const candidates: [number, (ix: readonly number[], b: number[], t: number, s: number) => number][] = [
      [QPOS_IN, (ix, b, t, s) => s - t + ix[b.length]!],
      [KPOS_IN, (ix, b) => ix[b.length + 1]!],
      [HEAD_IN, (ix, b) => flat(ix, b)],
    ];
    const values = PROBES.map((env) => evaluate(g, byId, leaf.id, env));
    for (const [input, f] of candidates) {
      const ok = PROBES.every((env, i) => {
        const b = batches[i]!;
        const { t, s } = lens[i]!;
        const shape = [...b, t, s];
        let got: Float64Array;
        try { got = broadcastValues(values[i]!, shape); } catch { return false; }
        return equal(got, tabulate(shape, (ix) => f(ix, b, t, s)));
      });
      if (ok) return input;
    }
    return null;
  };
  // A layout op over an elementwise function of same-shaped values (ALiBi's slopes of
  // arange(heads), reshaped over the head axes) is that function of the values laid out so: the
  // layout moves onto its operands, as nodes of our own with negative ids.
  let virtualId = -2;
  const pushLayout = (n: Node): Node | null => {
    if (!LAYOUT.has(n.op)) return null;
    const inner = byId.get(n.inputs[0]!)!;
    if (isScalarConst(inner)) return inner;
    if (!opTable.has(inner.op) || getOp(inner.op).kind !== "elementwise") return null;
    const args = inner.inputs.map((i) => byId.get(i)!);
    if (!args.every((a) => isScalarConst(a) || sameShape(a.ty.shape, inner.ty.shape))) return null;
    const moved = args.map((a) => {
      if (isScalarConst(a)) return a;
      const v: Node = { ...n, id: virtualId--, inputs: [a.id], ty: { shape: n.ty.shape, dtype: a.ty.dtype } };
      byId.set(v.id, v);
      return v;
    });
    const v: Node = { ...inner, id: virtualId--, inputs: moved.map((a) => a.id), ty: { shape: n.ty.shape, dtype: inner.ty.dtype } };
    byId.set(v.id, v);
    return v;
  };
  const build = (root: Node): ExprProgram => {
    const nodes: ExprNode[] = [];
    const slot = new Map<number, number>();
    const inputs = new Map<number, number>();
    const input = (i: number) => inputs.get(i) ?? (inputs.set(i, nodes.push({ kind: "input", index: i }) - 1), inputs.get(i)!);
    const go = (n: Node): number => {
      const hit = slot.get(n.id);
      if (hit !== undefined) return hit;
      let s: number;
      if (n.id === scores.id) s = input(S_IN);
      else if (isScalarConst(n)) s = nodes.push({ kind: "const", value: n.attrs["value"] as number, dtype: n.ty.dtype }) - 1;
      else if (opTable.has(n.op) && getOp(n.op).kind === "elementwise") {
        const args = n.inputs.map((i) => go(byId.get(i)!));
        s = nodes.push(n.op === "cast" ? { kind: "op", op: n.op, args, dtype: n.attrs["dtype"] as DType } : { kind: "op", op: n.op, args }) - 1;
      } else {
        const position = positionOf(n);
        if (position !== null) {
          s = input(position);
          if (n.ty.dtype !== "f32") s = nodes.push({ kind: "op", op: "cast", args: [s], dtype: n.ty.dtype }) - 1;
        } else s = go(pushLayout(n) ?? no("a leaf that is not a position or head"));
      }
      slot.set(n.id, s);
      return s;
    };
    return foldConstants({ nodes, outputs: [go(root)] });
  };
  let causal = false;
  let window = 0;
  const maskPrograms: ExprProgram[] = [];
  for (const c of masks) {
    let p = build(c);
    if (negated.has(c)) p = { nodes: [...p.nodes, { kind: "op", op: "not", args: [p.outputs[0]!] }], outputs: [p.nodes.length] };
    const known = knownMask(p);
    if (known === "causal") causal = true;
    else if (typeof known === "number") window = window === 0 ? known : Math.min(window, known);
    else maskPrograms.push(renumberInputs(p, (i) => i - 1));
  }
  const { score, scale } = extractScale(build(x));

  // The output: follow pv's single-use layout chain to a node that is the attention (or a view).
  const attnShape: Dim[] = [qSrc.ty.shape[0]!, hqDim, vSrc.ty.shape[2]!];
  let target: Node | null = null;
  for (let n = pv; ; ) {
    const isAttention = PROBES.every((env) => {
      const value = evaluate(g, byId, n.id, env, (m) => (m.id === pv.id ? iota(probeShape(pv, env)) : null));
      const [t, dv] = [evalDim(attnShape[0]!, env), evalDim(attnShape[2]!, env)];
      return equal(value.data, tabulate([t, hq, dv], ([tt, h, e]) => (h! * t + tt!) * dv + e!));
    });
    if (isAttention) { target = n; break; }
    const us = users.get(n.id) ?? [];
    const next = us.length === 1 && us[0]! >= 0 ? byId.get(us[0]!)! : null;
    if (!next || !LAYOUT.has(next.op)) break;
    n = next;
  }

  if (!programs && (score || maskPrograms.length)) no("needs a score or mask program");
  const attrs: Node["attrs"] = { causal, window, scale };
  if (score) attrs["score"] = score;
  if (maskPrograms.length) attrs["mask"] = conjunction(maskPrograms);
  let fresh = nextId(g);
  const layer = pv.layer !== undefined ? { layer: pv.layer } : {};
  const attn: Node = { id: fresh++, op: "attention", inputs: [qSrc.id, kSrc.id, vSrc.id], attrs, ty: { shape: attnShape, dtype: "f32" }, ...layer };
  const made: Node[] = [];
  let replacement: Node;
  if (target && sameShape(target.ty.shape, attnShape)) {
    replacement = { ...attn, id: target.id };
  } else if (target) {
    // A view of the attention: [T, Hq·D], or [Hq, 1, D] when T is 1.
    made.push(attn);
    replacement = { id: target.id, op: "reshape", inputs: [attn.id], attrs: { shape: target.ty.shape }, ty: target.ty, ...layer };
  } else {
    // Nothing downstream is the attention: rebuild pv's [..batch, T, D] from it.
    const batch = pv.ty.shape.slice(0, -2);
    const splitShape = [attnShape[0]!, ...batch, attnShape[2]!];
    const split: Node = { id: fresh++, op: "reshape", inputs: [attn.id], attrs: { shape: splitShape }, ty: { shape: splitShape, dtype: "f32" }, ...layer };
    made.push(attn, split);
    replacement = { id: pv.id, op: "transpose", inputs: [split.id], attrs: { perm: [...batch.map((_, i) => i + 1), 0, batch.length + 1] }, ty: pv.ty, ...layer };
  }
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (n.id === replacement.id) nodes.push(...made, replacement);
    else nodes.push(n);
  }
  return { ...g, nodes };
}

/** The flattened index of the leading `batch.length` axes of `ix`. */
function flat(ix: readonly number[], batch: readonly number[]): number {
  let h = 0;
  for (let a = 0; a < batch.length; a++) h = h * batch[a]! + ix[a]!;
  return h;
}

/** The node of `top`'s layout chain (nearest the base first) that `check` accepts as the [len,
 *  heads, D] source, given `top`'s value when that node holds 0, 1, 2, … */
function findSource(g: Graph, byId: Map<number, Node>, top: Node, check: (src: Node, env: ReadonlyMap<string, number>, value: HostTensor) => boolean): Node | null {
  const chain = layoutChain(byId, top).reverse();
  for (const src of chain) {
    if (src.ty.shape.length !== 3) continue;
    const ok = PROBES.every((env) => {
      const value = evaluate(g, byId, top.id, env, (m) => (m.id === src.id ? iota(m.ty.shape.map((d) => evalDim(d, env))) : null));
      try {
        return check(src, env, value);
      } catch (e) {
        if (e instanceof NoMatch) return false;
        throw e;
      }
    });
    if (ok) return src;
  }
  return null;
}

/** The program with every op over constants alone (`D ** -0.5` of a shape name) made a constant,
 *  so a scale reads as one. */
function foldConstants(p: ExprProgram): ExprProgram {
  const nodes = p.nodes.map((n) => n);
  nodes.forEach((n, i) => {
    if (n.kind !== "op" || !n.args.every((a) => nodes[a]!.kind === "const")) return;
    const sub: ExprProgram = { nodes: [...n.args.map((a) => nodes[a]!), { ...n, args: n.args.map((_, j) => j) }], outputs: [n.args.length] };
    const types = programTypes(sub, []);
    const [value] = evalProgramRow(sub, 1, () => new Float64Array(1), types);
    nodes[i] = { kind: "const", value: value![0]!, dtype: types[n.args.length]! };
  });
  return subProgram({ nodes, outputs: p.outputs }, p.outputs);
}

/** `causal` for k_pos ≤ q_pos (or q_pos ≥ k_pos), a window n for k_pos > q_pos − n (or
 *  q_pos − n < k_pos), else null. Over the score inputs' numbering. */
function knownMask(p: ExprProgram): "causal" | number | null {
  const out = p.nodes[p.outputs[0]!]!;
  if (out.kind !== "op" || out.args.length !== 2) return null;
  const at = (i: number) => p.nodes[i]!;
  const isInput = (i: number, k: number) => { const n = at(i); return n.kind === "input" && n.index === k; };
  const [a, b] = out.args as [number, number];
  const [key, query] = out.op === "le" || out.op === "gt" ? [a, b] : out.op === "ge" || out.op === "lt" ? [b, a] : [-1, -1];
  if (key < 0 || !isInput(key, KPOS_IN)) return null;
  if ((out.op === "le" || out.op === "ge") && isInput(query, QPOS_IN)) return "causal";
  if (out.op === "gt" || out.op === "lt") {
    const q = at(query);
    if (q.kind !== "op" || q.op !== "sub" || !isInput(q.args[0]!, QPOS_IN)) return null;
    const c = at(q.args[1]!);
    if (c.kind === "const" && Number.isInteger(c.value) && c.value > 0) return c.value;
  }
  return null;
}

/** A score program s·c (or s/c) with s read only there: the scale c and the rest (null: none). */
function extractScale(p: ExprProgram): { score: ExprProgram | null; scale: number } {
  const isS = (i: number) => { const n = p.nodes[i]!; return n.kind === "input" && n.index === S_IN; };
  const sUses = p.nodes.flatMap((n, i) => (n.kind === "op" && n.args.some(isS) ? [i] : []));
  let scale = 1;
  let nodes = p.nodes;
  if (sUses.length === 1) {
    const u = p.nodes[sUses[0]!]!;
    if (u.kind === "op" && u.args.length === 2 && (u.op === "mul" || u.op === "div")) {
      const [a, b] = u.args as [number, number];
      const other = isS(a) ? b : isS(b) && u.op === "mul" ? a : -1;
      const c = other >= 0 ? p.nodes[other]! : null;
      if (c && c.kind === "const" && c.dtype === "f32" && c.value !== 0 && Number.isFinite(c.value)) {
        scale = u.op === "mul" ? c.value : 1 / c.value;
        const s = isS(a) ? a : b;
        // The product becomes s itself: a node that reads it reads s.
        nodes = p.nodes.map((n) => (n.kind === "op" ? { ...n, args: n.args.map((x) => (x === sUses[0] ? s : x)) } : n));
        const out = p.outputs[0] === sUses[0] ? s : p.outputs[0]!;
        if (nodes[out]!.kind === "input") return { score: null, scale };
        return { score: subProgram({ nodes, outputs: [out] }, [out]), scale };
      }
    }
  }
  const out = p.nodes[p.outputs[0]!]!;
  return { score: out.kind === "input" ? null : p, scale };
}

function conjunction(ps: ExprProgram[]): ExprProgram {
  const nodes: ExprNode[] = [];
  let acc = -1;
  for (const p of ps) {
    const base = nodes.length;
    for (const n of p.nodes) nodes.push(n.kind === "op" ? { ...n, args: n.args.map((a) => a + base) } : n);
    const o = p.outputs[0]! + base;
    acc = acc < 0 ? o : nodes.push({ kind: "op", op: "and", args: [acc, o] }) - 1;
  }
  return { nodes, outputs: [acc] };
}

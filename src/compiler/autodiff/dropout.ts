// Dropout in the training graph. A model declares `dropout(x, p)` (an op of the table that is the
// identity anywhere but here); the training graph replaces each one by x·mask, the mask an input of
// the step (`dropout.<k>`, x's shape) whose elements are 0 or 1/(1−p). Differentiation then sees a
// product, so dx = dy·mask. The mask comes from a counter-based hash of (seed, serial, site, element
// index): the same bits on every backend, since the runtimes upload the masks this file computes, and
// the same on resume, since the serial is the data sampler's draw number.

import { nextId, type Graph, type Node } from "../ir/graph.js";
import { evalDim, type Dim } from "../base/symbolic.js";

/** One dropout of the training graph: its mask input, probability and shape (symbolic in T). */
export interface DropoutSite {
  input: string;
  p: number;
  shape: Dim[];
}

/** Which draw of random bits a sequence gets: the run's seed and the sequence's serial number. */
export interface DropoutKey {
  seed: number;
  serial: number;
}

/** The graph with each dropout node turned into x·mask (a new input just before it). */
export function withDropoutMasks(g: Graph): { graph: Graph; sites: DropoutSite[] } {
  let fresh = nextId(g);
  const sites: DropoutSite[] = [];
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (n.op !== "dropout") {
      nodes.push(n);
      continue;
    }
    const site: DropoutSite = { input: `dropout.${sites.length}`, p: n.attrs["p"] as number, shape: n.ty.shape };
    sites.push(site);
    const mask: Node = { id: fresh++, op: "input", inputs: [], attrs: { name: site.input }, ty: n.ty };
    nodes.push(mask, { ...n, op: "mul", inputs: [n.inputs[0]!, mask.id], attrs: {} });
  }
  return { graph: { ...g, nodes }, sites };
}

/** murmur3's 32-bit finaliser: a bijection that mixes every input bit into every output bit. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The mask of one site for one sequence of T tokens: element i is kept (1/(1−p)) when
 * mix32(base + i·φ) ≥ p·2³², base a hash of (seed, serial, site); no key (validation) keeps every
 * element with scale 1, which is the model without dropout.
 */
export function dropoutMask(site: DropoutSite, siteIndex: number, T: number, key: DropoutKey | undefined): Float32Array {
  const count = site.shape.reduce((a, d) => a * evalDim(d, new Map([["T", T], ["P", 0]])), 1);
  const mask = new Float32Array(count);
  if (!key || site.p === 0) return mask.fill(1);
  const base = mix32(mix32(mix32(key.seed >>> 0) ^ (key.serial >>> 0)) ^ siteIndex);
  const threshold = Math.floor(site.p * 2 ** 32);
  const scale = 1 / (1 - site.p);
  // A Weyl sequence of counters (as splitmix's), each mixed.
  for (let i = 0; i < count; i++) mask[i] = mix32((base + Math.imul(i, 0x9e3779b9)) >>> 0) >= threshold ? scale : 0;
  return mask;
}

/** Every mask input of a training graph for one sequence. */
export function dropoutInputs(sites: readonly DropoutSite[], T: number, key: DropoutKey | undefined): Map<string, Float32Array> {
  return new Map(sites.map((s, i) => [s.input, dropoutMask(s, i, T, key)]));
}

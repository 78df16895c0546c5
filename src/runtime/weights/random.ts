// Deterministic random weights for tests, demos and `llmc init-weights`: each tensor is drawn from
// its own stream (seeded by the seed and the tensor's name), so a tensor's values do not depend on
// which other tensors exist or the order they are made in.

/** 32-bit FNV-1a, to turn a tensor name into a stream seed. */
function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The uniform [0, 1) stream of one tensor, from the seed and the tensor's name. */
export function tensorStream(name: string, seed: number): () => number {
  return rng((hashName(name) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
}

/** mulberry32: small, fast, good enough for initialisation. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller). */
export function normal(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export interface RandomInit {
  seed: number;
  /** Scale of 1-D tensors' deviation from 1 (norm gains); biases get the same spread around 1. */
  vectorSpread?: number;
}

/**
 * A tensor of the given shape: matrices N(0, 1/fan_in) with fan_in the last dim (activations keep
 * their scale through a matmul); vectors 1 + spread·N(0, 1) (so RMSNorm gains stay near 1).
 */
export function randomTensor(name: string, shape: readonly number[], init: RandomInit): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const gauss = normal(tensorStream(name, init.seed));
  if (shape.length === 1) {
    const spread = init.vectorSpread ?? 0.1;
    for (let i = 0; i < n; i++) out[i] = 1 + spread * gauss();
  } else {
    const std = 1 / Math.sqrt(shape[shape.length - 1]!);
    for (let i = 0; i < n; i++) out[i] = std * gauss();
  }
  return out;
}

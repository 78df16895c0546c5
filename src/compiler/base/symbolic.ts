// Symbolic dimensions: integer polynomials over shape symbols (`T` tokens this step, `P` past length,
// function shape variables). Config values are known numbers by the time shapes are checked, so
// `n_heads * head_dim` is a constant and `P + T` is a polynomial. Normal form makes equality structural.

export type Dim = ReadonlyMap<string, number>; // monomial key ("" = constant, "P", "T*T") → coefficient

const CONST = "";

export function constDim(n: number): Dim {
  return n === 0 ? new Map() : new Map([[CONST, n]]);
}

export function symDim(name: string): Dim {
  return new Map([[name, 1]]);
}

function mono(a: string, b: string): string {
  if (a === CONST) return b;
  if (b === CONST) return a;
  return [...a.split("*"), ...b.split("*")].sort().join("*");
}

function put(m: Map<string, number>, key: string, coeff: number): void {
  const v = (m.get(key) ?? 0) + coeff;
  if (v === 0) m.delete(key);
  else m.set(key, v);
}

export function addDim(a: Dim, b: Dim): Dim {
  const m = new Map(a);
  for (const [k, c] of b) put(m, k, c);
  return m;
}

export function scaleDim(a: Dim, s: number): Dim {
  const m = new Map<string, number>();
  for (const [k, c] of a) put(m, k, c * s);
  return m;
}

export function subDim(a: Dim, b: Dim): Dim {
  return addDim(a, scaleDim(b, -1));
}

export function mulDim(a: Dim, b: Dim): Dim {
  const m = new Map<string, number>();
  for (const [ka, ca] of a) for (const [kb, cb] of b) put(m, mono(ka, kb), ca * cb);
  return m;
}

/** Exact division by a constant; null when some coefficient is not divisible. */
export function divDimExact(a: Dim, d: number): Dim | null {
  if (d === 0) return null;
  const m = new Map<string, number>();
  for (const [k, c] of a) {
    if (c % d !== 0) return null;
    put(m, k, c / d);
  }
  return m;
}

export function constValue(a: Dim): number | null {
  if (a.size === 0) return 0;
  if (a.size === 1 && a.has(CONST)) return a.get(CONST)!;
  return null;
}

export function dimEquals(a: Dim, b: Dim): boolean {
  if (a.size !== b.size) return false;
  for (const [k, c] of a) if (b.get(k) !== c) return false;
  return true;
}

export function dimSymbols(a: Dim): string[] {
  const s = new Set<string>();
  for (const k of a.keys()) if (k !== CONST) for (const v of k.split("*")) s.add(v);
  return [...s].sort();
}

/** Substitutes symbols by dims (e.g. T → 1 when specialising for decode). */
export function substDim(a: Dim, env: ReadonlyMap<string, Dim>): Dim {
  let out: Dim = new Map();
  for (const [k, c] of a) {
    let term: Dim = constDim(c);
    if (k !== CONST) for (const v of k.split("*")) term = mulDim(term, env.get(v) ?? symDim(v));
    out = addDim(out, term);
  }
  return out;
}

export function evalDim(a: Dim, env: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [k, c] of a) {
    let term = c;
    if (k !== CONST) for (const v of k.split("*")) {
      const x = env.get(v);
      if (x === undefined) throw new Error(`dimension symbol ${v} has no value`);
      term *= x;
    }
    total += term;
  }
  return total;
}

/** `P + T`, `4096`, `2*T`, `T*T + 1`: symbols sorted, highest degree first, constant last. */
export function formatDim(a: Dim): string {
  if (a.size === 0) return "0";
  const terms = [...a.entries()].sort(([ka], [kb]) => {
    const da = ka === CONST ? 0 : ka.split("*").length;
    const db = kb === CONST ? 0 : kb.split("*").length;
    return db - da || (ka < kb ? -1 : ka > kb ? 1 : 0);
  });
  let s = "";
  for (const [k, c] of terms) {
    const body = k === CONST ? String(Math.abs(c)) : Math.abs(c) === 1 ? k : `${Math.abs(c)}*${k}`;
    s += s === "" ? (c < 0 ? `-${body}` : body) : c < 0 ? ` - ${body}` : ` + ${body}`;
  }
  return s;
}

export function formatShape(dims: readonly Dim[]): string {
  return `[${dims.map(formatDim).join(", ")}]`;
}

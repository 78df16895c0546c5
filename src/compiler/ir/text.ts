// The IR's stable text form (`llmc compile --emit ir`), and its parser. One node per line:
//
//   %5 = mean %4 {axis = -1, keepdim = true} : [T, 1] f32
//
// Attributes are printed sorted by name and typed by the op table's schema, so the text round-trips.

import { opTable, type AttrKind, type AttrValue, type Attrs, type DType } from "../ops/table.js";
import { formatProgram, parseProgram, type ExprProgram } from "../ops/expr.js";
import { addDim, constDim, formatDim, mulDim, scaleDim, symDim, type Dim } from "../base/symbolic.js";
import type { Graph, LiteralData, Node, StateSpec } from "./graph.js";

const LEAF_ATTRS: Record<string, Record<string, AttrKind>> = {
  input: { name: "str" },
  weight: { name: "str" },
  literal: {},
};

export function attrSchema(op: string): Record<string, AttrKind> | undefined {
  return LEAF_ATTRS[op] ?? opTable.get(op)?.attrs;
}

function formatAttr(kind: AttrKind, v: AttrValue): string {
  switch (kind) {
    case "dim": return formatDim(v as Dim);
    case "dims": return `[${(v as Dim[]).map(formatDim).join(", ")}]`;
    case "ints": return `[${(v as number[]).join(", ")}]`;
    case "str": return JSON.stringify(v);
    case "program": return JSON.stringify(formatProgram(v as ExprProgram));
    default: return String(v);
  }
}

function formatLiteral(d: LiteralData): string {
  return `[${Array.from(d, (x) => String(x)).join(", ")}]`;
}

export function formatType(ty: Node["ty"]): string {
  return `[${ty.shape.map(formatDim).join(", ")}] ${ty.dtype}`;
}

export function printNode(n: Node, literals?: ReadonlyMap<number, LiteralData>): string {
  const schema = attrSchema(n.op) ?? {};
  const attrs = Object.keys(n.attrs)
    .sort()
    .map((k) => `${k} = ${formatAttr(schema[k] ?? "str", n.attrs[k]!)}`);
  const lit = n.op === "literal" ? literals?.get(n.id) : undefined;
  if (lit) attrs.push(`data = ${formatLiteral(lit)}`);
  const ins = n.inputs.map((i) => `%${i}`).join(", ");
  return `%${n.id} = ${n.op}${ins ? " " + ins : ""}${attrs.length ? ` {${attrs.join(", ")}}` : ""} : ${formatType(n.ty)}`;
}

export function printGraph(g: Graph): string {
  const lines = [`graph ${g.name} {`];
  for (const s of g.states.values()) lines.push(`  state ${s.name}: KVCache[${s.layers}, ${s.maxSeqLen}, ${s.heads}, ${s.headDim}]`);
  for (const n of g.nodes) lines.push("  " + printNode(n, g.literals));
  lines.push(`  return ${g.outputs.map((o) => `%${o}`).join(", ")}`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

// ------------------------------------------------------------------------------------------------ parsing

export class IrParseError extends Error {
  constructor(readonly line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

/** Parses a dim polynomial such as `P + T`, `2*T - 1`, `4096`. */
export function parseDim(text: string): Dim {
  const src = text.replace(/\s+/g, "");
  if (src === "") throw new Error("empty dimension");
  let out: Dim = constDim(0);
  const re = /([+-]?)([^+-]+)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(src))) {
    consumed += m[0].length;
    let term: Dim = constDim(1);
    for (const f of m[2]!.split("*")) {
      if (/^\d+$/.test(f)) term = mulDim(term, constDim(Number(f)));
      else if (/^[A-Za-z_]\w*$/.test(f)) term = mulDim(term, symDim(f));
      else throw new Error(`bad dimension factor '${f}'`);
    }
    out = addDim(out, m[1] === "-" ? scaleDim(term, -1) : term);
  }
  if (consumed !== src.length) throw new Error(`bad dimension '${text}'`);
  return out;
}

/** Splits on commas that are not inside brackets or strings. */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inStr = false;
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (inStr) {
      cur += c;
      if (c === "\\") cur += s[++i] ?? "";
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === "[" || c === "{") depth++;
    else if (c === "]" || c === "}") depth--;
    if (c === "," && depth === 0) {
      parts.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  if (cur.trim() !== "") parts.push(cur.trim());
  return parts;
}

function parseAttr(kind: AttrKind, text: string): AttrValue {
  const list = () => {
    if (!/^\[.*\]$/.test(text)) throw new Error(`expected a list, got '${text}'`);
    return splitTop(text.slice(1, -1));
  };
  switch (kind) {
    case "int": case "float": {
      const v = Number(text);
      if (!Number.isFinite(v) && !/^-?Infinity$/.test(text)) throw new Error(`expected a number, got '${text}'`);
      return v;
    }
    case "bool":
      if (text !== "true" && text !== "false") throw new Error(`expected true or false, got '${text}'`);
      return text === "true";
    case "str": case "dtype":
      if (kind === "dtype") return text as DType;
      return JSON.parse(text) as string;
    case "dim": return parseDim(text);
    case "program": return parseProgram(JSON.parse(text) as string);
    case "dims": return list().map(parseDim);
    case "ints": return list().map(Number);
  }
}

const NODE_RE = /^%(\d+)\s*=\s*([a-z_][a-z0-9_]*)\s*((?:%\d+\s*,?\s*)*)(\{.*\})?\s*:\s*\[(.*)\]\s+([a-z0-9]+)$/;

export function parseGraph(text: string): Graph {
  const lines = text.split("\n");
  let name = "";
  const nodes: Node[] = [];
  const literals = new Map<number, LiteralData>();
  const states = new Map<string, StateSpec>();
  let outputs: number[] | null = null;
  const ids = new Set<number>();
  lines.forEach((raw, i) => {
    const ln = i + 1;
    const line = raw.trim();
    if (line === "" || line.startsWith("//") || line === "}") return;
    let m = /^graph\s+([A-Za-z_]\w*)\s*\{$/.exec(line);
    if (m) return void (name = m[1]!);
    m = /^state\s+([A-Za-z_]\w*)\s*:\s*KVCache\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]$/.exec(line);
    if (m) {
      states.set(m[1]!, { name: m[1]!, layers: +m[2]!, maxSeqLen: +m[3]!, heads: +m[4]!, headDim: +m[5]! });
      return;
    }
    m = /^return\s+(.*)$/.exec(line);
    if (m) {
      outputs = m[1]!.split(",").map((s) => {
        const mm = /^%(\d+)$/.exec(s.trim());
        if (!mm) throw new IrParseError(ln, `bad return value '${s.trim()}'`);
        return Number(mm[1]);
      });
      return;
    }
    m = NODE_RE.exec(line);
    if (!m) throw new IrParseError(ln, `cannot parse '${line.length > 80 ? line.slice(0, 80) + "…" : line}'`);
    const id = Number(m[1]);
    if (ids.has(id)) throw new IrParseError(ln, `%${id} is defined twice`);
    ids.add(id);
    const op = m[2]!;
    const schema = attrSchema(op);
    if (!schema) throw new IrParseError(ln, `unknown op '${op}'`);
    const inputs = (m[3] ?? "").split(",").map((s) => s.trim()).filter(Boolean).map((s) => Number(s.slice(1)));
    const attrs: Attrs = {};
    if (m[4]) {
      for (const part of splitTop(m[4].slice(1, -1))) {
        const eq = part.indexOf("=");
        if (eq < 0) throw new IrParseError(ln, `bad attribute '${part}'`);
        const key = part.slice(0, eq).trim();
        const val = part.slice(eq + 1).trim();
        try {
          if (op === "literal" && key === "data") {
            const vals = splitTop(val.slice(1, -1)).map(Number);
            literals.set(id, m[6] === "i32" ? Int32Array.from(vals) : Float32Array.from(vals));
            continue;
          }
          const kind = schema[key];
          if (!kind) throw new Error(`op '${op}' has no attribute '${key}'`);
          attrs[key] = parseAttr(kind, val);
        } catch (e) {
          throw new IrParseError(ln, (e as Error).message);
        }
      }
    }
    let shape: Dim[];
    try {
      shape = m[5]!.trim() === "" ? [] : splitTop(m[5]!).map(parseDim);
    } catch (e) {
      throw new IrParseError(ln, (e as Error).message);
    }
    nodes.push({ id, op, inputs, attrs, ty: { shape, dtype: m[6] as DType } });
  });
  if (!outputs) throw new IrParseError(lines.length, "the graph has no 'return'");
  return { name, nodes, outputs, literals, states };
}

// Hover: what a name is, as the source declares it and as the checker evaluated it — a local's shape
// and dtype, a config value's type and resolved value, a weight's shape, a function's signature and
// the comment above it.

import type { Hover } from "vscode-languageserver";
import type * as A from "../compiler/parse/ast.js";
import { builtins } from "../compiler/check/builtins.js";
import { formatScalar } from "../compiler/check/scalar.js";
import { displayPath } from "../compiler/check/sources.js";
import type { ConfigType, WeightField, WeightGroupInfo } from "../compiler/check/model.js";
import { formatExpr, formatType, quote } from "../compiler/fmt/format.js";
import type { Analysis } from "./analysis.js";
import { rangeOf } from "./locate.js";
import type { Found, Target } from "./resolve.js";
import { placeKey } from "./shapes.js";

/** The types recorded at a place by every open analysis: model name → types. */
export type ShapesAt = (key: string) => Map<string, Set<string>>;

const fence = (code: string) => "```llm\n" + code + "\n```";

/** At most this many distinct types per model are listed (a loop index takes one value per layer). */
const MAX_TYPES = 4;

export function hover(an: Analysis, found: Found, shapesAt: ShapesAt): Hover | null {
  let text = describeTarget(an, found.target, found.at, shapesAt);
  // What the checker computed at this use (a weight or config value inside a function), unless shown already.
  const checked = found.target.kind === "local" ? null : shapeLines(shapesAt(placeKey(found.at)));
  if (text && checked) text += `\n\nchecked here:\n${checked}`;
  return text ? { contents: { kind: "markdown", value: text }, range: rangeOf(found.at) } : null;
}

function describeTarget(an: Analysis, t: Target, at: A.Span, shapesAt: ShapesAt): string | null {
  switch (t.kind) {
    case "import":
      return t.file ? `${fence(`import ${quote(t.imp.path)}`)}\n${displayPath(t.file)}` : `cannot find "${t.imp.path}"`;
    case "fn":
      return [fence(signature(t.decl)), docComment(an, t.decl), t.model ? `function of model \`${t.model.name.name}\`` : `in ${t.decl.span.file}`]
        .filter(Boolean)
        .join("\n\n");
    case "builtin":
      return builtinDoc(t.name);
    case "scalarFn":
      return `${fence(`${t.name}(…)`)}\nscalar function (config expressions and compile-time scalars)`;
    case "transform":
      return `${fence(`|> ${t.name}(…)`)}\n${t.doc}`;
    case "config":
      return configDoc(an, t.decl, t.model);
    case "weight":
      return weightDoc(an, t.decl, t.group, t.model);
    case "state": {
      const st = an.resolvedModel(t.model.name.name)?.state.get(t.decl.name.name);
      const dims = st ? `\n\nin model \`${t.model.name.name}\`: KVCache[${st.layers}, ${st.maxSeqLen}, ${st.heads}, ${st.headDim}]` : "";
      return `${fence(`state ${t.decl.name.name}: ${formatType(t.decl.type)}`)}${dims}\n\n\`kv[l].append(k, v)\` appends this step's keys and values to layer l and returns the whole cache so far.`;
    }
    case "model": {
      const m = t.decl;
      const names = m.formatNames.map((f) => `${f.format} ${f.names.map(quote).join(" | ")}`).join(" ");
      return [fence(`model ${m.name.name}${m.extends ? ` extends ${m.extends.name}` : ""}${names ? ` ${names}` : ""}`), docComment(an, m), `in ${m.span.file}`]
        .filter(Boolean)
        .join("\n\n");
    }
    case "local": {
      const written = t.param ? `: ${formatType(t.param.type)}` : "";
      const head = fence(`(${t.role}) ${t.def.name}${written}`);
      const checked = shapeLines(shapesAt(placeKey(at)), shapesAt(placeKey(t.def.span)));
      if (checked) return `${head}\n${checked}`;
      if (t.role === "loop index") return `${head}\nan int, one value per iteration (loops are unrolled)`;
      if (t.role === "layer" && t.loop?.iterable.kind === "Name") return `${head}\none layer of the weight group \`${t.loop.iterable.name}\` per iteration`;
      return `${head}\nno checked type here: shapes are checked for models whose config values are all bound (open a file that binds them, e.g. one \`llmc import\` writes, to see them here)`;
    }
    case "stepDim":
      return `${fence(`${t.name}: dim`)}\n${t.name === "T" ? "the number of tokens in this step" : "the number of positions cached before this step"}`;
  }
}

function shapeLines(...places: Map<string, Set<string>>[]): string | null {
  const place = places.find((p) => p.size > 0);
  if (!place) return null;
  const lines: string[] = [];
  for (const [model, types] of place) {
    const list = [...types];
    const shown = list.slice(0, MAX_TYPES).map((s) => `\`${s}\``).join(", ");
    lines.push(`- in \`${model}\`: ${shown}${list.length > MAX_TYPES ? `, … (${list.length} in all)` : ""}`);
  }
  return lines.join("\n");
}

export function signature(fn: A.FnDecl): string {
  const params = fn.params.map((p) => `${p.name.name}: ${formatType(p.type)}${p.default ? ` = ${formatExpr(p.default)}` : ""}`);
  return `fn ${fn.name.name}(${params.join(", ")})${fn.ret ? ` -> ${formatType(fn.ret)}` : ""}`;
}

/** The comment lines directly above a declaration, without their markers. */
export function docComment(an: Analysis, decl: { span: A.Span }): string {
  const mod = an.result.program.modules.get(decl.span.file);
  if (!mod) return "";
  const byEndLine = new Map(mod.comments.map((c) => [c.span.end.line, c]));
  const lines: string[] = [];
  let line = decl.span.start.line - 1;
  for (let c = byEndLine.get(line); c && c.span.start.column === firstColumn(an, c); c = byEndLine.get(line)) {
    lines.unshift(stripComment(c.text));
    line = c.span.start.line - 1;
  }
  return lines.join("\n");
}

/** A comment is a doc comment only when it stands on its own line (not after code). */
function firstColumn(an: Analysis, c: A.Comment): number {
  const src = an.result.program.sources.get(c.span.file) ?? "";
  const lineStart = c.span.start.offset - (c.span.start.column - 1);
  const indent = /^[ \t]*/.exec(src.slice(lineStart, c.span.start.offset))![0].length;
  return indent + 1;
}

function stripComment(text: string): string {
  if (text.startsWith("//")) return text.slice(2).trim();
  return text
    .replace(/^\/\*+|\*+\/$/g, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\*?\s?/, ""))
    .join("\n")
    .trim();
}

function builtinDoc(name: string): string {
  if (name === "T") return `${fence("x.T")}\nswap the last two dims: [..., M, N] → [..., N, M] (built-in)`;
  if (name === "append") return `${fence("kv[l].append(k, v) -> (k_all, v_all)")}\nappend this step's keys and values ([T, n_kv_heads, head_dim]) to layer l of the KV cache; returns the whole cache so far, each [P + T, n_kv_heads, head_dim] (built-in)`;
  if (name === "KVCache") return `${fence("KVCache[n_layers, max_seq_len, n_kv_heads, head_dim]")}\nthe key/value cache that persists between steps (built-in)`;
  const b = builtins[name]!;
  const params = b.params.map((p) => (p.default !== undefined ? `${p.name} = ${p.default}` : p.name));
  return `${fence(`${name}(${params.join(", ")})`)}\n${b.doc} (built-in)`;
}

function formatConfigType(t: ConfigType): string {
  return typeof t === "object" ? t.enum.map(quote).join(" | ") : t;
}

function configDoc(an: Analysis, decl: A.ConfigParam, model: A.ModelDecl): string {
  const entry = an.resolvedModel(model.name.name)?.config.get(decl.name.name);
  const type = decl.type ? formatType(decl.type) : entry ? formatConfigType(entry.type) : "?";
  const parts = [fence(`${decl.name.name}: ${type}${decl.value ? ` = ${formatExpr(decl.value)}` : ""}`)];
  if (entry) {
    const how = entry.setBy === "default" ? `declared in \`${entry.declaredIn}\`` : `${entry.setBy === "override" ? "overridden" : `set by ${entry.setBy}`}; declared in \`${entry.declaredIn}\``;
    const unbound = an.resolvedModel(model.name.name)?.unbound ?? [];
    const value = entry.value
      ? `**${formatScalar(entry.value)}**`
      : !entry.expr
        ? "no value: required (bind it with --set or in a model that extends this one)"
        : unbound.length > 0
          ? `known once ${unbound.join(", ")} ${unbound.length === 1 ? "is" : "are"} bound`
          : "not evaluated (see the errors)";
    const expr = entry.expr && entry.expr !== decl.value ? ` = ${formatExpr(entry.expr)}` : "";
    parts.push(`config of model \`${model.name.name}\`${expr}: ${value} (${how})`);
    const keys = Object.values(entry.keys).map((k) => `${k.format} ${k.sources.map((s) => (s.tensor ? "tensor " : "") + quote(s.pattern)).join(" | ")}`);
    if (keys.length > 0) parts.push(`read from ${keys.map((k) => `\`${k}\``).join(", ")}`);
  }
  const doc = docComment(an, decl);
  if (doc) parts.push(doc);
  return parts.join("\n\n");
}

function weightDoc(an: Analysis, decl: A.WeightDecl | A.WeightGroup, group: A.WeightGroup | null, model: A.ModelDecl): string {
  const resolved = an.resolvedModel(model.name.name);
  if (decl.kind === "WeightGroup") {
    const info = resolved?.weights.get(decl.name.name) as WeightGroupInfo | undefined;
    const count = info && "count" in info ? `\n\nin model \`${model.name.name}\`: ${info.count} layers of ${info.fields.size} weights` : "";
    return `${fence(`${decl.name.name}[${formatExpr(decl.count)}] { ${decl.items.map((i) => i.name.name).join(", ")} }`)}${count}`;
  }
  const prefix = group ? `${group.name.name}[${formatExpr(group.count)}].` : "";
  const parts = [fence(`${prefix}${decl.name.name}: [${decl.shape.map(formatExpr).join(", ")}]`)];
  const groupInfo = group ? (resolved?.weights.get(group.name.name) as WeightGroupInfo | undefined) : undefined;
  const field = (group ? groupInfo?.fields?.get(decl.name.name) : (resolved?.weights.get(decl.name.name) as WeightField | undefined)) ?? null;
  if (field && "shape" in field) {
    parts.push(`in model \`${model.name.name}\`: \`[${field.shape.join(", ")}] f32\`${field.tiedTo ? ` (tied to \`${field.tiedTo}\`)` : ""}`);
  } else if (resolved?.absentWeights.has(group ? `${group.name.name}.${decl.name.name}` : decl.name.name)) {
    parts.push(`absent from model \`${model.name.name}\` for its config`);
  }
  const names = [decl.gguf && `gguf ${quote(decl.gguf.pattern)}`, decl.hf && `hf ${quote(decl.hf.pattern)}`].filter(Boolean);
  if (names.length > 0) parts.push(names.map((n) => `\`${n}\``).join("  "));
  const doc = docComment(an, decl);
  if (doc) parts.push(doc);
  return parts.join("\n\n");
}

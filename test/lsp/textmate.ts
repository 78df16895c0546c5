// A small TextMate tokenizer for testing editors/vscode/syntaxes/llm.tmLanguage.json without
// vscode-textmate (not installed here): `match` rules with captures, `begin`/`end` rules with their
// captures and nested patterns, `include` of `#name` and `$self`, one line at a time with the open
// begin rules carried across lines. Regexes run as JavaScript regexes, so the grammar keeps to the
// syntax Oniguruma and JavaScript share. Returns the scopes of every character of the text.

interface Rule {
  name?: string;
  contentName?: string;
  match?: string;
  begin?: string;
  end?: string;
  captures?: Record<string, { name: string }>;
  beginCaptures?: Record<string, { name: string }>;
  endCaptures?: Record<string, { name: string }>;
  patterns?: Rule[];
  include?: string;
}

export interface Grammar extends Rule {
  scopeName: string;
  repository: Record<string, Rule>;
}

const regexCache = new Map<string, RegExp>();
const regex = (src: string) => {
  let r = regexCache.get(src);
  if (!r) regexCache.set(src, (r = new RegExp(src, "dg")));
  return r;
};

/** The match and capture rules a pattern list stands for, includes expanded. */
function expand(g: Grammar, rules: Rule[], seen = new Set<Rule>()): Rule[] {
  const out: Rule[] = [];
  for (const r of rules) {
    if (r.include) {
      const target = r.include === "$self" ? g : g.repository[r.include.slice(1)];
      if (!target) throw new Error(`grammar includes unknown ${r.include}`);
      if (seen.has(target)) continue;
      out.push(...(target.match || target.begin ? [target] : expand(g, target.patterns ?? [], new Set([...seen, target]))));
    } else out.push(r);
  }
  return out;
}

export function tokenize(g: Grammar, text: string): string[][] {
  const scopes: string[][] = Array.from({ length: text.length }, () => []);
  const stack: { rule: Rule; scopes: string[] }[] = [];
  const mark = (from: number, to: number, names: string[]) => {
    for (let i = from; i < to; i++) scopes[i]!.push(...names);
  };
  const captures = (lineStart: number, m: RegExpExecArray, caps: Rule["captures"]) => {
    for (const [k, c] of Object.entries(caps ?? {})) {
      const at = m.indices![Number(k)];
      if (at) mark(lineStart + at[0], lineStart + at[1], [c.name]);
    }
  };
  let lineStart = 0;
  for (const line of text.split("\n")) {
    let pos = 0;
    for (;;) {
      const top = stack[stack.length - 1];
      const base = top ? top.scopes : [];
      // The end pattern of the open rule wins a tie with its inner patterns, as in TextMate.
      let best: { m: RegExpExecArray; rule: Rule | null } | null = null;
      if (top) {
        const r = regex(top.rule.end!);
        r.lastIndex = pos;
        const m = r.exec(line);
        if (m) best = { m, rule: null };
      }
      for (const rule of expand(g, top ? (top.rule.patterns ?? []) : (g.patterns ?? []))) {
        const r = regex(rule.match ?? rule.begin!);
        r.lastIndex = pos;
        const m = r.exec(line);
        if (m && (!best || m.index < best.m.index)) best = { m, rule };
      }
      if (!best || (best.m[0].length === 0 && best.rule !== null)) {
        mark(lineStart + pos, lineStart + line.length, base);
        break;
      }
      const { m, rule } = best;
      mark(lineStart + pos, lineStart + m.index, base);
      const from = lineStart + m.index;
      const to = from + m[0].length;
      if (rule === null) {
        mark(from, to, base);
        captures(lineStart, m, top!.rule.endCaptures);
        stack.pop();
      } else if (rule.match !== undefined) {
        mark(from, to, rule.name ? [...base, rule.name] : base);
        captures(lineStart, m, rule.captures);
      } else {
        const inner = rule.name ? [...base, rule.name] : base;
        mark(from, to, inner);
        captures(lineStart, m, rule.beginCaptures);
        stack.push({ rule, scopes: inner });
      }
      pos = m.index + m[0].length;
      if (pos >= line.length && m[0].length === 0) break;
    }
    lineStart += line.length + 1;
  }
  return scopes;
}

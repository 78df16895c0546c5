// The weights each bundled architecture declares are complete: for every fixture config, the
// parameter count of the weights (shapes evaluated with the imported config, `when` and ties
// honoured, extends merged) equals the published count. The walker here is deliberately independent
// of the checker: plain arithmetic over the AST.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseModule, type Expr, type ModelDecl, type WeightItem } from "../../src/compiler/parse/index.js";
import { importHfConfig } from "../../src/compiler/import/hf-config.js";
import type { ConfigBinding } from "../../src/compiler/import/write-llm.js";

const modelsDir = fileURLToPath(new URL("../../models/", import.meta.url));
const configsDir = fileURLToPath(new URL("../fixtures/configs/", import.meta.url));
const expected = JSON.parse(readFileSync(join(configsDir, "expected-params.json"), "utf8")) as Record<string, number>;

type Value = { num: number; isInt: boolean } | string | boolean;

/** The model in models/<file> and the models it extends, base first. */
function loadChain(file: string): ModelDecl[] {
  const { module, diagnostics } = parseModule(file, readFileSync(join(modelsDir, file), "utf8"));
  expect(diagnostics).toEqual([]);
  const model = module.items.find((i): i is ModelDecl => i.kind === "Model");
  if (!model) throw new Error(`${file} declares no model`);
  if (!model.extends) return [model];
  const base = module.imports.map((i) => i.path).find((p) => p === `${model.extends!.name}.llm`);
  if (!base) throw new Error(`${file}: cannot find the file of ${model.extends.name}`);
  return [...loadChain(base), model];
}

/** Config values: declarations and overrides along the chain, then the imported bindings. */
function evaluateConfig(chain: ModelDecl[], bindings: ConfigBinding[]): (name: string) => Value {
  const exprs = new Map<string, Expr>();
  const types = new Map<string, string>();
  for (const m of chain) {
    for (const member of m.members) {
      if (member.kind !== "Config") continue;
      for (const item of member.items) {
        if (item.kind !== "ConfigParam") continue;
        if (item.type) types.set(item.name.name, item.type.kind === "ScalarType" ? item.type.name : "enum");
        if (item.value) exprs.set(item.name.name, item.value);
      }
    }
  }
  const bound = new Map<string, Value>();
  for (const b of bindings) {
    expect(types.has(b.name), `binding ${b.name} names a declared parameter`).toBe(true);
    const v = b.value;
    bound.set(b.name, v.type === "int" || v.type === "f32" ? { num: v.value, isInt: v.type === "int" } : v.value);
  }
  const memo = new Map<string, Value>();
  const lookup = (name: string): Value => {
    const known = bound.get(name) ?? memo.get(name);
    if (known !== undefined) return known;
    const e = exprs.get(name);
    if (!e) throw new Error(`config value ${name} is unbound`);
    let v = evaluate(e, lookup);
    if (typeof v === "object" && types.get(name) === "f32") v = { num: v.num, isInt: false };
    memo.set(name, v);
    return v;
  };
  return lookup;
}

function evaluate(e: Expr, lookup: (name: string) => Value): Value {
  const num = (x: Expr) => {
    const v = evaluate(x, lookup);
    if (typeof v !== "object") throw new Error(`expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  switch (e.kind) {
    case "Number":
      return { num: e.value, isInt: e.isInt };
    case "String":
    case "Bool":
      return e.value;
    case "Name":
      return lookup(e.name);
    case "Unary":
      return e.op === "-" ? { num: -num(e.operand).num, isInt: num(e.operand).isInt } : !evaluate(e.operand, lookup);
    case "Conditional":
      return evaluate(e.cond, lookup) ? evaluate(e.then, lookup) : evaluate(e.else, lookup);
    case "Binary": {
      if (e.op === "&&") return Boolean(evaluate(e.left, lookup)) && Boolean(evaluate(e.right, lookup));
      if (e.op === "||") return Boolean(evaluate(e.left, lookup)) || Boolean(evaluate(e.right, lookup));
      const l = evaluate(e.left, lookup);
      const r = evaluate(e.right, lookup);
      const lv = typeof l === "object" ? l.num : l;
      const rv = typeof r === "object" ? r.num : r;
      if (e.op === "==") return lv === rv;
      if (e.op === "!=") return lv !== rv;
      if (typeof l !== "object" || typeof r !== "object") throw new Error(`operator ${e.op} needs numbers`);
      const isInt = l.isInt && r.isInt;
      switch (e.op) {
        case "+": return { num: l.num + r.num, isInt };
        case "-": return { num: l.num - r.num, isInt };
        case "*": return { num: l.num * r.num, isInt };
        case "/": return { num: isInt ? Math.trunc(l.num / r.num) : l.num / r.num, isInt };
        case "%": return { num: l.num % r.num, isInt };
        case "**": return { num: l.num ** r.num, isInt };
        case "<": return l.num < r.num;
        case "<=": return l.num <= r.num;
        case ">": return l.num > r.num;
        case ">=": return l.num >= r.num;
        default: throw new Error(`operator ${e.op} in a config expression`);
      }
    }
    default:
      throw new Error(`${e.kind} in a config expression`);
  }
}

/** A derived model's weights replace those of the same name; groups of the same name merge item by item. */
function mergeWeights(base: WeightItem[], derived: WeightItem[]): WeightItem[] {
  const out = [...base];
  for (const item of derived) {
    const i = out.findIndex((w) => w.name.name === item.name.name);
    if (item.kind === "WeightDrop") {
      if (i >= 0) out.splice(i, 1);
    } else if (i < 0) out.push(item);
    else if (item.kind === "WeightGroup" && out[i]!.kind === "WeightGroup") {
      out[i] = { ...item, items: mergeWeights((out[i] as typeof item).items, item.items) };
    } else out[i] = item;
  }
  return out;
}

function countParams(items: WeightItem[], lookup: (name: string) => Value): number {
  const int = (e: Expr) => {
    const v = evaluate(e, lookup);
    if (typeof v !== "object" || !v.isInt || v.num <= 0) throw new Error(`dim ${JSON.stringify(v)} is not a positive integer`);
    return v.num;
  };
  let total = 0;
  for (const item of items) {
    if (item.kind === "WeightGroup") {
      total += int(item.count) * countParams(item.items, lookup);
      continue;
    }
    if (item.kind === "WeightDrop") continue;
    if (item.when && !evaluate(item.when, lookup)) continue;
    if (item.tie && (item.tie.cond === null || evaluate(item.tie.cond, lookup))) continue; // counted once, as its target
    total += item.shape.map(int).reduce((a, b) => a * b, 1);
  }
  return total;
}

function parameterCount(fixture: string): number {
  const imported = importHfConfig(JSON.parse(readFileSync(join(configsDir, `${fixture}.json`), "utf8")), fixture);
  const chain = loadChain(`${imported.arch}.llm`);
  const weights = chain.reduce<WeightItem[]>(
    (acc, m) => m.members.filter((x) => x.kind === "Weights").reduce((a, w) => mergeWeights(a, w.items), acc),
    [],
  );
  return countParams(weights, evaluateConfig(chain, imported.bindings));
}

describe("parameter counts of the bundled architectures", () => {
  it("covers every fixture config", () => {
    const fixtures = readdirSync(configsDir).filter((f) => f.endsWith(".json") && f !== "expected-params.json").map((f) => f.slice(0, -5));
    expect(Object.keys(expected).sort()).toEqual(fixtures.sort());
  });

  it.each(Object.entries(expected))("%s has %d parameters", (fixture, count) => {
    expect(parameterCount(fixture)).toBe(count);
  });
});

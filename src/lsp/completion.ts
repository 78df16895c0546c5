// Completion: after `w.` the weights of w's layer group (or, for method-call sugar, functions);
// elsewhere the names in scope (locals of the enclosing function, the enclosing model's config,
// weights, state and functions), the program's functions, the standard library's (with the import
// added when it is missing), built-ins, keywords and type names.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CompletionItemKind, type CompletionItem, type TextEdit } from "vscode-languageserver";
import type * as A from "../compiler/parse/ast.js";
import { parseModule } from "../compiler/parse/index.js";
import { builtins } from "../compiler/check/builtins.js";
import { scalarFunctions } from "../compiler/check/scalar.js";
import { bundledModelsDir } from "../paths.js";
import type { Analysis } from "./analysis.js";
import { innermost, pathAt, wordAt } from "./locate.js";
import { docComment, signature } from "./hover.js";

const STD_IMPORT = "std/nn.llm";

const KEYWORDS = [
  "import", "fn", "model", "extends", "config", "weights", "state", "require", "required", "ignore", "within", "else",
  "return", "for", "in", "true", "false", "gguf", "hf", "optional", "when", "if", "drop", "init", "tensor",
];
const TYPE_NAMES = ["int", "f32", "f16", "bf16", "i32", "bool", "str", "KVCache"];

export function complete(an: Analysis, module: A.Module, text: string, offset: number): CompletionItem[] {
  const { start } = wordAt(text, offset);
  const nodes = pathAt(module, Math.min(start, module.span.end.offset));
  const model = innermost(nodes, "Model") as A.ModelDecl | null;
  const fn = innermost(nodes, "Fn") as A.FnDecl | null;
  const chain = model ? an.chain(model) : [];

  if (text[start - 1] === ".") {
    const target = wordAt(text, start - 1).word;
    const fields = groupFields(chain, layerGroupOf(fn, text, target));
    if (fields.length > 0) return fields;
    return [{ label: "T", kind: CompletionItemKind.Property, detail: "swap the last two dims" }, ...functionItems(an, chain, null)];
  }

  const items: CompletionItem[] = [];
  if (fn) items.push(...localItems(fn, chain, offset));
  if (model) items.push(...modelValueItems(chain));
  if (fn?.name.name === "forward") items.push({ label: "T", kind: CompletionItemKind.Constant, detail: "tokens in this step" }, { label: "P", kind: CompletionItemKind.Constant, detail: "positions cached before this step" });
  items.push(...functionItems(an, chain, module));
  items.push(...KEYWORDS.map((k) => ({ label: k, kind: CompletionItemKind.Keyword })));
  items.push(...TYPE_NAMES.map((k) => ({ label: k, kind: CompletionItemKind.TypeParameter })));
  return dedupe(items);
}

/** The group whose layer `name` is: `for l, name in G`, or a parameter `name: G`. */
function layerGroupOf(fn: A.FnDecl | null, text: string, name: string): string | null {
  if (fn) {
    const p = fn.params.find((q) => q.name.name === name);
    if (p?.type.kind === "NamedType") return p.type.name.name;
  }
  // The text, not the AST: while `w.` is being typed the function may not parse.
  const re = new RegExp(`\\bfor\\s+\\w+\\s*,\\s*${name}\\s+in\\s+(\\w+)|\\b${name}\\s*:\\s*([A-Za-z_]\\w*)`, "g");
  let group: string | null = null;
  for (const m of text.matchAll(re)) group = m[1] ?? m[2] ?? group;
  return group;
}

function groupFields(chain: A.ModelDecl[], group: string | null): CompletionItem[] {
  if (!group) return [];
  const items: CompletionItem[] = [];
  for (const m of chain) {
    for (const mem of m.members) {
      if (mem.kind !== "Weights") continue;
      for (const g of mem.items) {
        if (g.kind !== "WeightGroup" || g.name.name !== group) continue;
        for (const it of g.items) {
          if (it.kind === "Weight") items.push({ label: it.name.name, kind: CompletionItemKind.Field, detail: `[${it.shape.map(shapeText).join(", ")}]` });
        }
      }
    }
  }
  return dedupe(items);
}

function shapeText(e: A.Expr): string {
  return e.kind === "Name" ? e.name : e.kind === "Number" ? e.raw : "…";
}

function localItems(fn: A.FnDecl, chain: A.ModelDecl[], offset: number): CompletionItem[] {
  const items: CompletionItem[] = [];
  const modelValues = new Set(modelValueItems(chain).map((i) => i.label));
  for (const p of fn.params) {
    items.push({ label: p.name.name, kind: CompletionItemKind.Variable, detail: "parameter" });
    if (p.type.kind === "TensorType") {
      for (const d of p.type.dims) {
        if (d.kind === "Name" && !modelValues.has(d.name)) items.push({ label: d.name, kind: CompletionItemKind.TypeParameter, detail: "shape variable" });
      }
    }
  }
  const stmts = (body: A.Stmt[]) => {
    for (const st of body) {
      if (st.span.start.offset > offset) return;
      if (st.kind === "Assign") for (const t of st.targets) items.push({ label: t.name, kind: CompletionItemKind.Variable, detail: "binding" });
      if (st.kind === "For") {
        items.push({ label: st.index.name, kind: CompletionItemKind.Variable, detail: "loop index" });
        if (st.item) items.push({ label: st.item.name, kind: CompletionItemKind.Variable, detail: "layer" });
        stmts(st.body);
      }
    }
  };
  stmts(fn.body);
  return items;
}

function modelValueItems(chain: A.ModelDecl[]): CompletionItem[] {
  const items: CompletionItem[] = [];
  for (const m of chain) {
    for (const mem of m.members) {
      if (mem.kind === "Config") {
        for (const it of mem.items) if (it.kind === "ConfigParam") items.push({ label: it.name.name, kind: CompletionItemKind.Constant, detail: `config of ${m.name.name}` });
      } else if (mem.kind === "Weights") {
        for (const it of mem.items) {
          if (it.kind === "Weight") items.push({ label: it.name.name, kind: CompletionItemKind.Field, detail: `weight [${it.shape.map(shapeText).join(", ")}]` });
          if (it.kind === "WeightGroup") items.push({ label: it.name.name, kind: CompletionItemKind.Struct, detail: `weight group [${shapeText(it.count)}]` });
        }
      } else if (mem.kind === "State") items.push({ label: mem.name.name, kind: CompletionItemKind.Variable, detail: "state" });
    }
  }
  return items;
}

/** Model functions, the program's top-level functions, the standard library's, built-ins. */
function functionItems(an: Analysis, chain: A.ModelDecl[], module: A.Module | null): CompletionItem[] {
  const items: CompletionItem[] = [];
  const fnItem = (decl: A.FnDecl, where: string): CompletionItem => ({
    label: decl.name.name,
    kind: chain.length > 0 && where.startsWith("model") ? CompletionItemKind.Method : CompletionItemKind.Function,
    detail: signature(decl),
    documentation: [docComment(an, decl), where].filter(Boolean).join("\n\n"),
  });
  for (const m of chain) for (const mem of m.members) if (mem.kind === "Fn") items.push(fnItem(mem, `model ${m.name.name}`));
  for (const decl of an.result.fns.values()) items.push(fnItem(decl, decl.span.file));
  if (module) {
    // Standard-library functions the program does not import: offered anyway, adding the import.
    const edit: TextEdit = { range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, newText: `import "${STD_IMPORT}"\n` };
    for (const decl of stdFunctions().filter((d) => !an.result.fns.has(d.name.name))) items.push({ label: decl.name.name, kind: CompletionItemKind.Function, detail: signature(decl), documentation: `adds import "${STD_IMPORT}"`, additionalTextEdits: [edit] });
  }
  for (const [name, b] of Object.entries(builtins)) items.push({ label: name, kind: CompletionItemKind.Function, detail: `${name}(${b.params.map((p) => p.name).join(", ")})`, documentation: `${b.doc} (built-in)` });
  for (const name of Object.keys(scalarFunctions)) items.push({ label: name, kind: CompletionItemKind.Function, detail: "scalar function" });
  return items;
}

let stdCache: A.FnDecl[] | null = null;

function stdFunctions(): A.FnDecl[] {
  if (!stdCache) {
    const file = join(bundledModelsDir(), STD_IMPORT);
    const { module } = parseModule(file, readFileSync(file, "utf8"));
    stdCache = module.items.filter((i): i is A.FnDecl => i.kind === "Fn");
  }
  return stdCache;
}

/** The first item of each label: nearer scopes come first. */
function dedupe(items: CompletionItem[]): CompletionItem[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(i.label) && seen.add(i.label));
}

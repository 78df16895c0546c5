// Document symbols (the outline): each model with its config values, weights (groups with their
// items), state and functions; top-level functions.

import { SymbolKind, type DocumentSymbol } from "vscode-languageserver";
import type * as A from "../compiler/parse/ast.js";
import { formatExpr, formatType } from "../compiler/fmt/format.js";
import { rangeOf } from "./locate.js";
import { signature } from "./hover.js";

export function documentSymbols(module: A.Module): DocumentSymbol[] {
  return module.items.map((it) => (it.kind === "Fn" ? fnSymbol(it, SymbolKind.Function) : modelSymbol(it)));
}

function symbol(name: A.Ident, whole: A.Span, kind: SymbolKind, detail?: string, children?: DocumentSymbol[]): DocumentSymbol {
  return { name: name.name, kind, range: rangeOf(whole), selectionRange: rangeOf(name.span), ...(detail ? { detail } : {}), ...(children ? { children } : {}) };
}

function fnSymbol(fn: A.FnDecl, kind: SymbolKind): DocumentSymbol {
  return symbol(fn.name, fn.span, kind, signature(fn).slice(`fn ${fn.name.name}`.length));
}

function modelSymbol(m: A.ModelDecl): DocumentSymbol {
  const children: DocumentSymbol[] = [];
  for (const mem of m.members) {
    switch (mem.kind) {
      case "Config":
        for (const it of mem.items) {
          if (it.kind !== "ConfigParam") continue;
          const detail = `${it.type ? formatType(it.type) : ""}${it.value ? ` = ${formatExpr(it.value)}` : ""}`.trim();
          children.push(symbol(it.name, it.span, SymbolKind.Constant, detail));
        }
        break;
      case "Weights":
        for (const it of mem.items) children.push(weightSymbol(it));
        break;
      case "State":
        children.push(symbol(mem.name, mem.span, SymbolKind.Variable, formatType(mem.type)));
        break;
      case "Fn":
        children.push(fnSymbol(mem, SymbolKind.Method));
        break;
      case "FnDrop":
        break;
    }
  }
  return symbol(m.name, m.span, SymbolKind.Class, m.extends ? `extends ${m.extends.name}` : undefined, children);
}

function weightSymbol(w: A.WeightItem): DocumentSymbol {
  switch (w.kind) {
    case "Weight":
      return symbol(w.name, w.span, SymbolKind.Field, `[${w.shape.map(formatExpr).join(", ")}]`);
    case "WeightGroup":
      return symbol(w.name, w.span, SymbolKind.Struct, `[${formatExpr(w.count)}]`, w.items.map(weightSymbol));
    case "WeightDrop":
      return symbol(w.name, w.span, SymbolKind.Null, "dropped");
  }
}

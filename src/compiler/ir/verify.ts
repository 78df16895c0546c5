// The IR verifier, run after lowering and after every pass: SSA (each value defined once, before
// its uses), arity and attributes per the op table, and every node's type re-derived by its op's
// rule. A failure here is a compiler bug, reported with the offending node printed.

import { dimEquals, formatShape } from "../base/symbolic.js";
import { opTable, TypeRuleError } from "../ops/table.js";
import { LEAF_OPS, type Graph } from "./graph.js";
import { attrSchema, printNode } from "./text.js";

export class IrVerifyError extends Error {}

export function verifyGraph(g: Graph, after = "lowering"): void {
  const defined = new Map<number, Graph["nodes"][number]>();
  const fail = (n: Graph["nodes"][number] | null, msg: string): never => {
    throw new IrVerifyError(`IR verification failed after ${after}: ${msg}${n ? `\n  at: ${printNode(n)}` : ""}`);
  };
  for (const n of g.nodes) {
    if (defined.has(n.id)) fail(n, `%${n.id} is defined twice`);
    for (const i of n.inputs) if (!defined.has(i)) fail(n, `%${i} is used before it is defined`);
    const schema = attrSchema(n.op);
    if (!schema) fail(n, `unknown op '${n.op}'`);
    const optional = opTable.get(n.op)?.optionalAttrs ?? [];
    for (const k of Object.keys(schema!)) if (!(k in n.attrs) && !optional.includes(k)) fail(n, `missing attribute '${k}'`);
    for (const k of Object.keys(n.attrs)) if (!(k in schema!)) fail(n, `unexpected attribute '${k}'`);
    if (LEAF_OPS.has(n.op)) {
      if (n.inputs.length !== 0) fail(n, `${n.op} takes no inputs`);
      if (n.op === "literal") {
        const data = g.literals.get(n.id);
        if (!data) fail(n, "literal without data");
        const size = n.ty.shape.reduce((a, d) => a * (d.size === 0 ? 0 : (d.get("") ?? NaN)), 1);
        if (data!.length !== size) fail(n, `literal has ${data!.length} values for shape ${formatShape(n.ty.shape)}`);
      }
    } else {
      const def = opTable.get(n.op)!;
      if (def.arity >= 0 && n.inputs.length !== def.arity) fail(n, `${n.op} takes ${def.arity} inputs, has ${n.inputs.length}`);
      try {
        const ty = def.infer(n.inputs.map((i) => defined.get(i)!.ty), n.attrs);
        const same = ty.dtype === n.ty.dtype && ty.shape.length === n.ty.shape.length && ty.shape.every((d, i) => dimEquals(d, n.ty.shape[i]!));
        if (!same) fail(n, `its type should be ${formatShape(ty.shape)} ${ty.dtype}`);
      } catch (e) {
        if (e instanceof TypeRuleError) fail(n, e.message);
        throw e;
      }
      if (n.op === "kv_append" && !g.states.has(n.attrs["state"] as string)) fail(n, `unknown state '${String(n.attrs["state"])}'`);
    }
    defined.set(n.id, n);
  }
  if (g.outputs.length === 0) fail(null, "the graph has no outputs");
  for (const o of g.outputs) if (!defined.has(o)) fail(null, `output %${o} is not defined`);
}

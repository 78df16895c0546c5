// The config values an import read, checked against the shapes of the weight file's tensors before
// anything is compiled. Compiling a model costs time and memory in proportion to its sizes (the
// checker unrolls n_layers, constant folding evaluates tensors of head_dim), so a config that says
// 2^31 for hidden_size or 10^6 layers would cost minutes and gigabytes before the loader compared
// shapes. The tensor headers are bounded by the file's size (the readers check that every tensor's
// data lies inside the file), so once the config agrees with them its sizes are too.
//
// Every weight the model declares under a name of the file's format is looked at: a group's size
// against the indices the file's names count, and a tensor's shape (a group's first copy) against
// the file's. A tensor the file lacks is the loader's to report.

import type * as A from "../parse/ast.js";
import { namesIn, type ResolvedModel, type WeightField } from "../check/model.js";
import { ImportError } from "./write-llm.js";

/** Tensor shapes by name, row-major as the loader compares them ([vocab_size, dim] for the embedding). */
export type TensorShapes = ReadonlyMap<string, readonly number[]>;

export interface CheckOptions {
  scheme: A.KeyFormat;
  /** The config's file, for messages. */
  file: string;
  /** A config value as the file spells it ("hidden_size", "llama.embedding_length"). */
  keyOf: (config: string) => string;
}

/**
 * Throws ImportError when the model, resolved with the file's config values, disagrees with the
 * file's tensors: in the number of copies of a weight group, or in a tensor's shape. `tensors.weights`
 * says where the tensors are.
 */
export function checkConfigAgainstTensors(
  model: ResolvedModel,
  tensors: { names: ReadonlySet<string>; shapes?: TensorShapes; weights: string },
  opts: CheckOptions,
): void {
  const say = (e: A.Expr) => {
    const names = [...new Set(namesIn(e))].filter((n) => model.config.get(n)?.value);
    return names.map((n) => `${opts.keyOf(n)} = ${model.config.get(n)!.value!.value}`);
  };
  // The rows each fused tensor's weights read (`|> rows(start, count)`), to check they split it exactly.
  const fused = new Map<string, { f: WeightField; start: number; end: number }[]>();
  const compare = (f: WeightField, layer: number | null) => {
    const pattern = f[opts.scheme]?.pattern;
    if (!pattern) return;
    const name = layer === null ? pattern : pattern.replaceAll("{i}", String(layer));
    const inFile = tensors.shapes?.get(name);
    if (!inFile) return;
    // A weight that reads rows of a fused tensor (`|> rows(start, count)`) is compared with its part.
    const rows = f[opts.scheme]!.transforms[0]?.name === "rows" ? f[opts.scheme]!.transforms[0]!.args.map((a) => a.value as number) : null;
    const found = rows && rows[0]! + rows[1]! <= inFile[0]! ? [rows[1]!, ...inFile.slice(1)] : inFile;
    if (rows) fused.set(name, [...(fused.get(name) ?? []), { f, start: rows[0]!, end: rows[0]! + rows[1]! }]);
    if (found.length === f.shape.length && found.every((d, axis) => d === f.shape[axis])) return;
    const axis = found.length === f.shape.length ? f.shape.findIndex((d, k) => d !== found[k]) : -1;
    const configs = axis >= 0 ? say(f.decl.shape[axis]!) : f.decl.shape.flatMap(say);
    throw new ImportError(
      `${opts.file}: ${configs.length > 0 ? `with ${configs.join(" and ")}, ` : ""}tensor "${name}" would be [${f.shape.join(", ")}], ` +
        `but in ${tensors.weights} it is [${found.join(", ")}]${found === inFile ? "" : ` (rows ${rows![0]}..${rows![0]! + rows![1]!} of [${inFile.join(", ")}])`}; the config does not describe this file`,
    );
  };

  for (const w of model.weights.values()) {
    if (!("count" in w)) {
      if (!w.tiedTo) compare(w, null);
      continue;
    }
    // The copies the file holds: one past the highest index of any of the group's tensors.
    let found = 0;
    let last = "";
    for (const f of w.fields.values()) {
      const pattern = f[opts.scheme]?.pattern;
      const at = pattern?.indexOf("{i}") ?? -1;
      if (!pattern || at < 0) continue;
      const re = new RegExp(`^${escape(pattern.slice(0, at))}(\\d+)${escape(pattern.slice(at + 3))}$`);
      for (const n of tensors.names) {
        const m = re.exec(n);
        if (!m || Number(m[1]) + 1 <= found) continue;
        found = Number(m[1]) + 1;
        last = `${pattern.slice(0, at)}${m[1]}${pattern[at + 3] === "." ? "." : ""}*`;
      }
    }
    if (found > 0 && found !== w.count) {
      throw new ImportError(
        `${opts.file}: ${say(w.decl.count).join(" and ") || `${w.name} has ${w.count}`}, but the tensors of ${tensors.weights} are those of ${found} layer${found === 1 ? "" : "s"} ` +
          `(the last is ${last}); the config does not describe this file`,
      );
    }
    for (const f of w.fields.values()) compare(f, 0);
  }
  for (const [name, parts] of fused) {
    const rows = tensors.shapes!.get(name)![0]!;
    parts.sort((a, b) => a.start - b.start);
    const exact = parts.every((p, i) => p.start === (i === 0 ? 0 : parts[i - 1]!.end)) && parts.at(-1)!.end === rows;
    if (exact) continue;
    const configs = [...new Set(parts.flatMap((p) => say(p.f.decl.shape[0]!)))];
    throw new ImportError(
      `${opts.file}: ${configs.length > 0 ? `with ${configs.join(" and ")}, ` : ""}the weights ${parts.map((p) => `${p.f.name} (rows ${p.start}..${p.end})`).join(", ")} ` +
        `would split tensor "${name}", but in ${tensors.weights} it has ${rows} rows; the config does not describe this file`,
    );
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// The config values an import read, checked against the shapes of the weight file's tensors before
// anything is compiled. Compiling a model costs time and memory in proportion to its sizes (the
// checker unrolls n_layers, constant folding evaluates tensors of head_dim), so a config that says
// 2^31 for hidden_size or 10^6 layers would cost minutes and gigabytes before the loader compared
// shapes. The tensor headers are bounded by the file's size (the readers check that every tensor's
// data lies inside the file), so once the config agrees with them its sizes are too.
//
// Only the tensors every bundled architecture declares under the same names (models/llama.llm,
// which the others extend) are looked at; a tensor the file lacks is the loader's to report.

import { ImportError, type ConfigBinding } from "./write-llm.js";

/** Tensor shapes by name, row-major as the loader compares them ([vocab_size, dim] for the embedding). */
export type TensorShapes = ReadonlyMap<string, readonly number[]>;

export type TensorScheme = "gguf" | "hf";

const LAYER_PREFIX: Record<TensorScheme, RegExp> = { gguf: /^blk\.(\d+)\./, hf: /^model\.layers\.(\d+)\./ };

/** Tensors whose shapes are products of config values: [rows, columns] as names of config values. */
const SHAPED: { name: Record<TensorScheme, string>; rows: string[]; cols: string[] }[] = [
  { name: { gguf: "token_embd.weight", hf: "model.embed_tokens.weight" }, rows: ["vocab_size"], cols: ["dim"] },
  { name: { gguf: "blk.0.attn_q.weight", hf: "model.layers.0.self_attn.q_proj.weight" }, rows: ["n_heads", "head_dim"], cols: ["dim"] },
  { name: { gguf: "blk.0.attn_k.weight", hf: "model.layers.0.self_attn.k_proj.weight" }, rows: ["n_kv_heads", "head_dim"], cols: ["dim"] },
  { name: { gguf: "blk.0.ffn_gate.weight", hf: "model.layers.0.mlp.gate_proj.weight" }, rows: ["ffn_dim"], cols: ["dim"] },
];

/**
 * Throws ImportError when a config value disagrees with the file's tensors: the number of layers
 * the tensor names count, or a size the shape of the embedding, the first layer's q, k or gate
 * projection says. `keyOf` names a config value as the file spells it ("hidden_size",
 * "llama.embedding_length"); `file` is the config's file, `weights` the tensors' file.
 */
export function checkConfigAgainstTensors(
  bindings: readonly ConfigBinding[],
  tensors: TensorShapes,
  opts: { scheme: TensorScheme; file: string; weights: string; keyOf: (config: string) => string },
): void {
  const values = new Map<string, number>();
  for (const b of bindings) if (b.value.type === "int") values.set(b.name, b.value.value);
  const dim = values.get("dim");
  const heads = values.get("n_heads");
  if (!values.has("head_dim") && dim !== undefined && heads !== undefined && dim % heads === 0) values.set("head_dim", dim / heads);
  const say = (config: string) => `${opts.keyOf(config)} = ${values.get(config)}`;

  const layers = values.get("n_layers");
  const indices = new Set<number>();
  for (const name of tensors.keys()) {
    const m = LAYER_PREFIX[opts.scheme].exec(name);
    if (m) indices.add(Number(m[1]));
  }
  if (layers !== undefined && indices.size > 0) {
    const found = Math.max(...indices) + 1;
    if (found !== layers) {
      const example = opts.scheme === "gguf" ? `blk.${found - 1}.*` : `model.layers.${found - 1}.*`;
      throw new ImportError(
        `${opts.file}: ${say("n_layers")}, but the tensors of ${opts.weights} are those of ${found} layer${found === 1 ? "" : "s"} (the last is ${example}); the config does not describe this file`,
      );
    }
  }

  for (const t of SHAPED) {
    const name = t.name[opts.scheme];
    const found = tensors.get(name);
    if (!found || found.length !== 2) continue;
    const product = (names: string[]) => names.reduce<number | null>((a, n) => (a === null || !values.has(n) ? null : a * values.get(n)!), 1);
    const expected = [product(t.rows), product(t.cols)];
    const wrong = expected.findIndex((e, axis) => e !== null && e !== found[axis]);
    if (wrong < 0) continue;
    const configs = wrong === 0 ? t.rows : t.cols;
    const shown = expected.map((e, axis) => (e === null ? found[axis] : e));
    throw new ImportError(
      `${opts.file}: with ${configs.filter((c) => values.has(c)).map(say).join(" and ")}, tensor "${name}" would be [${shown.join(", ")}], ` +
        `but in ${opts.weights} it is [${found.join(", ")}]; the config does not describe this file`,
    );
  }
}

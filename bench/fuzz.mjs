// Fuzzes every input llmc parses: GGUF files, Hugging Face folders (config.json + tokenizer.json +
// model.safetensors), config.json, tokenizer.json and .llm source. Each case takes a valid seed
// input, damages it (byte flips, truncations, splices, interesting integers, JSON value and type
// swaps, deleted keys, token-level edits), and runs llmc's own entry point on it. A case passes when
// llmc succeeds or fails with one of its user-facing errors (for .llm: diagnostics, never a throw)
// with a message, within a time bound and without a jump in memory; anything else is a crash.
//
//   node bench/fuzz.mjs [--count 200] [--seed S] [--kind gguf|safetensors|config|tokenizer|llm] [--case-ms 5000]
//
// Case i of a run with seed S is replayed by `--seed S+i --count 1` (the seed is printed with each
// crash). Exits 1 on a crash. test/fuzz/inputs.test.ts runs every kind with a small count against
// src/; this script, run directly, uses the built dist/.

import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const KINDS = ["gguf", "safetensors", "config", "tokenizer", "llm"];

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The tiny model every weight seed holds: small enough that a load is a few milliseconds. */
const TINY = { vocab_size: 300, dim: 32, n_layers: 1, n_heads: 4, n_kv_heads: 2, ffn_dim: 64, max_seq_len: 32 };

// ---------------------------------------------------------------------------------------------
// Randomness: one small generator per case, so a case is replayed from its seed alone.

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

// ---------------------------------------------------------------------------------------------
// Byte mutations (GGUF, safetensors). `hot` is the length of the header: most edits land there.

const INTERESTING_U64 = [0n, 1n, 2n, 3n, 4n, 7n, 8n, 32n, 255n, 0x7fffn, 0xffffn, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

function mutateBytes(bytes, r, hot) {
  let b = Buffer.from(bytes);
  const steps = [];
  const at = (len) => (r.chance(0.85) ? r.int(Math.max(1, Math.min(hot, len))) : r.int(Math.max(1, len)));
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const op = r.pick(["flip", "flip", "byte", "u32", "u64", "truncate", "splice", "delete", "duplicate"]);
    const p = at(b.length);
    switch (op) {
      case "flip":
        if (b.length) b[p] ^= 1 << r.int(8);
        steps.push(`flip a bit at ${p}`);
        break;
      case "byte": {
        const v = r.pick([0, 0xff, 0x7f, 0x80, r.int(256)]);
        if (b.length) b[p] = v;
        steps.push(`byte ${p} = ${v}`);
        break;
      }
      case "u32":
      case "u64": {
        const v = r.pick(INTERESTING_U64);
        const w = op === "u32" ? 4 : 8;
        const q = Math.max(0, Math.min(p - (p % w), b.length - w));
        if (b.length >= w) {
          if (op === "u32") b.writeUInt32LE(Number(v & 0xffffffffn), q);
          else b.writeBigUInt64LE(v, q);
        }
        steps.push(`${op} at ${q} = ${v}`);
        break;
      }
      case "truncate": {
        const len = r.chance(0.5) ? at(b.length) : r.int(b.length + 1);
        b = b.subarray(0, len);
        steps.push(`truncate to ${len}`);
        break;
      }
      case "splice": {
        const from = at(b.length);
        const len = 1 + r.int(64);
        const chunk = Buffer.from(b.subarray(from, from + len));
        chunk.copy(b, p);
        steps.push(`copy ${chunk.length} bytes from ${from} to ${p}`);
        break;
      }
      case "delete": {
        const len = 1 + r.int(16);
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + len)]);
        steps.push(`delete ${len} bytes at ${p}`);
        break;
      }
      case "duplicate": {
        const len = 1 + r.int(16);
        b = Buffer.concat([b.subarray(0, p + len), b.subarray(p)]);
        steps.push(`duplicate ${len} bytes at ${p}`);
        break;
      }
    }
  }
  return { bytes: b, steps };
}

// ---------------------------------------------------------------------------------------------
// JSON mutations (config.json, tokenizer.json, a safetensors header): on the parsed tree.

const INTERESTING_JSON = [
  null, true, false, 0, -1, 1, 2, 0.5, -0.5, 3, 255, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 1e21, 1e308, -1e308, Infinity, -Infinity,
  "", "x", "0", "1e999", "<s>", "llama", "BPE", "Unigram", "Sequence", "F32", "\u0000", "\ud800", "a".repeat(10_000),
  [], [0], ["a", "b"], [[1, 2]], {}, { type: "x" }, { a: 1 },
];

/** Every [parent, key] under `value`, parents before children. */
function slots(value, out = []) {
  if (value === null || typeof value !== "object") return out;
  for (const k of Array.isArray(value) ? value.keys() : Object.keys(value)) {
    out.push([value, k]);
    slots(value[k], out);
  }
  return out;
}

function retype(v, r) {
  if (typeof v === "number") return r.pick([String(v), [v], v > 0 ? -v : v - 1, v * 2 ** 20, v + 0.5, Math.floor(v / 2)]);
  if (typeof v === "string") return r.pick([Number(v) || 0, [v], v + v, v.slice(1), v.toUpperCase(), null]);
  if (typeof v === "boolean") return r.pick([v ? 1 : 0, String(v), !v]);
  if (Array.isArray(v)) return r.pick([Object.fromEntries(v.map((x, i) => [i, x])), v.slice(1), [...v, ...v], v.slice().reverse()]);
  if (v && typeof v === "object") return r.pick([Object.values(v), Object.keys(v)]);
  return r.pick(INTERESTING_JSON);
}

function mutateJson(value, r) {
  let tree = structuredClone(value);
  const steps = [];
  const n = 1 + r.int(3);
  for (let k = 0; k < n; k++) {
    const all = slots(tree);
    if (all.length === 0) {
      tree = r.pick(INTERESTING_JSON);
      steps.push(`the whole value = ${show(tree)}`);
      continue;
    }
    const [parent, key] = r.pick(all);
    const where = `[${JSON.stringify(key)}]`;
    const op = r.pick(["set", "set", "retype", "delete", "copy", "add"]);
    switch (op) {
      case "set":
        parent[key] = structuredClone(r.pick(INTERESTING_JSON));
        steps.push(`${where} = ${show(parent[key])}`);
        break;
      case "retype":
        parent[key] = retype(parent[key], r);
        steps.push(`${where} retyped to ${show(parent[key])}`);
        break;
      case "delete":
        if (Array.isArray(parent)) parent.splice(key, 1);
        else delete parent[key];
        steps.push(`delete ${where}`);
        break;
      case "copy": {
        const [p2, k2] = r.pick(all);
        parent[key] = structuredClone(p2[k2]);
        steps.push(`${where} = a copy of [${JSON.stringify(k2)}]`);
        break;
      }
      case "add":
        if (Array.isArray(parent[key])) parent[key].push(structuredClone(r.pick(INTERESTING_JSON)));
        else if (parent[key] && typeof parent[key] === "object") parent[key][r.pick(["type", "id", "x", "vocab", "merges"])] = structuredClone(r.pick(INTERESTING_JSON));
        steps.push(`add to ${where}`);
        break;
    }
  }
  return { value: tree, steps };
}

function show(v) {
  const s = v === Infinity ? "1e999" : v === -Infinity ? "-1e999" : JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
}

// ---------------------------------------------------------------------------------------------
// .llm token-level mutations.

const LLM_TOKEN = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|"[^"\n]*"|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|->|\|>|\.\.|\*\*|==|!=|<=|>=|\S/g;
const LLM_IMAGES = [
  ..."fn model config weights state require else return for in if when gguf hf optional int f32 i32 extends import layers dim n_layers".split(" "),
  ..."-> |> .. ** == < = + - * / @ ! ? : ; , . | ( ) [ ] { }".split(" "),
  "x", "0", "1", "-1", "1e999", "4294967296", "9007199254740993", "0.5", '"s"', '"', "/*", "//", "\n", "",
];

function mutateLlm(text, r) {
  const steps = [];
  // mostly one edit: most single edits already break a file, and the accepted ones are worth having
  const n = r.chance(0.6) ? 1 : 2 + r.int(3);
  for (let k = 0; k < n; k++) {
    const tokens = [...text.matchAll(LLM_TOKEN)].map((m) => ({ start: m.index, end: m.index + m[0].length, image: m[0] }));
    if (tokens.length === 0) break;
    const i = r.int(tokens.length);
    const t = tokens[i];
    const op = r.pick(["replace", "replace", "delete", "duplicate", "swap", "insert", "truncate", "number", "number", "number"]);
    switch (op) {
      case "replace": {
        const img = r.pick(LLM_IMAGES);
        text = text.slice(0, t.start) + img + text.slice(t.end);
        steps.push(`token ${i} ${JSON.stringify(t.image)} → ${JSON.stringify(img)}`);
        break;
      }
      case "number": {
        // a number where a number was: the values a config can be given
        const nums = tokens.filter((u) => /^\d/.test(u.image));
        const u = nums.length ? r.pick(nums) : t;
        const img = r.pick(["0", "1", "2", "3", "8", "16", "64", "1000000", "4294967296", "1e999", "0.5", "-1", "65536"]);
        text = text.slice(0, u.start) + img + text.slice(u.end);
        steps.push(`number ${JSON.stringify(u.image)} at ${u.start} → ${img}`);
        break;
      }
      case "delete":
        text = text.slice(0, t.start) + text.slice(t.end);
        steps.push(`delete token ${i} ${JSON.stringify(t.image)}`);
        break;
      case "duplicate":
        text = text.slice(0, t.end) + " " + text.slice(t.start);
        steps.push(`duplicate from token ${i} ${JSON.stringify(t.image)}`);
        break;
      case "swap": {
        const u = tokens[r.int(tokens.length)];
        const [a, b] = t.start <= u.start ? [t, u] : [u, t];
        if (a.end > b.start) break;
        text = text.slice(0, a.start) + b.image + text.slice(a.end, b.start) + a.image + text.slice(b.end);
        steps.push(`swap ${JSON.stringify(a.image)} and ${JSON.stringify(b.image)}`);
        break;
      }
      case "insert": {
        const img = r.pick(LLM_IMAGES);
        text = text.slice(0, t.start) + img + " " + text.slice(t.start);
        steps.push(`insert ${JSON.stringify(img)} before token ${i}`);
        break;
      }
      case "truncate":
        text = text.slice(0, t.start);
        steps.push(`truncate before token ${i}`);
        break;
    }
  }
  return { text, steps };
}

// ---------------------------------------------------------------------------------------------
// Seeds: valid inputs, written once per run.

/** GPT-2's byte → printable character table. */
function byteLevelChars() {
  const keep = [];
  for (let b = 0; b < 256; b++) if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) keep.push(b);
  let extra = 0;
  const chars = [];
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return chars;
}

/** Two small tokenizer.json files: a byte-level BPE (LLaMA 3 style) and a byte-fallback BPE (LLaMA 2 style). */
function tokenizerSeeds() {
  const bytes = byteLevelChars();
  const vocab = Object.fromEntries(bytes.map((c, i) => [c, i]));
  for (const t of ["Ġt", "he", "Ġthe", "ll", "llo"]) vocab[t] = Object.keys(vocab).length;
  const byteLevel = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 261, content: "<|begin_of_text|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 262, content: "<|end_of_text|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: ["Ġ t", "h e", "Ġt he", "l l", "ll o"] },
  };
  const spmTokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`), "▁", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "▁he", "llo", "▁hello"];
  const spm = {
    version: "1.0",
    added_tokens: ["<unk>", "<s>", "</s>"].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } } },
    decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab: Object.fromEntries(spmTokens.map((t, i) => [t, i])), merges: [["h", "e"], ["l", "l"], ["▁", "he"], ["ll", "o"], ["▁he", "llo"]] },
  };
  return [
    { json: byteLevel, config: { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" } },
    { json: spm, config: { bos_token: "<s>", eos_token: "</s>", add_bos_token: true } },
  ];
}

function llmFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? llmFiles(join(dir, e.name)) : e.name.endsWith(".llm") ? [join(dir, e.name)] : []));
}

async function writeSeeds(api, work) {
  const tinyLlm = join(root, "models", "examples", "tiny-llama.llm");
  const overrides = new Map(Object.entries(TINY).map(([k, v]) => [k, String(v)]));
  const compiled = api.compileFile(tinyLlm, { overrides }).compiled;
  if (!compiled) throw new Error("fuzz: models/examples/tiny-llama.llm does not compile with the seed's config values");
  const gguf = join(work, "seed.gguf");
  await api.initWeights(compiled.model, gguf, { seed: 1 });
  const ggufHeader = (await api.openGGUF(gguf));
  const ggufHot = ggufHeader.tensorDataOffset;
  await ggufHeader.close();

  const tokenizers = tokenizerSeeds();
  const hfConfig = {
    model_type: "llama",
    vocab_size: TINY.vocab_size,
    hidden_size: TINY.dim,
    num_hidden_layers: TINY.n_layers,
    num_attention_heads: TINY.n_heads,
    num_key_value_heads: TINY.n_kv_heads,
    intermediate_size: TINY.ffn_dim,
    max_position_embeddings: TINY.max_seq_len,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
  };
  const hf = join(work, "seed-hf");
  mkdirSync(hf);
  writeFileSync(join(hf, "config.json"), JSON.stringify(hfConfig));
  writeFileSync(join(hf, "tokenizer.json"), JSON.stringify(tokenizers[0].json));
  writeFileSync(join(hf, "tokenizer_config.json"), JSON.stringify(tokenizers[0].config));
  const tensors = api.modelTensors(compiled.model).map((t) => {
    const count = t.shape.reduce((a, b) => a * b, 1);
    return { name: t.field.hf.pattern.replace(/\{i\}/g, String(t.layer)), shape: t.shape, dtype: "f32", data: Float32Array.from({ length: count }, (_, i) => 0.02 * Math.sin(i)) };
  });
  await api.writeSafetensors(join(hf, "model.safetensors"), tensors, { format: "pt" });
  const safetensors = readFileSync(join(hf, "model.safetensors"));
  const { shapes, file: weightsFile } = await api.readTensorShapes(hf);

  const configs = [{ name: "tiny", json: hfConfig }];
  const fixtures = join(root, "test", "fixtures", "configs");
  for (const f of readdirSync(fixtures)) if (f.endsWith(".json") && f !== "expected-params.json") configs.push({ name: f, json: JSON.parse(readFileSync(join(fixtures, f), "utf8")) });

  const llm = llmFiles(join(root, "models")).map((path) => ({ path, text: readFileSync(path, "utf8") }));
  return { overrides, gguf: readFileSync(gguf), ggufHot, hf, hfConfig, safetensors, shapes, weightsFile, tokenizers, configs, llm };
}

// ---------------------------------------------------------------------------------------------
// One case per kind: a mutated input and llmc's entry point on it. Returns "ok" or "user", or throws.

/** A fresh folder for one case's files, a copy of the seed Hugging Face folder. */
function caseFolder(seeds, work, name) {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]) writeFileSync(join(dir, f), readFileSync(join(seeds.hf, f)));
  return dir;
}

/** loadModel on the CPU, then a little of what a user does next: tokenize, score. */
async function loadAndUse(api, path) {
  const model = await api.loadModel(path, { backend: "cpu", onNote: () => {} });
  try {
    const tokens = model.promptTokens("hello the world");
    model.tokenizer.decode(tokens);
    await model.logprobs(tokens.slice(0, 4), { top: 1 });
  } finally {
    model.dispose();
  }
  return "ok";
}

const cases = {
  async gguf(api, seeds, r, work, describe) {
    const { bytes, steps } = mutateBytes(seeds.gguf, r, seeds.ggufHot);
    describe(`seed.gguf (${seeds.gguf.length} bytes, header ${seeds.ggufHot}): ${steps.join("; ")}`);
    const path = join(work, "case.gguf");
    writeFileSync(path, bytes);
    return loadAndUse(api, path);
  },

  async safetensors(api, seeds, r, work, describe) {
    const dir = caseFolder(seeds, work, "case-hf");
    const hot = 8 + Number(seeds.safetensors.readBigUInt64LE(0));
    let bytes;
    if (r.chance(0.5)) {
      const m = mutateBytes(seeds.safetensors, r, hot);
      bytes = m.bytes;
      describe(`model.safetensors (${seeds.safetensors.length} bytes, header ${hot}): ${m.steps.join("; ")}`);
    } else {
      // the header as JSON: shapes, dtypes and offsets that parse but lie
      const header = JSON.parse(seeds.safetensors.subarray(8, hot).toString("utf8"));
      const m = mutateJson(header, r);
      const json = Buffer.from(JSON.stringify(m.value) ?? "null", "utf8");
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      bytes = Buffer.concat([len, json, seeds.safetensors.subarray(hot)]);
      describe(`model.safetensors header JSON: ${m.steps.join("; ")}`);
    }
    writeFileSync(join(dir, "model.safetensors"), bytes);
    return loadAndUse(api, dir);
  },

  async config(api, seeds, r, work, describe) {
    const seed = r.pick(seeds.configs);
    const m = mutateJson(seed.json, r);
    describe(`config ${seed.name}: ${m.steps.join("; ")}`);
    if (seed.name !== "tiny") {
      // `llmc import`'s path: the config alone
      try {
        api.importHfConfig(m.value, "config.json");
      } catch (e) {
        if (e instanceof api.errors.ImportError) return "user";
        throw e;
      }
      return "ok";
    }
    const dir = caseFolder(seeds, work, "case-hf");
    writeFileSync(join(dir, "config.json"), JSON.stringify(m.value) ?? "null");
    return loadAndUse(api, dir);
  },

  async tokenizer(api, seeds, r, work, describe) {
    const seed = r.pick(seeds.tokenizers);
    const mutateConfig = r.chance(0.2);
    const m = mutateJson(mutateConfig ? seed.config : seed.json, r);
    const [json, config] = mutateConfig ? [seed.json, m.value] : [m.value, seed.config];
    describe(`tokenizer ${seed.json.pre_tokenizer ? "byte-level" : "byte-fallback"} ${mutateConfig ? "tokenizer_config.json" : "tokenizer.json"}: ${m.steps.join("; ")}`);
    let tokenizer;
    try {
      tokenizer = api.tokenizerFromJSON(json, config);
    } catch (e) {
      // tokenizerFromJSON's own failures are plain Errors naming the JSON path (loadModel wraps them in InputError)
      if (Object.getPrototypeOf(e) === Error.prototype && e.message) return "user";
      throw e;
    }
    // A tokenizer that builds must work: a malformed file fails when read, not at the first encode.
    for (const text of ["hello the world", "", " <s> x\u00e9\ud83d\ude00", "<|end_of_text|>"]) {
      const ids = tokenizer.encode(text);
      for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) throw new Error(`encode(${JSON.stringify(text)}) gave id ${id} outside 0..${tokenizer.vocabSize - 1}`);
      tokenizer.decode(ids);
    }
    return "ok";
  },

  async llm(api, seeds, r, _work, describe) {
    const seed = r.pick(seeds.llm);
    const m = mutateLlm(seed.text, r);
    describe(`${seed.path.slice(root.length + 1)}: ${m.steps.join("; ")}`);
    const overlay = new Map([[seed.path, m.text]]);
    const checked = api.checkFile(seed.path, { overlay });
    // with the seed model's config values, so an open architecture (llama.llm) is lowered too
    const compiled = api.compileFile(seed.path, { overlay, overrides: seeds.overrides });
    for (const d of [...checked.diagnostics, ...compiled.diagnostics]) {
      if (typeof d.message !== "string" || !d.message.trim() || !/^E\d{4}$/.test(d.code)) throw new Error(`a malformed diagnostic: ${JSON.stringify(d)}`);
    }
    return compiled.diagnostics.some((d) => d.severity === "error") ? "user" : "ok";
  },
};

// ---------------------------------------------------------------------------------------------

/** An error that is one of llmc's user-facing kinds, with a message. */
function isUserError(api, e) {
  return Object.values(api.errors).some((cls) => e instanceof cls) && typeof e.message === "string" && e.message.trim().length > 0;
}

/**
 * Runs `count` cases of each kind. `api`: llmc's entry points (from dist/ or src/). Returns per-kind
 * counts and the crashes, each with the seed that replays it.
 */
export async function fuzz(api, { kinds = KINDS, count = 200, seed = 1, caseMs = 5000, memoryMiB = 1024, log = () => {} } = {}) {
  const work = mkdtempSync(join(tmpdir(), "llmc-fuzz-"));
  try {
    const seeds = await writeSeeds(api, work);
    const results = {};
    const crashes = [];
    for (const kind of kinds) {
      const counts = (results[kind] = { ok: 0, user: 0, crash: 0 });
      for (let i = 0; i < count; i++) {
        const caseSeed = (seed + i) >>> 0;
        let input = "";
        const before = process.memoryUsage();
        const started = performance.now();
        let problem = null;
        try {
          const outcome = await cases[kind](api, seeds, rng(caseSeed), work, (d) => (input = d));
          counts[outcome]++;
        } catch (e) {
          // .llm text is judged by its diagnostics: checkFile and compileFile never throw
          if (kind !== "llm" && isUserError(api, e)) counts.user++;
          else problem = e instanceof Error ? e : new Error(`threw a non-Error: ${String(e)}`);
        }
        const ms = performance.now() - started;
        const after = process.memoryUsage();
        const grewMiB = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
        if (!problem && ms > caseMs) problem = new Error(`took ${Math.round(ms)} ms (bound ${caseMs} ms)`);
        if (!problem && grewMiB > memoryMiB) problem = new Error(`memory grew by ${Math.round(grewMiB)} MiB (bound ${memoryMiB} MiB)`);
        if (problem) {
          counts.crash++;
          const crash = { kind, seed: caseSeed, input, error: `${problem.name}: ${problem.message}`, stack: problem.stack ?? "" };
          crashes.push(crash);
          log(`CRASH ${kind} --seed ${caseSeed}: ${input}\n  ${crash.stack.split("\n").slice(0, 8).join("\n  ")}`);
        }
      }
      log(`${kind.padEnd(12)} ok ${String(counts.ok).padStart(5)}   user error ${String(counts.user).padStart(5)}   crash ${counts.crash}`);
    }
    return { results, crashes };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** llmc's entry points from the built dist/. */
async function distApi() {
  const dist = (p) => import(pathToFileURL(join(root, "dist", "src", p)).href);
  const index = await dist("index.js");
  const [compile, check, init, gguf, tensors, st, loader, tokenizer, hfConfig] = await Promise.all([
    dist("compiler/compile.js"),
    dist("compiler/check/index.js"),
    dist("runtime/weights/init.js"),
    dist("runtime/weights/gguf-reader.js"),
    dist("runtime/weights/model-tensors.js"),
    dist("runtime/weights/safetensors.js"),
    dist("runtime/weights/loader.js"),
    dist("runtime/tokenizer/index.js"),
    dist("compiler/import/hf-config.js"),
  ]);
  return {
    loadModel: index.loadModel,
    compileFile: compile.compileFile,
    checkFile: check.checkFile,
    initWeights: init.initWeights,
    openGGUF: gguf.openGGUF,
    modelTensors: tensors.modelTensors,
    writeSafetensors: st.writeSafetensors,
    readTensorShapes: loader.readTensorShapes,
    tokenizerFromJSON: tokenizer.tokenizerFromJSON,
    importHfConfig: hfConfig.importHfConfig,
    errors: userErrors(index),
  };
}

/** The error classes a user may be shown, from the package entry's exports. */
export function userErrors(index) {
  const names = ["InputError", "WeightFileError", "ImportError", "ResourceError", "BackendError", "ContextOverflowError", "ChatTemplateError"];
  return Object.fromEntries(names.map((n) => [n, index[n]]));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      count: { type: "string", default: "200" },
      seed: { type: "string", default: String(Date.now() % 1_000_000) },
      kind: { type: "string" },
      "case-ms": { type: "string", default: "5000" },
    },
  });
  const kinds = values.kind ? values.kind.split(",") : KINDS;
  for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kind ${k}: expected one of ${KINDS.join(", ")}`);
  const seed = Number(values.seed);
  console.log(`llmc fuzz: ${values.count} cases of ${kinds.join(", ")}, seed ${seed}`);
  const { crashes } = await fuzz(await distApi(), { kinds, count: Number(values.count), seed, caseMs: Number(values["case-ms"]), log: (s) => console.log(s) });
  if (crashes.length > 0) {
    console.log(`\n${crashes.length} crash(es); replay one with: node bench/fuzz.mjs --kind KIND --seed SEED --count 1`);
    process.exit(1);
  }
}

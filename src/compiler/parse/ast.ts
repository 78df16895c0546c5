// The .llm abstract syntax tree. Every node carries the source span it came from, so every later
// phase can point diagnostics at the text. Node shapes are plain data (no methods) so they can be
// compared structurally (fmt preserves the AST) and serialised.

import type { Span } from "../base/diagnostics.js";

export type { Position, Span } from "../base/diagnostics.js";

interface NodeBase {
  span: Span;
}

export interface Ident extends NodeBase {
  kind: "Ident";
  name: string;
}

// ---------------------------------------------------------------------------------------------
// Module level

export interface Module extends NodeBase {
  kind: "Module";
  file: string;
  imports: Import[];
  items: Item[];
  comments: Comment[];
}

export interface Comment extends NodeBase {
  kind: "Comment";
  text: string; // including the `//` or `/* */` markers
}

export interface Import extends NodeBase {
  kind: "Import";
  path: string; // as written, e.g. "std/nn.llm"
  pathSpan: Span;
}

export type Item = FnDecl | ModelDecl;

export interface FnDecl extends NodeBase {
  kind: "Fn";
  name: Ident;
  params: Param[];
  ret: TypeExpr | null;
  body: Stmt[];
}

export interface Param extends NodeBase {
  kind: "Param";
  name: Ident;
  type: TypeExpr;
  default: Expr | null; // scalar parameters only: `causal: bool = true`
}

export interface ModelDecl extends NodeBase {
  kind: "Model";
  name: Ident;
  extends: Ident | null;
  /** `gguf "llama" hf "llama"` after the name: what each file format calls this architecture. */
  formatNames: FormatNames[];
  members: ModelMember[]; // in source order (fmt keeps the order)
}

/** The file formats whose config llmc reads: GGUF metadata and Hugging Face config.json. */
export type KeyFormat = "gguf" | "hf";

/** `gguf "qwen2" | "qwen2moe"`: the names (GGUF general.architecture, HF model_type) a format gives a model. */
export interface FormatNames extends NodeBase {
  kind: "FormatNames";
  format: KeyFormat;
  names: string[];
}

export type ModelMember = ConfigBlock | WeightsBlock | StateDecl | FnDecl | FnDrop;

/** `drop fn name`: the model does not inherit this function from the model it extends. */
export interface FnDrop extends NodeBase {
  kind: "FnDrop";
  name: Ident;
}

// ---------------------------------------------------------------------------------------------
// config { … }

export interface ConfigBlock extends NodeBase {
  kind: "Config";
  items: ConfigItem[];
}

export type ConfigItem = ConfigParam | Require | IgnoreKeys | KeysWithin;

/**
 * `name: type = default` declares a parameter; `name = value` (no type) overrides an inherited one.
 * Either may name the parameter's keys in each file format (`gguf "…"  hf "…"`); an override's
 * clause replaces the inherited one of its format.
 */
export interface ConfigParam extends NodeBase {
  kind: "ConfigParam";
  name: Ident;
  type: TypeExpr | null;
  value: Expr | null;
  keys: KeyClause[];
}

/**
 * `gguf "{arch}.rope.freq_base" | "…" required when cond else expr`: where a format keeps a config
 * value. The first source the file has gives it; `when` limits the clause to configs where cond
 * holds; `required` makes a missing key an error; `else` is the format's value when every source is
 * missing (otherwise the parameter keeps its .llm value).
 */
export interface KeyClause extends NodeBase {
  kind: "KeyClause";
  format: KeyFormat;
  sources: KeySource[];
  required: boolean;
  when: Expr | null;
  fallback: Expr | null;
}

/** A metadata key (`{arch}` = the file's architecture name), or `tensor "name"`: true when the file holds that tensor. */
export interface KeySource extends NodeBase {
  kind: "KeySource";
  tensor: boolean;
  pattern: string;
  patternSpan: Span;
  transforms: Call[]; // `|> count()`
}

/** `ignore hf "pretraining_tp", "use_cache"`: keys of the file that do not change the model. */
export interface IgnoreKeys extends NodeBase {
  kind: "IgnoreKeys";
  format: KeyFormat;
  keys: string[];
}

/**
 * `within hf "text_config"`: the file may keep the model's keys inside this object (a multimodal
 * config.json nests its language model's); the first listed that the file has is read instead of the
 * top level.
 */
export interface KeysWithin extends NodeBase {
  kind: "KeysWithin";
  format: KeyFormat;
  keys: string[];
}

/** `require cond, cond … else "message"` */
export interface Require extends NodeBase {
  kind: "Require";
  conds: Expr[];
  message: string | null;
}

// ---------------------------------------------------------------------------------------------
// weights { … }

export interface WeightsBlock extends NodeBase {
  kind: "Weights";
  items: WeightItem[];
}

export type WeightItem = WeightDecl | WeightGroup | WeightDrop;

export interface WeightDecl extends NodeBase {
  kind: "Weight";
  name: Ident;
  shape: Expr[];
  gguf: TensorName | null;
  hf: TensorName | null;
  optional: boolean; // may be absent from the file (then it reads as zeros where used)
  when: Expr | null; // exists only when this config condition holds
  tie: Tie | null; // `= other if cond`: alias another tensor when cond holds
  /** `init normal(0, 0.02)`: how a fresh model draws it. Absent (not null) when the weight has no clause:
   *  the language default applies (docs/language.md, Initialisers). */
  init?: InitClause;
}

/** `init name` or `init name(args)`: the initialiser of a weight, checked against check/init.ts's table. */
export interface InitClause extends NodeBase {
  kind: "InitClause";
  name: Ident;
  args: Arg[];
}

/** A tensor's name in a file format, with `{i}` for the layer index, and the transforms to apply on load. */
export interface TensorName extends NodeBase {
  kind: "TensorName";
  pattern: string;
  patternSpan: Span;
  transforms: Call[]; // `|> rope_permute(n_heads)`
}

export interface Tie extends NodeBase {
  kind: "Tie";
  target: Ident;
  cond: Expr | null; // null: always tied
}

/** `layers[n_layers] { … }`: one copy of the items per index. */
export interface WeightGroup extends NodeBase {
  kind: "WeightGroup";
  name: Ident;
  count: Expr;
  items: WeightItem[];
}

/** `drop name`: the model does not inherit this weight (or group, or item of a group). */
export interface WeightDrop extends NodeBase {
  kind: "WeightDrop";
  name: Ident;
}

// ---------------------------------------------------------------------------------------------
// state name: Type

export interface StateDecl extends NodeBase {
  kind: "State";
  name: Ident;
  type: TypeExpr;
}

// ---------------------------------------------------------------------------------------------
// Types

export type DTypeName = "f32" | "f16" | "bf16" | "i32" | "bool";
export type ScalarTypeName = "int" | "f32" | "bool" | "str";

export type TypeExpr = TensorType | ScalarType | EnumType | TupleType | NamedType;

/**
 * `[T, dim] i32` — dims are expressions over config values and shape variables; dtype defaults to f32.
 * `[..., D]` (ellipsis) has any number of leading dims before `dims`, the same ones wherever a
 * function's signature writes `...`.
 */
export interface TensorType extends NodeBase {
  kind: "TensorType";
  ellipsis: boolean;
  dims: Expr[];
  dtype: DTypeName | null;
}

export interface ScalarType extends NodeBase {
  kind: "ScalarType";
  name: ScalarTypeName;
}

/** `"none" | "linear" | "llama3"` */
export interface EnumType extends NodeBase {
  kind: "EnumType";
  values: string[];
}

export interface TupleType extends NodeBase {
  kind: "TupleType";
  elems: TypeExpr[];
}

/** A built-in parameterised type, e.g. `KVCache[n_layers, max_seq_len, n_kv_heads, head_dim]`. */
export interface NamedType extends NodeBase {
  kind: "NamedType";
  name: Ident;
  args: Expr[];
}

// ---------------------------------------------------------------------------------------------
// Statements

export type Stmt = Assign | Return | For;

/** `x = e` or `a, b = e` (tuple destructuring). Rebinding a name shadows the old value (SSA). */
export interface Assign extends NodeBase {
  kind: "Assign";
  targets: Ident[];
  value: Expr;
}

export interface Return extends NodeBase {
  kind: "Return";
  value: Expr;
}

/** `for l, w in layers { … }` or `for i in 0..n { … }` */
export interface For extends NodeBase {
  kind: "For";
  index: Ident;
  item: Ident | null;
  iterable: Expr; // a weight group name, or a Range
  body: Stmt[];
}

// ---------------------------------------------------------------------------------------------
// Expressions

export type Expr =
  | NumberLit
  | StringLit
  | BoolLit
  | Name
  | ListLit
  | Unary
  | Binary
  | Conditional
  | Call
  | MethodCall
  | Member
  | Index
  | Range;

export interface NumberLit extends NodeBase {
  kind: "Number";
  value: number;
  isInt: boolean; // written without `.` or exponent
  raw: string;
}

export interface StringLit extends NodeBase {
  kind: "String";
  value: string;
}

export interface BoolLit extends NodeBase {
  kind: "Bool";
  value: boolean;
}

export interface Name extends NodeBase {
  kind: "Name";
  name: string;
}

export interface ListLit extends NodeBase {
  kind: "List";
  elems: Expr[];
}

export type UnaryOp = "-" | "!";

export interface Unary extends NodeBase {
  kind: "Unary";
  op: UnaryOp;
  operand: Expr;
}

export type BinaryOp =
  | "+" | "-" | "*" | "/" | "%" | "@" | "**"
  | "==" | "!=" | "<" | "<=" | ">" | ">="
  | "&&" | "||";

export interface Binary extends NodeBase {
  kind: "Binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
}

/** `cond ? a : b` */
export interface Conditional extends NodeBase {
  kind: "Conditional";
  cond: Expr;
  then: Expr;
  else: Expr;
}

export interface Arg extends NodeBase {
  kind: "Arg";
  name: Ident | null; // named argument `causal: true`
  value: Expr;
}

/** `f(a, b, name: c)` */
export interface Call extends NodeBase {
  kind: "Call";
  callee: Ident;
  args: Arg[];
}

/** `x.f(a)` — sugar for `f(x, a)`, kept distinct so fmt prints what was written. */
export interface MethodCall extends NodeBase {
  kind: "MethodCall";
  target: Expr;
  method: Ident;
  args: Arg[];
}

/** `w.wq`, `x.T` */
export interface Member extends NodeBase {
  kind: "Member";
  target: Expr;
  name: Ident;
}

export interface SliceIndex extends NodeBase {
  kind: "Slice";
  start: Expr | null;
  end: Expr | null;
}

/** `embed[tokens]` (gather), `x[:, 0:half]` (slice), `kv[l]` (state of a layer) */
export interface Index extends NodeBase {
  kind: "Index";
  target: Expr;
  indices: (Expr | SliceIndex)[];
}

/** `a..b` — only as the iterable of a `for`. */
export interface Range extends NodeBase {
  kind: "Range";
  start: Expr;
  end: Expr;
}

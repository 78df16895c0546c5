// Compile-time scalars: config values, literals and the arithmetic on them. Every scalar in a .llm
// program is known at compile time (tensors never become scalars), so scalar expressions fold here.

import type * as A from "../parse/ast.js";

export type ScalarType = "int" | "f32" | "bool" | "str";

export interface Scalar {
  type: ScalarType;
  value: number | boolean | string;
}

export class ScalarError extends Error {}

export const int = (v: number): Scalar => ({ type: "int", value: v });
export const f32 = (v: number): Scalar => ({ type: "f32", value: v });
export const bool = (v: boolean): Scalar => ({ type: "bool", value: v });

export function formatScalar(s: Scalar): string {
  if (s.type === "str") return JSON.stringify(s.value);
  if (s.type === "f32" && Number.isInteger(s.value)) return `${s.value}.0`;
  return String(s.value);
}

const isNum = (s: Scalar) => s.type === "int" || s.type === "f32";

function need(cond: boolean, msg: string): void {
  if (!cond) throw new ScalarError(msg);
}

function checkFinite(v: number, what: string): number {
  need(Number.isFinite(v), `${what} is not a finite number`);
  return v;
}

export function scalarBinary(op: A.BinaryOp, a: Scalar, b: Scalar): Scalar {
  switch (op) {
    case "&&":
    case "||":
      need(a.type === "bool" && b.type === "bool", `'${op}' needs bool operands, got ${a.type} and ${b.type}`);
      return bool(op === "&&" ? (a.value as boolean) && (b.value as boolean) : (a.value as boolean) || (b.value as boolean));
    case "==":
    case "!=": {
      const comparable = (isNum(a) && isNum(b)) || a.type === b.type;
      need(comparable, `cannot compare ${a.type} with ${b.type}`);
      return bool((a.value === b.value) === (op === "=="));
    }
    case "<":
    case "<=":
    case ">":
    case ">=": {
      need(isNum(a) && isNum(b), `'${op}' needs numbers, got ${a.type} and ${b.type}`);
      const x = a.value as number;
      const y = b.value as number;
      return bool(op === "<" ? x < y : op === "<=" ? x <= y : op === ">" ? x > y : x >= y);
    }
    case "@":
      throw new ScalarError("'@' needs tensors, not scalars");
    default: {
      need(isNum(a) && isNum(b), `'${op}' needs numbers, got ${a.type} and ${b.type}`);
      const x = a.value as number;
      const y = b.value as number;
      const ints = a.type === "int" && b.type === "int";
      let v: number;
      switch (op) {
        case "+": v = x + y; break;
        case "-": v = x - y; break;
        case "*": v = x * y; break;
        case "/":
          need(y !== 0, "division by zero");
          v = ints ? Math.trunc(x / y) : x / y;
          break;
        case "%":
          need(y !== 0, "remainder of division by zero");
          v = x % y;
          break;
        case "**": v = x ** y; break;
      }
      checkFinite(v!, "the result");
      if (ints && op !== "**") need(Number.isSafeInteger(v!), `integer overflow: the result exceeds 2^53`);
      if (ints && op === "**") return Number.isSafeInteger(v!) && y >= 0 ? int(v!) : f32(v!);
      return ints ? int(v!) : f32(v!);
    }
  }
}

export function scalarUnary(op: A.UnaryOp, a: Scalar): Scalar {
  if (op === "!") {
    need(a.type === "bool", `'!' needs a bool, got ${a.type}`);
    return bool(!(a.value as boolean));
  }
  need(isNum(a), `'-' needs a number, got ${a.type}`);
  return { type: a.type, value: -(a.value as number) };
}

/** Scalar functions usable in config and in scalar arguments. */
export const scalarFunctions: Record<string, (args: Scalar[]) => Scalar> = {
  min: (args) => numeric2("min", args, Math.min),
  max: (args) => numeric2("max", args, Math.max),
  abs: (args) => numeric1("abs", args, Math.abs, true),
  floor: (args) => int(checkFinite(Math.floor(num1("floor", args)), "floor(x)")),
  ceil: (args) => int(checkFinite(Math.ceil(num1("ceil", args)), "ceil(x)")),
  sqrt: (args) => f32(checkFinite(Math.sqrt(num1("sqrt", args)), "sqrt(x)")),
  log: (args) => f32(checkFinite(Math.log(num1("log", args)), "log(x)")),
  exp: (args) => f32(checkFinite(Math.exp(num1("exp", args)), "exp(x)")),
  float: (args) => f32(num1("float", args)),
};

function num1(name: string, args: Scalar[]): number {
  need(args.length === 1 && isNum(args[0]!), `${name} takes one number`);
  return args[0]!.value as number;
}

function numeric1(name: string, args: Scalar[], f: (x: number) => number, keepType: boolean): Scalar {
  const x = num1(name, args);
  return { type: keepType ? args[0]!.type : "f32", value: f(x) };
}

function numeric2(name: string, args: Scalar[], f: (x: number, y: number) => number): Scalar {
  need(args.length === 2 && isNum(args[0]!) && isNum(args[1]!), `${name} takes two numbers`);
  const ints = args[0]!.type === "int" && args[1]!.type === "int";
  const v = f(args[0]!.value as number, args[1]!.value as number);
  return ints ? int(v) : f32(v);
}

/** Converts a value to a declared type (int → f32 widening; f32 → int only when integral). */
export function coerceScalar(v: Scalar, to: ScalarType | { enum: string[] }): Scalar {
  if (typeof to === "object") {
    need(v.type === "str" && to.enum.includes(v.value as string), `expected one of ${to.enum.map((e) => JSON.stringify(e)).join(" | ")}, got ${formatScalar(v)}`);
    return v;
  }
  if (v.type === to) return v;
  if (to === "f32" && v.type === "int") return f32(v.value as number);
  if (to === "int" && v.type === "f32" && Number.isInteger(v.value)) return int(v.value as number);
  throw new ScalarError(`expected ${to}, got ${v.type} ${formatScalar(v)}`);
}

/** Parses a command-line value (`--set name=value`) for a parameter of the given type. */
export function parseScalarText(text: string, to: ScalarType | { enum: string[] }): Scalar {
  const t = text.trim();
  if (typeof to === "object" || to === "str") {
    const unq = /^".*"$/.test(t) ? t.slice(1, -1) : t;
    return coerceScalar({ type: "str", value: unq }, to);
  }
  if (to === "bool") {
    need(t === "true" || t === "false", `expected true or false, got '${text}'`);
    return bool(t === "true");
  }
  need(/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t), `expected a number, got '${text}'`);
  const v = Number(t);
  need(Number.isFinite(v), `'${text}' is out of range`);
  if (to === "int") {
    need(Number.isInteger(v) && Number.isSafeInteger(v), `expected an integer, got '${text}'`);
    return int(v);
  }
  return f32(v);
}

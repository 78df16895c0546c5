// The step plan: liveness-based buffer reuse never lets a kernel read and write one buffer or two live
// tensors share one; views alias; P-dependent sizes are runtime parameters; plan.json is stable.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { symDim } from "../../src/compiler/check/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import { emitPlan, CPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { planToJson, PLAN_FORMAT } from "../../src/compiler/plan/json.js";
import { assignSlots } from "../../src/compiler/plan/memory.js";
import { PlanError, type StepPlan } from "../../src/compiler/plan/plan.js";
import { CI, GraphBuilder } from "./helpers.js";

const compiled = new Map<string, ReturnType<typeof compileFile>["compiled"]>();
function compile(path: string, cfg: Record<string, number | string | boolean> = {}, fused = true) {
  const key = JSON.stringify([path, cfg, fused]);
  if (!compiled.has(key)) {
    const overrides = new Map(Object.entries(cfg).map(([k, v]) => [k, String(v)]));
    const res = compileFile(path, { overrides, ...(fused ? {} : { pipeline: UNFUSED_PIPELINE }) });
    if (!res.compiled) throw new Error(res.diagnostics.map((d) => d.message).join("\n"));
    compiled.set(key, res.compiled);
  }
  return compiled.get(key)!.graph;
}

/** Checks the plan's invariants independently of how it was built. */
function checkPlan(plan: StepPlan): void {
  const nodes = new Map(plan.graph.nodes.map((n) => [n.id, n]));
  const writer = new Map<number, number>(); // node → dispatch index
  for (const d of plan.dispatches) writer.set(d.node, d.index);
  // The tensor a node's bytes belong to: follow views to the dispatch (or leaf) that made them.
  const rootOf = (id: number): number => {
    const n = nodes.get(id)!;
    return plan.storage.get(id) === "view" && n.op !== "kv_append" ? rootOf(n.inputs[0]!) : id;
  };
  const end = new Map<number, number>();
  for (const d of plan.dispatches) {
    const written = plan.placement.get(d.node)!.buffer;
    for (const i of d.inputs) {
      expect(plan.placement.has(i), `dispatch ${d.index} reads %${i}, which has storage`).toBe(true);
      expect(plan.placement.get(i)!.buffer, `dispatch ${d.index} reads and writes one buffer`).not.toBe(written);
      const r = rootOf(i);
      end.set(r, Math.max(end.get(r) ?? -1, d.index));
    }
  }
  for (const o of plan.outputs) end.set(rootOf(o), Infinity);
  // Activations sharing a buffer have disjoint lifetimes [written, last read].
  const byBuffer = new Map<number, { start: number; end: number; id: number }[]>();
  for (const d of plan.dispatches) {
    if (d.kernel === "kv_append") continue;
    const b = plan.buffers[plan.placement.get(d.node)!.buffer]!;
    expect(b.kind).toBe("activation");
    byBuffer.set(b.id, [...(byBuffer.get(b.id) ?? []), { start: d.index, end: end.get(d.node) ?? d.index, id: d.node }]);
  }
  for (const lives of byBuffer.values()) {
    lives.sort((a, b) => a.start - b.start);
    for (let i = 1; i < lives.length; i++) {
      expect(lives[i]!.start, `%${lives[i]!.id} overwrites %${lives[i - 1]!.id} while it is live`).toBeGreaterThan(lives[i - 1]!.end);
    }
  }
  for (const n of plan.graph.nodes) {
    if (n.op === "reshape") expect(plan.placement.get(n.id)).toEqual(plan.placement.get(n.inputs[0]!));
    if (n.op === "kv_append") expect(plan.buffers[plan.placement.get(n.id)!.buffer]!.kind).toBe("kv");
  }
  expect(plan.dispatches.some((d) => plan.graph.nodes.find((n) => n.id === d.node)!.op === "reshape")).toBe(false);
}

const archs = ["llama", "mistral", "qwen2", "gemma"] as const;

describe("step plans", () => {
  it("reuse buffers only between tensors whose lifetimes do not overlap (every architecture, decode and prefill)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...archs),
        fc.record({ heads: fc.constantFrom(2, 4), kvDiv: fc.constantFrom(1, 2), layers: fc.integer({ min: 1, max: 3 }), fused: fc.boolean() }),
        fc.integer({ min: 1, max: 6 }),
        (arch, s, T) => {
          const cfg: Record<string, number> = { vocab_size: 40, dim: 8 * s.heads, n_layers: s.layers, n_heads: s.heads, n_kv_heads: s.heads / s.kvDiv, ffn_dim: 20, max_seq_len: 16 };
          if (arch === "gemma") cfg["head_dim"] = 8;
          const plan = buildStepPlan(compile(join("models", `${arch}.llm`), cfg, s.fused), { T });
          checkPlan(plan);
          expect(plan.buffers.filter((b) => b.kind === "activation").length).toBeLessThan(plan.dispatches.length);
        },
      ),
      { numRuns: CI ? 60 : 15 },
    );
  });

  it("assignSlots: never shares a slot between overlapping lifetimes, and sizes slots for their tensors", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ bytes: fc.integer({ min: 16, max: 4096 }), start: fc.integer({ min: 0, max: 30 }), len: fc.integer({ min: 0, max: 10 }) }), { maxLength: 40 }), (ts) => {
        const lifetimes = ts.map((t, id) => ({ id, bytes: t.bytes, start: t.start, end: t.start + t.len }));
        const { slot, slotBytes } = assignSlots(lifetimes);
        for (const a of lifetimes) {
          expect(slotBytes[slot.get(a.id)!]!).toBeGreaterThanOrEqual(a.bytes);
          for (const b of lifetimes) {
            if (a.id < b.id && slot.get(a.id) === slot.get(b.id)) expect(a.end < b.start || b.end < a.start).toBe(true);
          }
        }
      }),
      { numRuns: CI ? 500 : 100 },
    );
  });

  it("decode kernels do not depend on P: the cache length is read from the per-step parameters", () => {
    const plan = buildStepPlan(compile("test/fixtures/check/tiny.llm"), { T: 1 });
    const kernels = emitPlan(plan, CPU_TUNING);
    const withParams = kernels.filter((k) => k.bindings.some((b) => b.buffer === "params"));
    expect(withParams.map((k) => k.label.split(" ")[0]).sort()).toEqual(["attention", "attention", "kv_append", "kv_append", "kv_append", "kv_append"]);
    for (const k of withParams) expect(k.code).toContain("params.past");
    expect(plan.buffers.filter((b) => b.kind === "kv").map((b) => b.bytes)).toEqual(Array(4).fill(64 * 2 * 8 * 4));
  });

  it("plan.json is deterministic, parseable and describes every dispatch", () => {
    const graph = compile("test/fixtures/check/tiny.llm");
    const text = planToJson(buildStepPlan(graph, { T: 1 }));
    expect(planToJson(buildStepPlan(graph, { T: 1 }))).toBe(text);
    const json = JSON.parse(text) as { format: string; step: { T: number }; summary: { dispatches: number; bytes: { activations: number }; activation_bytes_without_reuse: number }; dispatches: unknown[]; buffers: { kind: string }[] };
    expect(json.format).toBe(PLAN_FORMAT);
    expect(json.step.T).toBe(1);
    expect(json.summary.dispatches).toBe(json.dispatches.length);
    expect(json.summary.bytes.activations).toBeLessThan(json.summary.activation_bytes_without_reuse);
    // One record per line.
    expect(text.split("\n").filter((l) => l.startsWith('    {"index"')).length).toBe(json.dispatches.length);
  });

  it("fusion cuts the decode dispatches of tiny.llm", () => {
    const fused = buildStepPlan(compile("test/fixtures/check/tiny.llm"), { T: 1 }).dispatches.length;
    const unfused = buildStepPlan(compile("test/fixtures/check/tiny.llm", {}, false), { T: 1 }).dispatches.length;
    expect(fused).toBeLessThan(unfused);
  });

  it("reports kernels over P-dependent shapes that it cannot run yet, naming the node", () => {
    const b = new GraphBuilder();
    b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 8, heads: 1, headDim: 4 });
    const x = b.op("reshape", [b.op("gather", [b.weight("t", [5, 4]), b.input("tokens", [symDim("T")])])], { shape: [symDim("T"), new Map([["", 1]]), new Map([["", 4]])] });
    const all = b.op("kv_append", [x], { state: "kv", layer: 0, which: "k" });
    const e = b.op("exp", [all]);
    expect(() => buildStepPlan(b.graph([e]), { T: 1 })).toThrow(PlanError);
    expect(() => buildStepPlan(b.graph([e]), { T: 1 })).toThrow(new RegExp(`%${e} \\(exp\\).*depends on the past length P`));
  });
});

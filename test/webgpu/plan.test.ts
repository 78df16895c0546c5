// The step plan: liveness-based buffer reuse never lets a kernel read and write one buffer or two live
// tensors share one; views alias; P-dependent sizes are runtime parameters; plan.json is stable.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { join } from "node:path";
import { symDim } from "../../src/compiler/base/symbolic.js";
import { compileFile } from "../../src/compiler/compile.js";
import { emitPlan, CPU_TUNING, GPU_TUNING } from "../../src/compiler/emit/wgsl/index.js";
import { UNFUSED_PIPELINE } from "../../src/compiler/passes/index.js";
import { buildStepPlan } from "../../src/compiler/plan/build.js";
import { planToJson, PLAN_FORMAT } from "../../src/compiler/plan/json.js";
import { assignSlots } from "../../src/compiler/plan/memory.js";
import { dispatchOutputs, PlanError, type StepPlan } from "../../src/compiler/plan/plan.js";
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
  // The tensor a node's bytes belong to: follow views to the dispatch (or leaf) that made them.
  const rootOf = (id: number): number => {
    const n = nodes.get(id)!;
    return plan.storage.get(id) === "view" && n.op !== "kv_append" ? rootOf(n.inputs[0]!) : id;
  };
  const end = new Map<number, number>();
  const written = new Set<number>();
  for (const d of plan.dispatches) {
    const outs = dispatchOutputs(d);
    for (const o of outs) {
      expect(written.has(o), `%${o} is written by two dispatches`).toBe(false);
      written.add(o);
    }
    const writes = new Set(outs.map((o) => plan.placement.get(o)!.buffer));
    if (d.linear) {
      // A merged kernel's segments read their inputs before any segment's output exists.
      const reads = [...d.linear.sources, ...d.linear.segments.flatMap((s) => [...s.weights, ...s.extras, ...(s.rotation?.inputs ?? [])])];
      expect(new Set(d.inputs)).toEqual(new Set(reads));
      for (const r of reads) expect(outs.map(rootOf), `dispatch ${d.index}: a segment reads another's output`).not.toContain(rootOf(r));
    }
    for (const i of d.inputs) {
      expect(plan.placement.has(i), `dispatch ${d.index} reads %${i}, which has storage`).toBe(true);
      expect(writes.has(plan.placement.get(i)!.buffer), `dispatch ${d.index} reads and writes one buffer`).toBe(false);
      const r = rootOf(i);
      end.set(r, Math.max(end.get(r) ?? -1, d.index));
    }
  }
  for (const o of plan.outputs) end.set(rootOf(o), Infinity);
  // Activations sharing a buffer have disjoint lifetimes [written, last read]; linear rows written
  // in place go to the KV cache at position P, and nothing else reads them.
  const byBuffer = new Map<number, { start: number; end: number; id: number }[]>();
  for (const d of plan.dispatches) {
    if (d.kernel === "kv_append") continue;
    for (const o of dispatchOutputs(d)) {
      const p = plan.placement.get(o)!;
      const b = plan.buffers[p.buffer]!;
      if (b.kind === "kv") {
        expect(d.kernel).toBe("fused_linear");
        const spec = plan.graph.states.get(b.kv!.state)!;
        expect(p.perPast).toBe(spec.heads * spec.headDim);
        const readers = plan.dispatches.filter((x) => x.inputs.some((i) => rootOf(i) === o));
        expect(readers, `%${o} is written in place and read`).toEqual([]);
        continue;
      }
      expect(b.kind).toBe("activation");
      byBuffer.set(b.id, [...(byBuffer.get(b.id) ?? []), { start: d.index, end: end.get(o) ?? d.index, id: o }]);
    }
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
    // The kernels that read P: attention, and those that write KV rows (appends, or linears in place).
    const writesKv = plan.dispatches.map((d) => dispatchOutputs(d).some((o) => plan.buffers[plan.placement.get(o)!.buffer]!.kind === "kv") || d.kernel === "kv_append");
    const readsP = plan.dispatches.map((d) => d.kernel === "attention" || writesKv[d.index]!);
    expect(kernels.map((k) => k.bindings.some((b) => b.buffer === "params"))).toEqual(readsP);
    for (const k of kernels.filter((_, i) => readsP[i])) expect(k.code).toContain("params.past");
    expect(plan.dispatches.filter((d) => d.kernel === "attention").length).toBe(2);
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

  it("a 2-layer decode step: 5 dispatches per layer for every architecture (6 under WebGPU's default limit of 8 storage buffers, 7 with q/k/v biases)", () => {
    for (const arch of archs) {
      const cfg: Record<string, number> = { vocab_size: 48, dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_dim: 40, max_seq_len: 16 };
      if (arch === "gemma") cfg["head_dim"] = 8;
      const graph = compile(join("models", `${arch}.llm`), cfg);
      for (const [limit, perLayer] of [[16, 5], [8, arch === "qwen2" ? 7 : 6]] as const) {
        const plan = buildStepPlan(graph, { T: 1, maxStorageBuffers: limit });
        const layerOf = new Map(plan.graph.nodes.map((n) => [n.id, n.layer]));
        const counts = [0, 0];
        let perStep = 0;
        for (const d of plan.dispatches) {
          const l = layerOf.get(d.node);
          if (l === undefined) perStep++;
          else counts[l]!++;
        }
        // Per step: the embedding gather and the LM head (Gemma also scales the embedding by √dim).
        expect({ arch, limit, counts, perStep }).toEqual({ arch, limit, counts: [perLayer, perLayer], perStep: arch === "gemma" ? 3 : 2 });
        // Per layer: q·k·v (one merged kernel when the limit allows), attention, o, gate·up, down.
        const kinds = plan.dispatches.filter((d) => layerOf.get(d.node) === 0).map((d) => d.kernel);
        expect(kinds).toEqual([...Array(perLayer - 4).fill("fused_linear"), "attention", "linear", "fused_linear", "linear"]);
        for (const k of emitPlan(plan, CPU_TUNING)) expect(k.bindings.filter((b) => b.buffer !== "params").length).toBeLessThanOrEqual(limit);
      }
      // Without the rules of this step (unfused), the same model takes far more.
      const unfused = buildStepPlan(compile(join("models", `${arch}.llm`), cfg, false), { T: 1 }).dispatches.length;
      expect(unfused).toBeGreaterThan(3 * 12);
    }
  });

  it("merged kernels bind no more storage buffers than the limit, whatever it is", () => {
    fc.assert(
      fc.property(fc.constantFrom(...archs), fc.integer({ min: 7, max: 20 }), fc.integer({ min: 1, max: 4 }), (arch, limit, T) => {
        const cfg: Record<string, number> = { vocab_size: 40, dim: 16, n_layers: 1, n_heads: 2, n_kv_heads: 1, ffn_dim: 20, max_seq_len: 16 };
        if (arch === "gemma") cfg["head_dim"] = 8;
        const plan = buildStepPlan(compile(join("models", `${arch}.llm`), cfg), { T, maxStorageBuffers: limit });
        checkPlan(plan);
        for (const k of emitPlan(plan, CPU_TUNING)) expect(k.bindings.filter((b) => b.buffer !== "params").length).toBeLessThanOrEqual(limit);
        for (const k of emitPlan(plan, GPU_TUNING)) expect(k.bindings.filter((b) => b.buffer !== "params").length).toBeLessThanOrEqual(limit);
      }),
      { numRuns: CI ? 40 : 10 },
    );
  });

  it("fusion cuts the decode dispatches of tiny.llm", () => {
    const fused = buildStepPlan(compile("test/fixtures/check/tiny.llm"), { T: 1 }).dispatches.length;
    const unfused = buildStepPlan(compile("test/fixtures/check/tiny.llm", {}, false), { T: 1 }).dispatches.length;
    expect(fused).toBeLessThan(unfused);
  });

  it("plans kernels over P-dependent shapes with buffers for the largest P; refuses appending P-dependent rows", () => {
    const b = new GraphBuilder();
    b.states.set("kv", { name: "kv", layers: 1, maxSeqLen: 8, heads: 1, headDim: 4 });
    const x = b.op("reshape", [b.op("gather", [b.weight("t", [5, 4]), b.input("tokens", [symDim("T")])])], { shape: [symDim("T"), new Map([["", 1]]), new Map([["", 4]])] });
    const all = b.op("kv_append", [x], { state: "kv", layer: 0, which: "k" });
    const e = b.op("exp", [all]);
    const plan = buildStepPlan(b.graph([e]), { T: 1 });
    const d = plan.dispatches.find((k) => k.node === e)!;
    expect(d.kernel).toBe("elementwise");
    expect(plan.buffers[plan.placement.get(e)!.buffer]!.bytes).toBeGreaterThanOrEqual(8 * 4 * 4); // P + T = max_seq_len rows
    const again = b.op("kv_append", [all], { state: "kv", layer: 0, which: "v" });
    expect(() => buildStepPlan(b.graph([again]), { T: 1 })).toThrow(PlanError);
    expect(() => buildStepPlan(b.graph([again]), { T: 1 })).toThrow(new RegExp(`%${again} appends \\[P \\+ 1, 1, 4\\] rows`));
  });
});

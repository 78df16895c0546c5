// Models share one WebGPU device per process and kind: Dawn keeps memory for every device made and
// destroyed, so loading and disposing models one after another used to grow the process without
// bound (a tiny model: 231 → 498 MB RSS over 60 cycles).

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { chooseBackend, type Backend } from "../../src/runtime/backend.js";
import type { WebGpuExecutor } from "../../src/runtime/webgpu/executor.js";
import { GraphBuilder, testWeights } from "./helpers.js";

process.env["EGL_PLATFORM"] ??= "surfaceless";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** RSS in MiB after collecting garbage, so only what native code keeps is counted. */
async function rssMiB(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  return process.memoryUsage().rss / 2 ** 20;
}

const b = new GraphBuilder();
const graph = b.graph([b.op("exp", [b.weight("x", [64])])]);

/** What loadModel does with a backend: an executor, one step, then dispose and release. */
async function cycle(backend: Backend): Promise<WebGpuExecutor> {
  const ex = (await backend.createExecutor(graph, testWeights(1))) as WebGpuExecutor;
  await ex.step({ tokens: Int32Array.of(0) });
  ex.dispose();
  backend.release();
  return ex;
}

describe("the shared WebGPU device", () => {
  it("is the one device of two backends alive at once, and of later ones", async () => {
    const first = await chooseBackend("webgpu");
    const second = await chooseBackend("webgpu");
    const a = (await first.createExecutor(graph, testWeights(1))) as WebGpuExecutor;
    const c = (await second.createExecutor(graph, testWeights(2))) as WebGpuExecutor;
    expect(c.gpu).toBe(a.gpu);
    a.dispose();
    first.release();
    // The other model still runs after the first one is released.
    await expect(c.step({ tokens: Int32Array.of(0) })).resolves.toBeDefined();
    c.dispose();
    second.release();
    expect((await cycle(await chooseBackend("webgpu"))).gpu).toBe(a.gpu);
  });

  it('is shared by "auto" and "webgpu" when both find the same adapter', async () => {
    const saved = process.env["LLMC_LIBCUDA"];
    process.env["LLMC_LIBCUDA"] = "/nonexistent/libcuda.so.1";
    try {
      const auto = await chooseBackend("auto", { onNote: () => undefined });
      const named = await chooseBackend("webgpu");
      expect(auto.name).toBe("webgpu");
      expect((await cycle(auto)).gpu).toBe((await cycle(named)).gpu);
    } finally {
      if (saved === undefined) delete process.env["LLMC_LIBCUDA"];
      else process.env["LLMC_LIBCUDA"] = saved;
    }
  });

  it("keeps RSS growth under 20 MB over 100 load/dispose cycles", async () => {
    for (let i = 0; i < 5; i++) await cycle(await chooseBackend("webgpu"));
    const before = await rssMiB();
    for (let i = 0; i < 100; i++) await cycle(await chooseBackend("webgpu"));
    const growth = (await rssMiB()) - before;
    // Each device made and destroyed used to keep ~2.6 MB: 100 cycles would add ~260 MB.
    expect(growth).toBeLessThan(20);
  });

  it("is replaced once lost", async () => {
    const lost = (await cycle(await chooseBackend("webgpu"))).gpu;
    lost.device.destroy();
    await lost.device.lost;
    const next = (await cycle(await chooseBackend("webgpu"))).gpu;
    expect(next).not.toBe(lost);
    expect(next.usable).toBe(true);
  });
});

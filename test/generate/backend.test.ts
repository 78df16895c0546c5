// Choosing a backend: "auto" falls back to the CPU with a note when WebGPU has no adapter; asking for
// WebGPU then is an error that says why; CUDA without a driver names libcuda.so.1.

import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.doUnmock("../../src/runtime/webgpu/device.js");
  vi.resetModules();
});

async function withoutAdapter() {
  vi.resetModules();
  vi.doMock("../../src/runtime/webgpu/device.js", () => ({
    requestGpu: () => Promise.reject(new Error("no WebGPU adapter: (mocked)")),
  }));
  return import("../../src/runtime/backend.js");
}

describe("chooseBackend", () => {
  it('"auto" without an adapter runs on the CPU and says so', async () => {
    const { chooseBackend } = await withoutAdapter();
    const notes: string[] = [];
    const b = await chooseBackend("auto", { onNote: (m) => notes.push(m) });
    expect(b.name).toBe("cpu");
    expect(notes).toEqual(["running on the CPU reference interpreter (slow): no WebGPU adapter: (mocked)"]);
  });

  it('"webgpu" without an adapter is an error naming the reason; "cpu" needs nothing', async () => {
    const { chooseBackend, BackendError } = await withoutAdapter();
    await expect(chooseBackend("webgpu")).rejects.toThrow(BackendError);
    await expect(chooseBackend("webgpu")).rejects.toThrow("no WebGPU adapter: (mocked)");
    expect((await chooseBackend("cpu")).name).toBe("cpu");
  });

  it('"cuda" without a driver names libcuda.so.1', async () => {
    const { chooseBackend } = await import("../../src/runtime/backend.js");
    await expect(chooseBackend("cuda")).rejects.toThrow(/the CUDA backend is unavailable: .*libcuda\.so\.1/);
  });
});

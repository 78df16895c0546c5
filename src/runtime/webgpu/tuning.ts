// Kernel shapes per adapter: CPU rasterisers (llvmpipe, lavapipe, SwiftShader, WARP) get the CPU
// profile — several rows per invocation, small workgroups, no barriers — and real GPUs the GPU
// profile. Workgroup sizes are clamped to the device's limits.

import { CPU_TUNING, GPU_TUNING, type WgslTuning } from "../../compiler/emit/wgsl/tuning.js";
import type { AdapterDescription } from "./device.js";

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render/i;

export function isSoftwareAdapter(a: Pick<AdapterDescription, "vendor" | "architecture" | "device" | "description">): boolean {
  return SOFTWARE_ADAPTER.test([a.vendor, a.architecture, a.device, a.description].join(" "));
}

export function chooseTuning(adapter: Pick<AdapterDescription, "vendor" | "architecture" | "device" | "description">, limits: Pick<GPUSupportedLimits, "maxComputeWorkgroupSizeX" | "maxComputeInvocationsPerWorkgroup">): WgslTuning {
  const base = isSoftwareAdapter(adapter) ? CPU_TUNING : GPU_TUNING;
  const cap = (n: number) => Math.max(1, Math.min(n, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup));
  return {
    ...base,
    workgroupSize: cap(base.workgroupSize),
    reduceWorkgroupSize: cap(base.reduceWorkgroupSize),
    linear: { ...base.linear, workgroupSize: cap(base.linear.workgroupSize) },
    matmul: { workgroupSize: cap(base.matmul.workgroupSize) },
    attention: { workgroupSize: cap(base.attention.workgroupSize) },
  };
}

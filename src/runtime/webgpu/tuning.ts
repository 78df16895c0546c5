// Which adapters are CPU rasterisers (llvmpipe, lavapipe, SwiftShader, WARP): they get the target
// layer's llvmpipe profile (compiler/target/wgsl.ts), real GPUs the GPU profile; and which optional
// features the device was created with, for the kernels to use.

import type { WgslFeatures } from "../../compiler/target/wgsl.js";
import type { AdapterDescription, GpuContext } from "./context.js";

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render/i;

export function isSoftwareAdapter(a: Pick<AdapterDescription, "vendor" | "architecture" | "device" | "description">): boolean {
  return SOFTWARE_ADAPTER.test([a.vendor, a.architecture, a.device, a.description].join(" "));
}

/** What the device was granted (context.ts asks for subgroups and shader-f16 where offered). */
export function deviceFeatures(gpu: Pick<GpuContext, "device" | "adapter">): WgslFeatures {
  const has = (f: string) => gpu.device.features.has(f);
  const subgroups = has("subgroups");
  return { subgroups, shaderF16: has("shader-f16"), subgroupMinSize: subgroups ? gpu.adapter.subgroupMinSize : 0 };
}

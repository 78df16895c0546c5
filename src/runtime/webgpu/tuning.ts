// Which adapters are CPU rasterisers (llvmpipe, lavapipe, SwiftShader, WARP): they get the target
// layer's llvmpipe profile (compiler/target/wgsl.ts), real GPUs the GPU profile.

import type { AdapterDescription } from "./context.js";

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|warp|microsoft basic render/i;

export function isSoftwareAdapter(a: Pick<AdapterDescription, "vendor" | "architecture" | "device" | "description">): boolean {
  return SOFTWARE_ADAPTER.test([a.vendor, a.architecture, a.device, a.description].join(" "));
}

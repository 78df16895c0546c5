// The optimiser's program for a device (what the runtimes take from the compiler for training on a
// device): the flat layout of the trained parameters and the kernels of the update rule, WGSL or
// CUDA, from codegen-templates/<target>/optimizer.hbs.

export {
  checkSavedOptimizer, flatLayout, optimizerSlots, packUpdateScalars, UPDATE_SCALARS_FLOATS,
  type DeviceOptimizerConfig, type FlatLayout, type FlatSegment, type OptimizerRule, type UpdateScalars,
} from "../emit/shared/optimizer.js";
export { wgslOptimizerKernels, type WgslOptimizerKernels } from "../emit/wgsl/optimizer.js";
export { cudaOptimizerModule, type CudaOptimizerModule } from "../emit/cuda/optimizer.js";

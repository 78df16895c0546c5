// Training: optimisers, learning-rate schedules, data, the loop and its checkpoints.

export { createOptimizer, clipGradNorm, GradientAccumulator, type Optimizer, type OptimizerConfig, type OptimizerKind, type OptimizerState } from "./optimizer.js";
export { learningRate, type ScheduleConfig, type ScheduleKind } from "./schedule.js";
export { DataError, splitValidation, tokenizeData, WindowSampler, type Batch } from "./data.js";
export { train, type CheckpointReason, type DeviceTraining, type LossAndGrad, type Trainable, type TrainOptions, type TrainState, type TrainStep } from "./train.js";

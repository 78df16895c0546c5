// The optimiser on WebGPU (WebGpuTraining: parameters, gradient sums and moments in device buffers,
// one command buffer per step's sequences) against the host optimiser on the same gradients: AdamW
// with decoupled decay, SGD with Nesterov momentum, clipping and accumulation; and an exact resume
// from the state it reads back.

import { describe, expect, it } from "vitest";
import { webGpuTraining } from "../../src/train/loss.js";
import { deviceOptimizerConfig } from "../../src/train/optimizer.js";
import { expectDeviceOptimizerMatchesHost, expectDeviceResumeExact, expectParamsClose, microModel, tokenStream } from "../train/device.js";
import { gpu } from "./helpers.js";

const device = await gpu();
const open = (model: Parameters<typeof webGpuTraining>[0]) => webGpuTraining(model, device);

describe("the optimiser on WebGPU", () => {
  it("takes the host AdamW's steps (decay on matrices, clipping, accumulation)", async () => {
    await expectDeviceOptimizerMatchesHost(open, { kind: "adamw", weightDecay: 0.1 });
  });

  it("takes the host SGD's steps (Nesterov momentum, L2 decay)", async () => {
    await expectDeviceOptimizerMatchesHost(open, { kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.05 }, { schedule: { kind: "constant", lr: 1 } });
  });

  it("resumes from the state it reads back, bit for bit", async () => {
    await expectDeviceResumeExact(open, { kind: "adamw", weightDecay: 0.1 });
  });

  it("submits once to sum a step's gradients (all its sequences) and once to update", async () => {
    const model = microModel();
    const training = open(model);
    const queue = device.device.queue;
    const submit = queue.submit.bind(queue);
    let submits = 0;
    queue.submit = (buffers) => {
      submits++;
      submit(buffers);
    };
    try {
      const run = training.device(deviceOptimizerConfig({ kind: "adamw" }, model.shapes));
      const tokens = tokenStream(6 * 8 + 1);
      const batch = (k: number) => ({ batch: 3, context: 8, tokens: tokens.subarray(k * 24, (k + 1) * 24), targets: tokens.subarray(k * 24 + 1, (k + 1) * 24 + 1) });
      await run.loss(batch(0)); // builds the pipelines and buffers first
      submits = 0;
      const { lossSum } = await run.accumulate([batch(0), batch(1)]);
      expect(submits).toBe(1);
      expect(lossSum / 6).toBeGreaterThan(1);
      run.update(1e-3, 1 / 6);
      expect(submits).toBe(2);
    } finally {
      queue.submit = submit;
      training.dispose();
    }
  });

  it("packs a step's sequences into one run of the graph: the unpacked run's losses and parameters, a third of the dispatches", async () => {
    const run = async (packTokens: number) => {
      const model = microModel();
      const training = webGpuTraining(model, device, { packTokens });
      let dispatches = 0;
      const begin = GPUCommandEncoder.prototype.beginComputePass;
      GPUCommandEncoder.prototype.beginComputePass = function (this: GPUCommandEncoder, desc?: GPUComputePassDescriptor) {
        const pass = begin.call(this, desc);
        const dispatch = pass.dispatchWorkgroups.bind(pass);
        pass.dispatchWorkgroups = (...args: Parameters<GPUComputePassEncoder["dispatchWorkgroups"]>) => {
          dispatches++;
          dispatch(...args);
        };
        return pass;
      };
      try {
        const r = training.device(deviceOptimizerConfig({ kind: "adamw", weightDecay: 0.1 }, model.shapes));
        const tokens = tokenStream(6 * 8 + 1);
        const batch = (k: number) => ({ batch: 3, context: 8, tokens: tokens.subarray(k * 24, (k + 1) * 24), targets: tokens.subarray(k * 24 + 1, (k + 1) * 24 + 1) });
        const losses: number[] = [];
        for (let step = 0; step < 3; step++) {
          const { lossSum } = await r.accumulate([batch(step % 2)]);
          r.update(3e-3, 1 / 3);
          losses.push(lossSum / 3);
        }
        const validation = await r.loss(batch(1));
        await r.readParams(model.params);
        return { losses, validation, params: model.params, dispatches };
      } finally {
        GPUCommandEncoder.prototype.beginComputePass = begin;
        training.dispose();
      }
    };
    const packed = await run(1024);
    const single = await run(1);
    packed.losses.forEach((l, i) => expect(Math.abs(l - single.losses[i]!)).toBeLessThan(1e-5 * single.losses[i]!));
    expect(Math.abs(packed.validation - single.validation)).toBeLessThan(1e-5 * single.validation);
    expectParamsClose(packed.params, single.params, 2e-5);
    expect(packed.dispatches).toBeLessThan(single.dispatches / 2);
  });

  it("draws the host run's dropout masks (and resumes exactly with dropout)", async () => {
    await expectDeviceOptimizerMatchesHost(open, { kind: "adamw" }, {}, 0.2);
    await expectDeviceResumeExact(open, { kind: "adamw" }, 0.2);
  });

});

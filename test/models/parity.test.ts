// Parity: the ONNX graphs served through onnxruntime-node, and the engine's whole step pipeline,
// reproduce what the PyTorch exporter computed for the fixture inputs (test/fixtures/parity).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { fuseGrm } from '../../models/progress.ts';
import { FIXTURE_MODEL_DIR, maxAbsDiff, parityArray, parityManifest } from '../helpers.ts';

let model: OnnxProgressModel;
let tol: number;
beforeAll(async () => {
  model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
  tol = (await parityManifest()).tolerance.abs;
  expect(tol).toBeLessThanOrEqual(1e-4);
});
afterAll(() => model.close());

const f32 = async (name: string) => (await parityArray(name)).data as Float32Array;
const ints = async (name: string) => Array.from((await parityArray(name)).data as BigInt64Array, Number);

describe('graph parity with torch', () => {
  it('encoder features', async () => {
    const px = await parityArray('enc_pixels');
    const got = await model.encode(px.data as Uint8Array, px.shape[0]!);
    expect(maxAbsDiff(got, await f32('enc_features'))).toBeLessThan(tol);
  });

  it('SARM stage logits and tau, padding slots included', async () => {
    const out = await model.sarm({ features: await f32('sarm_features'), valid: await f32('sarm_valid'), task: await ints('sarm_task') });
    expect(maxAbsDiff(out.stageLogits, await f32('sarm_stage_logits'))).toBeLessThan(tol);
    expect(maxAbsDiff(out.tau, await f32('sarm_tau'))).toBeLessThan(tol);
  });

  it('GRM hops', async () => {
    const hop = await model.grm({
      start: await f32('grm_start'),
      goal: await f32('grm_goal'),
      before: await f32('grm_before'),
      after: await f32('grm_after'),
      task: await ints('grm_task'),
    });
    expect(maxAbsDiff(hop, await f32('grm_hop'))).toBeLessThan(tol);
  });
});

describe('engine parity with torch over a recorded episode', () => {
  it("every step: stage probabilities, tau and the three GRM hops match the exporter's causal reference", async () => {
    const manifest = await parityManifest();
    const frames = await parityArray('ep_frames');
    const goal = await parityArray('ep_goal');
    const [steps, views, h, w] = frames.shape as [number, number, number, number];
    const card = model.card;
    const size = h * w * 3;
    const frameSet = (data: Uint8Array, base: number): FrameSet =>
      Object.fromEntries(
        card.views.map((v, i) => [
          v,
          { data: data.subarray(base + i * size, base + (i + 1) * size), height: h, width: w, channels: 3 as const },
        ]),
      );
    const engine = new RewardEngine(model);
    const episode = await engine.start({
      task: card.tasks[manifest.task_index]!,
      gamma: 0.99,
      shaping: 'pbrs',
      progress: 'both',
      goal: frameSet(goal.data as Uint8Array, 0),
    });
    const logits = await f32('ep_stage_logits');
    const tau = await f32('ep_tau');
    const inc = await f32('ep_hop_incremental');
    const fwd = await f32('ep_hop_forward');
    const bwd = await f32('ep_hop_backward');
    let refIncremental = 0;
    const k = card.maxStages;
    const own = card.stages[manifest.task_index]!.length;
    for (let t = 0; t < steps; t++) {
      const r = await episode.step({ frames: frameSet(frames.data as Uint8Array, t * views * size) });
      const ref = Array.from(logits.subarray(t * k, t * k + own));
      const m = Math.max(...ref);
      const e = ref.map((x) => Math.exp(x - m));
      const probs = e.map((x) => x / e.reduce((a, b) => a + b, 0));
      expect(r.step).toBe(t);
      expect(maxAbsDiff(r.stage.probs, probs)).toBeLessThan(tol);
      expect(Math.abs(r.tau - tau[t]!)).toBeLessThan(tol);
      expect(Math.abs(r.hop! - inc[t]!)).toBeLessThan(tol);
      const fused = fuseGrm(refIncremental, { incremental: inc[t]!, forward: fwd[t]!, backward: bwd[t]! });
      refIncremental = fused.incremental;
      expect(Math.abs(r.heads.grm! - fused.progress)).toBeLessThan(tol);
    }
  });
});

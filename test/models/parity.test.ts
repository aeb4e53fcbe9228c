// Parity: the ONNX graphs served through onnxruntime-node, and the engine's whole step pipeline,
// reproduce what the PyTorch exporter computed for the fixture inputs (test/fixtures/parity). The
// references are independent of the code under test: SARM progress comes from the trainer's own
// composition (stageward_train/evaluate.py compose_progress, both rules), and the fused GRM progress
// from `grmReference` below, written from the formula in models/SHAPING.md, not from progress.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RewardEngine } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
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

/**
 * Robo-Dopamine's fused GRM progress, step by step, from the formula: the incremental estimate moves
 * by each hop h as `p + (1 - p) h` forward and `p + p h` back (p in [0, 1], h in [-1, 1]); the
 * progress is the mean of the incremental, forward (`hop from the start`) and backward
 * (`1 + hop from the goal`) estimates, clamped to [0, 1].
 */
function grmReference(inc: Float32Array, fwd: Float32Array, bwd: Float32Array): number[] {
  const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
  const out: number[] = [];
  let p = 0;
  for (let t = 0; t < inc.length; t++) {
    const h = clamp(inc[t]!, -1, 1);
    p = clamp(h >= 0 ? p + (1 - p) * h : p + p * h, 0, 1);
    out.push(clamp((p + fwd[t]! + (1 + bwd[t]!)) / 3, 0, 1));
  }
  return out;
}

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
    const grmProgress = grmReference(inc, fwd, bwd);
    const sarmProgress = await f32(manifest.episode.progress[card.composition]);
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
      expect(Math.abs(r.heads.sarm - sarmProgress[t]!)).toBeLessThan(tol);
      expect(Math.abs(r.heads.grm! - grmProgress[t]!)).toBeLessThan(tol);
    }
  });

  it("SARM progress under each composition rule matches the trainer's own composition", async () => {
    const manifest = await parityManifest();
    const frames = await parityArray('ep_frames');
    const [steps, views, h, w] = frames.shape as [number, number, number, number];
    const size = h * w * 3;
    const card = model.card;
    for (const composition of ['argmax', 'expected'] as const) {
      const reference = await f32(manifest.episode.progress[composition]);
      const episode = await new RewardEngine(model).start({
        task: card.tasks[manifest.task_index]!,
        gamma: 0.99,
        shaping: 'pbrs',
        composition,
      });
      const got: number[] = [];
      for (let t = 0; t < steps; t++) {
        const base = t * views * size;
        const set: FrameSet = Object.fromEntries(
          card.views.map((v, i) => [
            v,
            {
              data: (frames.data as Uint8Array).subarray(base + i * size, base + (i + 1) * size),
              height: h,
              width: w,
              channels: 3 as const,
            },
          ]),
        );
        got.push((await episode.step({ frames: set })).heads.sarm);
      }
      expect(maxAbsDiff(got, reference)).toBeLessThan(tol);
    }
    // The two rules differ on this episode, so each comparison above tells them apart.
    expect(maxAbsDiff(await f32(manifest.episode.progress.argmax), await f32(manifest.episode.progress.expected))).toBeGreaterThan(
      10 * tol,
    );
  });
});

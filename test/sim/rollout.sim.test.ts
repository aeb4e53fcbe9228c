// Rollouts of a state policy as a learner produces them: noise, perturbation bursts, determinism,
// and the recorded episode carrying the same truth as a demonstration.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportBundle } from '../../datasets/bundle.ts';
import { readNpy } from '../../datasets/npy.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { DatasetRecording } from '../../sim/record-dataset.ts';
import { SimEnv } from '../../sim/env.ts';
import { recordSourceEpisode } from '../../sim/record.ts';
import { createRenderer } from '../../sim/render/index.ts';
import { RolloutDriver, type StatePolicy } from '../../sim/rollout.ts';
import { getTask } from '../../sim/tasks/index.ts';
import { composeProgress } from '../../sim/tasks/task.ts';
import { runCli } from '../helpers.ts';

/** A policy that always moves +x with the gripper closed: easy to tell from every perturbation. */
const steady: StatePolicy = { act: () => Float32Array.of(0.5, 0, 0, 1) };

async function states(task: 'pick_place' | 'stack_three', steps: number): Promise<Float32Array[]> {
  const env = await SimEnv.create({ task, seed: 0, maxSteps: steps + 1 });
  try {
    const out = [env.reset(3).state];
    for (let t = 1; t < steps; t++) out.push(env.step(Float32Array.of(0, 0, 0, -1)).observation.state);
    return out;
  } finally {
    env.close();
  }
}

describe('rollout driver', () => {
  const task = getTask('pick_place');

  it('with no noise and no perturbation, acts exactly as the policy', async () => {
    const d = new RolloutDriver(task, steady, 1, { noise: 0, perturb: 'none' });
    for (const s of await states('pick_place', 5)) expect(Array.from(d.act(s))).toEqual([0.5, 0, 0, 1]);
  });

  it('adds Gaussian noise of the asked std on every component, clipped to [-1, 1], the same for the same seed', async () => {
    const s = (await states('pick_place', 1))[0]!;
    const run = (seed: number) => {
      const d = new RolloutDriver(task, { act: () => Float32Array.of(0, 0, 0, 0) }, seed, { noise: 0.3, perturb: 'none' });
      return Array.from({ length: 2000 }, () => Array.from(d.act(s)));
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
    for (let k = 0; k < 4; k++) {
      const xs = a.map((r) => r[k]!);
      const m = xs.reduce((x, y) => x + y, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((x, y) => x + (y - m) ** 2, 0) / xs.length);
      expect(Math.abs(m)).toBeLessThan(0.03);
      expect(sd).toBeGreaterThan(0.27);
      expect(sd).toBeLessThan(0.33);
    }
    const big = new RolloutDriver(task, steady, 1, { noise: 2, perturb: 'none' });
    for (let i = 0; i < 200; i++) for (const x of big.act(s)) expect(Math.abs(x)).toBeLessThanOrEqual(1);
  });

  it('stall bursts stop the hand and hold the gripper; push bursts open it and drive towards the object', async () => {
    const ss = await states('pick_place', 400);
    const stall = new RolloutDriver(task, steady, 2, { noise: 0, perturb: 'stall' });
    const acts = ss.map((s) => Array.from(stall.act(s)));
    const stalled = acts.filter((a) => a[0] === 0 && a[1] === 0 && a[2] === 0);
    expect(stalled.length).toBeGreaterThan(20);
    expect(stalled.every((a) => a[3] === 1)).toBe(true);
    expect(stall.meta.perturbed_steps).toBe(stalled.length);
    expect((stall.meta.bursts as Record<string, number>).stall).toBeGreaterThan(0);

    const push = new RolloutDriver(task, steady, 2, { noise: 0, perturb: 'push' });
    const pushed = ss.map((s) => Array.from(push.act(s))).filter((a) => a[3] === -1);
    expect(pushed.length).toBeGreaterThan(20);
    for (const a of pushed) expect(Math.hypot(a[0]!, a[1]!)).toBeCloseTo(1, 5);
  });

  it('mixed draws every kind of burst over a long rollout', async () => {
    const d = new RolloutDriver(task, steady, 4, { noise: 0, perturb: 'mixed' });
    for (const s of await states('pick_place', 400)) for (let i = 0; i < 3; i++) d.act(s);
    const bursts = d.meta.bursts as Record<string, number>;
    for (const k of ['stall', 'jitter', 'oscillate', 'push']) expect(bursts[k]).toBeGreaterThan(0);
  });

  it('refuses a negative noise and an unknown perturbation with a stable code', () => {
    expect(() => new RolloutDriver(task, steady, 0, { noise: -1, perturb: 'none' })).toThrow(
      expect.objectContaining({ code: 'SW_ERR_BAD_OPTION' }),
    );
    expect(() => new RolloutDriver(task, steady, 0, { noise: 0, perturb: 'wobble' as never })).toThrow(
      expect.objectContaining({ code: 'SW_ERR_BAD_OPTION' }),
    );
  });

  it('a recorded rollout carries frames, truth composed with the task priors, and its source in the meta; the same seed gives the same episode', async () => {
    const env = await SimEnv.create({ task: 'pick_place', image: { width: 24, height: 24 }, renderer: createRenderer() });
    try {
      const source = { kind: 'policy' as const, policy: steady, name: 'steady', rollout: { noise: 0.3, perturb: 'mixed' as const } };
      const a = recordSourceEpisode(env, 9, source);
      const b = recordSourceEpisode(env, 9, source);
      expect(b.action).toEqual(a.action);
      expect(b.trueProgress).toEqual(a.trueProgress);
      expect(a.frames.front).toHaveLength(a.state.length);
      expect(a.meta).toMatchObject({ seed: 9, task_id: 'pick_place', policy: 'steady', noise: 0.3, perturb: 'mixed' });
      // the truth lies inside its own stage's band of the task priors (what --labels truth relies on)
      const p = env.task.stagePriors;
      a.trueStage.forEach((k, t) => {
        expect(a.trueProgress[t]!).toBeGreaterThanOrEqual(composeProgress(p, k, 0) - 1e-9);
        expect(a.trueProgress[t]!).toBeLessThanOrEqual(composeProgress(p, k, 1) + 1e-9);
      });
    } finally {
      env.close();
    }
  });
});

describe('rollout datasets', () => {
  it('record as LeRobot v3.0 with the task priors, and export to a bundle labelled with the truth', async () => {
    const work = await mkdtemp(join(tmpdir(), 'sw-roll-'));
    try {
      const out = join(work, 'roll');
      const rec = await DatasetRecording.create({
        task: 'pick_place',
        out,
        episodes: 2,
        seed: 3,
        size: 16,
        policy: { policy: steady, name: 'steady', rollout: { noise: 0.3, perturb: 'stall' } },
      });
      const summary = await rec.run();
      expect(summary.episodes).toBe(2);
      const ds = await LeRobotDataset.open(out);
      expect(ds.priors).toEqual([...getTask('pick_place').stagePriors]);
      expect(ds.episodes[0]!.meta).toMatchObject({ policy: 'steady', perturb: 'stall' });
      const header = await exportBundle(out, join(work, 'bundle'), { size: 16, labels: 'truth' });
      expect(header.labels.rule).toBe('truth');
      const progress = await readNpy(join(work, 'bundle', 'progress_sarm.npy'));
      const truth = [...(await ds.episodeData(0)).trueProgress!, ...(await ds.episodeData(1)).trueProgress!];
      expect(progress.data.length).toBe(truth.length);
      truth.forEach((p, i) => expect(Math.abs(Number(progress.data[i]) - p)).toBeLessThan(2e-3));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('sim record --cameras', () => {
  it('records only the cameras named, under the dataset keys given, with the frames of the simulator views they name', async () => {
    const work = await mkdtemp(join(tmpdir(), 'sw-cams-'));
    try {
      const flags = ['--task', 'pick_place', '--episodes', '1', '--seed', '3', '--size', '16', '--no-progress'];
      const renamed = await runCli(['sim', 'record', ...flags, '--cameras', 'top=front,wrist', '--out', join(work, 'renamed')]);
      expect(renamed.code, renamed.stderr).toBe(0);
      const plain = await runCli(['sim', 'record', ...flags, '--out', join(work, 'plain')]);
      expect(plain.code, plain.stderr).toBe(0);
      const a = await LeRobotDataset.open(join(work, 'renamed'));
      const b = await LeRobotDataset.open(join(work, 'plain'));
      expect(a.views).toEqual(['top', 'wrist']);
      expect(Object.keys(a.info.features).filter((k) => k.startsWith('observation.images.'))).toEqual([
        'observation.images.top',
        'observation.images.wrist',
      ]);
      const first = async (ds: LeRobotDataset, view: string) => {
        for await (const set of ds.frameSets(0, { views: [view] })) return set[view]!.data;
        throw new Error('no frames');
      };
      // the same seed renders the same scene: "top" holds the front camera, "wrist" the wrist camera
      expect(await first(a, 'top')).toEqual(await first(b, 'front'));
      expect(await first(a, 'wrist')).toEqual(await first(b, 'wrist'));
      expect(await first(a, 'top')).not.toEqual(await first(b, 'side'));
      const refused = await runCli(['sim', 'record', ...flags, '--cameras', 'a=front,a=side', '--out', join(work, 'x')]);
      expect(refused.code).not.toBe(0);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

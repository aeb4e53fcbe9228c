// The simulator bridge without a reward model (sparse, pbrs-true): shaping over the simulator's true
// progress telescopes on real episodes (one that terminates, one truncated at the time limit), parallel
// environments give the same per-seed results as one, per-seed policies act in their own episode only,
// and bad options are refused with their codes.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_GAMMA, SimBridge, expertPolicies, hoverPolicies, type EpisodeResult, type Policy } from '../../../sim/bridge/index.ts';
import { defaultRenderThreads, resolveBridgeOptions } from '../../../sim/bridge/options.ts';
import { expectCode } from '../../helpers.ts';

const GAMMA = 0.97;
const MAX_STEPS = 80;

/** sum_t gamma^t (shaped_t - r_t), and what PBRS says it must equal: gamma^T Phi_T (1 - terminated) - Phi_0. */
function telescoping(e: EpisodeResult, gamma: number): { sum: number; expected: number } {
  let sum = 0;
  e.steps.forEach((s, t) => {
    sum += gamma ** t * (s.shaped - s.envReward);
  });
  const last = e.steps[e.steps.length - 1]!;
  return { sum, expected: gamma ** e.length * last.progress * (last.terminated ? 0 : 1) - e.phi0 };
}

describe('SimBridge with the true-progress potential (pbrs-true)', () => {
  let one: SimBridge;
  let eight: SimBridge;
  beforeAll(async () => {
    one = await SimBridge.create({ task: 'pick_place', reward: 'pbrs-true', gamma: GAMMA, envs: 1, maxSteps: MAX_STEPS });
    eight = await SimBridge.create({ task: 'pick_place', reward: 'pbrs-true', gamma: GAMMA, envs: 8, maxSteps: MAX_STEPS });
  });
  afterAll(async () => {
    await one?.close();
    await eight?.close();
  });

  it('renders nothing and loads no model', () => {
    expect(one.views).toEqual([]);
    expect(one.image).toBeUndefined();
  });

  it('telescopes on a terminated episode and on a truncated one', async () => {
    const [finish, hover] = await one.runEpisodes([5, 5], [...expertPolicies(one, [5], 'expert'), ...hoverPolicies(one, [5])]);
    expect(finish!.terminated && finish!.success).toBe(true);
    expect(hover!.truncated && !hover!.terminated && hover!.length).toBe(MAX_STEPS);
    for (const e of [finish!, hover!]) {
      const { sum, expected } = telescoping(e, GAMMA);
      expect(Math.abs(sum - expected)).toBeLessThan(1e-5);
      expect(e.phi0).toBeGreaterThanOrEqual(0);
      for (const s of e.steps) expect(s.progress).toBe(s.trueProgress);
    }
    // The hovering episode is truncated with the object held over the bowl: its last potential counts.
    expect(hover!.finalTrueProgress).toBeGreaterThan(0.5);
    expect(finish!.shapedReturn).toBeCloseTo(GAMMA ** (finish!.length - 1) - finish!.phi0, 10);
  });

  it('gives every seed the same episode with 8 parallel environments as with 1, and the same again on a rerun', async () => {
    const seeds = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
    const a = await one.runEpisodes(seeds, expertPolicies(one, seeds, 'mixed'));
    const b = await eight.runEpisodes(seeds, expertPolicies(eight, seeds, 'mixed'));
    const c = await eight.runEpisodes(seeds, expertPolicies(eight, seeds, 'mixed'));
    expect(b.map((e) => e.seed)).toEqual(seeds);
    expect(b).toEqual(a);
    expect(c).toEqual(b);
  });

  it('uses policy i only in the episode of seeds[i], with its seed index', async () => {
    const seen = new Map<number, Set<number>>();
    const seeds = [30, 31, 32, 33, 34];
    const policies: Policy[] = seeds.map((_, i) => (_state, _env, seedIndex) => {
      if (!seen.has(i)) seen.set(i, new Set());
      seen.get(i)!.add(seedIndex);
      return Float32Array.from([i % 2 ? 0.3 : -0.3, 0, 0, -1]);
    });
    const results = await eight.runEpisodes(seeds, policies);
    seeds.forEach((_, i) => {
      expect([...seen.get(i)!]).toEqual([i]);
      expect(results[i]!.steps.every((s) => s.action[0] === (i % 2 ? Math.fround(0.3) : Math.fround(-0.3)))).toBe(true);
    });
  });
});

describe('SimBridge with the sparse reward', () => {
  it('passes the simulator reward through, with no potential', async () => {
    const bridge = await SimBridge.create({ task: 'pick_place', reward: 'sparse', gamma: GAMMA, envs: 2, maxSteps: MAX_STEPS });
    try {
      const [e] = await bridge.runEpisodes([5], expertPolicies(bridge, [5], 'expert'));
      expect(e!.success).toBe(true);
      expect(e!.envReturn).toBe(1);
      expect(e!.steps.map((s) => s.shaped)).toEqual(e!.steps.map((s) => s.envReward));
      expect(Number.isNaN(e!.phi0) && e!.steps.every((s) => Number.isNaN(s.progress))).toBe(true);
      expect(e!.shapedReturn).toBeCloseTo(GAMMA ** (e!.length - 1), 12);
    } finally {
      await bridge.close();
    }
  });

  it('runs time-limit-only episodes on past the success when terminateOnSuccess is false', async () => {
    const opts = { task: 'pick_place', reward: 'sparse', gamma: GAMMA, envs: 1, maxSteps: MAX_STEPS } as const;
    const ends = await SimBridge.create(opts);
    const runs = await SimBridge.create({ ...opts, terminateOnSuccess: false });
    try {
      expect(runs.options.terminateOnSuccess).toBe(false);
      const [short] = await ends.runEpisodes([5], expertPolicies(ends, [5], 'expert'));
      const [long] = await runs.runEpisodes([5], expertPolicies(runs, [5], 'expert'));
      expect(short!.length).toBeLessThan(MAX_STEPS);
      expect(long!.success).toBe(true);
      expect(long!.length).toBe(MAX_STEPS);
      expect(long!.truncated && !long!.terminated).toBe(true);
      expect(long!.envReturn).toBe(1); // the success reward comes once, on the same step as in the terminating episode
      expect(long!.steps.findIndex((s) => s.envReward === 1)).toBe(short!.length - 1);
    } finally {
      await ends.close();
      await runs.close();
    }
  });
});

describe('SimBridge options', () => {
  it('fills in the defaults', () => {
    const o = resolveBridgeOptions({
      task: 'pick_place',
      reward: 'pbrs',
      envs: undefined as unknown as number,
      gamma: undefined as unknown as number,
    });
    expect(o).toMatchObject({ gamma: DEFAULT_GAMMA, envs: 1, scale: 1, transport: 'inprocess', needsModel: true });
    expect(o.model).toMatch(/models[\\/]zoo[\\/]pick_place$/);
    expect(defaultRenderThreads(1)).toBe(0);
    expect(defaultRenderThreads(2)).toBe(1);
    expect(defaultRenderThreads(64)).toBe(4);
  });

  it('refuses bad options, seeds and policy lists with their codes', async () => {
    const base = { task: 'pick_place' as const, reward: 'pbrs-true' as const, gamma: 0.99, envs: 1 };
    await expectCode(SimBridge.create({ ...base, reward: 'dense' as never }), 'SW_ERR_BAD_OPTION', 'reward');
    await expectCode(SimBridge.create({ ...base, envs: 0 }), 'SW_ERR_BAD_OPTION', 'envs');
    await expectCode(SimBridge.create({ ...base, gamma: 1.5 }), 'SW_ERR_BAD_OPTION', 'gamma');
    await expectCode(SimBridge.create({ ...base, task: 'juggle' as never }), 'SW_ERR_TASK_UNKNOWN');
    await expectCode(SimBridge.create({ ...base, url: 'ws://127.0.0.1:1' }), 'SW_ERR_BAD_OPTION', 'transport');
    await expectCode(SimBridge.create({ ...base, reward: 'pbrs', model: '/nonexistent/model' }), 'SW_ERR_MODEL_NOT_FOUND');
    const bridge = await SimBridge.create(base);
    try {
      const still: Policy = () => Float32Array.from([0, 0, 0, -1]);
      await expectCode(() => bridge.runEpisodes([1, 2], [still]), 'SW_ERR_BAD_OPTION', '2 policies');
      await expectCode(() => bridge.runEpisodes([-1], still), 'SW_ERR_BAD_OPTION', 'seed');
      await expectCode(
        bridge.runEpisodes([1], () => Float32Array.from([0, 0])),
        'SW_ERR_BAD_VALUE',
      );
      // A failed run leaves the bridge usable.
      expect((await bridge.runEpisodes([1], still))[0]!.length).toBe(bridge.maxSteps);
    } finally {
      await bridge.close();
    }
    await expectCode(() => bridge.runEpisodes([1], () => Float32Array.from([0, 0, 0, 0])), 'SW_ERR_EPISODE_ENDED');
  });
});

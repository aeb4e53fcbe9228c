// The scripted expert: the clean preset succeeds within the step budgets, `failed` always fails,
// `mixed` flaws at least 40% of episodes and says which, plans repeat for a seed, and each quality
// knob changes the episode the way its name says.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStagewardError } from '../../core/errors.ts';
import { SimEnv } from '../../sim/env.ts';
import { CLEAN_KNOBS, planEpisode, rolloutExpert, type ExpertKnobs, type ExpertPlan, type ExpertPreset } from '../../sim/expert.ts';

function custom(seed: number, knobs: Partial<ExpertKnobs>): ExpertPlan {
  return { preset: 'custom', seed, flaws: [], knobs: { ...CLEAN_KNOBS, ...knobs } };
}

describe('scripted expert on pick_place', () => {
  let env: SimEnv;
  beforeAll(async () => {
    env = await SimEnv.create({ task: 'pick_place' });
  });
  afterAll(() => env.close());

  it('preset expert succeeds on 5/5 seeds in under 150 control steps', () => {
    for (let seed = 100; seed < 105; seed++) {
      const r = rolloutExpert(env, 'expert', seed);
      expect(r.success, `seed ${seed}`).toBe(true);
      expect(r.length).toBeLessThan(150);
      expect(r.meta).toMatchObject({ expertPreset: 'expert', flaws: [] });
    }
  });

  it('preset failed never succeeds', () => {
    for (let seed = 0; seed < 5; seed++) {
      const r = rolloutExpert(env, 'failed', seed);
      expect(r.success, `seed ${seed} ${JSON.stringify(r.meta.flaws)}`).toBe(false);
      expect(r.reward.every((x) => x === 0)).toBe(true);
    }
  });

  it('wrong placement puts the cube down beside the bowl; stopping early never finishes', () => {
    const wrong = rolloutExpert(env, custom(7, { wrongPlacement: true }), 7, { maxIdleSteps: 5 });
    expect(wrong.success).toBe(false);
    const s = wrong.last!.observation.state;
    const names = env.stateNames;
    const dxy = Math.hypot(
      s[names.indexOf('cube_x')]! - s[names.indexOf('bowl_x')]!,
      s[names.indexOf('cube_y')]! - s[names.indexOf('bowl_y')]!,
    );
    expect(dxy).toBeGreaterThan(0.09);
    expect(s[names.indexOf('cube_grasped')]).toBe(0);
    const early = rolloutExpert(env, custom(8, { stopEarly: true }), 8, { maxIdleSteps: 10 });
    expect(early.success).toBe(false);
    expect(early.length).toBeLessThan(env.maxSteps);
  });

  it('slow, hesitant, noisy and regrasping experts still succeed, taking longer', () => {
    const clean = rolloutExpert(env, 'expert', 3).length;
    for (const knobs of [
      { speed: 0.5 },
      { hesitation: { probability: 0.15, maxSteps: 6 } },
      { regrasp: true },
      { actionNoise: 0.15 },
    ] satisfies Partial<ExpertKnobs>[]) {
      const r = rolloutExpert(env, custom(3, knobs), 3);
      expect(r.success, JSON.stringify(knobs)).toBe(true);
      expect(r.length, JSON.stringify(knobs)).toBeGreaterThanOrEqual(clean);
    }
  });

  it('a dropped cube is abandoned or picked up again, as told', () => {
    const abandon = rolloutExpert(env, custom(5, { drop: 'abandon' }), 5, { maxIdleSteps: 5 });
    expect(abandon.success).toBe(false);
    const recover = rolloutExpert(env, custom(5, { drop: 'recover' }), 5);
    expect(recover.success).toBe(true);
  });
});

describe('scripted expert on stack_three', () => {
  it('preset expert succeeds on at least 4/5 seeds in under 300 control steps; failed fails', async () => {
    const env = await SimEnv.create({ task: 'stack_three' });
    let ok = 0;
    for (let seed = 100; seed < 105; seed++) {
      const r = rolloutExpert(env, 'expert', seed);
      if (r.success) ok++;
      expect(r.length).toBeLessThan(300);
    }
    expect(ok).toBeGreaterThanOrEqual(4);
    for (let seed = 0; seed < 3; seed++) {
      expect(rolloutExpert(env, 'failed', seed, { maxIdleSteps: 20 }).success).toBe(false);
    }
    env.close();
  });
});

describe('expert presets', () => {
  it('mixed flaws at least 40% of episodes, and records the flaws in the meta', () => {
    const plans = Array.from({ length: 50 }, (_, seed) => planEpisode('mixed', seed));
    const flawed = plans.filter((p) => p.flaws.length > 0);
    expect(flawed.length / plans.length).toBeGreaterThanOrEqual(0.4);
    expect(flawed.length).toBeLessThan(plans.length);
    const kinds = new Set(flawed.flatMap((p) => p.flaws));
    for (const f of ['slow', 'noise', 'hesitation', 'regrasp', 'drop', 'wrong_placement', 'stop_early']) expect(kinds, f).toContain(f);
  });

  it('plans are seeded: the same seed gives the same plan', () => {
    for (const preset of ['expert', 'mixed', 'failed'] as ExpertPreset[]) {
      expect(planEpisode(preset, 42)).toEqual(planEpisode(preset, 42));
    }
    expect(planEpisode('expert', 1).flaws).toEqual([]);
    expect(planEpisode('failed', 1).flaws.some((f) => ['drop_abandon', 'wrong_placement', 'stop_early'].includes(f))).toBe(true);
  });

  it('refuses an unknown preset', () => {
    try {
      planEpisode('perfect' as ExpertPreset, 0);
      throw new Error('no error');
    } catch (err) {
      expect(isStagewardError(err, 'SW_ERR_BAD_OPTION')).toBe(true);
    }
  });

  it('mixed episodes in the simulator: flawed ones are recorded, clean ones succeed', async () => {
    const env = await SimEnv.create({ task: 'pick_place' });
    for (let seed = 0; seed < 6; seed++) {
      const r = rolloutExpert(env, 'mixed', seed, { maxIdleSteps: 10 });
      const flaws = r.meta.flaws as string[];
      expect(Array.isArray(flaws)).toBe(true);
      if (flaws.length === 0) expect(r.success, `seed ${seed}`).toBe(true);
      if (flaws.some((f) => ['drop_abandon', 'wrong_placement', 'stop_early'].includes(f))) expect(r.success).toBe(false);
    }
    env.close();
  });
});

// Tasks: the registry, the pure stage annotators on hand-made states (a dropped cube goes back a
// stage), and the annotator on simulated episodes: a clean expert episode walks the stages in
// order, a forced drop goes back, progress stays in [0, 1] and reaches 1 on success.

import { describe, expect, it } from 'vitest';
import { isStagewardError } from '../../core/errors.ts';
import { SimEnv } from '../../sim/env.ts';
import { CLEAN_KNOBS, rolloutExpert, ScriptedExpert, type ExpertPlan } from '../../sim/expert.ts';
import { TABLE_TOP_Z } from '../../sim/scenes/workcell.ts';
import { getTask, TASK_IDS } from '../../sim/tasks/index.ts';
import {
  composeProgress,
  decodeState,
  encodeState,
  offTable,
  stateNames,
  type EpisodeContext,
  type ObjectState,
  type WorldState,
} from '../../sim/tasks/task.ts';
import type { Vec3 } from '../../sim/types.ts';

const T = TABLE_TOP_Z;

function obj(pos: Vec3, touch: 'none' | 'left' | 'both' = 'none'): ObjectState {
  return { pos, speed: 0, left: touch !== 'none', right: touch === 'both', grasped: touch === 'both' };
}

/** Run-length of a sequence: consecutive repeats removed. */
function runs<V>(xs: readonly V[]): V[] {
  return xs.filter((x, i) => i === 0 || x !== xs[i - 1]);
}

describe('task registry', () => {
  it('knows pick_place and stack_three with their exact stage names', () => {
    expect(TASK_IDS).toEqual(['pick_place', 'stack_three']);
    expect(getTask('pick_place').stageNames).toEqual(['reach', 'grasp', 'lift', 'carry', 'place']);
    expect(getTask('stack_three').stageNames).toEqual(['reach_a', 'grasp_a', 'stack_a', 'reach_b', 'grasp_b', 'stack_b', 'retreat']);
    for (const id of TASK_IDS) {
      const t = getTask(id);
      expect(t.instruction.length).toBeGreaterThan(10);
      expect(t.stagePriors.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    }
    try {
      getTask('fold_shirt');
      throw new Error('no error');
    } catch (err) {
      expect(isStagewardError(err, 'SW_ERR_TASK_UNKNOWN')).toBe(true);
    }
  });

  it('writes MJCF with only primitive geoms, lights and the three cameras; the layout depends on the seed', () => {
    for (const id of TASK_IDS) {
      const xml = getTask(id).sceneXml({ seed: 1, randomization: { lights: 0, colors: 0, cameraJitter: 0, distractors: 0 } });
      const types = new Set([...xml.matchAll(/\stype="(\w+)"/g)].map((m) => m[1]));
      for (const t of types)
        expect(['plane', 'sphere', 'capsule', 'ellipsoid', 'cylinder', 'box', 'directional', 'point', 'slide']).toContain(t);
      for (const cam of ['front', 'side', 'wrist']) expect(xml).toContain(`<camera name="${cam}"`);
      expect(xml).toContain('<light');
      expect(xml).toContain('cone="elliptic" impratio="10"');
      expect(getTask(id).sceneXml({ seed: 2, randomization: { lights: 0, colors: 0, cameraJitter: 0, distractors: 0 } })).not.toEqual(xml);
    }
  });

  it('encodes and decodes observation.state by its names', () => {
    const task = getTask('pick_place');
    const w: WorldState = {
      ee: [0.1, 0.2, 0.6],
      opening: 0.05,
      objects: { cube: obj([0, 0.1, T + 0.02], 'both') },
      fixtures: { bowl: [0.05, -0.1, T] },
    };
    const s = encodeState(task, w);
    expect(s.length).toBe(stateNames(task).length);
    const d = decodeState(task, s);
    expect(d.objects.cube!.grasped).toBe(true);
    expect(d.fixtures.bowl![1]).toBeCloseTo(-0.1, 6);
    expect(d.ee[2]).toBeCloseTo(0.6, 6);
  });
});

describe('pick_place annotator (pure)', () => {
  const task = getTask('pick_place');
  const bowl: Vec3 = [0.0, 0.15, T];
  const start: WorldState = { ee: [0, 0, T + 0.2], opening: 0.106, objects: { cube: obj([0.1, -0.1, T + 0.02]) }, fixtures: { bowl } };
  const ctx: EpisodeContext = { start };
  const at = (ee: Vec3, cube: ObjectState, opening = 0.106): WorldState => ({ ee, opening, objects: { cube }, fixtures: { bowl } });
  const stage = (w: WorldState): string => task.stageNames[task.annotate(w, ctx).stage]!;

  it('reads each stage from contacts, heights and positions', () => {
    expect(stage(start)).toBe('reach');
    expect(stage(at([0.1, -0.1, T + 0.02], obj([0.1, -0.1, T + 0.02])))).toBe('grasp');
    expect(stage(at([0.1, -0.1, T + 0.02], obj([0.1, -0.1, T + 0.02], 'both'), 0.04))).toBe('grasp');
    expect(stage(at([0.1, -0.1, T + 0.05], obj([0.1, -0.1, T + 0.05], 'both'), 0.04))).toBe('lift');
    expect(stage(at([0.1, -0.05, T + 0.12], obj([0.1, -0.05, T + 0.12], 'both'), 0.04))).toBe('carry');
    expect(stage(at([0.0, 0.15, T + 0.12], obj([0.0, 0.15, T + 0.12], 'both'), 0.04))).toBe('place');
    const released = at([0.0, 0.15, T + 0.05], obj([0.0, 0.15, T + 0.028]), 0.06);
    expect(stage(released)).toBe('place');
    expect(task.isSuccess(released, ctx)).toBe(true);
    expect(task.annotate(released, ctx).progress).toBe(1);
  });

  it('goes back to reach when the cube is dropped mid-carry, and is not a success next to the bowl', () => {
    const carrying = at([0.05, 0.0, T + 0.12], obj([0.05, 0.0, T + 0.12], 'both'), 0.04);
    const falling = at([0.05, 0.0, T + 0.12], obj([0.05, 0.0, T + 0.07]), 0.08);
    const fallen = at([0.05, 0.0, T + 0.12], obj([0.05, 0.0, T + 0.02]), 0.1);
    expect([stage(carrying), stage(falling), stage(fallen)]).toEqual(['carry', 'reach', 'reach']);
    expect(task.annotate(fallen, ctx).progress).toBeLessThan(task.annotate(carrying, ctx).progress);
    const beside = at([0.13, 0.15, T + 0.06], obj([0.13, 0.15, T + 0.02]), 0.06);
    expect(task.isSuccess(beside, ctx)).toBe(false);
  });

  it('composes progress as the priors before the stage plus the prior times tau', () => {
    const p = [0.2, 0.3, 0.5];
    expect(composeProgress(p, 0, 0)).toBe(0);
    expect(composeProgress(p, 1, 0.5)).toBeCloseTo(0.35, 12);
    expect(composeProgress(p, 2, 1)).toBeCloseTo(1, 12);
    expect(composeProgress(p, 2, 7)).toBeCloseTo(1, 12);
  });

  it('flags objects off the table', () => {
    expect(offTable(obj([0, 0, T + 0.02]))).toBe(false);
    expect(offTable(obj([0.5, 0, T + 0.02]))).toBe(true);
    expect(offTable(obj([0, 0, T - 0.2]))).toBe(true);
  });
});

describe('stack_three annotator (pure)', () => {
  const task = getTask('stack_three');
  const base: Vec3 = [0, 0, T + 0.025];
  const onBase: Vec3 = [0, 0, T + 0.07];
  const onA: Vec3 = [0, 0, T + 0.11];
  const start: WorldState = {
    ee: [0, 0, T + 0.2],
    opening: 0.106,
    objects: { base: obj(base), cube_a: obj([0.1, 0.1, T + 0.02]), cube_b: obj([-0.1, 0.1, T + 0.02]) },
    fixtures: {},
  };
  const ctx: EpisodeContext = { start };
  const w = (ee: Vec3, a: ObjectState, b: ObjectState, opening = 0.106): WorldState => ({
    ee,
    opening,
    objects: { base: obj(base), cube_a: a, cube_b: b },
    fixtures: {},
  });
  const stage = (s: WorldState): string => task.stageNames[task.annotate(s, ctx).stage]!;
  const bStart = obj([-0.1, 0.1, T + 0.02]);

  it('reads each stage of the tower', () => {
    expect(stage(start)).toBe('reach_a');
    expect(stage(w([0.1, 0.1, T + 0.02], obj([0.1, 0.1, T + 0.02], 'both'), bStart, 0.04))).toBe('grasp_a');
    expect(stage(w([0.05, 0.05, T + 0.12], obj([0.05, 0.05, T + 0.12], 'both'), bStart, 0.04))).toBe('stack_a');
    expect(stage(w([0, 0, T + 0.07], obj(onBase, 'both'), bStart, 0.04))).toBe('stack_a');
    expect(stage(w([0, 0, T + 0.15], obj(onBase), bStart))).toBe('reach_b');
    expect(stage(w([-0.1, 0.1, T + 0.02], obj(onBase), obj([-0.1, 0.1, T + 0.02], 'left')))).toBe('grasp_b');
    expect(stage(w([-0.05, 0.05, T + 0.15], obj(onBase), obj([-0.05, 0.05, T + 0.15], 'both'), 0.04))).toBe('stack_b');
    expect(stage(w([0, 0, T + 0.11], obj(onBase), obj(onA, 'both'), 0.04))).toBe('stack_b');
    const done = w([0, 0, T + 0.2], obj(onBase), obj(onA), 0.06);
    expect(stage(done)).toBe('retreat');
    expect(task.isSuccess(done, ctx)).toBe(true);
    expect(task.annotate(done, ctx).progress).toBe(1);
    // Released but the gripper still at the tower: retreat has begun, not finished.
    expect(task.isSuccess(w([0, 0, T + 0.14], obj(onBase), obj(onA), 0.06), ctx)).toBe(false);
  });

  it('goes back when cube B is dropped or cube A is knocked off the base', () => {
    expect(stage(w([-0.05, 0.05, T + 0.15], obj(onBase), obj([-0.05, 0.05, T + 0.02]), 0.1))).toBe('reach_b');
    expect(stage(w([0, 0, T + 0.2], obj([0.06, 0.0, T + 0.02]), obj(onA)))).toBe('reach_a');
  });
});

describe('annotator on simulated episodes', () => {
  it('gives the expert stages in order on clean episodes of both tasks', async () => {
    for (const id of TASK_IDS) {
      const env = await SimEnv.create({ task: id });
      for (const seed of [0, 1]) {
        const r = rolloutExpert(env, 'expert', seed);
        expect(r.success, `${id} seed ${seed}`).toBe(true);
        expect(
          runs(r.stageAfter).map((k) => env.task.stageNames[k]),
          `${id} seed ${seed}`,
        ).toEqual([...env.task.stageNames]);
        expect(r.progressAfter.every((p) => p >= 0 && p <= 1)).toBe(true);
        expect(r.progressAfter.at(-1)).toBe(1);
        // Progress climbs: it ends far above where it starts, and never falls by more than 0.02 a step.
        for (let t = 1; t < r.progressAfter.length; t++) expect(r.progressAfter[t]! - r.progressAfter[t - 1]!).toBeGreaterThan(-0.02);
      }
      env.close();
    }
  });

  it('goes back a stage when the gripper lets go of the cube mid-carry', async () => {
    const env = await SimEnv.create({ task: 'pick_place', seed: 3 });
    let obs = env.observation;
    const expert = new ScriptedExpert(env.task, { preset: 'custom', seed: 3, flaws: [], knobs: CLEAN_KNOBS }, { stepM: 0.025 });
    let info = env.info();
    while (info.stageName !== 'carry') {
      const r = env.step(expert.act(obs.state));
      obs = r.observation;
      info = r.info;
      expect(r.terminated || r.truncated).toBe(false);
    }
    env.step([0, 0, 0, 1]);
    const stages: string[] = [];
    for (let i = 0; i < 8; i++) stages.push(env.step([0, 0, 0, -1]).info.stageName);
    expect(stages.at(-1)).toBe('reach');
    expect(env.world().objects.cube!.pos[2]).toBeLessThan(TABLE_TOP_Z + 0.025);
    env.close();
  });

  it('an expert told to drop and recover shows the regression and still succeeds', async () => {
    const env = await SimEnv.create({ task: 'pick_place' });
    const plan: ExpertPlan = { preset: 'custom', seed: 4, flaws: ['drop'], knobs: { ...CLEAN_KNOBS, drop: 'recover' } };
    const r = rolloutExpert(env, plan, 4);
    const names = runs(r.stageAfter).map((k) => env.task.stageNames[k]);
    const carry = names.indexOf('carry');
    expect(carry).toBeGreaterThan(0);
    expect(names[carry + 1]).toBe('reach');
    expect(r.success).toBe(true);
    env.close();
  });
});

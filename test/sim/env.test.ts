// SimEnv: physics sanity (objects rest, the gripper lifts a cube), determinism, episode ends
// (success, truncation), option checks, snapshots for the renderer and domain randomisation.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import { SimEnv, type StepResult } from '../../sim/env.ts';
import { rolloutExpert } from '../../sim/expert.ts';
import type { MujocoSim } from '../../sim/mujoco.ts';
import { SeededRandom } from '../../core/random.ts';
import { TABLE_TOP_Z } from '../../sim/scenes/workcell.ts';
import type { Renderer, SceneSnapshot, Vec3 } from '../../sim/types.ts';

function expectCode(fn: () => unknown, code: Parameters<typeof isStagewardError>[1]): void {
  try {
    fn();
  } catch (err) {
    expect(isStagewardError(err, code), String(err)).toBe(true);
    return;
  }
  throw new Error(`expected ${code}`);
}

/** Proportional move of the grip point towards `goal` with gripper command `g`, for `n` steps. */
function moveTo(env: SimEnv, goal: Vec3, g: number, n: number): StepResult {
  let r: StepResult | null = null;
  for (let i = 0; i < n; i++) {
    const ee = env.world().ee;
    r = env.step([0, 1, 2].map((k) => Math.max(-1, Math.min(1, ((goal[k]! - ee[k]!) * 0.8) / 0.025))).concat(g));
  }
  return r!;
}

describe('SimEnv physics', () => {
  let env: SimEnv;
  beforeAll(async () => {
    env = await SimEnv.create({ task: 'pick_place', seed: 1 });
  });
  afterAll(() => env.close());

  it('objects rest on the table without drifting while the gripper idles (both tasks)', async () => {
    for (const task of ['pick_place', 'stack_three']) {
      const e = await SimEnv.create({ task, seed: 4 });
      const before = e.world();
      for (let i = 0; i < 30; i++) e.step([0, 0, 0, -1]);
      for (const [name, o] of Object.entries(e.world().objects)) {
        const b = before.objects[name]!.pos;
        expect(Math.hypot(o.pos[0] - b[0], o.pos[1] - b[1], o.pos[2] - b[2]), `${task} ${name}`).toBeLessThan(1e-3);
        expect(o.pos[2]).toBeGreaterThan(TABLE_TOP_Z);
      }
      e.close();
    }
  });

  it('the gripper grasps the cube and lifts it off the table', () => {
    env.reset(2);
    const cube = env.world().objects.cube!.pos;
    moveTo(env, [cube[0], cube[1], cube[2] + 0.07], -1, 25);
    moveTo(env, [cube[0], cube[1], cube[2]], -1, 8);
    moveTo(env, [cube[0], cube[1], cube[2]], 1, 4);
    const r = moveTo(env, [cube[0], cube[1], cube[2] + 0.1], 1, 10);
    const w = env.world();
    expect(w.objects.cube!.grasped).toBe(true);
    expect(w.objects.cube!.pos[2] - cube[2]).toBeGreaterThan(0.08);
    expect(r.info.contacts.grasped).toEqual(['cube']);
    expect(r.observation.state[env.stateNames.indexOf('cube_grasped')]).toBe(1);
    // Holding still: the cube does not slip.
    const z = w.objects.cube!.pos[2];
    moveTo(env, [cube[0], cube[1], cube[2] + 0.1], 1, 10);
    expect(Math.abs(env.world().objects.cube!.pos[2] - z)).toBeLessThan(0.005);
  });

  it('moves the end effector at most maxEeSpeedMps / controlHz per step and keeps it above the table', () => {
    env.reset(3);
    const start = env.world().ee;
    moveTo(env, start, -1, 3);
    const a = env.world().ee;
    env.step([1, 0, 0, -1]);
    env.step([1, 0, 0, -1]);
    const b = env.world().ee;
    expect(b[0] - a[0]).toBeGreaterThan(0.04);
    expect(b[0] - a[0]).toBeLessThan(0.0505);
    for (let i = 0; i < 40; i++) env.step([0, 0, -1, -1]);
    expect(env.world().ee[2]).toBeGreaterThan(TABLE_TOP_Z + 0.01);
  });
});

describe('SimEnv episodes', () => {
  it('is deterministic: the same seed and actions give identical states, in a fresh env too', async () => {
    const run = async (): Promise<Float32Array[]> => {
      const env = await SimEnv.create({ task: 'pick_place', seed: 11 });
      const rng = new SeededRandom(5);
      const out = [env.observation.state];
      for (let i = 0; i < 40; i++)
        out.push(env.step([rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1), rng.range(-1, 1)]).observation.state);
      env.close();
      return out;
    };
    const a = await run();
    const b = await run();
    expect(b).toEqual(a);
    // Different seeds give different layouts.
    const env = await SimEnv.create({ task: 'pick_place', seed: 12 });
    expect(env.observation.state).not.toEqual(a[0]);
    expect(env.reset(11)).toEqual({ frames: {}, state: a[0] });
    env.close();
  });

  it('truncates at maxSteps and refuses steps after the end', async () => {
    const env = await SimEnv.create({ task: 'stack_three', seed: 0, maxSteps: 5 });
    const results = Array.from({ length: 5 }, () => env.step([0, 0, 0, 0]));
    expect(results.map((r) => r.truncated)).toEqual([false, false, false, false, true]);
    expect(results.every((r) => !r.terminated && r.reward === 0)).toBe(true);
    expectCode(() => env.step([0, 0, 0, 0]), 'SW_ERR_EPISODE_ENDED');
    env.reset();
    expect(env.episodeSeed).toBe(1);
    expect(env.step([0, 0, 0, 0]).truncated).toBe(false);
    env.close();
    expectCode(() => env.reset(0), 'SW_ERR_EPISODE_ENDED');
  });

  it('terminates on success with a sparse reward of 1 on that step only', async () => {
    const env = await SimEnv.create({ task: 'pick_place', seed: 0 });
    const r = rolloutExpert(env, 'expert', 0);
    expect(r.success).toBe(true);
    expect(r.last!.terminated).toBe(true);
    expect(r.last!.truncated).toBe(false);
    expect(r.last!.info.success).toBe(true);
    expect(r.reward.reduce((a, b) => a + b, 0)).toBe(1);
    expect(r.reward.at(-1)).toBe(1);
    expect(r.last!.info.trueProgress).toBe(1);
    env.close();
  });

  it('runs to the time limit after a success when terminateOnSuccess is false, with the reward once', async () => {
    const env = await SimEnv.create({ task: 'pick_place', seed: 0, maxSteps: 150, terminateOnSuccess: false });
    const r = rolloutExpert(env, 'expert', 0);
    const first = r.reward.indexOf(1);
    expect(r.success).toBe(true);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(149);
    expect(r.length).toBe(150);
    expect(r.last!.terminated).toBe(false);
    expect(r.last!.truncated).toBe(true);
    expect(r.reward.reduce((a, b) => a + b, 0)).toBe(1);
    env.close();
  });

  it('terminates, without reward, when an object falls off the table', async () => {
    const env = await SimEnv.create({ task: 'pick_place', seed: 2 });
    // Reach into the simulation to knock the cube off the table (no action can: the hand stays over it).
    const sim = (env as unknown as { sim: MujocoSim }).sim;
    const qpos = sim.data.qpos as Float64Array;
    const adr = (sim.model.jnt_qposadr as Int32Array)[sim.id('joint', 'cube_free')]!;
    qpos[adr] = 0.6;
    const r = env.step([0, 0, 0, -1]);
    expect(r.terminated).toBe(true);
    expect(r.truncated).toBe(false);
    expect(r.reward).toBe(0);
    expect(r.info.failure).toBe('object_off_table');
    env.close();
  });

  it('refuses bad actions and options with stable codes', async () => {
    const env = await SimEnv.create({ task: 'pick_place' });
    expectCode(() => env.step([0, 0, 0]), 'SW_ERR_BAD_VALUE');
    expectCode(() => env.step([0, Number.NaN, 0, 0]), 'SW_ERR_BAD_VALUE');
    expectCode(() => env.reset(-1), 'SW_ERR_BAD_OPTION');
    env.close();
    await expect(SimEnv.create({ task: 'juggle' })).rejects.toSatisfy((e) => isStagewardError(e, 'SW_ERR_TASK_UNKNOWN'));
    await expect(SimEnv.create({ task: 'pick_place', views: ['top'] })).rejects.toSatisfy((e) =>
      isStagewardError(e, 'SW_ERR_VIEW_UNKNOWN'),
    );
    await expect(SimEnv.create({ task: 'pick_place', maxSteps: 0 })).rejects.toSatisfy((e) => isStagewardError(e, 'SW_ERR_BAD_OPTION'));
    await expect(SimEnv.create({ task: 'pick_place', randomization: { lights: -1 } })).rejects.toSatisfy((e) =>
      isStagewardError(e, 'SW_ERR_BAD_OPTION'),
    );
    await expect(SimEnv.create({ task: 'pick_place', randomization: { fog: true } as Record<string, boolean> })).rejects.toSatisfy((e) =>
      isStagewardError(e, 'SW_ERR_BAD_OPTION'),
    );
  });

  it('describes its state, actions and stages for datasets', async () => {
    const env = await SimEnv.create({ task: 'stack_three' });
    const spec = env.datasetSpec();
    expect(spec.fps).toBe(10);
    expect(spec.views).toEqual(['front', 'side', 'wrist']);
    expect(spec.image).toEqual({ height: 96, width: 96 });
    expect(spec.actionNames).toEqual(['ee_dx', 'ee_dy', 'ee_dz', 'gripper']);
    expect(spec.stageNames).toEqual(['reach_a', 'grasp_a', 'stack_a', 'reach_b', 'grasp_b', 'stack_b', 'retreat']);
    expect(env.observation.state.length).toBe(spec.stateNames.length);
    expect(spec.stateNames.slice(0, 4)).toEqual(['ee_x', 'ee_y', 'ee_z', 'gripper_opening']);
    expect(spec.stateNames).toContain('cube_b_grasped');
    env.close();
  });
});

/** A renderer that records what it is asked to draw. */
class RecordingRenderer implements Renderer {
  calls: { scene: SceneSnapshot; camera: string; width: number; height: number }[] = [];
  render(scene: SceneSnapshot, camera: string, width: number, height: number): RawImage {
    this.calls.push({ scene, camera, width, height });
    return { data: new Uint8Array(width * height * 3), width, height, channels: 3 };
  }
}

describe('SimEnv frames and snapshots', () => {
  it('renders every view through the renderer, with cameras, lights and primitive geoms', async () => {
    const renderer = new RecordingRenderer();
    const env = await SimEnv.create({ task: 'pick_place', seed: 3, renderer, image: { width: 64, height: 48 } });
    const r = env.step([0, 0, 0, -1]);
    expect(Object.keys(r.observation.frames)).toEqual(['front', 'side', 'wrist']);
    expect(r.observation.frames.wrist!.width).toBe(64);
    const call = renderer.calls.at(-1)!;
    expect([call.camera, call.width, call.height]).toEqual(['wrist', 64, 48]);
    const snap = call.scene;
    expect(snap.cameras.map((c) => c.name).sort()).toEqual(['front', 'side', 'wrist']);
    expect(snap.lights.length).toBe(2);
    expect(snap.lights.some((l) => l.directional && l.castShadow)).toBe(true);
    expect(new Set(snap.geoms.map((g) => g.kind))).toEqual(new Set(['plane', 'box', 'cylinder']));
    // The cube is red; the bowl is blue.
    expect(snap.geoms.some((g) => g.kind === 'box' && g.rgba[0] > 0.7 && g.rgba[1] < 0.3 && Math.abs(g.size[0] - 0.02) < 1e-9)).toBe(true);
    // The wrist camera looks forward and down from just behind the fingers, the front camera at the table.
    const wrist = snap.cameras.find((c) => c.name === 'wrist')!;
    const hand = env.world().ee;
    const wristLook: Vec3 = [-wrist.mat[2], -wrist.mat[5], -wrist.mat[8]];
    expect(wristLook[2]).toBeLessThan(-0.6);
    expect(wristLook[0]).toBeGreaterThan(0.5);
    expect(Math.hypot(wrist.pos[0] - hand[0], wrist.pos[1] - hand[1], wrist.pos[2] - hand[2])).toBeLessThan(0.1);
    const front = snap.cameras.find((c) => c.name === 'front')!;
    const look: Vec3 = [-front.mat[2], -front.mat[5], -front.mat[8]];
    const toTable: Vec3 = [-front.pos[0], -front.pos[1], TABLE_TOP_Z + 0.06 - front.pos[2]];
    const cos = (look[0] * toTable[0] + look[1] * toTable[1] + look[2] * toTable[2]) / Math.hypot(...toTable);
    expect(cos).toBeGreaterThan(0.99);
    env.close();
  });

  it('omits frames without a renderer, and renders only the chosen views', async () => {
    const env = await SimEnv.create({ task: 'pick_place' });
    expect(env.step([0, 0, 0, 0]).observation.frames).toEqual({});
    env.close();
    const renderer = new RecordingRenderer();
    const one = await SimEnv.create({ task: 'pick_place', renderer, views: ['wrist'] });
    expect(Object.keys(one.step([0, 0, 0, 0]).observation.frames)).toEqual(['wrist']);
    one.close();
  });

  it('randomises looks by seed when asked, and distractors do not change the physics', async () => {
    const plain = await SimEnv.create({ task: 'pick_place', seed: 5 });
    const rand = await SimEnv.create({
      task: 'pick_place',
      seed: 5,
      randomization: { lights: true, colors: true, cameraJitter: true, distractors: 2 },
    });
    const a = plain.snapshot();
    const b = rand.snapshot();
    expect(b.geoms.length).toBe(a.geoms.length + 6);
    expect(b.lights[0]!.pos).not.toEqual(a.lights[0]!.pos);
    expect(b.cameras.find((c) => c.name === 'front')!.pos).not.toEqual(a.cameras.find((c) => c.name === 'front')!.pos);
    expect(b.geoms[0]!.rgba).not.toEqual(a.geoms[0]!.rgba);
    // Another seed, other looks; the same seed, the same looks.
    rand.reset(6);
    const c = rand.snapshot();
    expect(c.lights[0]!.pos).not.toEqual(b.lights[0]!.pos);
    rand.reset(5);
    expect(rand.snapshot()).toEqual(b);
    // Same layout and same dynamics with or without the distractors.
    plain.reset(5);
    const rng1 = new SeededRandom(8);
    const rng2 = new SeededRandom(8);
    for (let i = 0; i < 20; i++) {
      const s1 = plain.step([rng1.range(-1, 1), rng1.range(-1, 1), rng1.range(-1, 1), 1]).observation.state;
      const s2 = rand.step([rng2.range(-1, 1), rng2.range(-1, 1), rng2.range(-1, 1), 1]).observation.state;
      expect(s2).toEqual(s1);
    }
    plain.close();
    rand.close();
  });
});

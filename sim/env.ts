// A gym-like simulated environment: `SimEnv.create`, `reset(seed)`, `step(action)`, `close()`.
// Action (4 floats in [-1, 1]): end-effector delta x, y, z (times `maxEeSpeedMps / controlHz`
// metres per control step, the mocap target moved linearly over the physics substeps) and the
// gripper command (-1 open, +1 close). Observation: frames per view (only with a renderer) and
// observation.state (see `stateNames`). Reward is sparse: 1 on the step that succeeds, else 0.
// Each reset rebuilds the scene from its seed, so the same seed and actions give the same states.

import { StagewardError } from '../core/errors.ts';
import type { RawImage } from '../core/image.ts';
import { MujocoSim, loadMujoco, type Mujoco } from './mujoco.ts';
import { resolveRandomization, type RandomizationOptions, type RandomizationStrengths } from './scenes/appearance.ts';
import { fingerTarget, gripperOpening, HAND_LIMITS, WORKCELL_NAMES } from './scenes/workcell.ts';
import { SnapshotBuilder } from './snapshot.ts';
import { getTask } from './tasks/index.ts';
import { encodeState, offTable, stateNames, type EpisodeContext, type SimTask, type TaskId, type WorldState } from './tasks/task.ts';
import type { DatasetSpec } from '../datasets/types.ts';
import type { Renderer, SceneSnapshot, Vec3 } from './types.ts';

export const ROBOT_TYPE = 'stageward_mocap_gripper';
export const ACTION_NAMES = ['ee_dx', 'ee_dy', 'ee_dz', 'gripper'] as const;
export const DEFAULT_VIEWS = ['front', 'side', 'wrist'] as const;

export interface SimEnvOptions {
  task: TaskId | string;
  /** Seed of the first episode (default 0). */
  seed?: number;
  /** Control steps per second (default 10). */
  controlHz?: number;
  /** Episode length limit in control steps (default: the task's budget). */
  maxSteps?: number;
  /** Frame size (default 96 x 96). */
  image?: { width: number; height: number };
  /** Cameras to render (default front, side, wrist). */
  views?: string[];
  /** Without one, observations carry no frames (`frames: {}`). */
  renderer?: Renderer;
  randomization?: RandomizationOptions;
  /** End-effector speed at |action| = 1, m/s (default 0.25). */
  maxEeSpeedMps?: number;
  /**
   * Default true: the episode terminates on the step that succeeds. False: a time-limit-only task (as many
   * benchmarks run): it goes on to the limit, the success reward still comes once, on the first success.
   */
  terminateOnSuccess?: boolean;
}

export interface SimObservation {
  frames: Record<string, RawImage>;
  /** observation.state, float32, in `stateNames` order. */
  state: Float32Array;
}

export interface ContactSummary {
  /** MuJoCo contacts this step. */
  ncon: number;
  /** Per movable object: which finger pads touch it. */
  fingers: Record<string, { left: boolean; right: boolean }>;
  /** Objects held between both pads. */
  grasped: string[];
}

export interface StepInfo {
  trueStage: number;
  stageName: string;
  trueProgress: number;
  success: boolean;
  /** Why the episode cannot be finished any more (an object fell off the table), or null. */
  failure: 'object_off_table' | null;
  contacts: ContactSummary;
}

export interface StepResult {
  observation: SimObservation;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  info: StepInfo;
}

interface SceneIds {
  mocap: number;
  hand: number;
  fingerQpos: [number, number];
  fingerCtrl: [number, number];
  pads: [number, number];
  /** Per movable: body id, first dof of its free joint. */
  movables: { name: string; body: number; dof: number }[];
  fixtures: { name: string; body: number }[];
  /** geom id -> index into movables (or -1). */
  geomToMovable: Int32Array;
}

export class SimEnv {
  readonly task: SimTask;
  readonly stateNames: readonly string[];
  readonly actionNames: readonly string[] = ACTION_NAMES;
  readonly views: readonly string[];
  readonly image: { width: number; height: number };
  readonly controlHz: number;
  readonly maxSteps: number;
  readonly maxEeSpeedMps: number;
  readonly terminateOnSuccess: boolean;
  readonly randomization: RandomizationStrengths;
  private readonly mj: Mujoco;
  private readonly renderer: Renderer | undefined;
  private sim: MujocoSim | null = null;
  private snapshots: SnapshotBuilder | null = null;
  private ids: SceneIds | null = null;
  private ctx: EpisodeContext | null = null;
  private target: Vec3 = [0, 0, 0];
  private gripper = -1;
  private steps = 0;
  private ended = false;
  private succeeded = false;
  private seed = 0;
  private closed = false;
  private latest: SimObservation;

  private constructor(mj: Mujoco, opts: SimEnvOptions) {
    this.mj = mj;
    this.task = getTask(opts.task);
    this.stateNames = stateNames(this.task);
    this.controlHz = positive('controlHz', opts.controlHz ?? 10, 500);
    this.maxSteps = integer('maxSteps', opts.maxSteps ?? this.task.defaultMaxSteps);
    this.maxEeSpeedMps = positive('maxEeSpeedMps', opts.maxEeSpeedMps ?? 0.25, 5);
    this.terminateOnSuccess = opts.terminateOnSuccess ?? true;
    this.image = {
      width: integer('image.width', opts.image?.width ?? 96, 4096),
      height: integer('image.height', opts.image?.height ?? 96, 4096),
    };
    this.views = [...(opts.views ?? DEFAULT_VIEWS)];
    for (const v of this.views) {
      if (!(WORKCELL_NAMES.cameras as readonly string[]).includes(v)) {
        throw new StagewardError('SW_ERR_VIEW_UNKNOWN', `unknown view "${v}" (cameras: ${WORKCELL_NAMES.cameras.join(', ')})`);
      }
    }
    this.renderer = opts.renderer;
    this.randomization = resolveRandomization(opts.randomization);
    this.latest = { frames: {}, state: new Float32Array(this.stateNames.length) };
  }

  /** Load MuJoCo (once per process), check the options and reset to `seed`. */
  static async create(opts: SimEnvOptions): Promise<SimEnv> {
    const env = new SimEnv(await loadMujoco(), opts);
    env.reset(opts.seed ?? 0);
    return env;
  }

  /** The dataset description of what this environment records. */
  datasetSpec(): DatasetSpec {
    return {
      robotType: ROBOT_TYPE,
      fps: this.controlHz,
      views: [...this.views],
      image: { height: this.image.height, width: this.image.width },
      stateNames: [...this.stateNames],
      actionNames: [...this.actionNames],
      stageNames: [...this.task.stageNames],
    };
  }

  /** The observation after the latest reset or step. */
  get observation(): SimObservation {
    return this.latest;
  }

  get episodeSeed(): number {
    return this.seed;
  }

  /** Control steps taken in this episode. */
  get stepCount(): number {
    return this.steps;
  }

  /** Start an episode: rebuild the scene for `seed` (default: the previous seed + 1). */
  reset(seed?: number): SimObservation {
    this.assertOpen();
    const s = seed ?? this.seed + 1;
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff)
      throw new StagewardError('SW_ERR_BAD_OPTION', 'seed must be an integer in [0, 2^32)');
    this.seed = s;
    this.sim?.delete();
    this.sim = null;
    const sim = MujocoSim.fromXmlSync(this.mj, this.task.sceneXml({ seed: s, randomization: this.randomization }));
    this.sim = sim;
    this.ids = sceneIds(sim, this.task);
    this.snapshots = this.renderer ? new SnapshotBuilder(sim) : null;
    const mp = sim.data.mocap_pos as Float64Array;
    this.target = [mp[0]!, mp[1]!, mp[2]!];
    this.gripper = -1;
    this.applyGripper();
    // Let objects settle on the table before the first observation.
    sim.step(Math.round(0.2 / sim.timestep));
    this.steps = 0;
    this.ended = false;
    this.succeeded = false;
    this.ctx = { start: this.world() };
    this.latest = this.observe(this.ctx.start);
    return this.latest;
  }

  step(action: ArrayLike<number>): StepResult {
    this.assertOpen();
    if (this.ended) throw new StagewardError('SW_ERR_EPISODE_ENDED', 'the episode has ended; call reset()');
    if (action.length !== 4)
      throw new StagewardError('SW_ERR_BAD_VALUE', `an action has 4 numbers (${this.actionNames.join(', ')}), got ${action.length}`);
    const a: number[] = [];
    for (let i = 0; i < 4; i++) {
      const x = action[i]!;
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new StagewardError('SW_ERR_BAD_VALUE', `action[${i}] is not a finite number`);
      a.push(Math.min(1, Math.max(-1, x)));
    }
    const sim = this.sim!;
    const substeps = Math.max(1, Math.round(1 / (this.controlHz * sim.timestep)));
    const stepM = this.maxEeSpeedMps / this.controlHz;
    const from = this.target;
    const to: Vec3 = [0, 1, 2].map((k) => clampTo(from[k]! + a[k]! * stepM, HAND_LIMITS.min[k]!, HAND_LIMITS.max[k]!)) as Vec3;
    this.target = to;
    this.gripper = a[3]!;
    this.applyGripper();
    const mocap = this.ids!.mocap;
    for (let i = 1; i <= substeps; i++) {
      const f = i / substeps;
      const mp = sim.data.mocap_pos as Float64Array;
      for (let k = 0; k < 3; k++) mp[3 * mocap + k] = from[k]! + (to[k]! - from[k]!) * f;
      sim.step();
    }
    this.steps++;
    const w = this.world();
    const obs = this.observe(w);
    const info = this.infoFor(w);
    const reward = info.success && !this.succeeded ? 1 : 0;
    this.succeeded ||= info.success;
    const terminated = (info.success && this.terminateOnSuccess) || info.failure !== null;
    const truncated = !terminated && this.steps >= this.maxSteps;
    this.ended = terminated || truncated;
    this.latest = obs;
    return { observation: obs, reward, terminated, truncated, info };
  }

  /** The current state in task terms (grip point, opening, objects with finger contacts). */
  world(): WorldState {
    const sim = this.sim!;
    const ids = this.ids!;
    const d = sim.data;
    const qpos = d.qpos as Float64Array;
    const qvel = d.qvel as Float64Array;
    const touch = ids.movables.map(() => ({ left: false, right: false }));
    for (const c of sim.contacts()) {
      for (const [pad, other] of [
        [c.geom1, c.geom2],
        [c.geom2, c.geom1],
      ] as const) {
        const side = pad === ids.pads[0] ? 'left' : pad === ids.pads[1] ? 'right' : null;
        const m = ids.geomToMovable[other] ?? -1;
        if (side && m >= 0) touch[m]![side] = true;
      }
    }
    const objects: WorldState['objects'] = {};
    ids.movables.forEach((m, i) => {
      const t = touch[i]!;
      objects[m.name] = {
        pos: sim.bodyPos(m.body),
        speed: Math.hypot(qvel[m.dof]!, qvel[m.dof + 1]!, qvel[m.dof + 2]!),
        left: t.left,
        right: t.right,
        grasped: t.left && t.right,
      };
    });
    const fixtures: WorldState['fixtures'] = {};
    for (const f of ids.fixtures) fixtures[f.name] = sim.bodyPos(f.body);
    return {
      ee: sim.bodyPos(ids.hand),
      opening: gripperOpening(qpos[ids.fingerQpos[0]]!, qpos[ids.fingerQpos[1]]!),
      objects,
      fixtures,
    };
  }

  /** Stage, progress, success and contacts of the current state (after reset: of the first observation). */
  info(): StepInfo {
    return this.infoFor(this.world());
  }

  private infoFor(w: WorldState): StepInfo {
    const est = this.task.annotate(w, this.ctx!);
    const fingers: ContactSummary['fingers'] = {};
    const grasped: string[] = [];
    for (const [name, o] of Object.entries(w.objects)) {
      fingers[name] = { left: o.left, right: o.right };
      if (o.grasped) grasped.push(name);
    }
    return {
      trueStage: est.stage,
      stageName: this.task.stageNames[est.stage]!,
      trueProgress: est.progress,
      success: this.task.isSuccess(w, this.ctx!),
      failure: Object.values(w.objects).some(offTable) ? 'object_off_table' : null,
      contacts: { ncon: this.sim!.data.ncon, fingers, grasped },
    };
  }

  /** What the renderer would draw now (cameras, lights, geoms). */
  snapshot(): SceneSnapshot {
    this.assertOpen();
    this.snapshots ??= new SnapshotBuilder(this.sim!);
    return this.snapshots.build();
  }

  /** The episode's start state (right after reset), used to scale progress. */
  get episodeContext(): EpisodeContext {
    return this.ctx!;
  }

  /** Free the simulation; the environment cannot be used afterwards. */
  close(): void {
    this.closed = true;
    this.sim?.delete();
    this.sim = null;
  }

  private observe(w: WorldState): SimObservation {
    const state = encodeState(this.task, w);
    const frames: Record<string, RawImage> = {};
    if (this.renderer) {
      const snap = this.snapshot();
      for (const v of this.views) frames[v] = this.renderer.render(snap, v, this.image.width, this.image.height);
    }
    return { frames, state };
  }

  private applyGripper(): void {
    const ctrl = this.sim!.data.ctrl as Float64Array;
    const t = fingerTarget(this.gripper);
    ctrl[this.ids!.fingerCtrl[0]] = t;
    ctrl[this.ids!.fingerCtrl[1]] = t;
  }

  private assertOpen(): void {
    if (this.closed) throw new StagewardError('SW_ERR_EPISODE_ENDED', 'the environment is closed');
  }
}

function sceneIds(sim: MujocoSim, task: SimTask): SceneIds {
  const m = sim.model;
  const qposadr = m.jnt_qposadr as Int32Array;
  const dofadr = m.jnt_dofadr as Int32Array;
  const bodyJnt = m.body_jntadr as Int32Array;
  const geomBody = m.geom_bodyid as Int32Array;
  const [jl, jr] = WORKCELL_NAMES.fingerJoints.map((n) => qposadr[sim.id('joint', n)]!) as [number, number];
  const movables = task.movables.map((mv) => {
    const body = sim.id('body', mv.name);
    return { name: mv.name, body, dof: dofadr[bodyJnt[body]!]! };
  });
  const geomToMovable = new Int32Array(m.ngeom).fill(-1);
  for (let g = 0; g < m.ngeom; g++) geomToMovable[g] = movables.findIndex((mv) => mv.body === geomBody[g]);
  const mocapBody = sim.id('body', WORKCELL_NAMES.mocap);
  return {
    mocap: (m.body_mocapid as Int32Array)[mocapBody]!,
    hand: sim.id('body', WORKCELL_NAMES.hand),
    fingerQpos: [jl, jr],
    fingerCtrl: WORKCELL_NAMES.fingerActuators.map((n) => sim.id('actuator', n)) as [number, number],
    pads: WORKCELL_NAMES.fingerPads.map((n) => sim.id('geom', n)) as [number, number],
    movables,
    fixtures: task.fixtures.map((name) => ({ name, body: sim.id('body', name) })),
    geomToMovable,
  };
}

function clampTo(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function positive(name: string, x: number, max: number): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0 || x > max)
    throw new StagewardError('SW_ERR_BAD_OPTION', `${name} must be a number in (0, ${max}]`);
  return x;
}

function integer(name: string, x: number, max = 1_000_000): number {
  if (!Number.isInteger(x) || x < 1 || x > max) throw new StagewardError('SW_ERR_BAD_OPTION', `${name} must be an integer in [1, ${max}]`);
  return x;
}

// A scripted expert per task: a state machine over observation.state (approach above the object,
// descend, close, lift, carry, lower, release, retreat), with quality knobs that make good and
// bad demonstrations (speed, action noise, hesitation, regrasp, drop, wrong placement, stopping
// early) and the presets `expert` (clean), `mixed` (>= 40% of episodes flawed, drawn per episode
// from a seed) and `failed` (every episode fails). `meta` records the preset and the flaws.

import { StagewardError } from '../core/errors.ts';
import type { SimEnv, StepResult } from './env.ts';
import { SeededRandom } from '../core/random.ts';
import { BOWL } from './scenes/objects.ts';
import { FINGER_INNER_OPEN, FINGER_TRAVEL, TABLE_TOP_Z } from './scenes/workcell.ts';
import { CUBE_HALF } from './tasks/pick-place.ts';
import { BASE_HALF, RETREAT_CLEARANCE_M, STACK_CUBE_HALF } from './tasks/stack-three.ts';
import { decodeState, type ObservedState, type SimTask } from './tasks/task.ts';
import type { Vec3 } from './types.ts';

export type ExpertPreset = 'expert' | 'mixed' | 'failed';
export const EXPERT_PRESETS: readonly ExpertPreset[] = ['expert', 'mixed', 'failed'];
export type Flaw = 'slow' | 'noise' | 'hesitation' | 'regrasp' | 'drop' | 'drop_abandon' | 'wrong_placement' | 'stop_early';

export interface ExpertKnobs {
  /** Scale of the cruise speed, (0, 1]. */
  speed: number;
  /** Std of Gaussian noise added to the motion commands (action units). */
  actionNoise: number;
  /** Chance per control step of starting a pause, and the longest pause in steps. */
  hesitation: { probability: number; maxSteps: number };
  /** Open and grasp again once, partway through the first lift. */
  regrasp: boolean;
  /** Release the object mid-carry: then pick it up again ('recover') or give up ('abandon'). */
  drop: 'none' | 'recover' | 'abandon';
  /** Put the (last) object down next to its target instead of on it. */
  wrongPlacement: boolean;
  /** Freeze before finishing. */
  stopEarly: boolean;
}

export const CLEAN_KNOBS: ExpertKnobs = {
  speed: 1,
  actionNoise: 0,
  hesitation: { probability: 0, maxSteps: 0 },
  regrasp: false,
  drop: 'none',
  wrongPlacement: false,
  stopEarly: false,
};

export interface ExpertPlan {
  preset: ExpertPreset | 'custom';
  seed: number;
  flaws: Flaw[];
  knobs: ExpertKnobs;
}

/** Draw one episode's knobs for a preset (seeded: the same seed gives the same plan). */
export function planEpisode(preset: ExpertPreset, seed: number): ExpertPlan {
  const rng = new SeededRandom(seed).fork(77);
  const flaws: Flaw[] = [];
  if (preset === 'mixed' && rng.chance(0.6)) {
    const benign: Flaw[] = ['slow', 'noise', 'hesitation', 'regrasp', 'drop'];
    const fatal: Flaw[] = ['drop_abandon', 'wrong_placement', 'stop_early'];
    flaws.push(rng.chance(0.35) ? rng.pick(fatal) : rng.pick(benign));
    if (rng.chance(0.3)) {
      const extra = rng.pick(benign);
      if (!flaws.includes(extra) && !(extra === 'drop' && flaws.includes('drop_abandon'))) flaws.push(extra);
    }
  } else if (preset === 'failed') {
    flaws.push(rng.pick(['drop_abandon', 'wrong_placement', 'stop_early'] as const));
    if (rng.chance(0.4)) flaws.push(rng.pick(['slow', 'noise', 'hesitation'] as const));
  } else if (preset !== 'expert' && preset !== 'mixed') {
    throw new StagewardError('SW_ERR_BAD_OPTION', `unknown expert preset "${String(preset)}" (known: ${EXPERT_PRESETS.join(', ')})`);
  }
  const k: ExpertKnobs = { ...CLEAN_KNOBS, hesitation: { ...CLEAN_KNOBS.hesitation } };
  for (const f of flaws) {
    if (f === 'slow') k.speed = rng.range(0.45, 0.7);
    if (f === 'noise') k.actionNoise = rng.range(0.1, 0.25);
    if (f === 'hesitation') k.hesitation = { probability: rng.range(0.05, 0.1), maxSteps: rng.int(3, 8) };
    if (f === 'regrasp') k.regrasp = true;
    if (f === 'drop') k.drop = 'recover';
    if (f === 'drop_abandon') k.drop = 'abandon';
    if (f === 'wrong_placement') k.wrongPlacement = true;
    if (f === 'stop_early') k.stopEarly = true;
  }
  return { preset, seed, flaws, knobs: k };
}

type Phase = 'approach' | 'descend' | 'close' | 'lift' | 'carry' | 'drop' | 'lower' | 'release' | 'rise' | 'done' | 'stopped';
const PHASES_BEFORE_FINISH: Phase[] = ['approach', 'descend', 'close', 'lift', 'carry', 'lower'];
/** A phase that has not met its goal after this many steps moves on anyway. */
const PHASE_TIMEOUT_STEPS = 40;
const HOVER_M = 0.07;
const RELEASE_COMMAND = -0.2;
/** Largest motion command of the clean expert (0.6 of the env's top speed). */
const CRUISE_ACTION = 0.6;

/** One pick-and-put: an object and where its centre goes (read live from the state). */
interface Segment {
  object: string;
  half: number;
  placeAt(s: ObservedState): Vec3;
}

function segmentsFor(task: SimTask): Segment[] {
  if (task.id === 'pick_place') {
    return [
      {
        object: 'cube',
        half: CUBE_HALF,
        placeAt: (s) => [s.fixtures.bowl![0], s.fixtures.bowl![1], TABLE_TOP_Z + BOWL.baseTop + CUBE_HALF + 0.006],
      },
    ];
  }
  const on =
    (below: string, belowHalf: number) =>
    (s: ObservedState): Vec3 => {
      const p = s.objects[below]!.pos;
      return [p[0], p[1], p[2] + belowHalf + STACK_CUBE_HALF + 0.004];
    };
  return [
    { object: 'cube_a', half: STACK_CUBE_HALF, placeAt: on('base', BASE_HALF) },
    { object: 'cube_b', half: STACK_CUBE_HALF, placeAt: on('cube_a', STACK_CUBE_HALF) },
  ];
}

export interface ExpertOptions {
  /** Metres the end effector moves per control step at |action| = 1 (env.maxEeSpeedMps / env.controlHz). */
  stepM: number;
}

/** A scripted policy for one episode: call `act(observation.state)` every control step. */
export class ScriptedExpert {
  readonly plan: ExpertPlan;
  private readonly task: SimTask;
  private readonly stepM: number;
  private readonly rng: SeededRandom;
  private readonly segments: Segment[];
  private seg = 0;
  private phase: Phase = 'approach';
  private phaseSteps = 0;
  private gripper = -1;
  private pause = 0;
  private gripOffset: Vec3 = [0, 0, 0];
  private regraspDone = false;
  private dropDone = false;
  private ungraspedSteps = 0;
  private releaseZ = 0;
  private carryFrom: Vec3 = [0, 0, 0];
  private wrongOffset: [number, number] | null = null;
  private readonly stopAt: { seg: number; phase: Phase; delay: number } | null;

  constructor(task: SimTask, plan: ExpertPlan, opts: ExpertOptions) {
    this.task = task;
    this.plan = plan;
    this.stepM = opts.stepM;
    this.rng = new SeededRandom(plan.seed).fork(91);
    this.segments = segmentsFor(task);
    const last = this.segments.length - 1;
    this.stopAt = plan.knobs.stopEarly
      ? { seg: this.rng.int(0, last), phase: this.rng.pick(PHASES_BEFORE_FINISH), delay: this.rng.int(0, 4) }
      : null;
  }

  /** Facts for the episode's meta: preset, seed, flaws, knobs. */
  get meta(): Record<string, unknown> {
    return { expertPreset: this.plan.preset, expertSeed: this.plan.seed, flaws: [...this.plan.flaws], knobs: this.plan.knobs };
  }

  /** Control steps since the expert stopped for good (finished or gave up); 0 while it works. */
  get idleSteps(): number {
    return this.phase === 'done' || this.phase === 'stopped' ? this.phaseSteps : 0;
  }

  /** The state machine's phase (for logs; the annotator never reads it). */
  get currentPhase(): string {
    return `${this.segments[this.seg]?.object ?? 'none'}:${this.phase}`;
  }

  act(state: ArrayLike<number>): Float32Array {
    const s = decodeState(this.task, state);
    let move = this.control(s);
    const k = this.plan.knobs;
    if (this.phase === 'stopped' || this.phase === 'done') move = [0, 0, 0];
    else {
      if (this.pause > 0) {
        this.pause--;
        move = [0, 0, 0];
      } else if (k.hesitation.probability > 0 && this.rng.chance(k.hesitation.probability)) {
        this.pause = this.rng.int(1, Math.max(1, k.hesitation.maxSteps));
        move = [0, 0, 0];
      }
      if (k.actionNoise > 0) move = move.map((m) => m + this.rng.normal(k.actionNoise)) as Vec3;
    }
    const clip = (x: number): number => Math.min(1, Math.max(-1, x));
    return Float32Array.from([clip(move[0]), clip(move[1]), clip(move[2]), this.gripper]);
  }

  /** Phase logic: returns the motion command before noise and pauses. */
  private control(s: ObservedState): Vec3 {
    this.phaseSteps++;
    if (this.phase === 'stopped' || this.phase === 'done') return [0, 0, 0];
    const seg = this.segments[this.seg]!;
    const obj = s.objects[seg.object]!;
    const ee = s.ee;
    if (this.stopAt && this.stopAt.seg === this.seg && this.stopAt.phase === this.phase && this.phaseSteps > this.stopAt.delay) {
      return this.enter('stopped');
    }
    // A lost object during lift/carry/lower: pick it up again, or give up after a deliberate drop.
    if (this.phase === 'lift' || this.phase === 'carry' || this.phase === 'drop' || this.phase === 'lower') {
      this.ungraspedSteps = obj.grasped ? 0 : this.ungraspedSteps + 1;
      if (this.ungraspedSteps >= 2) {
        this.gripper = -1;
        return this.enter(this.dropDone && this.plan.knobs.drop === 'abandon' ? 'stopped' : 'approach');
      }
    }
    const target = seg.placeAt(s);
    if (this.plan.knobs.wrongPlacement && this.seg === this.segments.length - 1) {
      this.wrongOffset ??= this.pickWrongOffset(target);
      target[0] += this.wrongOffset[0];
      target[1] += this.wrongOffset[1];
      target[2] = TABLE_TOP_Z + seg.half + 0.006;
    }
    const carryZ = Math.max(TABLE_TOP_Z + 0.12, target[2] + 0.06);
    switch (this.phase) {
      case 'approach': {
        this.gripper = preshapeCommand(seg.half);
        const goal: Vec3 = [obj.pos[0], obj.pos[1], obj.pos[2] + HOVER_M];
        // Rise first when low, so the fingers do not sweep through other objects.
        if (ee[2] < obj.pos[2] + HOVER_M - 0.03 && distXY(ee, obj.pos) > 0.02) return this.toward(ee, [ee[0], ee[1], goal[2]]);
        if ((distXY(ee, goal) < 0.006 && Math.abs(ee[2] - goal[2]) < 0.02) || this.timedOut()) this.enter('descend');
        return this.toward(ee, goal);
      }
      case 'descend': {
        const goal: Vec3 = [obj.pos[0], obj.pos[1], obj.pos[2]];
        if ((distXY(ee, goal) < 0.006 && Math.abs(ee[2] - goal[2]) < 0.005) || this.timedOut()) this.enter('close');
        return this.toward(ee, goal);
      }
      case 'close': {
        this.gripper = 1;
        if ((obj.grasped && this.phaseSteps >= 2) || this.phaseSteps >= 6) {
          this.gripOffset = [ee[0] - obj.pos[0], ee[1] - obj.pos[1], ee[2] - obj.pos[2]];
          this.enter('lift');
        }
        return [0, 0, 0];
      }
      case 'lift': {
        const lifted = obj.pos[2] - (TABLE_TOP_Z + seg.half);
        if (this.plan.knobs.regrasp && !this.regraspDone && lifted > 0.025) {
          this.regraspDone = true;
          this.gripper = -1;
          return this.enter('approach');
        }
        const goal: Vec3 = [ee[0], ee[1], carryZ + this.gripOffset[2]];
        if (Math.abs(ee[2] - goal[2]) < 0.015 || this.timedOut()) {
          this.carryFrom = obj.pos;
          this.enter('carry');
        }
        return this.toward(ee, goal);
      }
      case 'carry': {
        const goal = add(this.gripOffset, [target[0], target[1], carryZ]);
        if (this.plan.knobs.drop !== 'none' && !this.dropDone && this.shouldDrop(obj.pos, target)) {
          // Halt for a step, then let go: the object falls straight down, clear of the target.
          this.dropDone = true;
          return this.enter('drop');
        }
        if (distXY(ee, goal) < 0.006 || this.timedOut()) this.enter('lower');
        return this.toward(ee, goal);
      }
      case 'lower': {
        const goal = add(this.gripOffset, target);
        if (Math.abs(ee[2] - goal[2]) < 0.004 || this.timedOut()) {
          this.releaseZ = ee[2];
          this.enter('release');
        }
        return this.toward(ee, goal);
      }
      case 'drop': {
        if (this.phaseSteps >= 2) this.gripper = -1;
        return [0, 0, 0];
      }
      case 'release': {
        this.gripper = RELEASE_COMMAND;
        if (this.phaseSteps >= 3) this.enter('rise');
        return [0, 0, 0];
      }
      case 'rise': {
        const last = this.seg === this.segments.length - 1;
        const goalZ = this.releaseZ + (last ? RETREAT_CLEARANCE_M + 0.04 : HOVER_M);
        if (Math.abs(ee[2] - goalZ) < 0.01 || this.timedOut()) {
          if (last) this.enter('done');
          else {
            this.seg++;
            this.enter('approach');
          }
        }
        return this.toward(ee, [ee[0], ee[1], goalZ]);
      }
      default:
        return [0, 0, 0];
    }
  }

  /** Mid-carry, far enough from the target that the object cannot land on it. */
  private shouldDrop(pos: Vec3, target: Vec3): boolean {
    const clearance = this.task.id === 'pick_place' ? 0.15 : 0.09;
    const total = distXY(this.carryFrom, target);
    const carried = distXY(this.carryFrom, pos);
    return carried >= Math.max(0.02, Math.min(0.4 * total, total - clearance));
  }

  /**
   * Next to the target, on the table: 13 cm from the bowl; 8 cm from the tower across the fingers'
   * axis or 13 cm along it (the palm is 15 cm wide and must not hit the tower).
   */
  private pickWrongOffset(target: Vec3): [number, number] {
    const [dx, dy] = this.task.id === 'pick_place' ? [0.13, 0.13] : [0.08, 0.13];
    const options: [number, number][] = [
      [dx, 0],
      [-dx, 0],
      [0, dy],
      [0, -dy],
    ].filter(([x, y]) => Math.abs(target[0] + x!) < 0.2 && Math.abs(target[1] + y!) < 0.3) as [number, number][];
    return this.rng.pick(options.length ? options : [[-Math.sign(target[0]) * dx, 0]]);
  }

  /** Straight towards `goal`: proportional near it, at cruise speed (times the speed knob) further away. */
  private toward(ee: Vec3, goal: Vec3): Vec3 {
    const gain = 0.85 / this.stepM;
    const v: Vec3 = [(goal[0] - ee[0]) * gain, (goal[1] - ee[1]) * gain, (goal[2] - ee[2]) * gain];
    const cap = CRUISE_ACTION * this.plan.knobs.speed;
    const n = Math.hypot(v[0], v[1], v[2]);
    return n > cap ? [(v[0] * cap) / n, (v[1] * cap) / n, (v[2] * cap) / n] : v;
  }

  private enter(next: Phase): Vec3 {
    // Stopping early: freeze at the latest when the chosen phase ends.
    const stop = this.stopAt && this.stopAt.seg === this.seg && this.stopAt.phase === this.phase;
    const p: Phase = stop ? 'stopped' : next;
    this.phase = p;
    this.phaseSteps = 0;
    if (p !== 'lift' && p !== 'carry' && p !== 'drop' && p !== 'lower') this.ungraspedSteps = 0;
    return [0, 0, 0];
  }

  private timedOut(): boolean {
    return this.phaseSteps > PHASE_TIMEOUT_STEPS;
  }
}

/** An expert for one episode of `task`, its knobs drawn from `preset` and `seed`. */
export function createExpert(task: SimTask, preset: ExpertPreset, seed: number, opts: ExpertOptions): ScriptedExpert {
  return new ScriptedExpert(task, planEpisode(preset, seed), opts);
}

/** Gripper command that opens the pads 1.5 cm wider than the object on each side (less sweep near other objects). */
function preshapeCommand(half: number): number {
  const q = FINGER_INNER_OPEN - (half + 0.015);
  return Math.max(-1, Math.min(1, (2 * q) / FINGER_TRAVEL - 1));
}

function distXY(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}

export interface ExpertRollout {
  success: boolean;
  /** Control steps taken. */
  length: number;
  /** Per step t: observation.state before action t, and action t. */
  states: Float32Array[];
  actions: Float32Array[];
  /** Per step t: the annotator's stage and progress of the state after action t, and the reward. */
  stageAfter: number[];
  progressAfter: number[];
  reward: number[];
  last: StepResult | null;
  meta: Record<string, unknown>;
}

/**
 * Reset `env` to `seed` and run one expert episode until it terminates, is truncated, or the
 * expert has been idle for `maxIdleSteps` (default: never stop early). Frames are not kept.
 */
export function rolloutExpert(
  env: SimEnv,
  preset: ExpertPreset | ExpertPlan,
  seed: number,
  opts: { maxIdleSteps?: number } = {},
): ExpertRollout {
  let obs = env.reset(seed);
  const plan = typeof preset === 'string' ? planEpisode(preset, seed) : preset;
  const expert = new ScriptedExpert(env.task, plan, { stepM: env.maxEeSpeedMps / env.controlHz });
  const out: ExpertRollout = {
    success: false,
    length: 0,
    states: [],
    actions: [],
    stageAfter: [],
    progressAfter: [],
    reward: [],
    last: null,
    meta: { seed, ...expert.meta },
  };
  for (;;) {
    const action = expert.act(obs.state);
    out.states.push(obs.state);
    out.actions.push(action);
    const r = env.step(action);
    out.last = r;
    out.length++;
    out.stageAfter.push(r.info.trueStage);
    out.progressAfter.push(r.info.trueProgress);
    out.reward.push(r.reward);
    obs = r.observation;
    if (r.info.success) out.success = true;
    if (r.terminated || r.truncated) break;
    if (opts.maxIdleSteps !== undefined && expert.idleSteps >= opts.maxIdleSteps) break;
  }
  return out;
}

// Rollouts of a state policy, as a learner produces them: the policy's action plus Gaussian
// exploration noise (a_t = pi(s_t) + eps_t, eps_t ~ N(0, noise^2) on every action component, as the
// RL learner explores), with optional perturbation bursts of what learners do that scripted
// demonstrations never show:
//
//   stall      the hand stops (zero motion, the gripper held) for 8-30 steps
//   jitter     strong noise (std 0.6) on the motion for 5-15 steps
//   oscillate  back and forth along one direction, flipping every 2 steps, for 8-20 steps
//   push       gripper open, the hand drives through the active object's position and on, for 8-18 steps:
//              a held object drops, a resting one is shoved away from where the policy wanted it
//   mixed      each burst draws one of the four
//
// A burst starts with chance BURST_CHANCE per step outside a burst. Everything is drawn from one
// seeded generator per episode, so a rollout is a function of (policy, seed, options).

import { StagewardError } from '../core/errors.ts';
import { SeededRandom, hashSeed } from '../core/random.ts';
import { decodeState, type SimTask } from './tasks/task.ts';

/** Anything that maps observation.state to an action (ee dx, dy, dz, gripper), e.g. a saved policy. */
export interface StatePolicy {
  act(state: Float32Array): Float32Array;
}

export const PERTURBATIONS = ['none', 'stall', 'jitter', 'oscillate', 'push', 'mixed'] as const;
export type Perturbation = (typeof PERTURBATIONS)[number];
type BurstKind = Exclude<Perturbation, 'none' | 'mixed'>;
const BURST_KINDS: readonly BurstKind[] = ['stall', 'jitter', 'oscillate', 'push'];

/** Chance per control step, outside a burst, that a perturbation burst starts. */
export const BURST_CHANCE = 0.04;
const BURST_STEPS: Record<BurstKind, [number, number]> = { stall: [8, 30], jitter: [5, 15], oscillate: [8, 20], push: [8, 18] };
const JITTER_STD = 0.6;

export interface RolloutOptions {
  /** Std of the Gaussian noise added to every action component (0 = the policy as it is). */
  noise: number;
  perturb: Perturbation;
}

export function isPerturbation(name: string): name is Perturbation {
  return (PERTURBATIONS as readonly string[]).includes(name);
}

function clip1(x: number): number {
  return Math.min(1, Math.max(-1, x));
}

interface Burst {
  kind: BurstKind;
  left: number;
  /** Unit direction of an oscillation or push. */
  dir: [number, number, number];
  step: number;
}

/** One episode's actor: `act` every control step, `meta` for the recording. */
export class RolloutDriver {
  readonly #task: SimTask;
  readonly #policy: StatePolicy;
  readonly #rng: SeededRandom;
  readonly #o: RolloutOptions;
  #burst: Burst | null = null;
  #gripper = -1;
  readonly #counts: Record<BurstKind, number> = { stall: 0, jitter: 0, oscillate: 0, push: 0 };
  #perturbedSteps = 0;

  constructor(task: SimTask, policy: StatePolicy, seed: number, o: RolloutOptions) {
    if (!(o.noise >= 0) || !Number.isFinite(o.noise))
      throw new StagewardError('SW_ERR_BAD_OPTION', `noise must be a number >= 0, got ${o.noise}`);
    if (!isPerturbation(o.perturb)) throw new StagewardError('SW_ERR_BAD_OPTION', `unknown perturbation "${String(o.perturb)}"`);
    this.#task = task;
    this.#policy = policy;
    this.#rng = new SeededRandom(hashSeed(seed, 0x5eed));
    this.#o = o;
  }

  /** Facts for the episode's meta. */
  get meta(): Record<string, unknown> {
    return { noise: this.#o.noise, perturb: this.#o.perturb, bursts: { ...this.#counts }, perturbed_steps: this.#perturbedSteps };
  }

  act(state: Float32Array): Float32Array<ArrayBuffer> {
    const rng = this.#rng;
    const a = Float32Array.from(this.#policy.act(state));
    for (let k = 0; k < a.length; k++) a[k] = clip1(a[k]! + (this.#o.noise > 0 ? rng.normal(this.#o.noise) : 0));
    if (this.#o.perturb !== 'none') {
      if (this.#burst === null && rng.chance(BURST_CHANCE)) this.#burst = this.#startBurst(state);
      if (this.#burst !== null) this.#perturb(a, state, this.#burst);
    }
    this.#gripper = a[a.length - 1]!;
    return a;
  }

  #startBurst(state: Float32Array): Burst {
    const rng = this.#rng;
    const kind = this.#o.perturb === 'mixed' ? rng.pick(BURST_KINDS) : (this.#o.perturb as BurstKind);
    const [lo, hi] = BURST_STEPS[kind];
    let dir: [number, number, number];
    if (kind === 'push') {
      const s = decodeState(this.#task, state);
      const obj = activeObject(this.#task, s);
      const dx = obj[0] - s.ee[0];
      const dy = obj[1] - s.ee[1];
      const n = Math.hypot(dx, dy);
      const th = n > 1e-6 ? Math.atan2(dy, dx) : rng.range(-Math.PI, Math.PI);
      dir = [Math.cos(th), Math.sin(th), obj[2] < s.ee[2] ? -0.5 : 0];
    } else {
      const th = rng.range(-Math.PI, Math.PI);
      const z = rng.range(-0.5, 0.5);
      const r = Math.sqrt(1 - z * z);
      dir = [r * Math.cos(th), r * Math.sin(th), z];
    }
    this.#counts[kind]++;
    return { kind, left: rng.int(lo, hi), dir, step: 0 };
  }

  #perturb(a: Float32Array, _state: Float32Array, b: Burst): void {
    const rng = this.#rng;
    if (b.kind === 'stall') {
      a[0] = 0;
      a[1] = 0;
      a[2] = 0;
      a[3] = this.#gripper;
    } else if (b.kind === 'jitter') {
      for (let k = 0; k < 3; k++) a[k] = clip1(a[k]! + rng.normal(JITTER_STD));
    } else if (b.kind === 'oscillate') {
      const sign = Math.floor(b.step / 2) % 2 === 0 ? 1 : -1;
      for (let k = 0; k < 3; k++) a[k] = 0.8 * sign * b.dir[k]!;
    } else {
      for (let k = 0; k < 3; k++) a[k] = b.dir[k]!;
      a[3] = -1;
    }
    this.#perturbedSteps++;
    b.step++;
    if (--b.left <= 0) this.#burst = null;
  }
}

/** The object the task needs moved next, roughly: the first movable not yet grasped-and-placed (a push targets it). */
function activeObject(task: SimTask, s: ReturnType<typeof decodeState>): [number, number, number] {
  const names = task.movables.map((m) => m.name).filter((n) => s.objects[n] !== undefined);
  const held = names.find((n) => s.objects[n]!.grasped);
  // pick_place has one cube; stack_three's base stays put, so aim at the lowest cube that is not the base
  const pick = held ?? names.filter((n) => n !== 'base').sort((x, y) => s.objects[x]!.pos[2] - s.objects[y]!.pos[2])[0] ?? names[0];
  if (pick === undefined) throw new StagewardError('SW_ERR_BAD_OPTION', `task ${task.id} has no movable object to push`);
  return s.objects[pick]!.pos;
}

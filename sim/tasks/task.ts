// What every simulated task provides (scene, instruction, stages, annotator, success) and the pure
// state math they share: the world state read from the simulator, its flat observation vector,
// stage + progress composition, geometric predicates. No MuJoCo here: annotators are pure
// functions of a `WorldState`, so they are tested without physics.

import type { RandomizationStrengths } from '../scenes/appearance.ts';
import { MAX_OPENING, TABLE_HALF, TABLE_TOP_Z } from '../scenes/workcell.ts';
import type { Vec3 } from '../types.ts';

export type TaskId = 'pick_place' | 'stack_three';

/** A movable object as the annotator sees it. */
export interface ObjectState {
  pos: Vec3;
  /** Linear speed, m/s. */
  speed: number;
  /** Finger pads touching the object. */
  left: boolean;
  right: boolean;
  /** Both pads touch it. */
  grasped: boolean;
}

/** The simulator's state in task terms: the gripper, the movable objects, the fixed fixtures. */
export interface WorldState {
  /** Grip point (between the finger pads), world metres. */
  ee: Vec3;
  /** Distance between the pads' inner faces, metres. */
  opening: number;
  objects: Record<string, ObjectState>;
  fixtures: Record<string, Vec3>;
}

/** Facts fixed at reset that scale within-stage progress (the world state right after reset). */
export interface EpisodeContext {
  start: WorldState;
}

export interface StageEstimate {
  /** Index into the task's stage names. */
  stage: number;
  /** Fraction of the stage done, [0, 1]. */
  tau: number;
  /** Whole-task progress in [0, 1]: prior-weighted stage start + prior * tau. */
  progress: number;
}

export interface MovableSpec {
  name: string;
  halfSize: number;
}

export interface SceneRequest {
  seed: number;
  randomization: RandomizationStrengths;
}

export interface SimTask {
  readonly id: TaskId;
  /** Natural-language instruction (LeRobot task string). */
  readonly instruction: string;
  readonly stageNames: readonly string[];
  /** Expected share of an expert episode per stage (sums to 1): the progress priors. */
  readonly stagePriors: readonly number[];
  readonly movables: readonly MovableSpec[];
  readonly fixtures: readonly string[];
  /** Episode length budget in control steps at 10 Hz when the caller gives none. */
  readonly defaultMaxSteps: number;
  /** The MJCF scene for a seed: object layout from the seed, looks from the randomisation. */
  sceneXml(req: SceneRequest): string;
  /** True stage and progress from the state alone. */
  annotate(w: WorldState, ctx: EpisodeContext): StageEstimate;
  isSuccess(w: WorldState, ctx: EpisodeContext): boolean;
}

// ---- observation vector ----

/** Names of the observation.state entries for a task, in order. */
export function stateNames(task: Pick<SimTask, 'movables' | 'fixtures'>): string[] {
  const names = ['ee_x', 'ee_y', 'ee_z', 'gripper_opening'];
  for (const m of task.movables) names.push(`${m.name}_x`, `${m.name}_y`, `${m.name}_z`, `${m.name}_grasped`);
  for (const f of task.fixtures) names.push(`${f}_x`, `${f}_y`, `${f}_z`);
  return names;
}

/** The world state as the flat float32 observation.state vector (see `stateNames`). */
export function encodeState(task: Pick<SimTask, 'movables' | 'fixtures'>, w: WorldState): Float32Array {
  const out: number[] = [...w.ee, w.opening];
  for (const m of task.movables) {
    const o = w.objects[m.name]!;
    out.push(...o.pos, o.grasped ? 1 : 0);
  }
  for (const f of task.fixtures) out.push(...w.fixtures[f]!);
  return Float32Array.from(out);
}

/** What a policy can read back from observation.state. */
export interface ObservedState {
  ee: Vec3;
  opening: number;
  objects: Record<string, { pos: Vec3; grasped: boolean }>;
  fixtures: Record<string, Vec3>;
}

export function decodeState(task: Pick<SimTask, 'movables' | 'fixtures'>, s: ArrayLike<number>): ObservedState {
  let i = 0;
  const next3 = (): Vec3 => [s[i++]!, s[i++]!, s[i++]!];
  const ee = next3();
  const opening = s[i++]!;
  const objects: ObservedState['objects'] = {};
  for (const m of task.movables) {
    const pos = next3();
    objects[m.name] = { pos, grasped: s[i++]! > 0.5 };
  }
  const fixtures: ObservedState['fixtures'] = {};
  for (const f of task.fixtures) fixtures[f] = next3();
  return { ee, opening, objects, fixtures };
}

// ---- progress ----

/** Check priors: positive, one per stage, summing to 1 (within 1e-6). */
export function validatePriors(stageNames: readonly string[], priors: readonly number[]): void {
  const sum = priors.reduce((a, b) => a + b, 0);
  if (priors.length !== stageNames.length || priors.some((p) => !(p > 0)) || Math.abs(sum - 1) > 1e-6) {
    throw new Error(`stage priors must be ${stageNames.length} positive numbers summing to 1`);
  }
}

/** SARM-style progress: the priors of the stages before `stage`, plus `tau` of this stage's prior. */
export function composeProgress(priors: readonly number[], stage: number, tau: number): number {
  let p = 0;
  for (let k = 0; k < stage; k++) p += priors[k]!;
  return clamp01(p + priors[stage]! * clamp01(tau));
}

export function estimate(priors: readonly number[], stage: number, tau: number): StageEstimate {
  const t = clamp01(tau);
  return { stage, tau: t, progress: composeProgress(priors, stage, t) };
}

// ---- geometry ----

export function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

export function dist3(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

export function distXY(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/**
 * Distance for within-stage progress: horizontal distance plus 0.3 of the vertical one, so rising
 * clear of an obstacle before moving over costs little progress.
 */
export function travelDistance(a: Vec3, b: Vec3): number {
  return distXY(a, b) + 0.3 * Math.abs(a[2] - b[2]);
}

/** 1 at distance 0, 0 at `from` or further. */
export function closeness(d: number, from: number): number {
  return clamp01(1 - d / Math.max(from, 1e-3));
}

/** Height of an object's centre above its resting height on the table. */
export function liftOf(o: { pos: Vec3 }, halfSize: number): number {
  return o.pos[2] - (TABLE_TOP_Z + halfSize);
}

/** The grip point is around the object: centred over it in x/y and at its height. */
export function gripAround(ee: Vec3, o: { pos: Vec3 }, halfSize: number): boolean {
  return distXY(ee, o.pos) < 0.6 * halfSize + 0.01 && Math.abs(ee[2] - o.pos[2]) < halfSize + 0.01;
}

/** How far the gripper has closed on an object of `halfSize`: 0 fully open, 1 at the object's width. */
export function closure(opening: number, halfSize: number): number {
  return clamp01((MAX_OPENING - opening) / (MAX_OPENING - 2 * halfSize));
}

export function touched(o: ObjectState): boolean {
  return o.left || o.right;
}

/** `top` rests on `bottom`: centred within `tolXY` and at stacking height within 8 mm. */
export function restsOn(top: { pos: Vec3 }, topHalf: number, bottom: { pos: Vec3 }, bottomHalf: number, tolXY: number): boolean {
  return distXY(top.pos, bottom.pos) < tolXY && Math.abs(top.pos[2] - (bottom.pos[2] + topHalf + bottomHalf)) < 0.008;
}

/** An object fell off the table (not recoverable). */
export function offTable(o: { pos: Vec3 }): boolean {
  return o.pos[2] < TABLE_TOP_Z - 0.05 || Math.abs(o.pos[0]) > TABLE_HALF[0] || Math.abs(o.pos[1]) > TABLE_HALF[1];
}

/** Sample `n` table positions inside `half` extents, pairwise at least `minDist` apart. */
export function sampleSeparated(next: () => number, n: number, half: [number, number], minDist: number): [number, number][] {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const pts: [number, number][] = [];
    for (let i = 0; i < n; i++) pts.push([(next() * 2 - 1) * half[0], (next() * 2 - 1) * half[1]]);
    let ok = true;
    for (let i = 0; i < n && ok; i++)
      for (let j = i + 1; j < n && ok; j++) ok = Math.hypot(pts[i]![0] - pts[j]![0], pts[i]![1] - pts[j]![1]) >= minDist;
    if (ok) return pts;
  }
  throw new Error(`could not place ${n} objects ${minDist} m apart`);
}

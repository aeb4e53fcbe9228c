// stack_three: stack the red cube (A) on the green base cube, then the yellow cube (B) on the red
// one, and move the gripper away. Stages reach_a, grasp_a, stack_a, reach_b, grasp_b, stack_b,
// retreat, read from the state alone: knocking A off the base or dropping B goes back a stage.
// Success: the three-cube tower stands, released, with the gripper above and clear of it.

import { sampleAppearance, type Rgba } from '../scenes/appearance.ts';
import { cubeXml } from '../scenes/objects.ts';
import { SeededRandom } from '../../core/random.ts';
import { HAND_START, workcellAppearanceDefaults, workcellXml } from '../scenes/workcell.ts';
import type { Vec3 } from '../types.ts';
import {
  closeness,
  closure,
  estimate,
  gripAround,
  liftOf,
  restsOn,
  sampleSeparated,
  touched,
  travelDistance,
  validatePriors,
  type EpisodeContext,
  type ObjectState,
  type SceneRequest,
  type SimTask,
  type StageEstimate,
  type WorldState,
} from './task.ts';

export const STACK_THREE_STAGES = ['reach_a', 'grasp_a', 'stack_a', 'reach_b', 'grasp_b', 'stack_b', 'retreat'] as const;
export const BASE_HALF = 0.025;
export const STACK_CUBE_HALF = 0.02;
const COLORS: Record<string, Rgba> = {
  base: [0.12, 0.65, 0.2, 1],
  cube_a: [0.85, 0.1, 0.1, 1],
  cube_b: [0.95, 0.8, 0.1, 1],
};
const LIFTED_M = 0.01;
/** The gripper has retreated once it is this far above the top of the tower. */
export const RETREAT_CLEARANCE_M = 0.05;
const SETTLED_MPS = 0.05;

/** Where a cube's centre goes to sit on `bottom`. */
function stackSpot(bottom: { pos: Vec3 }, bottomHalf: number, topHalf: number): Vec3 {
  return [bottom.pos[0], bottom.pos[1], bottom.pos[2] + bottomHalf + topHalf];
}

export class StackThreeTask implements SimTask {
  readonly id = 'stack_three' as const;
  readonly instruction = 'stack the red cube on the green cube, then the yellow cube on the red cube';
  readonly stageNames = STACK_THREE_STAGES;
  /** Measured: mean share of each stage over 20 clean expert episodes (seeds 0-19). */
  readonly stagePriors = [0.12, 0.05, 0.23, 0.22, 0.05, 0.26, 0.07];
  readonly movables = [
    { name: 'base', halfSize: BASE_HALF },
    { name: 'cube_a', halfSize: STACK_CUBE_HALF },
    { name: 'cube_b', halfSize: STACK_CUBE_HALF },
  ];
  readonly fixtures: string[] = [];
  readonly defaultMaxSteps = 300;

  constructor() {
    validatePriors(this.stageNames, this.stagePriors);
  }

  sceneXml(req: SceneRequest): string {
    const rng = new SeededRandom(req.seed);
    const layout = rng.fork(10);
    const [base, a, b] = sampleSeparated(() => layout.next(), 3, [0.12, 0.16], 0.12) as [
      [number, number],
      [number, number],
      [number, number],
    ];
    const hand = rng.fork(30);
    const appearance = sampleAppearance(rng.fork(20), req.randomization, workcellAppearanceDefaults(COLORS));
    const c = appearance.colors;
    return workcellXml({
      name: 'stack_three',
      appearance,
      handStart: [HAND_START[0] + hand.range(-0.03, 0.03), HAND_START[1] + hand.range(-0.03, 0.03), HAND_START[2]],
      objects: [
        cubeXml({ name: 'base', halfSize: BASE_HALF, massKg: 0.15, xy: base, yaw: layout.range(-0.4, 0.4), rgba: c.base! }),
        cubeXml({ name: 'cube_a', halfSize: STACK_CUBE_HALF, massKg: 0.05, xy: a, yaw: layout.range(-0.25, 0.25), rgba: c.cube_a! }),
        cubeXml({ name: 'cube_b', halfSize: STACK_CUBE_HALF, massKg: 0.05, xy: b, yaw: layout.range(-0.25, 0.25), rgba: c.cube_b! }),
      ].join('\n    '),
    });
  }

  annotate(w: WorldState, ctx: EpisodeContext): StageEstimate {
    const p = this.stagePriors;
    const { base, cube_a: a, cube_b: b } = objects(w);
    const s = objects(ctx.start);
    const aOnBase = restsOn(a, STACK_CUBE_HALF, base, BASE_HALF, 0.7 * BASE_HALF);
    const bOnA = aOnBase && restsOn(b, STACK_CUBE_HALF, a, STACK_CUBE_HALF, 0.7 * STACK_CUBE_HALF);
    if (bOnA) {
      if (touched(b) || touched(a)) return estimate(p, 5, 0.95);
      const top = b.pos[2] + STACK_CUBE_HALF;
      return estimate(p, 6, 0.3 + 0.7 * Math.min(1, Math.max(0, (w.ee[2] - top) / RETREAT_CLEARANCE_M)));
    }
    if (aOnBase && !touched(a)) {
      // Second half: B onto A. Distances are scaled by the start layout (A on the base, B where it began).
      const aSpot = stackSpot(s.base, BASE_HALF, STACK_CUBE_HALF);
      const spot = stackSpot(a, STACK_CUBE_HALF, STACK_CUBE_HALF);
      return this.moveStage(
        w,
        b,
        3,
        spot,
        travelDistance(aSpot, s.cube_b.pos),
        travelDistance([aSpot[0], aSpot[1], aSpot[2] + 0.1], s.cube_b.pos),
      );
    }
    if (aOnBase) return estimate(p, 2, 0.95);
    const spot = stackSpot(base, BASE_HALF, STACK_CUBE_HALF);
    return this.moveStage(
      w,
      a,
      0,
      spot,
      travelDistance(stackSpot(s.base, BASE_HALF, STACK_CUBE_HALF), s.cube_a.pos),
      travelDistance(ctx.start.ee, s.cube_a.pos),
    );
  }

  /** reach / grasp / stack for one cube; `first` is the reach stage's index. */
  private moveStage(w: WorldState, cube: ObjectState, first: number, spot: Vec3, carryFrom: number, reachFrom: number): StageEstimate {
    const p = this.stagePriors;
    if (cube.grasped && liftOf(cube, STACK_CUBE_HALF) > LIFTED_M)
      return estimate(p, first + 2, closeness(travelDistance(cube.pos, spot), carryFrom));
    if (touched(cube) || gripAround(w.ee, cube, STACK_CUBE_HALF)) {
      return estimate(p, first + 1, 0.8 * closure(w.opening, STACK_CUBE_HALF) + (cube.grasped ? 0.2 : 0));
    }
    return estimate(p, first, closeness(travelDistance(w.ee, cube.pos), reachFrom));
  }

  isSuccess(w: WorldState): boolean {
    const { base, cube_a: a, cube_b: b } = objects(w);
    const standing =
      restsOn(a, STACK_CUBE_HALF, base, BASE_HALF, 0.7 * BASE_HALF) &&
      restsOn(b, STACK_CUBE_HALF, a, STACK_CUBE_HALF, 0.7 * STACK_CUBE_HALF);
    const released = !touched(a) && !touched(b);
    const clear = w.ee[2] - (b.pos[2] + STACK_CUBE_HALF) >= RETREAT_CLEARANCE_M;
    return standing && released && clear && a.speed < SETTLED_MPS && b.speed < SETTLED_MPS;
  }
}

function objects(w: WorldState): { base: ObjectState; cube_a: ObjectState; cube_b: ObjectState } {
  return { base: w.objects.base!, cube_a: w.objects.cube_a!, cube_b: w.objects.cube_b! };
}

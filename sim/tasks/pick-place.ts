// pick_place: put the red cube in the blue bowl. Stages reach, grasp, lift, carry, place, read from
// the state alone (finger contacts, heights, positions), so a dropped cube goes back to `reach`.
// Success: the cube rests inside the bowl, released by both fingers.

import { sampleAppearance, type Rgba } from '../scenes/appearance.ts';
import { bowlXml, BOWL, cubeXml } from '../scenes/objects.ts';
import { SeededRandom } from '../../core/random.ts';
import { HAND_START, TABLE_TOP_Z, workcellAppearanceDefaults, workcellXml } from '../scenes/workcell.ts';
import {
  closeness,
  distXY,
  estimate,
  closure,
  gripAround,
  liftOf,
  touched,
  travelDistance,
  validatePriors,
  type EpisodeContext,
  type SceneRequest,
  type SimTask,
  type StageEstimate,
  type WorldState,
} from './task.ts';

export const PICK_PLACE_STAGES = ['reach', 'grasp', 'lift', 'carry', 'place'] as const;
export const CUBE_HALF = 0.02;
const CUBE_MASS_KG = 0.05;
const COLORS: Record<string, Rgba> = { cube: [0.85, 0.1, 0.1, 1], bowl: [0.1, 0.25, 0.85, 1] };

/** The cube counts as lifted 1 cm above the table; the lift stage ends at 5 cm or on moving away. */
const LIFTED_M = 0.01;
const LIFT_HEIGHT_M = 0.05;
const LIFT_DRIFT_M = 0.03;
/** Above this height over its in-bowl height, lowering into the bowl counts as not started. */
const PLACE_HEIGHT_M = 0.12;
/** Settled: slower than this. */
const SETTLED_MPS = 0.05;

/** Least distance between the cube's and the bowl's centres at reset. */
const MIN_CUBE_BOWL_M = 0.19;

/** Cube centre height when resting inside the bowl. */
const IN_BOWL_Z = TABLE_TOP_Z + BOWL.baseTop + CUBE_HALF;

export function cubeInBowl(cube: { pos: [number, number, number] }, bowl: [number, number, number]): boolean {
  const m = BOWL.innerHalf;
  return (
    Math.abs(cube.pos[0] - bowl[0]) < m &&
    Math.abs(cube.pos[1] - bowl[1]) < m &&
    cube.pos[2] < TABLE_TOP_Z + BOWL.wallTop &&
    cube.pos[2] > TABLE_TOP_Z
  );
}

/** Over the bowl closely enough that lowering puts the cube inside. */
function overBowl(cube: { pos: [number, number, number] }, bowl: [number, number, number]): boolean {
  return distXY(cube.pos, bowl) < BOWL.innerHalf - CUBE_HALF + 0.005;
}

export class PickPlaceTask implements SimTask {
  readonly id = 'pick_place' as const;
  readonly instruction = 'put the red cube in the blue bowl';
  readonly stageNames = PICK_PLACE_STAGES;
  /** Measured: mean share of each stage over 20 clean expert episodes (seeds 0-19). */
  readonly stagePriors = [0.3, 0.12, 0.06, 0.28, 0.24];
  readonly movables = [{ name: 'cube', halfSize: CUBE_HALF }];
  readonly fixtures = ['bowl'];
  readonly defaultMaxSteps = 150;

  constructor() {
    validatePriors(this.stageNames, this.stagePriors);
  }

  sceneXml(req: SceneRequest): string {
    const rng = new SeededRandom(req.seed);
    const layout = rng.fork(10);
    const bowlXY: [number, number] = [layout.range(-0.09, 0.09), layout.range(-0.14, 0.14)];
    let cubeXY: [number, number] = [layout.range(-0.12, 0.12), layout.range(-0.17, 0.17)];
    while (Math.hypot(cubeXY[0] - bowlXY[0], cubeXY[1] - bowlXY[1]) < MIN_CUBE_BOWL_M) {
      cubeXY = [layout.range(-0.12, 0.12), layout.range(-0.17, 0.17)];
    }
    const yaw = layout.range(-0.25, 0.25);
    const hand = rng.fork(30);
    const appearance = sampleAppearance(rng.fork(20), req.randomization, workcellAppearanceDefaults(COLORS));
    const c = appearance.colors;
    return workcellXml({
      name: 'pick_place',
      appearance,
      handStart: [HAND_START[0] + hand.range(-0.03, 0.03), HAND_START[1] + hand.range(-0.03, 0.03), HAND_START[2]],
      objects: [
        cubeXml({ name: 'cube', halfSize: CUBE_HALF, massKg: CUBE_MASS_KG, xy: cubeXY, yaw, rgba: c.cube! }),
        bowlXml('bowl', bowlXY, c.bowl!),
      ].join('\n    '),
    });
  }

  annotate(w: WorldState, ctx: EpisodeContext): StageEstimate {
    const p = this.stagePriors;
    const cube = w.objects.cube!;
    const bowl = w.fixtures.bowl!;
    const start = ctx.start.objects.cube!;
    if (cubeInBowl(cube, bowl)) return estimate(p, 4, touched(cube) ? 0.9 : 1);
    const lift = liftOf(cube, CUBE_HALF);
    if (cube.grasped && lift > LIFTED_M) {
      if (overBowl(cube, bowl)) return estimate(p, 4, 0.8 * closeness(cube.pos[2] - IN_BOWL_Z, PLACE_HEIGHT_M));
      if (lift < LIFT_HEIGHT_M && distXY(cube.pos, start.pos) < LIFT_DRIFT_M) return estimate(p, 2, lift / LIFT_HEIGHT_M);
      return estimate(p, 3, closeness(distXY(cube.pos, bowl), distXY(start.pos, bowl)));
    }
    if (touched(cube) || gripAround(w.ee, cube, CUBE_HALF)) {
      return estimate(p, 1, 0.8 * closure(w.opening, CUBE_HALF) + (cube.grasped ? 0.2 : 0));
    }
    return estimate(p, 0, closeness(travelDistance(w.ee, cube.pos), travelDistance(ctx.start.ee, start.pos)));
  }

  isSuccess(w: WorldState): boolean {
    const cube = w.objects.cube!;
    return cubeInBowl(cube, w.fixtures.bowl!) && !touched(cube) && cube.speed < SETTLED_MPS;
  }
}

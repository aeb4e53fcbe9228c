// The policy learners' view of observation.state: a fixed, task-aware feature map (nothing learned
// here). The reward model never sees these; only the state-based policies (behaviour cloning, online
// RL) do.
//
// Policy class (see learn/policy/README.md): a linear map over phase-gated motion features. Soft phase
// indicators (holding the object, aligned over it, at its height, object over / at its place point)
// gate copies of a base vector: a bias and unit-capped vectors from the grip point towards five goal
// points (hover above the object, the object, the carry point above the place point, the place
// point, straight up). Which goal to follow in which phase, how fast, and the gripper command are the
// learned weights. "Active object" is the one the task needs moved next (pick_place: the cube;
// stack_three: cube_a until it rests on the base, then cube_b), so one map serves every segment.

import { StagewardError } from '../../core/errors.ts';
import { BOWL } from '../../sim/scenes/objects.ts';
import { TABLE_TOP_Z } from '../../sim/scenes/workcell.ts';
import { CUBE_HALF } from '../../sim/tasks/pick-place.ts';
import { BASE_HALF, STACK_CUBE_HALF } from '../../sim/tasks/stack-three.ts';
import { decodeState, type ObservedState, type SimTask, type TaskId } from '../../sim/tasks/task.ts';
import type { Vec3 } from '../../sim/types.ts';

interface ActiveSegment {
  obj: Vec3;
  grasped: boolean;
  place: Vec3;
  half: number;
}

function activeSegment(task: TaskId, s: ObservedState): ActiveSegment {
  if (task === 'pick_place') {
    const cube = s.objects.cube!;
    const bowl = s.fixtures.bowl!;
    return { obj: cube.pos, grasped: cube.grasped, place: [bowl[0], bowl[1], TABLE_TOP_Z + BOWL.baseTop + CUBE_HALF], half: CUBE_HALF };
  }
  if (task === 'stack_three') {
    const base = s.objects.base!.pos;
    const a = s.objects.cube_a!;
    const b = s.objects.cube_b!;
    const aOnBase =
      Math.hypot(a.pos[0] - base[0], a.pos[1] - base[1]) < 0.7 * BASE_HALF &&
      Math.abs(a.pos[2] - (base[2] + BASE_HALF + STACK_CUBE_HALF)) < 0.01;
    if (!aOnBase || a.grasped) {
      return { obj: a.pos, grasped: a.grasped, place: [base[0], base[1], base[2] + BASE_HALF + STACK_CUBE_HALF], half: STACK_CUBE_HALF };
    }
    return { obj: b.pos, grasped: b.grasped, place: [a.pos[0], a.pos[1], a.pos[2] + 2 * STACK_CUBE_HALF], half: STACK_CUBE_HALF };
  }
  throw new StagewardError('SW_ERR_BAD_OPTION', `no policy features for task "${task}"`);
}

// ---- phase-gated features (the linear policy's basis) ----

/** Soft phase indicators over the state; each gates a copy of the base features. */
export const PHASES = ['approach', 'descend', 'close', 'transport', 'lower', 'release', 'rise'] as const;
/** Base features: a bias, then unit-capped vectors from the grip point towards five goal points. */
export const GOALS = ['hover', 'object', 'carry', 'place', 'up'] as const;
export const BASE_FEATURE_DIM = 1 + 3 * GOALS.length;
export const GATED_FEATURE_DIM = PHASES.length * BASE_FEATURE_DIM;

/** Height above the object the hand approaches at, and the carry height above the place point (m). */
const HOVER_M = 0.07;
const CARRY_ABOVE_PLACE_M = 0.1;
const UP_M = 0.1;
/** Within this distance (m) a goal vector is proportional to the offset; beyond it a unit vector. */
const LINEAR_WITHIN_M = 0.02;

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
/** 1 when `d` is well under `within` (m), 0 well over it; `soft` (m) sets the ramp width. */
const near = (d: number, within: number, soft: number): number => sigmoid((within - d) / soft);

/** observation.state -> phase-gated features [PHASES x BASE_FEATURE_DIM], row-major by phase. */
export function gatedFeatures(task: SimTask, state: ArrayLike<number>, out = new Float64Array(GATED_FEATURE_DIM)): Float64Array {
  const s = decodeState(task, state);
  const seg = activeSegment(task.id, s);
  const ee = s.ee;
  const o = seg.obj;
  const pl = seg.place;
  const g = seg.grasped ? 1 : 0;
  const dxyObj = Math.hypot(o[0] - ee[0], o[1] - ee[1]);
  const dxyPlace = Math.hypot(pl[0] - o[0], pl[1] - o[1]);
  const aligned = near(dxyObj, 0.01, 0.002);
  const low = near(Math.abs(o[2] - ee[2]), 0.01, 0.003);
  const over = near(dxyPlace, 0.012, 0.003);
  const placed = over * near(Math.abs(pl[2] - o[2]), 0.012, 0.003);
  const gates = [
    (1 - g) * (1 - placed) * (1 - aligned),
    (1 - g) * (1 - placed) * aligned * (1 - low),
    (1 - g) * (1 - placed) * aligned * low,
    g * (1 - over),
    g * over * (1 - placed),
    g * placed,
    (1 - g) * placed,
  ];
  // The grip point's offset from the object centre carries over while the object is held.
  const grip: Vec3 = [ee[0] - o[0], ee[1] - o[1], ee[2] - o[2]];
  const goals: Vec3[] = [
    [o[0], o[1], o[2] + HOVER_M],
    o,
    [pl[0] + grip[0], pl[1] + grip[1], pl[2] + CARRY_ABOVE_PLACE_M + grip[2]],
    [pl[0] + grip[0], pl[1] + grip[1], pl[2] + grip[2]],
    [ee[0], ee[1], ee[2] + UP_M],
  ];
  const base = new Float64Array(BASE_FEATURE_DIM);
  base[0] = 1;
  goals.forEach((goal, i) => {
    const d: Vec3 = [goal[0] - ee[0], goal[1] - ee[1], goal[2] - ee[2]];
    const n = Math.max(Math.hypot(d[0], d[1], d[2]), LINEAR_WITHIN_M);
    for (let k = 0; k < 3; k++) base[1 + 3 * i + k] = d[k]! / n;
  });
  for (let p = 0; p < gates.length; p++) for (let b = 0; b < BASE_FEATURE_DIM; b++) out[p * BASE_FEATURE_DIM + b] = gates[p]! * base[b]!;
  return out;
}

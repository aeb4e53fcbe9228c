// The shared work cell as MJCF: a floor, a table, a Fetch-style gripper (a mocap target welded to a
// free hand with two position-controlled slide fingers), lights and the `front`, `side` and `wrist`
// cameras. Task scenes add their objects through `workcellXml({ objects })`. Lengths in metres,
// masses in kg. Physics follows a grasp recipe measured on this MuJoCo build, with which the hand
// lifts a 4 cm, 50 g cube reliably: elliptic cones, impratio 10, condim 4, friction
// "1 0.005 0.0001", weld solref ".01 1", finger kp 200, dt 2 ms.

import type { Vec3 } from '../types.ts';
import { cameraXyAxes, type AppearanceDefaults, type Rgba, type SceneAppearance } from './appearance.ts';

export const TIMESTEP_S = 0.002;
export const TABLE_TOP_Z = 0.4;
/** Table top half extents (x, y). */
export const TABLE_HALF: [number, number] = [0.35, 0.5];
/** Where task objects are placed (half extents around the table centre, x and y). */
export const WORKSPACE_HALF: [number, number] = [0.15, 0.2];
/** Limits of the hand's grip point (the point between the finger pads), enforced on the mocap target. */
export const HAND_LIMITS = {
  min: [-0.3, -0.42, TABLE_TOP_Z + 0.016] as Vec3,
  max: [0.3, 0.42, TABLE_TOP_Z + 0.4] as Vec3,
};
export const HAND_START: Vec3 = [0, 0, TABLE_TOP_Z + 0.18];

/** Gripper geometry: the finger pads' inner faces are FINGER_INNER_OPEN from the centre when open. */
export const FINGER_INNER_OPEN = 0.053;
export const FINGER_TRAVEL = 0.05;
const FINGER_HALF: Vec3 = [0.012, 0.007, 0.0265];
const FINGER_CENTRE_Z = 0.0115;
const PALM_Z = 0.05;
const PALM_HALF: Vec3 = [0.025, 0.075, 0.012];
/** Finger pads reach this far below the grip point. */
export const FINGERTIP_BELOW_GRIP = FINGER_CENTRE_Z - FINGER_HALF[2];
/** Largest distance between the pads' inner faces. */
export const MAX_OPENING = 2 * FINGER_INNER_OPEN;

/** Distance between the finger pads' inner faces for the two finger joint positions. */
export function gripperOpening(qLeft: number, qRight: number): number {
  return MAX_OPENING - qLeft - qRight;
}

/** Finger position target (joint metres) for a gripper command in [-1 open, +1 close]. */
export function fingerTarget(command: number): number {
  const c = Math.min(1, Math.max(-1, command));
  return ((c + 1) / 2) * FINGER_TRAVEL;
}

/** Names the environment reads back from every work-cell scene. */
export const WORKCELL_NAMES = {
  mocap: 'ee_target',
  hand: 'hand',
  fingerJoints: ['finger_left_joint', 'finger_right_joint'],
  fingerActuators: ['finger_left_act', 'finger_right_act'],
  fingerPads: ['finger_left_pad', 'finger_right_pad'],
  table: 'table',
  floor: 'floor',
  cameras: ['front', 'side', 'wrist'],
} as const;

/** Where the world cameras aim: the middle of the workspace, just above the table. */
const LOOK_AT: Vec3 = [0, 0, TABLE_TOP_Z + 0.06];

/** The work cell's default looks; tasks add their objects' colours. */
export function workcellAppearanceDefaults(objectColors: Record<string, Rgba>): AppearanceDefaults {
  return {
    colors: {
      floor: [0.42, 0.44, 0.47, 1],
      table: [0.62, 0.47, 0.32, 1],
      gripper: [0.22, 0.23, 0.26, 1],
      finger: [0.78, 0.78, 0.8, 1],
      ...objectColors,
    },
    lights: [
      {
        pos: [0.5, -0.6, 1.8],
        dir: norm([-0.5, 0.6, -1.4]),
        diffuse: [0.75, 0.75, 0.72],
        ambient: [0.3, 0.3, 0.32],
        directional: true,
        castShadow: true,
      },
      {
        pos: [-0.6, 0.5, 1.4],
        dir: norm([0.6, -0.5, -1.0]),
        diffuse: [0.3, 0.3, 0.33],
        ambient: [0, 0, 0],
        directional: false,
        castShadow: false,
      },
    ],
    cameras: {
      front: { pos: [0.6, 0, TABLE_TOP_Z + 0.42], target: LOOK_AT, fovyDeg: 50 },
      side: { pos: [0.1, -0.65, TABLE_TOP_Z + 0.4], target: LOOK_AT, fovyDeg: 50 },
    },
    // Just behind the palm, looking forward and down at the space between the fingers.
    wrist: { pos: [-(PALM_HALF[0] + 0.02), 0, PALM_Z], dir: [0.045, 0, -0.055], fovyDeg: 75 },
    distractorArea: { tableHalf: TABLE_HALF, keepOutHalf: [WORKSPACE_HALF[0] + 0.07, WORKSPACE_HALF[1] + 0.07], tableTopZ: TABLE_TOP_Z },
  };
}

export interface WorkcellOptions {
  /** MJCF model name. */
  name: string;
  appearance: SceneAppearance;
  /** Bodies to add to the worldbody (the task's objects). */
  objects: string;
  handStart?: Vec3;
}

/** The complete MJCF of a work cell with `objects` on the table. */
export function workcellXml(o: WorkcellOptions): string {
  const a = o.appearance;
  const hand = o.handStart ?? HAND_START;
  const c = (role: string): string => rgba(a.colors[role] ?? [0.5, 0.5, 0.5, 1]);
  const [tx, ty] = TABLE_HALF;
  const legs = [
    [1, 1],
    [1, -1],
    [-1, 1],
    [-1, -1],
  ]
    .map(
      ([sx, sy]) =>
        `<geom class="visual" type="box" size="0.025 0.025 ${f((TABLE_TOP_Z - 0.04) / 2)}" pos="${f(sx! * (tx - 0.05))} ${f(sy! * (ty - 0.05))} ${f((TABLE_TOP_Z - 0.04) / 2)}" rgba="${c('table')}"/>`,
    )
    .join('\n    ');
  const lights = a.lights
    .map(
      (l, i) =>
        `<light name="light${i}" type="${l.directional ? 'directional' : 'point'}" pos="${v(l.pos)}" dir="${v(l.dir)}" diffuse="${v(l.diffuse)}" ambient="${v(l.ambient)}" specular="0.1 0.1 0.1" castshadow="${l.castShadow}"/>`,
    )
    .join('\n    ');
  const cams = Object.entries(a.cameras)
    .map(([name, cam]) => {
      const [x, y] = cameraXyAxes([cam.target[0] - cam.pos[0], cam.target[1] - cam.pos[1], cam.target[2] - cam.pos[2]]);
      return `<camera name="${name}" pos="${v(cam.pos)}" xyaxes="${v(x)} ${v(y)}" fovy="${f(cam.fovyDeg)}"/>`;
    })
    .join('\n    ');
  // Wrist camera: fingers left and right in the image, forward (+x) up.
  const [wx, wy] = cameraXyAxes(a.wrist.dir);
  const distractors = a.distractors
    .map(
      (d, i) =>
        `<geom name="distractor${i}" class="visual" type="${d.kind}" size="${d.size.map(f).join(' ')}" pos="${v(d.pos)}" rgba="${rgba(d.rgba)}"/>`,
    )
    .join('\n    ');
  return `<mujoco model="${o.name}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="${TIMESTEP_S}" cone="elliptic" impratio="10"/>
  <default>
    <geom condim="4" friction="1 0.005 0.0001"/>
    <default class="visual"><geom contype="0" conaffinity="0" group="1"/></default>
    <default class="pad"><geom condim="4" friction="1 0.005 0.0001" priority="1"/></default>
  </default>
  <worldbody>
    ${lights}
    <geom name="${WORKCELL_NAMES.floor}" type="plane" size="2 2 0.1" rgba="${c('floor')}"/>
    <geom name="${WORKCELL_NAMES.table}" type="box" size="${f(tx)} ${f(ty)} 0.02" pos="0 0 ${f(TABLE_TOP_Z - 0.02)}" rgba="${c('table')}"/>
    ${legs}
    ${cams}
    <body name="${WORKCELL_NAMES.mocap}" mocap="true" pos="${v(hand)}"/>
    <body name="${WORKCELL_NAMES.hand}" pos="${v(hand)}" gravcomp="1">
      <freejoint name="hand_free"/>
      <geom name="palm" type="box" size="${v(PALM_HALF)}" pos="0 0 ${f(PALM_Z)}" mass="0.3" rgba="${c('gripper')}"/>
      <geom name="wrist_link" class="visual" type="cylinder" size="0.03 0.06" pos="0 0 ${f(PALM_Z + PALM_HALF[2] + 0.06)}" mass="0.1" rgba="${c('gripper')}"/>
      <camera name="wrist" pos="${v(a.wrist.pos)}" xyaxes="${v(wx)} ${v(wy)}" fovy="${f(a.wrist.fovyDeg)}"/>
      ${finger('left', 1, c('finger'))}
      ${finger('right', -1, c('finger'))}
    </body>
    ${o.objects}
    ${distractors}
  </worldbody>
  <equality>
    <weld body1="${WORKCELL_NAMES.mocap}" body2="${WORKCELL_NAMES.hand}" solref=".01 1"/>
  </equality>
  <actuator>
    <position name="${WORKCELL_NAMES.fingerActuators[0]}" joint="${WORKCELL_NAMES.fingerJoints[0]}" kp="200" ctrlrange="0 ${f(FINGER_TRAVEL)}" forcerange="-20 20"/>
    <position name="${WORKCELL_NAMES.fingerActuators[1]}" joint="${WORKCELL_NAMES.fingerJoints[1]}" kp="200" ctrlrange="0 ${f(FINGER_TRAVEL)}" forcerange="-20 20"/>
  </actuator>
</mujoco>
`;
}

function finger(side: 'left' | 'right', sign: 1 | -1, color: string): string {
  const baseY = sign * (FINGER_INNER_OPEN + FINGER_HALF[1]);
  return `<body name="finger_${side}" pos="0 ${f(baseY)} 0" gravcomp="1">
        <joint name="finger_${side}_joint" type="slide" axis="0 ${-sign} 0" range="0 ${f(FINGER_TRAVEL)}" damping="2" armature="0.01"/>
        <geom name="finger_${side}_pad" class="pad" type="box" size="${v(FINGER_HALF)}" pos="0 0 ${f(FINGER_CENTRE_Z)}" mass="0.05" rgba="${color}"/>
      </body>`;
}

function norm(a: Vec3): Vec3 {
  const n = Math.hypot(a[0], a[1], a[2]);
  return [a[0] / n, a[1] / n, a[2] / n];
}

/** A number for MJCF: at most 5 decimals, no exponent. */
export function f(x: number): string {
  const r = Math.round(x * 1e5) / 1e5;
  return (Object.is(r, -0) ? 0 : r).toString();
}

/** A vector for MJCF. */
export function v(a: readonly number[]): string {
  return a.map(f).join(' ');
}

export function rgba(c: Rgba): string {
  return c.map((x) => f(x)).join(' ');
}

// A hand-made tabletop SceneSnapshot (floor, table, bowl, cube, a two-finger gripper on an arm,
// clutter; 30 geoms; front/side/wrist cameras; a shadow-casting sun and a fill light) for the
// renderer's benchmark, tests and eyeballing, plus small pose helpers (rotations, look-at cameras).

import type { Mat3, RenderCamera, RenderGeom, SceneSnapshot, Vec3 } from '../types.ts';

export const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Row-major rotation of `angle` radians about unit `axis`. */
export function axisAngle(axis: Vec3, angle: number): Mat3 {
  const [x, y, z] = axis;
  const c = Math.cos(angle),
    s = Math.sin(angle),
    k = 1 - c;
  return [
    c + x * x * k,
    x * y * k - z * s,
    x * z * k + y * s,
    y * x * k + z * s,
    c + y * y * k,
    y * z * k - x * s,
    z * x * k - y * s,
    z * y * k + x * s,
    c + z * z * k,
  ];
}

/** cam_xmat of a camera at `pos` looking at `target` (its -z toward the target, +y toward `up`). */
export function lookAt(pos: Vec3, target: Vec3, up: Vec3 = [0, 0, 1]): Mat3 {
  const z = norm([pos[0] - target[0], pos[1] - target[1], pos[2] - target[2]]);
  let x = cross(up, z);
  if (Math.hypot(...x) < 1e-9) x = cross([0, 1, 0], z);
  x = norm(x);
  const y = cross(z, x);
  return [x[0], y[0], z[0], x[1], y[1], z[1], x[2], y[2], z[2]];
}

export function camera(name: string, pos: Vec3, target: Vec3, fovyDeg = 45, up: Vec3 = [0, 0, 1]): RenderCamera {
  return { name, pos, mat: lookAt(pos, target, up), fovyDeg };
}

export function geom(kind: RenderGeom['kind'], size: Vec3, pos: Vec3, rgba: RenderGeom['rgba'], mat: Mat3 = IDENTITY): RenderGeom {
  return { kind, size, pos, mat, rgba };
}

/** Where the tabletop's cube is: on the table, held up in the gripper, or in the bowl. */
export type CubeStage = 'table' | 'held' | 'bowl';

const TABLE_TOP_Z = 0.4;
const CUBE_HALF = 0.02;
const BOWL_XY: [number, number] = [0.15, 0.1];

/**
 * The tabletop scene with the cube at `stage`; `phase` in radians swings the arm sideways a little
 * and turns the clutter so successive frames differ like an episode's.
 */
export function tabletopScene(stage: CubeStage = 'table', phase = 0): SceneSnapshot {
  const geoms: RenderGeom[] = [];
  const grey: RenderGeom['rgba'] = [0.55, 0.55, 0.58, 1];
  geoms.push(geom('plane', [0, 0, 0.25], [0, 0, 0], [0.35, 0.38, 0.42, 1]));
  // Table: top and four legs.
  geoms.push(geom('box', [0.4, 0.3, 0.02], [0, 0, TABLE_TOP_Z - 0.02], [0.45, 0.3, 0.18, 1]));
  for (const [lx, ly] of [
    [-0.36, -0.26],
    [0.36, -0.26],
    [-0.36, 0.26],
    [0.36, 0.26],
  ] as const) {
    geoms.push(geom('cylinder', [0.02, 0.19, 0], [lx, ly, 0.19], [0.3, 0.2, 0.12, 1]));
  }
  // Bowl: a flat base and eight wall slabs around it.
  const [bx, by] = BOWL_XY;
  geoms.push(geom('cylinder', [0.06, 0.005, 0], [bx, by, TABLE_TOP_Z + 0.005], [0.1, 0.35, 0.75, 1]));
  for (let k = 0; k < 8; k++) {
    const ang = (k * Math.PI) / 4;
    geoms.push(
      geom(
        'box',
        [0.004, 0.026, 0.025],
        [bx + 0.062 * Math.cos(ang), by + 0.062 * Math.sin(ang), TABLE_TOP_Z + 0.025],
        [0.1, 0.35, 0.75, 1],
        axisAngle([0, 0, 1], ang),
      ),
    );
  }
  // Gripper: palm, two fingers, wrist capsule, arm links.
  const swing = 0.05 * Math.sin(phase);
  const held = stage === 'held';
  const gx = stage === 'bowl' ? bx : -0.1 + swing;
  const gy = stage === 'bowl' ? by : -0.05;
  const gz = held ? TABLE_TOP_Z + 0.2 : TABLE_TOP_Z + 0.16;
  const open = held ? CUBE_HALF + 0.006 : 0.05;
  geoms.push(geom('box', [0.05, 0.02, 0.012], [gx, gy, gz + 0.06], grey));
  geoms.push(geom('box', [0.006, 0.012, 0.035], [gx - open, gy, gz + 0.013], grey));
  geoms.push(geom('box', [0.006, 0.012, 0.035], [gx + open, gy, gz + 0.013], grey));
  geoms.push(geom('capsule', [0.018, 0.04, 0], [gx, gy, gz + 0.11], [0.2, 0.2, 0.22, 1]));
  const elbow: Vec3 = [gx - 0.2, gy - 0.05, gz + 0.3];
  geoms.push(segment([gx, gy, gz + 0.15], elbow, 0.025, [0.85, 0.5, 0.1, 1]));
  geoms.push(segment(elbow, [-0.45, -0.2, TABLE_TOP_Z + 0.05], 0.03, [0.85, 0.5, 0.1, 1]));
  geoms.push(geom('sphere', [0.035, 0, 0], elbow, [0.2, 0.2, 0.22, 1]));
  geoms.push(geom('cylinder', [0.06, 0.03, 0], [-0.45, -0.2, TABLE_TOP_Z + 0.03], [0.2, 0.2, 0.22, 1]));
  // The red cube.
  const cubePos: Vec3 =
    stage === 'table'
      ? [0.0, 0.05, TABLE_TOP_Z + CUBE_HALF]
      : stage === 'held'
        ? [gx, gy, gz + 0.01]
        : [bx, by, TABLE_TOP_Z + 0.01 + CUBE_HALF];
  geoms.push(geom('box', [CUBE_HALF, CUBE_HALF, CUBE_HALF], cubePos, [0.8, 0.05, 0.05, 1], axisAngle([0, 0, 1], 0.3)));
  // Clutter on the table.
  geoms.push(geom('sphere', [0.025, 0, 0], [-0.25, 0.15, TABLE_TOP_Z + 0.025], [0.9, 0.8, 0.1, 1]));
  geoms.push(geom('ellipsoid', [0.04, 0.025, 0.02], [0.28, -0.15, TABLE_TOP_Z + 0.02], [0.2, 0.7, 0.25, 1], axisAngle([0, 0, 1], phase)));
  geoms.push(geom('capsule', [0.015, 0.05, 0], [0.05, -0.2, TABLE_TOP_Z + 0.015], [0.6, 0.2, 0.7, 1], axisAngle([0, 1, 0], Math.PI / 2)));
  geoms.push(geom('cylinder', [0.03, 0.05, 0], [0.3, 0.2, TABLE_TOP_Z + 0.05], [0.9, 0.9, 0.9, 1]));
  geoms.push(geom('box', [0.05, 0.03, 0.01], [-0.2, -0.18, TABLE_TOP_Z + 0.01], [0.1, 0.6, 0.6, 1], axisAngle([0, 0, 1], -0.4)));
  // A wall behind the table.
  geoms.push(geom('box', [1.0, 0.02, 0.6], [0, 0.8, 0.6], [0.7, 0.7, 0.65, 1]));

  const wristPos: Vec3 = [gx, gy - 0.06, gz + 0.12];
  return {
    geoms,
    lights: [
      {
        pos: [0.3, -0.4, 1.5],
        dir: norm([-0.25, 0.3, -1]),
        directional: true,
        diffuse: [0.75, 0.75, 0.72],
        ambient: [0.2, 0.2, 0.22],
        castShadow: true,
      },
      {
        pos: [-0.8, -1.0, 1.2],
        dir: norm([0.8, 1.0, -1.0]),
        directional: false,
        diffuse: [0.25, 0.25, 0.28],
        ambient: [0.05, 0.05, 0.05],
        castShadow: false,
      },
    ],
    cameras: [
      camera('front', [0, -1.0, 0.85], [0, 0, TABLE_TOP_Z], 45),
      camera('side', [1.0, -0.1, 0.8], [0, 0, TABLE_TOP_Z], 45),
      camera('wrist', wristPos, [gx, gy + 0.02, TABLE_TOP_Z], 70, [0, 1, 0]),
    ],
  };
}

/** A capsule from a to b with radius r. */
function segment(a: Vec3, b: Vec3, r: number, rgba: RenderGeom['rgba']): RenderGeom {
  const d: Vec3 = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
  const len = Math.hypot(...d);
  const z = norm(d);
  // Rotation taking local z to d: axis z_world x d.
  const axis = cross([0, 0, 1], z);
  const s = Math.hypot(...axis),
    c = z[2];
  const mat = s < 1e-9 ? (c > 0 ? IDENTITY : axisAngle([1, 0, 0], Math.PI)) : axisAngle(norm(axis), Math.atan2(s, c));
  return geom('capsule', [r, len / 2, 0], [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2], rgba, mat);
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function norm(v: Vec3): Vec3 {
  const l = Math.hypot(...v);
  return [v[0] / l, v[1] / l, v[2] / l];
}

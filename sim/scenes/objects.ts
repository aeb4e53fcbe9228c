// MJCF for the task objects: free cubes and a fixed open bowl (a flat base plus four walls, so a
// cube can sit inside). Built from primitive geoms only (the renderer draws primitives).

import type { Vec3 } from '../types.ts';
import type { Rgba } from './appearance.ts';
import { f, rgba, TABLE_TOP_Z, v } from './workcell.ts';

export interface CubeSpec {
  name: string;
  halfSize: number;
  massKg: number;
  /** Centre x, y on the table; the cube rests on the table top. */
  xy: [number, number];
  /** Rotation about the vertical, radians. */
  yaw: number;
  rgba: Rgba;
}

/** A free cube resting on the table. Its geom is named `${name}_geom`. */
export function cubeXml(c: CubeSpec): string {
  const z = TABLE_TOP_Z + c.halfSize;
  const quat = [Math.cos(c.yaw / 2), 0, 0, Math.sin(c.yaw / 2)];
  return `<body name="${c.name}" pos="${f(c.xy[0])} ${f(c.xy[1])} ${f(z)}" quat="${v(quat)}">
      <freejoint name="${c.name}_free"/>
      <geom name="${c.name}_geom" type="box" size="${f(c.halfSize)} ${f(c.halfSize)} ${f(c.halfSize)}" mass="${f(c.massKg)}" rgba="${rgba(c.rgba)}"/>
    </body>`;
}

/** Bowl dimensions: an open square dish. */
export const BOWL = {
  /** Half width of the inside (wall inner face to centre). */
  innerHalf: 0.058,
  wallHalfThickness: 0.006,
  /** Height of the wall tops above the table. */
  wallTop: 0.044,
  /** Height of the base's top above the table. */
  baseTop: 0.008,
} as const;

/** A fixed bowl standing on the table at `xy`; its body is `name`, its geoms `${name}_base`, `${name}_wall*`. */
export function bowlXml(name: string, xy: [number, number], color: Rgba): string {
  const { innerHalf, wallHalfThickness: t, wallTop, baseTop } = BOWL;
  const outer = innerHalf + 2 * t;
  const wallHalfH = (wallTop - baseTop) / 2;
  const wallZ = baseTop + wallHalfH;
  const c = rgba(color);
  const walls: [Vec3, Vec3][] = [
    [
      [innerHalf + t, 0, wallZ],
      [t, outer, wallHalfH],
    ],
    [
      [-(innerHalf + t), 0, wallZ],
      [t, outer, wallHalfH],
    ],
    [
      [0, innerHalf + t, wallZ],
      [innerHalf, t, wallHalfH],
    ],
    [
      [0, -(innerHalf + t), wallZ],
      [innerHalf, t, wallHalfH],
    ],
  ];
  return `<body name="${name}" pos="${f(xy[0])} ${f(xy[1])} ${f(TABLE_TOP_Z)}">
      <geom name="${name}_base" type="box" size="${f(outer)} ${f(outer)} ${f(baseTop / 2)}" pos="0 0 ${f(baseTop / 2)}" rgba="${c}"/>
      ${walls.map(([p, s], i) => `<geom name="${name}_wall${i}" type="box" size="${v(s)}" pos="${v(p)}" rgba="${c}"/>`).join('\n      ')}
    </body>`;
}

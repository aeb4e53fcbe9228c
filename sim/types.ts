// Contracts between the simulator's parts: the physics/task side (sim/env, sim/tasks, sim/expert) and
// the renderer (sim/render). Each side depends on these types only, never on the other's internals.

import type { RawImage } from '../core/image.ts';

export type Vec3 = [number, number, number];
/** A 3x3 rotation, row-major, as MuJoCo's xmat (columns are the body's x, y, z axes in world). */
export type Mat3 = [number, number, number, number, number, number, number, number, number];

/** MuJoCo geom types the renderer draws (mjtGeom): plane 0, sphere 2, capsule 3, ellipsoid 4, cylinder 5, box 6. */
export type GeomKind = 'plane' | 'sphere' | 'capsule' | 'ellipsoid' | 'cylinder' | 'box';

export interface RenderGeom {
  kind: GeomKind;
  /** MuJoCo geom_size: sphere [r], capsule/cylinder [r, half-length], box/ellipsoid half-sizes, plane [half-x, half-y, grid]. */
  size: Vec3;
  pos: Vec3;
  mat: Mat3;
  /** Linear RGBA in [0, 1]. */
  rgba: [number, number, number, number];
}

export interface RenderCamera {
  name: string;
  pos: Vec3;
  /** MuJoCo cam_xmat: the camera looks along its -z axis, with +y up and +x right in the image. */
  mat: Mat3;
  /** Vertical field of view in degrees (cam_fovy). */
  fovyDeg: number;
}

export interface RenderLight {
  pos: Vec3;
  /** Direction the light points (light_xdir). */
  dir: Vec3;
  directional: boolean;
  diffuse: Vec3;
  ambient: Vec3;
  castShadow: boolean;
}

/** Everything a renderer needs for one instant: geometry, poses, lights, cameras. */
export interface SceneSnapshot {
  geoms: RenderGeom[];
  lights: RenderLight[];
  cameras: RenderCamera[];
}

export interface Renderer {
  /** RGB uint8 [height, width, 3] of `camera` (a name in `scene.cameras`). */
  render(scene: SceneSnapshot, camera: string, width: number, height: number): RawImage;
}

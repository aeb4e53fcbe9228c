// Contracts between the simulator's parts: the physics/task side (sim/env, sim/tasks, sim/expert),
// the renderer (sim/render) and the dataset side (sim/dataset). Each side depends on these types
// only, never on another side's internals.

import type { RawImage } from '../models/preprocess.ts';

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

/** One annotated subtask of a recorded episode, in frames (inclusive start, inclusive end). */
export interface SubtaskSpan {
  name: string;
  start: number;
  end: number;
}

/** One recorded episode, as the dataset writer receives it (one episode in memory at a time). */
export interface RecordedEpisode {
  /** The task's natural-language string (LeRobot `tasks.parquet`), e.g. "put the red cube in the bowl". */
  task: string;
  /** Per view (card/camera name without the `observation.images.` prefix), T frames. */
  frames: Record<string, RawImage[]>;
  /** observation.state per frame: proprio + object state, float32 of a fixed length. */
  state: Float32Array[];
  /** action per frame (the action taken after observing the frame), float32 of a fixed length. */
  action: Float32Array[];
  /** Sparse env reward per frame. */
  reward: number[];
  /** Per frame: the annotator's true stage index and geometric progress in [0, 1]. */
  trueStage: number[];
  trueProgress: number[];
  /** The annotator's subtask spans (sparse annotations, SARM style). */
  subtasks: SubtaskSpan[];
  success: boolean;
  /** Free-form facts about how the episode was made (preset, flaws injected, seed). */
  meta: Record<string, unknown>;
}

/** What a dataset is about, fixed for all its episodes. */
export interface DatasetSpec {
  /** LeRobot `robot_type`, e.g. "stageward_mocap_gripper". */
  robotType: string;
  fps: number;
  views: string[];
  image: { height: number; width: number };
  stateNames: string[];
  actionNames: string[];
  /** Ordered stage names of the task (all episodes of one dataset share one task family). */
  stageNames: string[];
}

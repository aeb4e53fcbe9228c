// Builds the renderer's `SceneSnapshot` from a MuJoCo model and data: drawable primitive geoms
// (type, size, colour from the model; pose from geom_xpos/geom_xmat), cameras (cam_xpos, cam_xmat,
// cam_fovy) and lights (light_xpos, light_xdir, colours, type, shadows). What does not change
// during an episode is read once per model.

import type { MujocoSim } from './mujoco.ts';
import type { GeomKind, Mat3, RenderCamera, RenderGeom, RenderLight, SceneSnapshot, Vec3 } from './types.ts';

/** mjtGeom codes of the primitives the renderer draws. */
const GEOM_KINDS: Partial<Record<number, GeomKind>> = { 0: 'plane', 2: 'sphere', 3: 'capsule', 4: 'ellipsoid', 5: 'cylinder', 6: 'box' };
const MJ_LIGHT_DIRECTIONAL = 1;

interface StaticGeom {
  id: number;
  kind: GeomKind;
  size: Vec3;
  rgba: [number, number, number, number];
}

/** Snapshots of one simulation; build one per MujocoSim (a new model needs a new builder). */
export class SnapshotBuilder {
  private readonly sim: MujocoSim;
  private readonly geoms: StaticGeom[] = [];
  private readonly cameraNames: string[] = [];
  private readonly lights: { id: number; fixed: Omit<RenderLight, 'pos' | 'dir'> }[] = [];

  constructor(sim: MujocoSim) {
    this.sim = sim;
    const m = sim.model;
    const type = m.geom_type as Int32Array;
    const size = m.geom_size as Float64Array;
    const rgba = m.geom_rgba as Float32Array;
    for (let g = 0; g < m.ngeom; g++) {
      const kind = GEOM_KINDS[type[g]!];
      const alpha = rgba[4 * g + 3]!;
      if (!kind || alpha <= 0) continue;
      this.geoms.push({
        id: g,
        kind,
        size: [size[3 * g]!, size[3 * g + 1]!, size[3 * g + 2]!],
        rgba: [rgba[4 * g]!, rgba[4 * g + 1]!, rgba[4 * g + 2]!, alpha],
      });
    }
    for (let c = 0; c < m.ncam; c++) this.cameraNames.push(sim.name('camera', c) || `camera${c}`);
    const lightType = m.light_type as Int32Array;
    const shadow = m.light_castshadow as Uint8Array;
    const diffuse = m.light_diffuse as Float32Array;
    const ambient = m.light_ambient as Float32Array;
    const active = m.light_active as Uint8Array;
    for (let l = 0; l < m.nlight; l++) {
      if (active[l] === 0) continue;
      this.lights.push({
        id: l,
        fixed: {
          directional: lightType[l] === MJ_LIGHT_DIRECTIONAL,
          castShadow: shadow[l] !== 0,
          diffuse: [diffuse[3 * l]!, diffuse[3 * l + 1]!, diffuse[3 * l + 2]!],
          ambient: [ambient[3 * l]!, ambient[3 * l + 1]!, ambient[3 * l + 2]!],
        },
      });
    }
  }

  /** Camera names in the scene, in model order. */
  get cameras(): readonly string[] {
    return this.cameraNames;
  }

  /** The scene as it is now (after the latest step or forward). */
  build(): SceneSnapshot {
    const d = this.sim.data;
    const gx = d.geom_xpos as Float64Array;
    const gm = d.geom_xmat as Float64Array;
    const geoms: RenderGeom[] = this.geoms.map((g) => ({
      kind: g.kind,
      size: g.size,
      rgba: g.rgba,
      pos: vec3(gx, g.id),
      mat: mat3(gm, g.id),
    }));
    const cx = d.cam_xpos as Float64Array;
    const cm = d.cam_xmat as Float64Array;
    const fovy = this.sim.model.cam_fovy as Float64Array;
    const cameras: RenderCamera[] = this.cameraNames.map((name, c) => ({ name, pos: vec3(cx, c), mat: mat3(cm, c), fovyDeg: fovy[c]! }));
    const lx = d.light_xpos as Float64Array;
    const ld = d.light_xdir as Float64Array;
    const lights: RenderLight[] = this.lights.map(({ id, fixed }) => ({ ...fixed, pos: vec3(lx, id), dir: vec3(ld, id) }));
    return { geoms, lights, cameras };
  }
}

function vec3(a: Float64Array, i: number): Vec3 {
  return [a[3 * i]!, a[3 * i + 1]!, a[3 * i + 2]!];
}

function mat3(a: Float64Array, i: number): Mat3 {
  return Array.from(a.subarray(9 * i, 9 * i + 9)) as Mat3;
}

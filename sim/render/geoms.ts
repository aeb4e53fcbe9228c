// Packs a SceneSnapshot's geoms into one Float64Array (struct of fixed-stride records) that the hot
// loops read without touching objects: kind code, sizes, world pose, linear colour, a bounding
// radius, and per camera the camera-to-local ray transform. Units: metres, linear RGB in [0, 1].

import type { RenderGeom } from '../types.ts';

/** Kind codes used in the packed records (not MuJoCo's mjtGeom numbers). */
export const K_PLANE = 0;
export const K_SPHERE = 1;
export const K_CAPSULE = 2;
export const K_ELLIPSOID = 3;
export const K_CYLINDER = 4;
export const K_BOX = 5;

const KIND_CODE: Record<RenderGeom['kind'], number> = {
  plane: K_PLANE,
  sphere: K_SPHERE,
  capsule: K_CAPSULE,
  ellipsoid: K_ELLIPSOID,
  cylinder: K_CYLINDER,
  box: K_BOX,
};

// Record layout (offsets into a geom's stride).
export const G_KIND = 0;
/** size[0..2] as MuJoCo gives them (sphere r; capsule/cylinder r, half-length; box/ellipsoid half-sizes; plane half-x, half-y, grid). */
export const G_SIZE = 1;
/** World position. */
export const G_POS = 4;
/** World rotation, row-major (world = R * local). */
export const G_ROT = 7;
/** Linear RGB. */
export const G_RGB = 16;
/** Per camera: M = R^T * Rcam, maps a camera-space ray direction to geom-local. */
export const G_CAM_M = 19;
/** Per camera: the camera position in geom-local coordinates. */
export const G_CAM_O = 28;
/** Bounding-sphere radius about G_POS (Infinity for an unbounded plane). */
export const G_RADIUS = 31;
/** Inverse half-sizes (ellipsoid) so rays scale into a unit sphere. */
export const G_INV = 32;
/** Plane checker cell size in metres. */
export const G_CELL = 35;
/** Half-sizes of the geom's local bounding box (a plane's is flat). */
export const G_HALF = 36;
export const G_STRIDE = 40;

/** Checker cell of a plane whose grid spacing (size[2]) is 0. */
export const DEFAULT_PLANE_CELL_M = 0.1;

export class PackedGeoms {
  g = new Float64Array(0);
  /** Index of the snapshot geom each record came from. */
  source = new Int32Array(0);
  count = 0;

  /** Packs the visible geoms (alpha > 0, finite size) of a snapshot. */
  pack(geoms: readonly RenderGeom[]): void {
    if (this.source.length < geoms.length) {
      this.g = new Float64Array(geoms.length * G_STRIDE);
      this.source = new Int32Array(geoms.length);
    }
    const g = this.g;
    let n = 0;
    for (let i = 0; i < geoms.length; i++) {
      const geom = geoms[i]!;
      if (!(geom.rgba[3] > 0)) continue;
      const kind = KIND_CODE[geom.kind];
      if (kind === undefined) continue;
      const b = n * G_STRIDE;
      g[b + G_KIND] = kind;
      for (let k = 0; k < 3; k++) {
        g[b + G_SIZE + k] = geom.size[k]!;
        g[b + G_POS + k] = geom.pos[k]!;
        g[b + G_RGB + k] = clamp01(geom.rgba[k]!);
      }
      orthonormalInto(geom.mat, g, b + G_ROT);
      const [s0, s1, s2] = geom.size;
      let radius: number;
      switch (kind) {
        case K_PLANE:
          radius = s0 > 0 && s1 > 0 ? Math.hypot(s0, s1) : Infinity;
          break;
        case K_SPHERE:
          radius = s0;
          break;
        case K_CAPSULE:
          radius = s0 + s1;
          break;
        case K_CYLINDER:
          radius = Math.hypot(s0, s1);
          break;
        case K_ELLIPSOID:
          radius = Math.max(s0, s1, s2);
          break;
        default:
          radius = Math.hypot(s0, s1, s2);
      }
      if (!Number.isFinite(radius) && kind !== K_PLANE) continue;
      if (kind !== K_PLANE && !(radius > 0)) continue;
      g[b + G_RADIUS] = radius;
      g[b + G_INV] = s0 > 0 ? 1 / s0 : 0;
      g[b + G_INV + 1] = s1 > 0 ? 1 / s1 : 0;
      g[b + G_INV + 2] = s2 > 0 ? 1 / s2 : 0;
      g[b + G_CELL] = kind === K_PLANE && s2 > 0 ? s2 : DEFAULT_PLANE_CELL_M;
      const h0 = s0;
      let h1 = s1,
        h2 = s2;
      if (kind === K_SPHERE) {
        h1 = s0;
        h2 = s0;
      } else if (kind === K_CAPSULE) {
        h1 = s0;
        h2 = s1 + s0;
      } else if (kind === K_CYLINDER) {
        h1 = s0;
        h2 = s1;
      } else if (kind === K_PLANE) h2 = 0;
      g[b + G_HALF] = h0;
      g[b + G_HALF + 1] = h1;
      g[b + G_HALF + 2] = h2;
      this.source[n] = i;
      n++;
    }
    this.count = n;
  }

  /**
   * Fills each record's camera fields for a camera at `cp` with rotation `cr` (row-major, columns
   * are the camera's x, y, z axes in world).
   */
  setCamera(cp: ArrayLike<number>, cr: ArrayLike<number>): void {
    const g = this.g;
    for (let i = 0; i < this.count; i++) {
      const b = i * G_STRIDE;
      const r = b + G_ROT;
      // M = R^T * Rc: M[i][j] = sum_k R[k][i] * Rc[k][j].
      for (let row = 0; row < 3; row++) {
        for (let col = 0; col < 3; col++) {
          g[b + G_CAM_M + row * 3 + col] = g[r + row]! * cr[col]! + g[r + 3 + row]! * cr[3 + col]! + g[r + 6 + row]! * cr[6 + col]!;
        }
      }
      const dx = cp[0]! - g[b + G_POS]!;
      const dy = cp[1]! - g[b + G_POS + 1]!;
      const dz = cp[2]! - g[b + G_POS + 2]!;
      g[b + G_CAM_O] = g[r]! * dx + g[r + 3]! * dy + g[r + 6]! * dz;
      g[b + G_CAM_O + 1] = g[r + 1]! * dx + g[r + 4]! * dy + g[r + 7]! * dz;
      g[b + G_CAM_O + 2] = g[r + 2]! * dx + g[r + 5]! * dy + g[r + 8]! * dz;
    }
  }
}

export function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0;
}

/**
 * Copies a row-major 3x3 rotation into `out` at `o`, re-orthonormalising its columns (Gram-Schmidt)
 * so slightly drifted matrices still give unit normals and rigid transforms.
 */
export function orthonormalInto(m: ArrayLike<number>, out: Float64Array, o: number): void {
  let ax = m[0]!,
    ay = m[3]!,
    az = m[6]!;
  let bx = m[1]!,
    by = m[4]!,
    bz = m[7]!;
  let la = Math.hypot(ax, ay, az);
  if (!(la > 1e-12)) {
    ax = 1;
    ay = 0;
    az = 0;
    la = 1;
  }
  ax /= la;
  ay /= la;
  az /= la;
  const dab = ax * bx + ay * by + az * bz;
  bx -= dab * ax;
  by -= dab * ay;
  bz -= dab * az;
  let lb = Math.hypot(bx, by, bz);
  if (!(lb > 1e-12)) {
    // Any unit vector perpendicular to a.
    if (Math.abs(ax) < 0.9) {
      bx = 0;
      by = -az;
      bz = ay;
    } else {
      bx = az;
      by = 0;
      bz = -ax;
    }
    lb = Math.hypot(bx, by, bz);
  }
  bx /= lb;
  by /= lb;
  bz /= lb;
  let cx = ay * bz - az * by,
    cy = az * bx - ax * bz,
    cz = ax * by - ay * bx;
  // Keep the handedness the input had (a reflected matrix stays reflected).
  if (cx * m[2]! + cy * m[5]! + cz * m[8]! < 0) {
    cx = -cx;
    cy = -cy;
    cz = -cz;
  }
  out[o] = ax;
  out[o + 1] = bx;
  out[o + 2] = cx;
  out[o + 3] = ay;
  out[o + 4] = by;
  out[o + 5] = cy;
  out[o + 6] = az;
  out[o + 7] = bz;
  out[o + 8] = cz;
}

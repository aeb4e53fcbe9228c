// Primary-ray casting of one geom over one pixel rectangle: for each pixel, the ray (u, v, -1) in
// camera space (t = depth along the view axis) is mapped to the geom's local frame with the
// per-camera transform packed in geoms.ts, intersected analytically (intersect.ts), and the nearest
// entry kept in the depth / id buffers. One loop per primitive kind keeps each loop monomorphic,
// and arguments are arrays and integers so no floating-point value is boxed per call.

import { G_CAM_M, G_CAM_O, G_INV, G_KIND, G_SIZE, K_BOX, K_CAPSULE, K_CYLINDER, K_ELLIPSOID, K_PLANE, K_SPHERE } from './geoms.ts';
import { hitBox, hitCapsule, hitCylinder, hitPlane, hitSphere } from './intersect.ts';

// View record: image width (row stride), half-extent slopes, slope step per pixel, near depth.
export const V_WIDTH = 0;
export const V_TANX = 1;
export const V_TANY = 2;
export const V_STEPX = 3;
export const V_STEPY = 4;
export const V_NEAR = 5;
export const V_LEN = 6;

/**
 * Casts the rays of pixels [x0, x1] x [y0, y1] (inclusive) against packed geom record `b` (index
 * `j`), lowering depth[i] and setting ids[i] = j where it is nearer.
 */
export function castRect(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  switch (g[b + G_KIND]) {
    case K_BOX:
      castBox(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
    case K_SPHERE:
      castSphere(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
    case K_CAPSULE:
      castCapsule(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
    case K_CYLINDER:
      castCylinder(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
    case K_ELLIPSOID:
      castEllipsoid(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
    case K_PLANE:
      castPlane(g, b, j, x0, x1, y0, y1, view, depth, ids);
      break;
  }
}

function castBox(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  const m = b + G_CAM_M;
  const m0 = g[m]!,
    m1 = g[m + 1]!,
    m2 = g[m + 2]!,
    m3 = g[m + 3]!,
    m4 = g[m + 4]!,
    m5 = g[m + 5]!;
  const m6 = g[m + 6]!,
    m7 = g[m + 7]!,
    m8 = g[m + 8]!;
  const ox = g[b + G_CAM_O]!,
    oy = g[b + G_CAM_O + 1]!,
    oz = g[b + G_CAM_O + 2]!;
  const s0 = g[b + G_SIZE]!,
    s1 = g[b + G_SIZE + 1]!,
    s2 = g[b + G_SIZE + 2]!;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const t = hitBox(s0, s1, s2, ox, oy, oz, m0 * u + cx, m3 * u + cy, m6 * u + cz, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

function castSphere(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  const m = b + G_CAM_M;
  const m0 = g[m]!,
    m1 = g[m + 1]!,
    m2 = g[m + 2]!,
    m3 = g[m + 3]!,
    m4 = g[m + 4]!,
    m5 = g[m + 5]!;
  const m6 = g[m + 6]!,
    m7 = g[m + 7]!,
    m8 = g[m + 8]!;
  const ox = g[b + G_CAM_O]!,
    oy = g[b + G_CAM_O + 1]!,
    oz = g[b + G_CAM_O + 2]!;
  const r = g[b + G_SIZE]!;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const t = hitSphere(r, ox, oy, oz, m0 * u + cx, m3 * u + cy, m6 * u + cz, u * u + v * v + 1, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

function castEllipsoid(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  // Scale the local frame by 1/size: the ellipsoid becomes the unit sphere.
  const ix = g[b + G_INV]!,
    iy = g[b + G_INV + 1]!,
    iz = g[b + G_INV + 2]!;
  const m = b + G_CAM_M;
  const m0 = g[m]! * ix,
    m1 = g[m + 1]! * ix,
    m2 = g[m + 2]! * ix;
  const m3 = g[m + 3]! * iy,
    m4 = g[m + 4]! * iy,
    m5 = g[m + 5]! * iy;
  const m6 = g[m + 6]! * iz,
    m7 = g[m + 7]! * iz,
    m8 = g[m + 8]! * iz;
  const ox = g[b + G_CAM_O]! * ix,
    oy = g[b + G_CAM_O + 1]! * iy,
    oz = g[b + G_CAM_O + 2]! * iz;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const dx = m0 * u + cx,
        dy = m3 * u + cy,
        dz = m6 * u + cz;
      const t = hitSphere(1, ox, oy, oz, dx, dy, dz, dx * dx + dy * dy + dz * dz, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

function castCapsule(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  const m = b + G_CAM_M;
  const m0 = g[m]!,
    m1 = g[m + 1]!,
    m2 = g[m + 2]!,
    m3 = g[m + 3]!,
    m4 = g[m + 4]!,
    m5 = g[m + 5]!;
  const m6 = g[m + 6]!,
    m7 = g[m + 7]!,
    m8 = g[m + 8]!;
  const ox = g[b + G_CAM_O]!,
    oy = g[b + G_CAM_O + 1]!,
    oz = g[b + G_CAM_O + 2]!;
  const r = g[b + G_SIZE]!,
    h = g[b + G_SIZE + 1]!;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const t = hitCapsule(r, h, ox, oy, oz, m0 * u + cx, m3 * u + cy, m6 * u + cz, u * u + v * v + 1, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

function castCylinder(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  const m = b + G_CAM_M;
  const m0 = g[m]!,
    m1 = g[m + 1]!,
    m2 = g[m + 2]!,
    m3 = g[m + 3]!,
    m4 = g[m + 4]!,
    m5 = g[m + 5]!;
  const m6 = g[m + 6]!,
    m7 = g[m + 7]!,
    m8 = g[m + 8]!;
  const ox = g[b + G_CAM_O]!,
    oy = g[b + G_CAM_O + 1]!,
    oz = g[b + G_CAM_O + 2]!;
  const r = g[b + G_SIZE]!,
    h = g[b + G_SIZE + 1]!;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const t = hitCylinder(r, h, ox, oy, oz, m0 * u + cx, m3 * u + cy, m6 * u + cz, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

function castPlane(
  g: Float64Array,
  b: number,
  j: number,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  view: Float64Array,
  depth: Float64Array,
  ids: Int32Array,
): void {
  const w = view[V_WIDTH]!,
    tanX = view[V_TANX]!,
    tanY = view[V_TANY]!,
    sx = view[V_STEPX]!,
    sy = view[V_STEPY]!;
  const near = view[V_NEAR]!;
  const m = b + G_CAM_M;
  const m0 = g[m]!,
    m1 = g[m + 1]!,
    m2 = g[m + 2]!,
    m3 = g[m + 3]!,
    m4 = g[m + 4]!,
    m5 = g[m + 5]!;
  const m6 = g[m + 6]!,
    m7 = g[m + 7]!,
    m8 = g[m + 8]!;
  const ox = g[b + G_CAM_O]!,
    oy = g[b + G_CAM_O + 1]!,
    oz = g[b + G_CAM_O + 2]!;
  const hx = g[b + G_SIZE]!,
    hy = g[b + G_SIZE + 1]!;
  for (let py = y0; py <= y1; py++) {
    const v = tanY - (py + 0.5) * sy;
    const cx = m1 * v - m2,
      cy = m4 * v - m5,
      cz = m7 * v - m8;
    const row = py * w;
    for (let px = x0; px <= x1; px++) {
      const u = (px + 0.5) * sx - tanX;
      const t = hitPlane(hx, hy, ox, oy, oz, m0 * u + cx, m3 * u + cy, m6 * u + cz, near);
      const i = row + px;
      if (t < depth[i]!) {
        depth[i] = t;
        ids[i] = j;
      }
    }
  }
}

// Analytic ray-primitive intersection in a geom's local frame, and the local surface normal at a hit.
// Rays are o + t*d with d not normalised (a = d.d is passed in); the hit* functions return the
// ENTRY distance t > tMin, or Infinity; anyHit answers a shadow ray's yes/no from a scratch array.
// A ray that starts inside a primitive does not hit it (as with back-face culling in MuJoCo's own
// renderer), so a camera inside a geom sees through it.
// Primitives follow MuJoCo: capsules and cylinders along local z with half-length size[1], planes
// are z = 0 facing +z (visible from above only), size[0]/size[1] = 0 means unbounded.

import { G_INV, G_KIND, G_SIZE, K_BOX, K_CAPSULE, K_CYLINDER, K_ELLIPSOID, K_PLANE, K_SPHERE } from './geoms.ts';

/** Scratch ray layout for anyHit: origin, direction (unit), accepted distance range. */
export const RAY_O = 0;
export const RAY_D = 3;
export const RAY_TMIN = 6;
export const RAY_TMAX = 7;
export const RAY_LEN = 8;

/**
 * Whether the ray in `r` (geom-local, unit direction; see RAY_*) enters packed geom `b` at a
 * distance within (tMin, tMax). Arguments are arrays and small integers so that, called without
 * inlining, no floating-point value is boxed.
 */
export function anyHit(g: Float64Array, b: number, r: Float64Array): boolean {
  switch (g[b + G_KIND]) {
    case K_BOX:
      return anyHitBox(g, b, r);
    case K_SPHERE:
      return anyHitSphere(g, b, r);
    case K_CAPSULE:
      return anyHitCapsule(g, b, r);
    case K_CYLINDER:
      return anyHitCylinder(g, b, r);
    case K_PLANE:
      return anyHitPlane(g, b, r);
    case K_ELLIPSOID:
      return anyHitEllipsoid(g, b, r);
    default:
      return false;
  }
}

// One small function per kind, so each inlines its one intersection routine.
function anyHitBox(g: Float64Array, b: number, r: Float64Array): boolean {
  return (
    hitBox(g[b + G_SIZE]!, g[b + G_SIZE + 1]!, g[b + G_SIZE + 2]!, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[RAY_TMIN]!) < r[RAY_TMAX]!
  );
}
function anyHitSphere(g: Float64Array, b: number, r: Float64Array): boolean {
  return hitSphere(g[b + G_SIZE]!, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, 1, r[RAY_TMIN]!) < r[RAY_TMAX]!;
}
function anyHitCapsule(g: Float64Array, b: number, r: Float64Array): boolean {
  return hitCapsule(g[b + G_SIZE]!, g[b + G_SIZE + 1]!, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, 1, r[RAY_TMIN]!) < r[RAY_TMAX]!;
}
function anyHitCylinder(g: Float64Array, b: number, r: Float64Array): boolean {
  return hitCylinder(g[b + G_SIZE]!, g[b + G_SIZE + 1]!, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[RAY_TMIN]!) < r[RAY_TMAX]!;
}
function anyHitPlane(g: Float64Array, b: number, r: Float64Array): boolean {
  return hitPlane(g[b + G_SIZE]!, g[b + G_SIZE + 1]!, r[0]!, r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[RAY_TMIN]!) < r[RAY_TMAX]!;
}
function anyHitEllipsoid(g: Float64Array, b: number, r: Float64Array): boolean {
  const ix = g[b + G_INV]!,
    iy = g[b + G_INV + 1]!,
    iz = g[b + G_INV + 2]!;
  const ex = r[3]! * ix,
    ey = r[4]! * iy,
    ez = r[5]! * iz;
  return hitSphere(1, r[0]! * ix, r[1]! * iy, r[2]! * iz, ex, ey, ez, ex * ex + ey * ey + ez * ez, r[RAY_TMIN]!) < r[RAY_TMAX]!;
}

/** Whether geom-local point (x, y, z) lies inside packed geom `b` (a plane: below it). */
export function containsLocal(g: Float64Array, b: number, x: number, y: number, z: number): boolean {
  const s0 = g[b + G_SIZE]!,
    s1 = g[b + G_SIZE + 1]!,
    s2 = g[b + G_SIZE + 2]!;
  switch (g[b + G_KIND]) {
    case K_SPHERE:
      return x * x + y * y + z * z <= s0 * s0;
    case K_ELLIPSOID:
      return (x / s0) ** 2 + (y / s1) ** 2 + (z / s2) ** 2 <= 1;
    case K_BOX:
      return Math.abs(x) <= s0 && Math.abs(y) <= s1 && Math.abs(z) <= s2;
    case K_CYLINDER:
      return x * x + y * y <= s0 * s0 && Math.abs(z) <= s1;
    case K_CAPSULE: {
      const e = z > s1 ? z - s1 : z < -s1 ? z + s1 : 0;
      return x * x + y * y + e * e <= s0 * s0;
    }
    default:
      return z <= 0;
  }
}

export function hitSphere(
  r: number,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  a: number,
  tMin: number,
): number {
  const c = ox * ox + oy * oy + oz * oz - r * r;
  if (c <= 0) return Infinity;
  const hb = ox * dx + oy * dy + oz * dz;
  if (hb >= 0) return Infinity; // centre behind the ray origin and origin outside: no entry ahead
  const disc = hb * hb - a * c;
  if (disc < 0) return Infinity;
  const t = (-hb - Math.sqrt(disc)) / a;
  return t > tMin ? t : Infinity;
}

export function hitBox(
  sx: number,
  sy: number,
  sz: number,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  tMin: number,
): number {
  let tn = -Infinity,
    tf = Infinity;
  if (dx !== 0) {
    const inv = 1 / dx;
    let t1 = (-sx - ox) * inv,
      t2 = (sx - ox) * inv;
    if (t1 > t2) {
      const s = t1;
      t1 = t2;
      t2 = s;
    }
    if (t1 > tn) tn = t1;
    if (t2 < tf) tf = t2;
  } else if (ox < -sx || ox > sx) return Infinity;
  if (dy !== 0) {
    const inv = 1 / dy;
    let t1 = (-sy - oy) * inv,
      t2 = (sy - oy) * inv;
    if (t1 > t2) {
      const s = t1;
      t1 = t2;
      t2 = s;
    }
    if (t1 > tn) tn = t1;
    if (t2 < tf) tf = t2;
  } else if (oy < -sy || oy > sy) return Infinity;
  if (dz !== 0) {
    const inv = 1 / dz;
    let t1 = (-sz - oz) * inv,
      t2 = (sz - oz) * inv;
    if (t1 > t2) {
      const s = t1;
      t1 = t2;
      t2 = s;
    }
    if (t1 > tn) tn = t1;
    if (t2 < tf) tf = t2;
  } else if (oz < -sz || oz > sz) return Infinity;
  return tn <= tf && tn > tMin ? tn : Infinity;
}

export function hitPlane(
  hx: number,
  hy: number,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  tMin: number,
): number {
  if (oz <= 0 || dz >= 0) return Infinity;
  const t = -oz / dz;
  if (!(t > tMin)) return Infinity;
  if (hx > 0 && Math.abs(ox + t * dx) > hx) return Infinity;
  if (hy > 0 && Math.abs(oy + t * dy) > hy) return Infinity;
  return t;
}

/** Capsule = union of the z-segment's cylinder and two end spheres; all lie in the infinite cylinder. */
export function hitCapsule(
  r: number,
  h: number,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  a: number,
  tMin: number,
): number {
  const ac = dx * dx + dy * dy;
  const bc = ox * dx + oy * dy;
  const cc = ox * ox + oy * oy - r * r;
  if (ac > 1e-12 * a) {
    const disc = bc * bc - ac * cc;
    if (disc < 0) return Infinity;
    if (cc > 0) {
      const t = (-bc - Math.sqrt(disc)) / ac;
      const z = oz + t * dz;
      if (z >= -h && z <= h) return t > tMin ? t : Infinity;
    }
  } else if (cc > 0) return Infinity;
  if (cc <= 0) {
    // Origin inside the cylinder part or one end sphere: inside the capsule, no entry.
    if (oz >= -h && oz <= h) return Infinity;
    const e = oz > 0 ? oz - h : oz + h;
    if (cc + e * e <= 0) return Infinity;
  }
  const t1 = hitSphere(r, ox, oy, oz - h, dx, dy, dz, a, tMin);
  const t2 = hitSphere(r, ox, oy, oz + h, dx, dy, dz, a, tMin);
  return t1 < t2 ? t1 : t2;
}

/** Capped cylinder = infinite cylinder intersected with the slab |z| <= h. */
export function hitCylinder(
  r: number,
  h: number,
  ox: number,
  oy: number,
  oz: number,
  dx: number,
  dy: number,
  dz: number,
  tMin: number,
): number {
  let tn: number, tf: number;
  const ac = dx * dx + dy * dy;
  const cc = ox * ox + oy * oy - r * r;
  if (ac > 1e-18) {
    const bc = ox * dx + oy * dy;
    const disc = bc * bc - ac * cc;
    if (disc < 0) return Infinity;
    const sq = Math.sqrt(disc);
    tn = (-bc - sq) / ac;
    tf = (-bc + sq) / ac;
  } else {
    if (cc > 0) return Infinity;
    tn = -Infinity;
    tf = Infinity;
  }
  if (dz !== 0) {
    const inv = 1 / dz;
    let t1 = (-h - oz) * inv,
      t2 = (h - oz) * inv;
    if (t1 > t2) {
      const s = t1;
      t1 = t2;
      t2 = s;
    }
    if (t1 > tn) tn = t1;
    if (t2 < tf) tf = t2;
  } else if (oz < -h || oz > h) return Infinity;
  return tn <= tf && tn > tMin ? tn : Infinity;
}

/** Local-frame outward normal (not normalised) at the local surface point in out[0..2], into out[0..2]. */
export function normalLocal(g: Float64Array, b: number, out: Float64Array): void {
  const px = out[0]!,
    py = out[1]!,
    pz = out[2]!;
  const s0 = g[b + G_SIZE]!,
    s1 = g[b + G_SIZE + 1]!,
    s2 = g[b + G_SIZE + 2]!;
  switch (g[b + G_KIND]) {
    case K_SPHERE:
      out[0] = px;
      out[1] = py;
      out[2] = pz;
      return;
    case K_ELLIPSOID: {
      const ix = g[b + G_INV]!,
        iy = g[b + G_INV + 1]!,
        iz = g[b + G_INV + 2]!;
      out[0] = px * ix * ix;
      out[1] = py * iy * iy;
      out[2] = pz * iz * iz;
      return;
    }
    case K_CAPSULE:
      out[0] = px;
      out[1] = py;
      out[2] = pz > s1 ? pz - s1 : pz < -s1 ? pz + s1 : 0;
      return;
    case K_CYLINDER: {
      const radial = Math.sqrt(px * px + py * py);
      if (Math.abs(s1 - Math.abs(pz)) < Math.abs(s0 - radial)) {
        out[0] = 0;
        out[1] = 0;
        out[2] = pz >= 0 ? 1 : -1;
      } else {
        out[0] = px;
        out[1] = py;
        out[2] = 0;
      }
      return;
    }
    case K_BOX: {
      const ax = Math.abs(px) / s0,
        ay = Math.abs(py) / s1,
        az = Math.abs(pz) / s2;
      out[0] = 0;
      out[1] = 0;
      out[2] = 0;
      if (ax >= ay && ax >= az) out[0] = px >= 0 ? 1 : -1;
      else if (ay >= az) out[1] = py >= 0 ? 1 : -1;
      else out[2] = pz >= 0 ? 1 : -1;
      return;
    }
    default:
      out[0] = 0;
      out[1] = 0;
      out[2] = 1;
  }
}

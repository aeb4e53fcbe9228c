// Lights for the renderer: packs RenderLights into flat arrays (direction to the light, diffuse,
// summed ambient) and answers shadow queries. Each shadow-casting light gets a small 2D grid over
// the geoms' bounding boxes as seen from the light (orthographic for directional lights,
// perspective from the light's position along its direction otherwise), so a shadow ray tests
// only the few geoms whose bounding box's footprint its cell overlaps and that lie between point and light.

import type { RenderLight } from '../types.ts';
import { G_HALF, G_KIND, G_POS, G_RADIUS, G_ROT, G_STRIDE, K_PLANE, type PackedGeoms } from './geoms.ts';
import { RAY_LEN, RAY_O, RAY_TMAX, RAY_TMIN, anyHit } from './intersect.ts';

/** Grid cells per side of a light's occluder grid. */
const GRID_N = 32;
/** Shadow rays start this far along the surface normal (metres) and ignore hits nearer than it. */
export const SHADOW_BIAS_M = 1e-5;

// Light record: directional flag, position, unit direction the light points, diffuse, castShadow.
const L_DIRECTIONAL = 0;
const L_POS = 1;
const L_DIR = 4;
const L_DIFFUSE = 7;
const L_SHADOW = 10;
const L_STRIDE = 11;

export class PackedLights {
  data = new Float64Array(0);
  count = 0;
  ambient = new Float64Array(3);

  /**
   * Packs `lights`. With no lights at all, a headlight at the camera (`camPos`, looking along
   * `camForward`) stands in, as MuJoCo's default headlight would, so an unlit scene is not black.
   */
  pack(lights: readonly RenderLight[], camPos: ArrayLike<number>, camForward: ArrayLike<number>): void {
    const n = Math.max(1, lights.length);
    if (this.data.length < n * L_STRIDE) this.data = new Float64Array(n * L_STRIDE);
    const d = this.data;
    this.ambient.fill(0);
    if (lights.length === 0) {
      d[L_DIRECTIONAL] = 1;
      for (let k = 0; k < 3; k++) {
        d[L_POS + k] = camPos[k]!;
        d[L_DIR + k] = camForward[k]!;
        d[L_DIFFUSE + k] = 0.7;
        this.ambient[k] = 0.3;
      }
      d[L_SHADOW] = 0;
      this.count = 1;
      return;
    }
    for (let i = 0; i < lights.length; i++) {
      const l = lights[i]!;
      const b = i * L_STRIDE;
      d[b + L_DIRECTIONAL] = l.directional ? 1 : 0;
      let [x, y, z] = l.dir;
      const len = Math.hypot(x, y, z);
      if (len > 1e-12) {
        x /= len;
        y /= len;
        z /= len;
      } else {
        x = 0;
        y = 0;
        z = -1;
      }
      d[b + L_DIR] = x;
      d[b + L_DIR + 1] = y;
      d[b + L_DIR + 2] = z;
      for (let k = 0; k < 3; k++) {
        d[b + L_POS + k] = l.pos[k]!;
        d[b + L_DIFFUSE + k] = l.diffuse[k]!;
        this.ambient[k]! += l.ambient[k]!;
      }
      d[b + L_SHADOW] = l.castShadow ? 1 : 0;
    }
    this.count = lights.length;
  }

  isDirectional(i: number): boolean {
    return this.data[i * L_STRIDE + L_DIRECTIONAL] === 1;
  }
  castsShadow(i: number): boolean {
    return this.data[i * L_STRIDE + L_SHADOW] === 1;
  }
  /** Record offset of light i, for the L_* accessors below. */
  base(i: number): number {
    return i * L_STRIDE;
  }
}

export const LIGHT_POS = L_POS;
export const LIGHT_DIR = L_DIR;
export const LIGHT_DIFFUSE = L_DIFFUSE;
export const LIGHT_DIRECTIONAL = L_DIRECTIONAL;

/** Occluder grid of one light for one packed scene. */
export class ShadowGrid {
  private directional = true;
  /** Light position (point lights) and projection frame: e1, e2 across, w along. */
  private px = 0;
  private py = 0;
  private pz = 0;
  private e1 = new Float64Array(3);
  private e2 = new Float64Array(3);
  private w = new Float64Array(3);
  private x0 = 0;
  private y0 = 0;
  private invCell = 0;
  private cellCount = new Int32Array(GRID_N * GRID_N);
  private cells = new Int32Array(0);
  private cap = 0;
  /** Geoms tested for every query (unbounded planes, geoms straddling a point light's plane). */
  private always = new Int32Array(0);
  private alwaysCount = 0;
  /** Finite geoms, for point-light queries behind the light's plane. */
  private finite = new Int32Array(0);
  private finiteCount = 0;
  /** Per geom: directional: highest extent toward the light; point: nearest distance to the light. */
  private reach = new Float64Array(0);
  /** Geoms placed in the grid, and their [lo1, hi1, lo2, hi2] footprints in projection units. */
  private binned = new Int32Array(0);
  private ranges = new Float64Array(0);
  private corners = new Float64Array(24);
  /** The shadow ray in the local frame of the geom being tested. */
  private local = new Float64Array(RAY_LEN);

  build(geoms: PackedGeoms, lights: PackedLights, light: number): void {
    const n = geoms.count;
    const g = geoms.g;
    if (this.reach.length < n) {
      this.reach = new Float64Array(n);
      this.ranges = new Float64Array(4 * n);
      this.always = new Int32Array(n);
      this.finite = new Int32Array(n);
      this.binned = new Int32Array(n);
    }
    if (this.cap < n) {
      this.cap = n;
      this.cells = new Int32Array(GRID_N * GRID_N * n);
    }
    const ld = lights.data,
      lb = lights.base(light);
    this.directional = lights.isDirectional(light);
    this.px = ld[lb + L_POS]!;
    this.py = ld[lb + L_POS + 1]!;
    this.pz = ld[lb + L_POS + 2]!;
    const w = this.w;
    // Directional: w points toward the light. Point: w is the direction the light points.
    const sgn = this.directional ? -1 : 1;
    w[0] = sgn * ld[lb + L_DIR]!;
    w[1] = sgn * ld[lb + L_DIR + 1]!;
    w[2] = sgn * ld[lb + L_DIR + 2]!;
    perpendicularBasis(w, this.e1, this.e2);
    const e1 = this.e1,
      e2 = this.e2,
      c = this.corners;
    this.alwaysCount = 0;
    this.finiteCount = 0;
    let minX = Infinity,
      minY = Infinity,
      maxX = -Infinity,
      maxY = -Infinity;
    let binned = 0;
    for (let j = 0; j < n; j++) {
      const b = j * G_STRIDE;
      const r = g[b + G_RADIUS]!;
      // A plane blocks light only from its front side; skip it when the light is in front.
      if (g[b + G_KIND] === K_PLANE && this.lightInFront(g, b)) continue;
      if (r === Infinity) {
        this.always[this.alwaysCount++] = j;
        continue;
      }
      this.finite[this.finiteCount++] = j;
      boxCornersWorld(g, b, c);
      let lo1 = Infinity,
        hi1 = -Infinity,
        lo2 = Infinity,
        hi2 = -Infinity,
        top = -Infinity;
      let straddles = false;
      for (let k = 0; k < 24; k += 3) {
        let x = c[k]!,
          y = c[k + 1]!,
          z = c[k + 2]!;
        if (!this.directional) {
          x -= this.px;
          y -= this.py;
          z -= this.pz;
        }
        const along = x * w[0]! + y * w[1]! + z * w[2]!;
        let u1 = x * e1[0]! + y * e1[1]! + z * e1[2]!;
        let u2 = x * e2[0]! + y * e2[1]! + z * e2[2]!;
        if (!this.directional) {
          if (along <= 1e-6) {
            straddles = true;
            break;
          }
          u1 /= along;
          u2 /= along;
        }
        if (along > top) top = along;
        if (u1 < lo1) lo1 = u1;
        if (u1 > hi1) hi1 = u1;
        if (u2 < lo2) lo2 = u2;
        if (u2 > hi2) hi2 = u2;
      }
      if (this.directional) {
        this.reach[j] = top;
      } else {
        const dx = g[b + G_POS]! - this.px,
          dy = g[b + G_POS + 1]! - this.py,
          dz = g[b + G_POS + 2]! - this.pz;
        this.reach[j] = Math.sqrt(dx * dx + dy * dy + dz * dz) - r;
        if (straddles) {
          this.always[this.alwaysCount++] = j;
          continue;
        }
      }
      const q = 4 * binned;
      this.ranges[q] = lo1;
      this.ranges[q + 1] = hi1;
      this.ranges[q + 2] = lo2;
      this.ranges[q + 3] = hi2;
      this.binned[binned++] = j;
      if (lo1 < minX) minX = lo1;
      if (hi1 > maxX) maxX = hi1;
      if (lo2 < minY) minY = lo2;
      if (hi2 > maxY) maxY = hi2;
    }
    this.cellCount.fill(0);
    if (binned === 0) {
      this.invCell = 0;
      return;
    }
    const span = Math.max(maxX - minX, maxY - minY, 1e-9);
    this.x0 = minX;
    this.y0 = minY;
    this.invCell = GRID_N / (span * (1 + 1e-9));
    const cap = this.cap;
    for (let k = 0; k < binned; k++) {
      const j = this.binned[k]!;
      const q = 4 * k;
      const cx0 = this.cellOf(this.ranges[q]! - this.x0),
        cx1 = this.cellOf(this.ranges[q + 1]! - this.x0);
      const cy0 = this.cellOf(this.ranges[q + 2]! - this.y0),
        cy1 = this.cellOf(this.ranges[q + 3]! - this.y0);
      for (let gy = cy0; gy <= cy1; gy++) {
        for (let gx = cx0; gx <= cx1; gx++) {
          const cell = gy * GRID_N + gx;
          this.cells[cell * cap + this.cellCount[cell]!] = j;
          this.cellCount[cell]!++;
        }
      }
    }
  }

  /** Whether the light lies on plane record b's visible (+z) side: then the plane casts no shadow. */
  private lightInFront(g: Float64Array, b: number): boolean {
    const R = b + G_ROT;
    const nx = g[R + 2]!,
      ny = g[R + 5]!,
      nz = g[R + 8]!;
    if (this.directional) return nx * this.w[0]! + ny * this.w[1]! + nz * this.w[2]! >= 0;
    return nx * (this.px - g[b + G_POS]!) + ny * (this.py - g[b + G_POS + 1]!) + nz * (this.pz - g[b + G_POS + 2]!) >= 0;
  }

  private cellOf(x: number): number {
    const c = Math.floor(x * this.invCell);
    return c < 0 ? 0 : c >= GRID_N ? GRID_N - 1 : c;
  }

  /**
   * Whether the world-space shadow ray `ray` (RAY_* layout: origin, unit direction toward the light,
   * distance range) hits any geom other than `self`.
   */
  occluded(geoms: PackedGeoms, ray: Float64Array, self: number): boolean {
    const g = geoms.g;
    for (let k = 0; k < this.alwaysCount; k++) {
      const j = this.always[k]!;
      if (j !== self && this.hits(g, j, ray)) return true;
    }
    const x = ray[RAY_O]!,
      y = ray[RAY_O + 1]!,
      z = ray[RAY_O + 2]!;
    const w = this.w,
      e1 = this.e1,
      e2 = this.e2;
    let u1: number, u2: number, h: number;
    if (this.directional) {
      u1 = x * e1[0]! + y * e1[1]! + z * e1[2]!;
      u2 = x * e2[0]! + y * e2[1]! + z * e2[2]!;
      h = x * w[0]! + y * w[1]! + z * w[2]!;
    } else {
      const rx = x - this.px,
        ry = y - this.py,
        rz = z - this.pz;
      const depth = rx * w[0]! + ry * w[1]! + rz * w[2]!;
      h = ray[RAY_TMAX]!;
      if (depth <= 1e-6) {
        // Behind the light's plane: no grid there, test every finite geom nearer than the light.
        for (let k = 0; k < this.finiteCount; k++) {
          const j = this.finite[k]!;
          if (j !== self && this.reach[j]! < h && this.hits(g, j, ray)) return true;
        }
        return false;
      }
      u1 = (rx * e1[0]! + ry * e1[1]! + rz * e1[2]!) / depth;
      u2 = (rx * e2[0]! + ry * e2[1]! + rz * e2[2]!) / depth;
    }
    if (this.invCell === 0) return false;
    const c1 = Math.floor((u1 - this.x0) * this.invCell),
      c2 = Math.floor((u2 - this.y0) * this.invCell);
    if (c1 < 0 || c2 < 0 || c1 >= GRID_N || c2 >= GRID_N) return false;
    const cell = c2 * GRID_N + c1,
      base = cell * this.cap,
      cnt = this.cellCount[cell]!;
    const dir = this.directional;
    for (let k = 0; k < cnt; k++) {
      const j = this.cells[base + k]!;
      if (j === self) continue;
      // Directional: skip geoms wholly below the point (toward the light). Point: beyond the light.
      if (dir ? this.reach[j]! <= h : this.reach[j]! >= h) continue;
      if (this.hits(g, j, ray)) return true;
    }
    return false;
  }

  /** Whether world ray `ray` enters geom j within its distance range. */
  private hits(g: Float64Array, j: number, ray: Float64Array): boolean {
    const b = j * G_STRIDE,
      r = b + G_ROT,
      l = this.local;
    const qx = ray[0]! - g[b + G_POS]!,
      qy = ray[1]! - g[b + G_POS + 1]!,
      qz = ray[2]! - g[b + G_POS + 2]!;
    const lx = ray[3]!,
      ly = ray[4]!,
      lz = ray[5]!;
    l[0] = g[r]! * qx + g[r + 3]! * qy + g[r + 6]! * qz;
    l[1] = g[r + 1]! * qx + g[r + 4]! * qy + g[r + 7]! * qz;
    l[2] = g[r + 2]! * qx + g[r + 5]! * qy + g[r + 8]! * qz;
    l[3] = g[r]! * lx + g[r + 3]! * ly + g[r + 6]! * lz;
    l[4] = g[r + 1]! * lx + g[r + 4]! * ly + g[r + 7]! * lz;
    l[5] = g[r + 2]! * lx + g[r + 5]! * ly + g[r + 8]! * lz;
    l[RAY_TMIN] = ray[RAY_TMIN]!;
    l[RAY_TMAX] = ray[RAY_TMAX]!;
    return anyHit(g, b, l);
  }
}

/** World corners of geom b's local bounding box into out[0..23]. */
function boxCornersWorld(g: Float64Array, b: number, out: Float64Array): void {
  const R = b + G_ROT;
  const h0 = g[b + G_HALF]!,
    h1 = g[b + G_HALF + 1]!,
    h2 = g[b + G_HALF + 2]!;
  for (let k = 0; k < 8; k++) {
    const s0 = k & 1 ? h0 : -h0,
      s1 = k & 2 ? h1 : -h1,
      s2 = k & 4 ? h2 : -h2;
    for (let a = 0; a < 3; a++) {
      out[3 * k + a] = g[b + G_POS + a]! + g[R + 3 * a]! * s0 + g[R + 3 * a + 1]! * s1 + g[R + 3 * a + 2]! * s2;
    }
  }
}

/** Unit vectors e1, e2 completing unit w to an orthonormal frame. */
function perpendicularBasis(w: Float64Array, e1: Float64Array, e2: Float64Array): void {
  const wx = w[0]!,
    wy = w[1]!,
    wz = w[2]!;
  let ax: number, ay: number, az: number;
  if (Math.abs(wx) < 0.9) {
    ax = 0;
    ay = -wz;
    az = wy;
  } else {
    ax = wz;
    ay = 0;
    az = -wx;
  }
  const la = Math.hypot(ax, ay, az);
  ax /= la;
  ay /= la;
  az /= la;
  e1[0] = ax;
  e1[1] = ay;
  e1[2] = az;
  e2[0] = wy * az - wz * ay;
  e2[1] = wz * ax - wx * az;
  e2[2] = wx * ay - wy * ax;
}

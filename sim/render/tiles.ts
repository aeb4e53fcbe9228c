// Screen-space culling for primary rays: projects each packed geom's bounds (the exact projection
// of its bounding sphere, intersected with that of its local bounding box clipped to the near plane)
// to a pixel rectangle, and bins geoms into square pixel tiles. A pixel is then tested only against
// the geoms of its tile whose rectangle holds it. Geoms holding the camera are culled.

import { G_CAM_O, G_HALF, G_POS, G_RADIUS, G_ROT, G_STRIDE, type PackedGeoms } from './geoms.ts';
import { containsLocal } from './intersect.ts';

/** Tile side in pixels. */
export const TILE_PX = 8;
/** Nearest depth along the view axis (metres) that primary rays accept. */
export const NEAR_M = 1e-3;

export class TileBins {
  tilesX = 0;
  tilesY = 0;
  /** Per tile: geom indices, `cap` slots per tile. */
  lists = new Int32Array(0);
  counts = new Int32Array(0);
  cap = 0;
  /** Per geom: inclusive pixel rectangle x0, y0, x1, y1 (x0 > x1 when off screen). */
  rect = new Int32Array(0);
  private corners = new Float64Array(24);
  private axis = new Float64Array(9);
  private extent = new Float64Array(4);

  /**
   * Bins `geoms` for a camera at `cp` with orthonormal rotation `cr` (row-major, columns x, y, z),
   * image `width` x `height`, tanX / tanY the half-extent slopes of the view.
   */
  build(geoms: PackedGeoms, cp: ArrayLike<number>, cr: ArrayLike<number>, tanX: number, tanY: number, width: number, height: number): void {
    const n = geoms.count,
      g = geoms.g;
    this.tilesX = Math.ceil(width / TILE_PX);
    this.tilesY = Math.ceil(height / TILE_PX);
    const tiles = this.tilesX * this.tilesY;
    if (this.counts.length < tiles) this.counts = new Int32Array(tiles);
    if (this.lists.length < tiles * n) this.lists = new Int32Array(tiles * n);
    if (this.rect.length < 4 * n) this.rect = new Int32Array(4 * n);
    this.cap = n;
    this.counts.fill(0, 0, tiles);
    const sxScale = width / (2 * tanX),
      syScale = height / (2 * tanY);
    for (let j = 0; j < n; j++) {
      const b = j * G_STRIDE;
      const q = 4 * j;
      const r = g[b + G_RADIUS]!;
      // Centre in camera space: Rc^T (pos - cp); depth = -z.
      const wx = g[b + G_POS]! - cp[0]!,
        wy = g[b + G_POS + 1]! - cp[1]!,
        wz = g[b + G_POS + 2]! - cp[2]!;
      const x = cr[0]! * wx + cr[3]! * wy + cr[6]! * wz;
      const y = cr[1]! * wx + cr[4]! * wy + cr[7]! * wz;
      const d = -(cr[2]! * wx + cr[5]! * wy + cr[8]! * wz);
      // Rays only enter geoms, so one holding the camera (or a plane seen from below) is invisible.
      const o = b + G_CAM_O;
      if (d + r <= NEAR_M || containsLocal(g, b, g[o]!, g[o + 1]!, g[o + 2]!)) {
        this.cull(q);
        continue;
      }
      // Slope ranges (x/d, y/d) of the bounds; full view when the sphere reaches the camera plane.
      let lox = -Infinity,
        hix = Infinity,
        loy = -Infinity,
        hiy = Infinity;
      if (r !== Infinity && d - r > NEAR_M) {
        const den = d * d - r * r;
        const kx = r * Math.sqrt(x * x + den),
          ky = r * Math.sqrt(y * y + den);
        lox = (x * d - kx) / den;
        hix = (x * d + kx) / den;
        loy = (y * d - ky) / den;
        hiy = (y * d + ky) / den;
      }
      if (r !== Infinity) {
        if (!this.projectBox(g, b, cr, x, y, d)) {
          this.cull(q);
          continue;
        }
        const e = this.extent;
        if (e[0]! > lox) lox = e[0]!;
        if (e[1]! < hix) hix = e[1]!;
        if (e[2]! > loy) loy = e[2]!;
        if (e[3]! < hiy) hiy = e[3]!;
      }
      // Pixel px's centre ray has slope ((px + 0.5) / width * 2 - 1) * tanX; row 0 is the top (+y).
      // One pixel of margin on each side keeps the rectangle conservative under rounding.
      const x0 = Math.max(0, Math.floor(lox * sxScale + width / 2 - 0.5) - 1);
      const x1 = Math.min(width - 1, Math.ceil(hix * sxScale + width / 2 - 0.5) + 1);
      const y0 = Math.max(0, Math.floor(height / 2 - hiy * syScale - 0.5) - 1);
      const y1 = Math.min(height - 1, Math.ceil(height / 2 - loy * syScale - 0.5) + 1);
      this.rect[q] = x0;
      this.rect[q + 1] = y0;
      this.rect[q + 2] = x1;
      this.rect[q + 3] = y1;
      if (x0 > x1 || y0 > y1) continue;
      const tx1 = Math.floor(x1 / TILE_PX),
        ty1 = Math.floor(y1 / TILE_PX);
      for (let ty = Math.floor(y0 / TILE_PX); ty <= ty1; ty++) {
        for (let tx = Math.floor(x0 / TILE_PX); tx <= tx1; tx++) {
          const t = ty * this.tilesX + tx;
          this.lists[t * n + this.counts[t]!] = j;
          this.counts[t]!++;
        }
      }
    }
  }

  private cull(q: number): void {
    this.rect[q] = 1;
    this.rect[q + 1] = 1;
    this.rect[q + 2] = 0;
    this.rect[q + 3] = 0;
  }

  /**
   * Slope extent [lox, hix, loy, hiy] into `extent` of geom b's local bounding box clipped to the
   * near plane (centre x, y, depth d in camera space); false when none of it is in front.
   */
  private projectBox(g: Float64Array, b: number, cr: ArrayLike<number>, x: number, y: number, d: number): boolean {
    const R = b + G_ROT,
      a = this.axis,
      c = this.corners;
    // Geom axis k in camera space (x, y, depth), scaled by its half-size: Rc^T * (column k of R).
    for (let k = 0; k < 3; k++) {
      const h = g[b + G_HALF + k]!;
      const vx = g[R + k]!,
        vy = g[R + 3 + k]!,
        vz = g[R + 6 + k]!;
      a[3 * k] = (cr[0]! * vx + cr[3]! * vy + cr[6]! * vz) * h;
      a[3 * k + 1] = (cr[1]! * vx + cr[4]! * vy + cr[7]! * vz) * h;
      a[3 * k + 2] = -(cr[2]! * vx + cr[5]! * vy + cr[8]! * vz) * h;
    }
    for (let k = 0; k < 8; k++) {
      const sx = k & 1 ? 1 : -1,
        sy = k & 2 ? 1 : -1,
        sz = k & 4 ? 1 : -1;
      c[3 * k] = x + sx * a[0]! + sy * a[3]! + sz * a[6]!;
      c[3 * k + 1] = y + sx * a[1]! + sy * a[4]! + sz * a[7]!;
      c[3 * k + 2] = d + sx * a[2]! + sy * a[5]! + sz * a[8]!;
    }
    let lox = Infinity,
      hix = -Infinity,
      loy = Infinity,
      hiy = -Infinity;
    for (let k = 0; k < 8; k++) {
      const dk = c[3 * k + 2]!;
      if (dk >= NEAR_M) {
        const u = c[3 * k]! / dk,
          v = c[3 * k + 1]! / dk;
        if (u < lox) lox = u;
        if (u > hix) hix = u;
        if (v < loy) loy = v;
        if (v > hiy) hiy = v;
      }
      // Edges to the neighbours along each axis that cross the near plane.
      for (let bit = 1; bit < 8; bit <<= 1) {
        if (k & bit) continue;
        const n = k | bit,
          dn = c[3 * n + 2]!;
        if (dk >= NEAR_M === dn >= NEAR_M) continue;
        const f = (NEAR_M - dk) / (dn - dk);
        const u = (c[3 * k]! + f * (c[3 * n]! - c[3 * k]!)) / NEAR_M;
        const v = (c[3 * k + 1]! + f * (c[3 * n + 1]! - c[3 * k + 1]!)) / NEAR_M;
        if (u < lox) lox = u;
        if (u > hix) hix = u;
        if (v < loy) loy = v;
        if (v > hiy) hiy = v;
      }
    }
    const e = this.extent;
    e[0] = lox;
    e[1] = hix;
    e[2] = loy;
    e[3] = hiy;
    return lox <= hix;
  }
}

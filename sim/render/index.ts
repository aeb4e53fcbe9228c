// The simulator's renderer: pure-TypeScript ray casting of MuJoCo primitive geoms (plane, sphere,
// capsule, ellipsoid, cylinder, box) from a SceneSnapshot into RGB uint8 HxWx3, row 0 at the top.
//
// Pipeline per render (one core, no allocation per pixel):
//   1. pack the geoms into a flat Float64Array and precompute, per geom, the camera-to-local ray
//      transform (geoms.ts);
//   2. project each geom's bounds to a pixel rectangle and bin geoms into 8x8 pixel tiles (tiles.ts);
//   3. per tile and geom, cast the primary rays of the pixels in the geom's rectangle, intersecting
//      analytically in the geom's local frame (cast.ts, intersect.ts), keeping the nearest entry in
//      a depth / geom-id buffer;
//   4. shade each pixel: Lambert diffuse per light plus summed ambient, a checker on planes, hard
//      shadows by a shadow ray against the occluders of a per-light grid (lights.ts);
//   5. resolve: average supersamples in linear light, convert to sRGB through a table (color.ts).
// Conventions (MuJoCo's): the camera looks along its local -z with +y up and +x right, cam mat is
// row-major with the camera axes as columns, fovy is vertical in degrees; colours are linear.
// Rays only enter surfaces (as MuJoCo culls back faces): a geom holding the camera is not drawn, a
// plane is seen from its +z side only. Alpha only hides a geom when 0 (no blending). With no lights
// in the snapshot, a headlight stands in.

import { StagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import type { Renderer, SceneSnapshot } from '../types.ts';
import { resolveFrame } from './color.ts';
import { G_CAM_M, G_CAM_O, G_CELL, G_KIND, G_RGB, G_ROT, G_STRIDE, K_PLANE, PackedGeoms, orthonormalInto } from './geoms.ts';
import { V_LEN, V_NEAR, V_STEPX, V_STEPY, V_TANX, V_TANY, V_WIDTH, castRect } from './cast.ts';
import { RAY_LEN, RAY_TMAX, RAY_TMIN, normalLocal } from './intersect.ts';
import { LIGHT_DIFFUSE, LIGHT_DIR, LIGHT_DIRECTIONAL, LIGHT_POS, PackedLights, SHADOW_BIAS_M, ShadowGrid } from './lights.ts';
import { NEAR_M, TILE_PX, TileBins } from './tiles.ts';

export interface RendererOptions {
  /** Linear RGB in [0, 1] of rays that hit nothing. Default DEFAULT_BACKGROUND. */
  background?: [number, number, number];
  /** Rays per pixel side: 2 casts 4 rays per pixel and averages them in linear light. Default 1. */
  supersample?: 1 | 2;
  /** Hard shadows from lights with castShadow. Default true. */
  shadows?: boolean;
}

/** Linear RGB of the background: a muted blue-grey. */
export const DEFAULT_BACKGROUND: [number, number, number] = [0.18, 0.21, 0.27];
/** Largest image side accepted, in pixels (before supersampling). */
export const MAX_IMAGE_SIDE_PX = 4096;
/** Largest number of rays one render may cast (pixels x supersample^2); ~24 bytes of buffers each. */
export const MAX_RAYS_PER_RENDER = 4096 * 4096;
/** Linear brightness of a plane's darker checker cells relative to its colour. */
const CHECKER_DARK = 0.6;

export function createRenderer(options: RendererOptions = {}): Renderer {
  return new RayCastRenderer(options);
}

export class RayCastRenderer implements Renderer {
  private readonly background: Float64Array;
  private readonly supersample: 1 | 2;
  private readonly shadows: boolean;
  private readonly geoms = new PackedGeoms();
  private readonly lights = new PackedLights();
  private readonly grids: ShadowGrid[] = [];
  private readonly useGrid: boolean[] = [];
  private readonly tiles = new TileBins();
  private lin = new Float32Array(0);
  private readonly camPos = new Float64Array(3);
  private readonly camRot = new Float64Array(9);
  private readonly nrm = new Float64Array(3);
  private readonly shadowRay = new Float64Array(RAY_LEN);
  private readonly view = new Float64Array(V_LEN);
  private depth = new Float64Array(0);
  private ids = new Int32Array(0);

  constructor(options: RendererOptions) {
    const bg = options.background ?? DEFAULT_BACKGROUND;
    if (!Array.isArray(bg) || bg.length !== 3 || !bg.every((c) => Number.isFinite(c) && c >= 0 && c <= 1)) {
      throw new StagewardError('SW_ERR_BAD_OPTION', 'renderer background must be three linear RGB values in [0, 1]');
    }
    const ss = options.supersample ?? 1;
    if (ss !== 1 && ss !== 2) throw new StagewardError('SW_ERR_BAD_OPTION', 'renderer supersample must be 1 or 2');
    this.background = Float64Array.from(bg);
    this.supersample = ss;
    this.shadows = options.shadows ?? true;
  }

  render(scene: SceneSnapshot, camera: string, width: number, height: number): RawImage {
    for (const side of [width, height]) {
      if (!Number.isInteger(side) || side < 1 || side > MAX_IMAGE_SIDE_PX) {
        throw new StagewardError(
          'SW_ERR_IMAGE_SIZE',
          `render size ${width}x${height} is not within 1..${MAX_IMAGE_SIDE_PX} pixels per side`,
        );
      }
    }
    const ss = this.supersample;
    if (width * height * ss * ss > MAX_RAYS_PER_RENDER) {
      throw new StagewardError(
        'SW_ERR_IMAGE_SIZE',
        `render size ${width}x${height} at supersample ${ss} exceeds ${MAX_RAYS_PER_RENDER} rays`,
      );
    }
    const cam = scene.cameras.find((c) => c.name === camera);
    if (!cam) {
      const known = scene.cameras.map((c) => c.name).join(', ');
      throw new StagewardError('SW_ERR_VIEW_UNKNOWN', `camera "${camera}" is not in the scene (cameras: ${known})`);
    }
    const sw = width * ss,
      sh = height * ss;
    const cp = this.camPos,
      cr = this.camRot;
    cp[0] = cam.pos[0];
    cp[1] = cam.pos[1];
    cp[2] = cam.pos[2];
    orthonormalInto(cam.mat, cr, 0);
    const fovy = Math.min(Math.max(cam.fovyDeg, 1e-3), 179);
    const tanY = Math.tan((fovy * Math.PI) / 360);
    const tanX = (tanY * sw) / sh;

    this.geoms.pack(scene.geoms);
    this.geoms.setCamera(cp, cr);
    this.lights.pack(scene.lights, cp, [-cr[2]!, -cr[5]!, -cr[8]!]);
    for (let i = 0; i < this.lights.count; i++) {
      const on = this.shadows && this.lights.castsShadow(i);
      this.useGrid[i] = on;
      if (!on) continue;
      const grid = (this.grids[i] ??= new ShadowGrid());
      grid.build(this.geoms, this.lights, i);
    }
    this.tiles.build(this.geoms, cp, cr, tanX, tanY, sw, sh);
    if (this.lin.length < sw * sh * 3) this.lin = new Float32Array(sw * sh * 3);
    this.trace(sw, sh, tanX, tanY);
    this.shadeFrame(sw, sh, tanX, tanY);

    const data = new Uint8Array(width * height * 3);
    resolveFrame(this.lin, width, height, ss, data);
    return { data, height, width, channels: 3 };
  }

  /** Casts one primary ray per (supersampled) pixel into the depth / id buffers, tile by tile. */
  private trace(sw: number, sh: number, tanX: number, tanY: number): void {
    const n = sw * sh;
    if (this.depth.length < n) {
      this.depth = new Float64Array(n);
      this.ids = new Int32Array(n);
    }
    const depth = this.depth,
      ids = this.ids,
      g = this.geoms.g,
      view = this.view;
    depth.fill(Infinity, 0, n);
    ids.fill(-1, 0, n);
    view[V_WIDTH] = sw;
    view[V_TANX] = tanX;
    view[V_TANY] = tanY;
    view[V_STEPX] = (2 * tanX) / sw;
    view[V_STEPY] = (2 * tanY) / sh;
    view[V_NEAR] = NEAR_M;
    const { lists, counts, rect, cap, tilesX, tilesY } = this.tiles;
    for (let ty = 0; ty < tilesY; ty++) {
      const ya = ty * TILE_PX,
        yb = Math.min(ya + TILE_PX, sh) - 1;
      for (let tx = 0; tx < tilesX; tx++) {
        const xa = tx * TILE_PX,
          xb = Math.min(xa + TILE_PX, sw) - 1;
        const tile = ty * tilesX + tx;
        const cnt = counts[tile]!,
          lb = tile * cap;
        for (let k = 0; k < cnt; k++) {
          const j = lists[lb + k]!,
            q = 4 * j;
          const x0 = Math.max(xa, rect[q]!),
            x1 = Math.min(xb, rect[q + 2]!);
          const y0 = Math.max(ya, rect[q + 1]!),
            y1 = Math.min(yb, rect[q + 3]!);
          if (x0 <= x1 && y0 <= y1) castRect(g, j * G_STRIDE, j, x0, x1, y0, y1, view, depth, ids);
        }
      }
    }
  }

  /** Shades every pixel from the depth / id buffers into linear RGB `lin`. */
  private shadeFrame(sw: number, sh: number, tanX: number, tanY: number): void {
    const g = this.geoms.g,
      lin = this.lin,
      bg = this.background,
      depth = this.depth,
      ids = this.ids;
    const cp = this.camPos,
      cr = this.camRot,
      p = this.nrm,
      ray = this.shadowRay;
    const L = this.lights,
      ld = L.data,
      amb = L.ambient,
      nLights = L.count;
    const sx = (2 * tanX) / sw,
      sy = (2 * tanY) / sh;
    ray[RAY_TMIN] = SHADOW_BIAS_M;
    for (let py = 0; py < sh; py++) {
      const v = tanY - (py + 0.5) * sy;
      for (let px = 0; px < sw; px++) {
        const i = py * sw + px,
          out = 3 * i,
          j = ids[i]!;
        if (j < 0) {
          lin[out] = bg[0]!;
          lin[out + 1] = bg[1]!;
          lin[out + 2] = bg[2]!;
          continue;
        }
        const u = (px + 0.5) * sx - tanX,
          t = depth[i]!;
        const b = j * G_STRIDE,
          m = b + G_CAM_M,
          o = b + G_CAM_O;
        // Local hit point, then its local normal (in place), then the world normal.
        const lx = g[o]! + t * (g[m]! * u + g[m + 1]! * v - g[m + 2]!);
        const ly = g[o + 1]! + t * (g[m + 3]! * u + g[m + 4]! * v - g[m + 5]!);
        p[0] = lx;
        p[1] = ly;
        p[2] = g[o + 2]! + t * (g[m + 6]! * u + g[m + 7]! * v - g[m + 8]!);
        normalLocal(g, b, p);
        const R = b + G_ROT;
        let nx = g[R]! * p[0]! + g[R + 1]! * p[1]! + g[R + 2]! * p[2]!;
        let ny = g[R + 3]! * p[0]! + g[R + 4]! * p[1]! + g[R + 5]! * p[2]!;
        let nz = g[R + 6]! * p[0]! + g[R + 7]! * p[1]! + g[R + 8]! * p[2]!;
        const nlen = Math.sqrt(nx * nx + ny * ny + nz * nz);
        if (nlen > 0) {
          nx /= nlen;
          ny /= nlen;
          nz /= nlen;
        }
        // World hit point: camPos + t * Rc (u, v, -1).
        const wx = cp[0]! + t * (cr[0]! * u + cr[1]! * v - cr[2]!);
        const wy = cp[1]! + t * (cr[3]! * u + cr[4]! * v - cr[5]!);
        const wz = cp[2]! + t * (cr[6]! * u + cr[7]! * v - cr[8]!);
        let albedo = 1;
        if (g[b + G_KIND] === K_PLANE) {
          const inv = 1 / g[b + G_CELL]!;
          if ((Math.floor(lx * inv) + Math.floor(ly * inv)) & 1) albedo = CHECKER_DARK;
        }
        let lr = amb[0]!,
          lg = amb[1]!,
          lbl = amb[2]!;
        for (let li = 0; li < nLights; li++) {
          const lb = L.base(li);
          let dx: number, dy: number, dz: number, tMax: number;
          if (ld[lb + LIGHT_DIRECTIONAL] === 1) {
            dx = -ld[lb + LIGHT_DIR]!;
            dy = -ld[lb + LIGHT_DIR + 1]!;
            dz = -ld[lb + LIGHT_DIR + 2]!;
            tMax = Infinity;
          } else {
            dx = ld[lb + LIGHT_POS]! - wx;
            dy = ld[lb + LIGHT_POS + 1]! - wy;
            dz = ld[lb + LIGHT_POS + 2]! - wz;
            tMax = Math.sqrt(dx * dx + dy * dy + dz * dz);
            if (!(tMax > 0)) continue;
            dx /= tMax;
            dy /= tMax;
            dz /= tMax;
          }
          const ndl = nx * dx + ny * dy + nz * dz;
          if (ndl <= 0) continue;
          if (this.useGrid[li]) {
            ray[0] = wx + nx * SHADOW_BIAS_M;
            ray[1] = wy + ny * SHADOW_BIAS_M;
            ray[2] = wz + nz * SHADOW_BIAS_M;
            ray[3] = dx;
            ray[4] = dy;
            ray[5] = dz;
            ray[RAY_TMAX] = tMax;
            if (this.grids[li]!.occluded(this.geoms, ray, j)) continue;
          }
          lr += ld[lb + LIGHT_DIFFUSE]! * ndl;
          lg += ld[lb + LIGHT_DIFFUSE + 1]! * ndl;
          lbl += ld[lb + LIGHT_DIFFUSE + 2]! * ndl;
        }
        lin[out] = g[b + G_RGB]! * albedo * lr;
        lin[out + 1] = g[b + G_RGB + 1]! * albedo * lg;
        lin[out + 2] = g[b + G_RGB + 2]! * albedo * lbl;
      }
    }
  }
}

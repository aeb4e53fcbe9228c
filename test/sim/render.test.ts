// The simulator's renderer (sim/render): orientation conventions, shapes, shading, shadows, the
// sRGB output, determinism and errors, on small hand-made SceneSnapshots.

import { describe, expect, it } from 'vitest';
import { isStagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import { axisAngle, camera, geom, tabletopScene } from '../../sim/render/demo-scene.ts';
import { createRenderer } from '../../sim/render/index.ts';
import type { Mat3, RenderCamera, RenderGeom, RenderLight, SceneSnapshot, Vec3 } from '../../sim/types.ts';

/** A camera at (0, -dist, 0) looking along world +y: image right = world +x, image up = world +z. */
const LOOK_ALONG_Y: Mat3 = [1, 0, 0, 0, 0, -1, 0, 1, 0]; // columns: x = +x, y = +z, z = -y
const BG: [number, number, number] = [0, 0, 1];
const BG_PIXEL = [0, 0, 255];

function frontCamera(dist = 3, fovyDeg = 45): RenderCamera {
  return { name: 'cam', pos: [0, -dist, 0], mat: LOOK_ALONG_Y, fovyDeg };
}

/** A white directional light shining along `dir`, no ambient. */
function sun(dir: Vec3, castShadow = true, ambient = 0): RenderLight {
  return { pos: [0, 0, 5], dir, directional: true, diffuse: [1, 1, 1], ambient: [ambient, ambient, ambient], castShadow };
}

function scene(geoms: RenderGeom[], cam: RenderCamera = frontCamera(), lights = [sun([0, 1, 0], false, 0.2)]): SceneSnapshot {
  return { geoms, lights, cameras: [cam] };
}

function pixel(img: RawImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

/** Bounding box and centroid of the pixels that are not the background. */
function silhouette(img: RawImage) {
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity,
    sx = 0,
    sy = 0,
    n = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const [r, g, b] = pixel(img, x, y);
      if (r === BG_PIXEL[0] && g === BG_PIXEL[1] && b === BG_PIXEL[2]) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
      sx += x;
      sy += y;
      n++;
    }
  }
  return { width: x1 - x0 + 1, height: y1 - y0 + 1, cx: sx / n, cy: sy / n, count: n };
}

/** Pixel (column, row) of world point p for a camera (pinhole, -z forward, +y up, row 0 at top). */
function project(cam: RenderCamera, p: Vec3, w: number, h: number): [number, number] {
  const d = [p[0] - cam.pos[0], p[1] - cam.pos[1], p[2] - cam.pos[2]];
  const m = cam.mat;
  const x = m[0] * d[0]! + m[3] * d[1]! + m[6] * d[2]!;
  const y = m[1] * d[0]! + m[4] * d[1]! + m[7] * d[2]!;
  const z = m[2] * d[0]! + m[5] * d[1]! + m[8] * d[2]!;
  const f = h / 2 / Math.tan((cam.fovyDeg * Math.PI) / 360);
  return [Math.floor(w / 2 + (f * x) / -z), Math.floor(h / 2 - (f * y) / -z)];
}

const red: RenderGeom['rgba'] = [0.9, 0.05, 0.05, 1];

describe('renderer orientation and colour', () => {
  const r = createRenderer({ background: BG });

  it('draws a red sphere in front of the camera at the image centre and the background at the corners', () => {
    const img = r.render(scene([geom('sphere', [0.5, 0, 0], [0, 0, 0], red)]), 'cam', 64, 64);
    expect(img).toMatchObject({ width: 64, height: 64, channels: 3 });
    expect(img.data.length).toBe(64 * 64 * 3);
    const [cr, cg, cb] = pixel(img, 32, 32);
    expect(cr).toBeGreaterThan(150);
    expect(cg).toBeLessThan(90);
    expect(cb).toBeLessThan(90);
    for (const [x, y] of [
      [0, 0],
      [63, 0],
      [0, 63],
      [63, 63],
    ] as const)
      expect(pixel(img, x, y)).toEqual(BG_PIXEL);
  });

  it('puts world -x on the image left and world +z at the top (row 0)', () => {
    const at = (p: Vec3) => silhouette(r.render(scene([geom('box', [0.2, 0.2, 0.2], p, red)]), 'cam', 64, 64));
    expect(at([-0.6, 0, 0]).cx).toBeLessThan(24);
    expect(at([0.6, 0, 0]).cx).toBeGreaterThan(40);
    expect(at([0, 0, 0.6]).cy).toBeLessThan(24);
    expect(at([0, 0, -0.6]).cy).toBeGreaterThan(40);
  });

  it('converts linear colour to sRGB: a fully lit linear 0.5 grey face is 188', () => {
    const face = geom('box', [1, 0.1, 1], [0, 0, 0], [0.5, 0.5, 0.5, 1]);
    const img = r.render(scene([face], frontCamera(3), [sun([0, 1, 0], false, 0)]), 'cam', 32, 32);
    expect(pixel(img, 16, 16)).toEqual([188, 188, 188]);
  });

  it('lights faces by Lambert: a face turned from the light is darker than one facing it', () => {
    const lights = [sun([0, 1, 0], false, 0.1)];
    const facing = r.render(scene([geom('box', [1, 0.1, 1], [0, 0, 0], [0.8, 0.8, 0.8, 1])], frontCamera(), lights), 'cam', 32, 32);
    const turned = r.render(
      scene([geom('box', [1, 0.1, 1], [0, 0, 0], [0.8, 0.8, 0.8, 1], axisAngle([0, 0, 1], 1.0))], frontCamera(), lights),
      'cam',
      32,
      32,
    );
    expect(pixel(turned, 16, 16)[0]!).toBeLessThan(pixel(facing, 16, 16)[0]! - 20);
  });
});

describe('renderer geometry', () => {
  const r = createRenderer({ background: BG });

  it('renders a box rotated by its xmat differently from the unrotated box', () => {
    const long: Vec3 = [0.8, 0.1, 0.1];
    const flat = r.render(scene([geom('box', long, [0, 0, 0], red)]), 'cam', 64, 64);
    const turned = r.render(scene([geom('box', long, [0, 0, 0], red, axisAngle([0, 1, 0], Math.PI / 2))]), 'cam', 64, 64);
    expect(Buffer.compare(flat.data, turned.data)).not.toBe(0);
    const a = silhouette(flat),
      b = silhouette(turned);
    expect(a.width).toBeGreaterThan(3 * a.height);
    expect(b.height).toBeGreaterThan(3 * b.width);
  });

  // A far camera with a narrow view: f = 64 / tan(fovy / 2) = 640 px per unit at distance 5, so a
  // world extent e spans about 128 * e pixels.
  const narrow = frontCamera(5, (2 * Math.atan(0.1) * 180) / Math.PI);
  const extent = (g: RenderGeom) => silhouette(r.render(scene([g], narrow), 'cam', 128, 128));
  const near = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(2 + 0.04 * want);

  it('renders a capsule lying along x with its length 2(h + r) and height 2r', () => {
    const s = extent(geom('capsule', [0.1, 0.3, 0], [0, 0, 0], red, axisAngle([0, 1, 0], Math.PI / 2)));
    near(s.width, 128 * 0.8);
    near(s.height, 128 * 0.2);
  });

  it('renders an upright cylinder as a 2r x 2h rectangle and, seen along its axis, as a 2r disc', () => {
    const side = extent(geom('cylinder', [0.15, 0.3, 0], [0, 0, 0], red));
    near(side.width, 128 * 0.3);
    near(side.height, 128 * 0.6);
    // Corners of the side view are filled (a rectangle, unlike a capsule).
    expect(side.count).toBeGreaterThan(0.9 * side.width * side.height);
    const end = extent(geom('cylinder', [0.15, 0.3, 0], [0, 0, 0], red, axisAngle([1, 0, 0], Math.PI / 2)));
    near(end.width, 128 * 0.3);
    near(end.height, 128 * 0.3);
    expect(end.count).toBeLessThan(0.85 * end.width * end.height); // a disc, not a square
  });

  it('renders an ellipsoid with its half-sizes along x and z', () => {
    const s = extent(geom('ellipsoid', [0.3, 0.1, 0.15], [0, 0, 0], red));
    near(s.width, 128 * 0.6);
    near(s.height, 128 * 0.3);
    expect(s.count).toBeLessThan(0.85 * s.width * s.height);
  });

  it('draws only the background for an empty scene and skips fully transparent geoms', () => {
    expect(silhouette(r.render(scene([]), 'cam', 16, 16)).count).toBe(0);
    const ghost = geom('sphere', [0.5, 0, 0], [0, 0, 0], [1, 0, 0, 0]);
    expect(silhouette(r.render(scene([ghost]), 'cam', 16, 16)).count).toBe(0);
  });

  it('does not draw a geom that contains the camera, nor a plane seen from below', () => {
    const cam = frontCamera(3);
    const around = r.render(scene([geom('box', [5, 5, 5], [0, 0, 0], red)], cam), 'cam', 16, 16);
    expect(silhouette(around).count).toBe(0);
    const below = r.render(scene([geom('plane', [0, 0, 1], [0, 0, 1], red)], cam), 'cam', 16, 16);
    expect(silhouette(below).count).toBe(0);
  });
});

describe('renderer shading of the ground', () => {
  const cam = camera('cam', [0, -3, 2.5], [0, 0, 0], 40);
  const floor = geom('plane', [0, 0, 1], [0, 0, 0], [0.6, 0.6, 0.6, 1]); // 1 m checker cells
  const ball = geom('sphere', [0.2, 0, 0], [0.1, 0.1, 0.6], red);
  const shadowed = project(cam, [0.1, 0.1, 0], 96, 96);
  const lit = project(cam, [0.7, 0.3, 0], 96, 96); // same checker cell as the shadowed point

  it('casts a darker shadow on the plane under an object than on the lit plane beside it', () => {
    const img = createRenderer({ background: BG }).render(scene([floor, ball], cam, [sun([0, 0, -1], true, 0.2)]), 'cam', 96, 96);
    const dark = pixel(img, ...shadowed),
      bright = pixel(img, ...lit);
    expect(dark[0]!).toBeLessThan(bright[0]! - 40);
  });

  it('draws no shadow with shadows off', () => {
    const img = createRenderer({ background: BG, shadows: false }).render(
      scene([floor, ball], cam, [sun([0, 0, -1], true, 0.2)]),
      'cam',
      96,
      96,
    );
    expect(Math.abs(pixel(img, ...shadowed)[0]! - pixel(img, ...lit)[0]!)).toBeLessThanOrEqual(2);
  });

  it('textures the plane with a checker so that its cells differ', () => {
    const img = createRenderer({ background: BG }).render(scene([floor], cam, [sun([0, 0, -1], false, 0.2)]), 'cam', 96, 96);
    const a = pixel(img, ...project(cam, [0.5, 0.5, 0], 96, 96));
    const b = pixel(img, ...project(cam, [-0.5, 0.5, 0], 96, 96));
    expect(Math.abs(a[0]! - b[0]!)).toBeGreaterThan(20);
  });

  it('shadows from a point light too', () => {
    const lamp: RenderLight = {
      pos: [0.1, 0.1, 2],
      dir: [0, 0, -1],
      directional: false,
      diffuse: [1, 1, 1],
      ambient: [0.2, 0.2, 0.2],
      castShadow: true,
    };
    const img = createRenderer({ background: BG }).render(scene([floor, ball], cam, [lamp]), 'cam', 96, 96);
    expect(pixel(img, ...shadowed)[0]!).toBeLessThan(pixel(img, ...lit)[0]! - 40);
  });
});

describe('renderer on the tabletop scene', () => {
  const r = createRenderer();

  it('renders two views of the same scene differently', () => {
    const s = tabletopScene('table');
    expect(Buffer.compare(r.render(s, 'front', 96, 96).data, r.render(s, 'side', 96, 96).data)).not.toBe(0);
  });

  it('is deterministic: the same snapshot gives identical bytes, across renderers too', () => {
    const s = tabletopScene('held', 0.3);
    const a = r.render(s, 'wrist', 96, 96);
    r.render(tabletopScene('bowl'), 'front', 64, 48); // state left from another render must not leak
    const b = r.render(s, 'wrist', 96, 96);
    const c = createRenderer().render(s, 'wrist', 96, 96);
    expect(Buffer.compare(a.data, b.data)).toBe(0);
    expect(Buffer.compare(a.data, c.data)).toBe(0);
  });

  it('tells the cube on the table, held in the gripper and in the bowl apart', () => {
    const views = ['table', 'held', 'bowl'].map((st) => r.render(tabletopScene(st as 'table'), 'front', 96, 96));
    for (const [i, j] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      let diff = 0;
      for (let k = 0; k < views[i]!.data.length; k += 3) if (views[i]!.data[k] !== views[j]!.data[k]) diff++;
      expect(diff).toBeGreaterThan(40);
    }
  });

  it('renders 640x480 and supersampled images of the right shape', () => {
    const s = tabletopScene('table');
    const big = r.render(s, 'front', 640, 480);
    expect(big).toMatchObject({ width: 640, height: 480, channels: 3 });
    expect(big.data.length).toBe(640 * 480 * 3);
    const small = createRenderer().render(s, 'front', 96, 96);
    const ss = createRenderer({ supersample: 2 }).render(s, 'front', 96, 96);
    expect(ss.data.length).toBe(small.data.length);
    const mean = (d: Uint8Array) => d.reduce((a, v) => a + v, 0) / d.length;
    expect(Math.abs(mean(ss.data) - mean(small.data))).toBeLessThan(4);
  });

  it('falls back to a headlight when the scene has no lights', () => {
    const s = { ...tabletopScene('table'), lights: [] };
    const img = r.render(s, 'front', 32, 32);
    expect(Math.max(...img.data)).toBeGreaterThan(100);
  });
});

describe('renderer errors', () => {
  it('rejects an unknown camera, a bad size and bad options with stable codes', () => {
    const r = createRenderer();
    const s = tabletopScene();
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return isStagewardError(err) ? err.code : 'other';
      }
      return 'none';
    };
    expect(code(() => r.render(s, 'nope', 96, 96))).toBe('SW_ERR_VIEW_UNKNOWN');
    expect(code(() => r.render(s, 'front', 0, 96))).toBe('SW_ERR_IMAGE_SIZE');
    expect(code(() => r.render(s, 'front', 96.5, 96))).toBe('SW_ERR_IMAGE_SIZE');
    expect(code(() => createRenderer({ supersample: 3 as 2 }))).toBe('SW_ERR_BAD_OPTION');
    expect(code(() => createRenderer({ background: [2, 0, 0] }))).toBe('SW_ERR_BAD_OPTION');
  });
});

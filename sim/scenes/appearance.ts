// Domain randomisation of how a scene looks (never of its task geometry): light placement and
// strength, small hue jitter of object colours, small camera pose jitter and inert distractor
// primitives on the table. All draws come from one seeded generator; every knob is off by default.

import { StagewardError } from '../../core/errors.ts';
import type { Vec3 } from '../types.ts';
import type { SeededRandom } from '../../core/random.ts';

export type Rgba = [number, number, number, number];

/** Per knob: `true` (strength 1), `false`/absent (off) or a strength >= 0 (1 = the default amount). */
export interface RandomizationOptions {
  lights?: boolean | number;
  colors?: boolean | number;
  cameraJitter?: boolean | number;
  /** Strength s adds round(3 s) distractors (at most 8). */
  distractors?: boolean | number;
}

export interface RandomizationStrengths {
  lights: number;
  colors: number;
  cameraJitter: number;
  distractors: number;
}

export const NO_RANDOMIZATION: RandomizationStrengths = { lights: 0, colors: 0, cameraJitter: 0, distractors: 0 };

/** Turn the user's knobs into strengths; refuses unknown keys and negative or non-finite strengths. */
export function resolveRandomization(opts: RandomizationOptions | undefined): RandomizationStrengths {
  const out: RandomizationStrengths = { ...NO_RANDOMIZATION };
  if (!opts) return out;
  for (const [key, value] of Object.entries(opts)) {
    if (!(key in out)) throw new StagewardError('SW_ERR_BAD_OPTION', `unknown randomization knob "${key}"`);
    const s = value === true ? 1 : value === false || value === undefined ? 0 : value;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) {
      throw new StagewardError('SW_ERR_BAD_OPTION', `randomization.${key} must be a boolean or a number >= 0`);
    }
    out[key as keyof RandomizationStrengths] = s;
  }
  return out;
}

export interface LightSpec {
  pos: Vec3;
  dir: Vec3;
  diffuse: Vec3;
  ambient: Vec3;
  directional: boolean;
  castShadow: boolean;
}

export interface CameraPose {
  pos: Vec3;
  target: Vec3;
  fovyDeg: number;
}

export type DistractorKind = 'sphere' | 'box' | 'cylinder' | 'capsule';

export interface DistractorSpec {
  kind: DistractorKind;
  /** MuJoCo size of the geom (sphere [r], box half-sizes, cylinder/capsule [r, half-length]). */
  size: number[];
  /** Geom centre, resting on the table. */
  pos: Vec3;
  rgba: Rgba;
}

/** Everything about a scene's looks that randomisation may change. */
export interface SceneAppearance {
  /** Colours by role (task objects, 'table', 'floor', 'gripper'). */
  colors: Record<string, Rgba>;
  lights: LightSpec[];
  /** World cameras by name (front, side). */
  cameras: Record<string, CameraPose>;
  /** Wrist camera in the hand frame: position and viewing direction. */
  wrist: { pos: Vec3; dir: Vec3; fovyDeg: number };
  distractors: DistractorSpec[];
}

export interface AppearanceDefaults {
  colors: Record<string, Rgba>;
  lights: LightSpec[];
  cameras: Record<string, CameraPose>;
  wrist: { pos: Vec3; dir: Vec3; fovyDeg: number };
  /** Table-top region where distractors may stand: outside `keepOut` (the workspace) on the table. */
  distractorArea: { tableHalf: [number, number]; keepOutHalf: [number, number]; tableTopZ: number };
}

/** Draw an appearance: the defaults, perturbed by each knob's strength. */
export function sampleAppearance(rng: SeededRandom, s: RandomizationStrengths, d: AppearanceDefaults): SceneAppearance {
  // Each knob has its own stream, so turning one on does not move the others' draws.
  const rc = rng.fork(1);
  const rl = rng.fork(2);
  const rk = rng.fork(3);
  const rd = rng.fork(4);
  const colors: Record<string, Rgba> = {};
  for (const [role, rgba] of Object.entries(d.colors)) colors[role] = s.colors > 0 ? jitterColor(rc, rgba, s.colors) : rgba;
  const lights = d.lights.map((l) => (s.lights > 0 ? jitterLight(rl, l, s.lights) : l));
  const cameras: Record<string, CameraPose> = {};
  for (const [name, cam] of Object.entries(d.cameras)) {
    const j = s.cameraJitter;
    cameras[name] =
      j > 0
        ? {
            pos: add(cam.pos, [rk.range(-1, 1) * 0.03 * j, rk.range(-1, 1) * 0.03 * j, rk.range(-1, 1) * 0.03 * j]),
            target: add(cam.target, [rk.range(-1, 1) * 0.02 * j, rk.range(-1, 1) * 0.02 * j, rk.range(-1, 1) * 0.01 * j]),
            fovyDeg: cam.fovyDeg + rk.range(-2, 2) * j,
          }
        : cam;
  }
  const w = s.cameraJitter;
  const wrist =
    w > 0
      ? {
          pos: add(d.wrist.pos, [rk.range(-1, 1) * 0.004 * w, rk.range(-1, 1) * 0.004 * w, 0]),
          dir: add(normalize(d.wrist.dir), [rk.range(-1, 1) * 0.05 * w, rk.range(-1, 1) * 0.05 * w, 0]),
          fovyDeg: d.wrist.fovyDeg + rk.range(-2, 2) * w,
        }
      : d.wrist;
  const count = Math.min(8, Math.round(3 * s.distractors));
  return { colors, lights, cameras, wrist, distractors: sampleDistractors(rd, count, d.distractorArea) };
}

function jitterColor(rng: SeededRandom, [r, g, b, a]: Rgba, s: number): Rgba {
  const [h, sat, v] = rgbToHsv(r, g, b);
  const h2 = (h + rng.range(-0.03, 0.03) * s + 1) % 1;
  const s2 = clamp(sat + rng.range(-0.1, 0.1) * s, 0, 1);
  const v2 = clamp(v + rng.range(-0.1, 0.1) * s, 0.05, 1);
  const [r2, g2, b2] = hsvToRgb(h2, s2, v2);
  return [r2, g2, b2, a];
}

function jitterLight(rng: SeededRandom, l: LightSpec, s: number): LightSpec {
  const pos = add(l.pos, [rng.range(-0.4, 0.4) * s, rng.range(-0.4, 0.4) * s, rng.range(-0.2, 0.2) * s]);
  // Keep pointing at the table: the default direction's aim point, seen from the new position.
  const aim = add(l.pos, scale(l.dir, l.pos[2] / Math.max(1e-6, -l.dir[2])));
  const k = clamp(1 + rng.range(-0.35, 0.25) * s, 0.3, 1.6);
  return {
    ...l,
    pos,
    dir: normalize(sub(aim, pos)),
    diffuse: l.diffuse.map((c) => clamp(c * k, 0, 1)) as Vec3,
    ambient: l.ambient.map((c) => clamp(c * clamp(1 + rng.range(-0.3, 0.3) * s, 0.3, 1.6), 0, 1)) as Vec3,
  };
}

function sampleDistractors(rng: SeededRandom, count: number, area: AppearanceDefaults['distractorArea']): DistractorSpec[] {
  const out: DistractorSpec[] = [];
  const kinds: DistractorKind[] = ['sphere', 'box', 'cylinder', 'capsule'];
  for (let tries = 0; out.length < count && tries < 200; tries++) {
    const x = rng.range(-area.tableHalf[0] + 0.05, area.tableHalf[0] - 0.05);
    const y = rng.range(-area.tableHalf[1] + 0.05, area.tableHalf[1] - 0.05);
    if (Math.abs(x) < area.keepOutHalf[0] && Math.abs(y) < area.keepOutHalf[1]) continue;
    if (out.some((o) => Math.hypot(o.pos[0] - x, o.pos[1] - y) < 0.08)) continue;
    const kind = rng.pick(kinds);
    const r = rng.range(0.012, 0.025);
    const size =
      kind === 'box' ? [r, rng.range(0.012, 0.025), rng.range(0.01, 0.025)] : kind === 'sphere' ? [r] : [r, rng.range(0.01, 0.03)];
    // Every primitive stands upright, resting on the table.
    const halfHeight = kind === 'sphere' ? r : kind === 'box' ? size[2]! : kind === 'cylinder' ? size[1]! : size[1]! + r;
    const [cr, cg, cb] = hsvToRgb(rng.next(), rng.range(0.3, 0.9), rng.range(0.4, 0.95));
    out.push({ kind, size, pos: [x, y, area.tableTopZ + halfHeight], rgba: [cr, cg, cb, 1] });
  }
  return out;
}

// ---- small vector and colour helpers (exported for the scene builders) ----

export function add(a: Vec3, b: Vec3): Vec3 {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
}
export function sub(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}
export function scale(a: Vec3, k: number): Vec3 {
  return [a[0] * k, a[1] * k, a[2] * k];
}
export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
export function normalize(a: Vec3): Vec3 {
  const n = Math.hypot(a[0], a[1], a[2]);
  return n > 0 ? scale(a, 1 / n) : [0, 0, 0];
}
export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** MJCF `xyaxes` for a camera at `pos` looking along `dir`, with `upHint` up in the image. */
export function cameraXyAxes(dir: Vec3, upHint: Vec3 = [0, 0, 1]): [Vec3, Vec3] {
  const z = normalize(scale(dir, -1));
  const x = normalize(cross(upHint, z));
  const y = cross(z, x);
  return [x, y];
}

function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = ((g - b) / d + 6) % 6;
    else if (max === g) h = (b - r) / d + 2;
    else h = (r - g) / d + 4;
  }
  return [h / 6, max > 0 ? d / max : 0, max];
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6) % 6;
  const f = h * 6 - Math.floor(h * 6);
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const table: [number, number, number][] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ];
  return table[i]!;
}

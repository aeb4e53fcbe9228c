// A generated episode for the benchmarks (no simulator, no physics: cheap to make at any size): per
// view, an RGB scene where a red block travels to a blue bowl and drops in. Deterministic for a seed.

import type { RawImage } from '../core/image.ts';
import { mulberry32 } from '../core/random.ts';

export interface DemoFrame {
  /** Fraction of the way through the episode, in [0, 1]. */
  phase: number;
  views: Record<string, RawImage>;
}

function fillRect(img: RawImage, x0: number, y0: number, x1: number, y1: number, rgb: [number, number, number]): void {
  const { width, height, data } = img;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, Math.ceil(x1)); x++) {
      const i = (y * width + x) * 3;
      data[i] = rgb[0];
      data[i + 1] = rgb[1];
      data[i + 2] = rgb[2];
    }
  }
}

/** Render one view of the scene at `phase` (0 start, 1 block in bowl). */
export function renderDemoView(view: number, phase: number, height: number, width: number, noise: () => number): RawImage {
  const img: RawImage = { data: new Uint8Array(height * width * 3), height, width, channels: 3 };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const n = Math.floor(noise() * 8);
      img.data[i] = 90 + (y * 60) / height + n + view * 10;
      img.data[i + 1] = 80 + (x * 40) / width + n;
      img.data[i + 2] = 70 + n;
    }
  }
  const s = Math.min(height, width);
  const shift = view * 0.08;
  fillRect(img, (0.65 + shift) * width, 0.6 * height, (0.85 + shift) * width, 0.75 * height, [40, 60, 200]);
  const lift = Math.sin(Math.PI * Math.min(1, phase)) * 0.25;
  const bx = 0.15 + 0.55 * phase + shift;
  const by = 0.6 - lift;
  fillRect(img, bx * width, by * height, bx * width + 0.12 * s, by * height + 0.12 * s, [210, 40, 40]);
  return img;
}

/** `steps` frames of the generated episode, every view at height x width. */
export function* demoEpisode(views: readonly string[], steps: number, height: number, width: number, seed: number): Generator<DemoFrame> {
  const rand = mulberry32(seed);
  for (let t = 0; t < steps; t++) {
    const phase = steps === 1 ? 1 : t / (steps - 1);
    const out: Record<string, RawImage> = {};
    views.forEach((v, i) => {
      out[v] = renderDemoView(i, phase, height, width, rand);
    });
    yield { phase, views: out };
  }
}

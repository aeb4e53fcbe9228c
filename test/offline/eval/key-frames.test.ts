// Key frames for the HTML reports (offline/eval/key-frames.ts): the first frame and each predicted
// stage change, as small JPEGs of one view, at most a limit per episode with the rest counted.

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { RawImage } from '../../../core/image.ts';
import { KeyFrames, THUMB_WIDTH } from '../../../offline/eval/key-frames.ts';

const frame = (value: number, width = 200, height = 100): RawImage => ({
  data: new Uint8Array(width * height * 3).fill(value),
  width,
  height,
  channels: 3,
});

describe('KeyFrames', () => {
  it('keeps the first frame and each stage change of its view, skipping frames without a prediction', async () => {
    const kf = new KeyFrames('front');
    const stages = [0, 0, null, 1, 1, 0, null, 2];
    stages.forEach((stage, t) => kf.see(t, { front: frame(10 * t), wrist: frame(0) }, stage));
    const frames = await kf.done();
    expect(frames.map((k) => [k.frame, k.stage])).toEqual([
      [0, 0],
      [3, 1],
      [5, 0],
      [7, 2],
    ]);
    const meta = await sharp(frames[0]!.jpeg).metadata();
    expect(meta.format).toBe('jpeg');
    expect(meta.width).toBe(THUMB_WIDTH);
    expect(kf.omitted).toBe(0);
  });

  it('keeps at most `limit`, counts the changes after it, and leaves out a frame it cannot encode', async () => {
    const kf = new KeyFrames('front', 2);
    for (let t = 0; t < 6; t++) kf.see(t, { front: frame(t, 16, 8) }, t);
    expect((await kf.done()).map((k) => k.frame)).toEqual([0, 1]);
    expect(kf.omitted).toBe(4);
    expect((await sharp((await kf.done())[0]!.jpeg).metadata()).width).toBe(16); // smaller frames keep their size

    const bad = new KeyFrames('front');
    bad.see(0, { front: new Uint8Array([1, 2, 3]) }, 0); // not an image
    expect(await bad.done()).toEqual([]);
  });
});

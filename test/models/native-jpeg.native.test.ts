// The native JPEG decoder against sharp: same pixels for frames at the model's size, within a small
// bound where it DCT-scales a larger frame, the same refusals, the same rewards within 0.01.
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { renderDemoView } from '../../bench/demo-episode.ts';
import { ZOO_DIR } from '../../core/paths.ts';
import { mulberry32 } from '../../core/random.ts';
import { NATIVE_JPEG_ADDON, nativeJpeg, resetNativeJpeg } from '../../models/native-jpeg.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import { RewardEngine } from '../../models/engine.ts';
import { preprocessInto } from '../../models/preprocess.ts';
import { expectCode } from '../helpers.ts';

const rand = mulberry32(3);
async function jpegOf(w: number, h: number, phase: number, sub: '4:2:0' | '4:4:4' = '4:2:0', view = 0): Promise<Buffer> {
  const img = renderDemoView(view, phase, h, w, rand);
  return sharp(Buffer.from(img.data), { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85, chromaSubsampling: sub })
    .toBuffer();
}
const TARGET = { height: 96, width: 96, resize: 'stretch' as const };
const LIMITS = { maxImagePixels: 1e8 };

async function both(bytes: Uint8Array): Promise<{ native: Uint8Array; sharp: Uint8Array }> {
  const native = new Uint8Array(96 * 96 * 3);
  const plain = new Uint8Array(96 * 96 * 3);
  process.env.STAGEWARD_NATIVE_JPEG = '1';
  resetNativeJpeg();
  await preprocessInto(bytes, TARGET, native, 0, LIMITS, 'x');
  process.env.STAGEWARD_NATIVE_JPEG = '0';
  resetNativeJpeg();
  await preprocessInto(bytes, TARGET, plain, 0, LIMITS, 'x');
  return { native, sharp: plain };
}

function diff(a: Uint8Array, b: Uint8Array): { mean: number; p99: number } {
  const d = Array.from(a, (v, i) => Math.abs(v - b[i]!)).sort((x, y) => x - y);
  return { mean: d.reduce((s, x) => s + x, 0) / d.length, p99: d[Math.floor(d.length * 0.99)]! };
}

afterEach(() => {
  delete process.env.STAGEWARD_NATIVE_JPEG;
  resetNativeJpeg();
});

describe('native JPEG decoder', () => {
  it('is built and loads', () => {
    const addon = nativeJpeg();
    expect(addon, `not built at ${NATIVE_JPEG_ADDON}: apt-get install -y libturbojpeg0-dev && npm run build:native`).not.toBeNull();
    expect(addon!.library).toBe('libjpeg-turbo');
  });

  it('decodes at the smallest DCT scale that covers the requested size', async () => {
    const addon = nativeJpeg()!;
    for (const [w, h, out] of [
      [96, 96, [96, 96]],
      [192, 192, [96, 96]],
      [640, 480, [160, 120]],
      [100, 90, [100, 90]],
    ] as const) {
      const r = await addon.decode(await jpegOf(w, h, 0.5), 96, 96);
      expect([r.width, r.height], `${w}x${h}`).toEqual([...out]);
      expect(r.data.length).toBe(r.width * r.height * 3);
    }
  });

  it('gives the same pixels as sharp at the model size, and within a small bound when it scales', async () => {
    for (const sub of ['4:2:0', '4:4:4'] as const) {
      for (const phase of [0.1, 0.6]) {
        const same = await both(await jpegOf(96, 96, phase, sub));
        expect(Buffer.from(same.native).equals(Buffer.from(same.sharp)), `96x96 ${sub}`).toBe(true);
        const wide = await both(await jpegOf(640, 480, phase, sub)); // both shrink on load by 4, then resize
        expect(diff(wide.native, wide.sharp).mean).toBeLessThan(0.5);
        for (const side of [192, 224]) {
          const scaled = diff(...(Object.values(await both(await jpegOf(side, side, phase, sub))) as [Uint8Array, Uint8Array]));
          expect(scaled.mean, `${side} ${sub}`).toBeLessThan(1);
          expect(scaled.p99, `${side} ${sub}`).toBeLessThanOrEqual(12);
        }
      }
    }
  });

  it('leaves the verdict on a corrupt or truncated JPEG to sharp (SW_ERR_IMAGE_DECODE)', async () => {
    const good = await jpegOf(96, 96, 0.3);
    process.env.STAGEWARD_NATIVE_JPEG = '1';
    resetNativeJpeg();
    await expect(nativeJpeg()!.decode(good.subarray(0, good.length >> 1), 96, 96)).rejects.toThrow(/^jpeg: /);
    await expectCode(
      preprocessInto(good.subarray(0, good.length >> 1), TARGET, new Uint8Array(96 * 96 * 3), 0, LIMITS, 'view "front"'),
      'SW_ERR_IMAGE_DECODE',
      'view "front"',
    );
  });

  it('gives the rewards sharp gives within 0.01 with the bundled model, over an episode of frames twice its size', async () => {
    const model = await OnnxProgressModel.load(join(ZOO_DIR, 'pick_place'));
    try {
      const run = async (native: '0' | '1') => {
        process.env.STAGEWARD_NATIVE_JPEG = native;
        resetNativeJpeg();
        const episode = await new RewardEngine(model).start({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' });
        const progress: number[] = [];
        for (let t = 0; t < 8; t++) {
          const frame = (view: number) => jpegOf(192, 192, t / 8, '4:2:0', view);
          const frames = { front: await frame(0), side: await frame(1), wrist: await frame(2) };
          progress.push((await episode.step({ frames })).progress);
        }
        return progress;
      };
      const a = await run('1');
      const b = await run('0');
      for (let t = 0; t < a.length; t++) expect(Math.abs(a[t]! - b[t]!)).toBeLessThanOrEqual(0.01);
    } finally {
      await model.close();
    }
  });
});

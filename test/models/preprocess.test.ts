import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseCard } from '../../models/card.ts';
import { isStagewardError } from '../../core/errors.ts';
import { DEFAULT_PREPROCESS_LIMITS, preprocessFrames, preprocessInto } from '../../models/preprocess.ts';
import { type RawImage } from '../../core/image.ts';
import { baseCardJson } from './card-fixture.ts';

/** A 40x20 (w x h) image: left half red, right half green. */
function halves(width = 40, height = 20): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (x < width / 2) data[i] = 255;
      else data[i + 1] = 255;
    }
  }
  return { data, height, width, channels: 3 };
}

const encode = (img: RawImage, format: 'jpeg' | 'png') => {
  const raw = sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
  return (format === 'jpeg' ? raw.jpeg() : raw.png()).toBuffer();
};

async function run(img: Parameters<typeof preprocessInto>[0], resize: 'stretch' | 'pad' | 'crop' = 'stretch', h = 10, w = 10) {
  const out = new Uint8Array(h * w * 3);
  await preprocessInto(img, { height: h, width: w, resize }, out, 0, DEFAULT_PREPROCESS_LIMITS, 'test');
  return out;
}
const px = (out: Uint8Array, x: number, y: number, w = 10) => Array.from(out.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));

async function expectCode(p: Promise<unknown>, code: string) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStagewardError(err), `expected a StagewardError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

describe('preprocessing', () => {
  it('copies a raw RGB frame already at the model resolution unchanged', async () => {
    const img = halves(10, 10);
    expect(Array.from(await run(img, 'stretch'))).toEqual(Array.from(img.data));
  });

  it('stretch squeezes the whole image into the model size', async () => {
    const out = await run(halves(), 'stretch');
    expect(px(out, 1, 5)[0]).toBeGreaterThan(200);
    expect(px(out, 8, 5)[1]).toBeGreaterThan(200);
  });

  it('pad letterboxes with black bars and keeps the aspect ratio', async () => {
    const out = await run(halves(), 'pad');
    expect(px(out, 5, 0)).toEqual([0, 0, 0]);
    expect(px(out, 5, 9)).toEqual([0, 0, 0]);
    expect(px(out, 1, 5)[0]).toBeGreaterThan(200);
  });

  it('crop keeps the centre', async () => {
    const out = await run(halves(), 'crop');
    // The centre 20x20 of a 40x20 image: red on the left half, green on the right.
    expect(px(out, 1, 5)[0]).toBeGreaterThan(200);
    expect(px(out, 8, 5)[1]).toBeGreaterThan(200);
    expect(px(out, 5, 0)).not.toEqual([0, 0, 0]);
  });

  it('decodes real JPEG and PNG bytes', async () => {
    for (const format of ['jpeg', 'png'] as const) {
      const out = await run(await encode(halves(), format), 'stretch');
      expect(px(out, 1, 5)[0]).toBeGreaterThan(200);
      expect(px(out, 8, 5)[1]).toBeGreaterThan(200);
    }
  });

  it('accepts grey and RGBA raw arrays', async () => {
    const grey: RawImage = { data: new Uint8Array(20 * 20).fill(128), height: 20, width: 20, channels: 1 };
    expect(px(await run(grey, 'stretch'), 3, 3)).toEqual([128, 128, 128]);
    const rgba: RawImage = { data: new Uint8Array(20 * 20 * 4).fill(200), height: 20, width: 20, channels: 4 };
    expect(px(await run(rgba, 'stretch'), 3, 3)).toEqual([200, 200, 200]);
    // Alpha is dropped, never multiplied in: a transparent camera frame keeps its colours.
    const clear = new Uint8Array(20 * 20 * 4);
    for (let i = 0; i < 400; i++) clear.set([10, 200, 90, 0], i * 4);
    expect(px(await run({ data: clear, height: 20, width: 20, channels: 4 }, 'stretch'), 3, 3)).toEqual([10, 200, 90]);
  });

  it('refuses broken image bytes with SW_ERR_IMAGE_DECODE', async () => {
    const jpeg = await encode(halves(), 'jpeg');
    await expectCode(run(jpeg.subarray(0, jpeg.length / 2)), 'SW_ERR_IMAGE_DECODE');
    const png = await encode(halves(), 'png');
    const corrupt = Buffer.from(png);
    corrupt.fill(7, 40, 80);
    await expectCode(run(corrupt), 'SW_ERR_IMAGE_DECODE');
    await expectCode(run(new Uint8Array([1, 2, 3, 4, 5])), 'SW_ERR_IMAGE_DECODE');
    await expectCode(run(new Uint8Array(0)), 'SW_ERR_IMAGE_DECODE');
  });

  it('refuses an absurd size before decoding it', async () => {
    // A valid PNG header declaring 100000 x 100000 pixels: refused from the header, never decoded.
    const png = Buffer.from(await encode(halves(), 'png'));
    png.writeUInt32BE(100_000, 16);
    png.writeUInt32BE(100_000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29); // keep the IHDR checksum valid
    await expectCode(run(png), 'SW_ERR_IMAGE_SIZE');
    await expectCode(run({ data: new Uint8Array(3), height: 100_000, width: 100_000, channels: 3 }), 'SW_ERR_IMAGE_SIZE');
  });

  it('refuses a raw array whose bytes do not match its shape', async () => {
    await expectCode(run({ data: new Uint8Array(10), height: 2, width: 2, channels: 3 }), 'SW_ERR_IMAGE_SIZE');
    await expectCode(run({ data: new Uint8Array(0), height: 0, width: 0, channels: 3 }), 'SW_ERR_IMAGE_SIZE');
    await expectCode(run({ data: new Uint8Array(8), height: 2, width: 2, channels: 2 as 3 }), 'SW_ERR_IMAGE_SIZE');
  });

  describe('views', () => {
    const card = parseCard(baseCardJson());
    const frame = () => ({ data: new Uint8Array(64 * 64 * 3), height: 64, width: 64, channels: 3 as const });

    it('orders views as the card does, whatever the order they arrive in', async () => {
      const views = {
        wrist: { ...frame(), data: new Uint8Array(64 * 64 * 3).fill(3) },
        front: { ...frame(), data: new Uint8Array(64 * 64 * 3).fill(1) },
        side: { ...frame(), data: new Uint8Array(64 * 64 * 3).fill(2) },
      };
      const out = await preprocessFrames(views, card, DEFAULT_PREPROCESS_LIMITS);
      const size = 64 * 64 * 3;
      expect([out[0], out[size], out[2 * size]]).toEqual([1, 2, 3]);
    });

    it('refuses a missing view with SW_ERR_VIEW_MISSING', async () => {
      await expectCode(preprocessFrames({ front: frame(), side: frame() }, card, DEFAULT_PREPROCESS_LIMITS), 'SW_ERR_VIEW_MISSING');
    });

    it('refuses an unknown view with SW_ERR_VIEW_UNKNOWN', async () => {
      await expectCode(
        preprocessFrames({ front: frame(), side: frame(), wrist: frame(), top: frame() }, card, DEFAULT_PREPROCESS_LIMITS),
        'SW_ERR_VIEW_UNKNOWN',
      );
    });
  });
});

// The switch that turns the native JPEG decoder off, and the sharp path it falls back to (the native
// decoder itself is tested by `npm run test:native`, where it is built).
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeJpeg, nativeJpegDisabled, resetNativeJpeg } from '../../models/native-jpeg.ts';
import { preprocessInto } from '../../models/preprocess.ts';

afterEach(() => {
  delete process.env.STAGEWARD_NATIVE_JPEG;
  resetNativeJpeg();
});

describe('STAGEWARD_NATIVE_JPEG', () => {
  it('0, off or false turn the native decoder off; anything else leaves it to the build', () => {
    for (const v of ['0', 'off', 'OFF', ' false ']) expect(nativeJpegDisabled({ STAGEWARD_NATIVE_JPEG: v }), v).toBe(true);
    for (const v of [undefined, '', '1', 'on']) expect(nativeJpegDisabled({ STAGEWARD_NATIVE_JPEG: v }), String(v)).toBe(false);
  });

  it('off, JPEG frames decode with sharp to the model size', async () => {
    process.env.STAGEWARD_NATIVE_JPEG = '0';
    resetNativeJpeg();
    expect(nativeJpeg()).toBeNull();
    const jpeg = await sharp({ create: { width: 192, height: 96, channels: 3, background: { r: 200, g: 100, b: 50 } } })
      .jpeg({ quality: 95 })
      .toBuffer();
    const out = new Uint8Array(48 * 48 * 3);
    await preprocessInto(jpeg, { height: 48, width: 48, resize: 'stretch' }, out, 0, { maxImagePixels: 1e6 }, 'x');
    for (const [i, v] of [200, 100, 50].entries()) expect(Math.abs(out[1000 * 3 + i]! - v)).toBeLessThanOrEqual(3);
  });
});

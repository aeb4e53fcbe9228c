// What real openpi observations look like: channels-first images (ALOHA), float images in [0, 1],
// cameras in a nested `images` map (pi0 style), text arrays in keys stageward does not read. Each
// maps to the same pixels as a uint8 HWC frame; only what is used and wrong is refused.
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame } from '../../server/codec.ts';
import { NdArray, toRawImage } from '../../server/ndarray.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode } from '../helpers.ts';
import { Peer, startTestServer, testConfig } from './helpers.ts';

const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const b = (s: string) => Buffer.from(s);
const nd = (dtype: string, shape: number[], data: Uint8Array) =>
  new Map<Buffer, unknown>([
    [b('__ndarray__'), true],
    [b('data'), data],
    [b('dtype'), dtype],
    [b('shape'), shape],
  ]);
const LIMITS = testConfig().limits;
const H = 24;
const W = 32;

/** A uint8 HWC image whose pixel values are all multiples of 1/255 apart (exact as floats). */
function hwc(seed: number): Uint8Array {
  return new Uint8Array(H * W * 3).map((_, i) => (i * 13 + seed * 29) % 256);
}
function toChw(img: Uint8Array): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let i = 0; i < H * W; i++) for (let k = 0; k < 3; k++) out[k * H * W + i] = img[i * 3 + k]!;
  return out;
}
function toFloat(img: Uint8Array, bits: 32 | 64): Uint8Array {
  const f = bits === 32 ? Float32Array.from(img, (v) => v / 255) : Float64Array.from(img, (v) => v / 255);
  return new Uint8Array(f.buffer);
}
/** An array decoded as the server decodes it. */
const arrayOf = (dtype: string, shape: number[], data: Uint8Array) =>
  (decodeFrame(python.pack({ a: nd(dtype, shape, data) }), 'binary', LIMITS) as { a: NdArray }).a;

describe('image arrays', () => {
  it('reads CHW and float [0, 1] images as the same pixels as uint8 HWC', () => {
    const img = hwc(1);
    const plain = toRawImage(arrayOf('|u1', [H, W, 3], img), 1e6, 'x');
    expect(Buffer.from(plain.data).equals(Buffer.from(img))).toBe(true);
    for (const [dtype, shape, data] of [
      ['|u1', [3, H, W], toChw(img)],
      ['<f4', [H, W, 3], toFloat(img, 32)],
      ['<f8', [H, W, 3], toFloat(img, 64)],
      ['<f4', [3, H, W], toFloat(toChw(img), 32)],
    ] as const) {
      const raw = toRawImage(arrayOf(dtype, [...shape], data), 1e6, 'x');
      expect({ height: raw.height, width: raw.width, channels: raw.channels }).toEqual({ height: H, width: W, channels: 3 });
      expect(Buffer.from(raw.data).equals(Buffer.from(img)), `${dtype} [${shape.join(', ')}]`).toBe(true);
    }
  });

  it('refuses float images outside [0, 1] or NaN, text arrays, and shapes with no channel axis', async () => {
    const f = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
    await expectCode(async () => toRawImage(arrayOf('<f4', [1, 2, 3], f([0, 0.5, 1, 2, 0, 0])), 1e6, 'v'), 'SW_ERR_NDARRAY', 'in [0, 1]');
    await expectCode(async () => toRawImage(arrayOf('<f4', [1, 2, 3], f([0, NaN, 1, 1, 0, 0])), 1e6, 'v'), 'SW_ERR_NDARRAY', 'in [0, 1]');
    await expectCode(async () => toRawImage(arrayOf('<U2', [3], new Uint8Array(24)), 1e6, 'v'), 'SW_ERR_NDARRAY', 'text');
    await expectCode(async () => toRawImage(arrayOf('|u1', [5, 6, 7], new Uint8Array(210)), 1e6, 'v'), 'SW_ERR_NDARRAY', '[C, H, W]');
    await expectCode(async () => toRawImage(arrayOf('<i4', [2, 2, 3], new Uint8Array(48)), 1e6, 'v'), 'SW_ERR_NDARRAY', 'uint8');
  });

  it('decodes text arrays and numpy string scalars in keys nobody reads, and checks their size', async () => {
    const text = new Uint8Array(new Uint32Array([...'pick'].map((c) => c.codePointAt(0)!)).buffer); // ["pi", "ck"] as numpy's UTF-32
    const out = decodeFrame(
      python.pack({
        lang: nd('<U2', [2], text),
        raw: nd('|S3', [2], b('abcdef')),
        word: new Map<Buffer, unknown>([
          [b('__npgeneric__'), true],
          [b('data'), 'hello'],
          [b('dtype'), '<U5'],
        ]),
      }),
      'binary',
      LIMITS,
    ) as Record<string, unknown>;
    expect(out.lang).toBeInstanceOf(NdArray);
    expect((out.lang as NdArray).numeric).toBe(false);
    expect(out.word).toBe('hello');
    await expectCode(async () => arrayOf('<U2', [2], new Uint8Array(12)), 'SW_ERR_NDARRAY', 'more than the 12 bytes');
    await expectCode(async () => (out.raw as NdArray).toFloat32(), 'SW_ERR_NDARRAY', 'text');
  });
});

describe('openpi observations as robots send them', () => {
  let server: StagewardServer;
  beforeAll(async () => {
    // pi0's ALOHA layout: cameras in a nested `images` map.
    server = await startTestServer({
      'openpi.views': { 'images/cam_high': 'front', 'images/cam_left_wrist': 'side', 'images/cam_right_wrist': 'wrist' },
    });
  });
  afterAll(() => server.shutdown());

  async function progressOf(images: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    peer.sendRaw(python.pack({ images, state: nd('<f4', [2], new Uint8Array(8)), prompt: 'pick_place', ...extra }));
    const reply = (await peer.next()).data as Record<string, any>;
    await peer.close();
    return reply;
  }

  it('scores nested, CHW and float cameras exactly as uint8 HWC, ignoring text arrays it does not read', async () => {
    const views = { cam_high: hwc(1), cam_left_wrist: hwc(2), cam_right_wrist: hwc(3) };
    const as = (f: (img: Uint8Array) => Map<Buffer, unknown>) => Object.fromEntries(Object.entries(views).map(([k, v]) => [k, f(v)]));
    const reference = await progressOf(as((v) => nd('|u1', [H, W, 3], v)));
    expect(reference).toMatchObject({ step: 0, task: 'pick_place' });
    expect(reference.progress).toBeTypeOf('number');
    const chw = await progressOf(as((v) => nd('|u1', [3, H, W], toChw(v))));
    const float = await progressOf(
      as((v) => nd('<f4', [H, W, 3], toFloat(v, 32))),
      {
        'observation/language_instruction': nd('<U4', [1], new Uint8Array(16)),
      },
    );
    for (const r of [chw, float]) {
      expect(r.progress).toBe(reference.progress);
      expect(r.stage).toEqual(reference.stage);
    }
  });

  it('refuses a used camera that is wrong, naming its key', async () => {
    const good = nd('|u1', [H, W, 3], hwc(1));
    const r = await progressOf({ cam_high: good, cam_left_wrist: good, cam_right_wrist: nd('<U4', [1], new Uint8Array(16)) });
    expect(r).toMatchObject({ type: 'error', code: 'SW_ERR_NDARRAY' });
    const missing = await progressOf({ cam_high: good, cam_left_wrist: good });
    expect(missing).toMatchObject({
      type: 'error',
      code: 'SW_ERR_VIEW_MISSING',
      message: expect.stringContaining('images/cam_right_wrist'),
    });
  });
});

import { Packr } from 'msgpackr';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { decodeFrame, encodeFrame, scanJson } from '../../server/codec.ts';
import { decodeMsgpack, encodeMsgpack } from '../../server/msgpack.ts';
import { NdArray, ndarrayMap, numpyMapHook, toRawImage } from '../../server/ndarray.ts';
import { expectCode } from '../helpers.ts';

const LIMITS = { maxNestingDepth: 16, maxMessageElements: 16384, maxStringBytes: 1 << 20, maxTextPayloadBytes: 1 << 30 };
const decode = (b: Uint8Array) => decodeFrame(Buffer.from(b), 'binary', LIMITS);
const bytes = (...parts: (number | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))));

/** msgpackr configured like Python's msgpack: plain types, bytes keys as bin, no extensions. */
const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const b = (s: string) => Buffer.from(s);
function pyArray(dtype: string, shape: number[], data: Uint8Array) {
  return new Map<Buffer, unknown>([
    [b('__ndarray__'), true],
    [b('data'), data],
    [b('dtype'), dtype],
    [b('shape'), shape],
  ]);
}

describe('openpi numpy encoding', () => {
  it('decodes the exact bytes Python msgpack writes for {"img": np.zeros((1, 2, 3), np.uint8)}', () => {
    const wire = bytes(
      0x81,
      0xa3,
      'img',
      0x84,
      0xc4,
      11,
      '__ndarray__',
      0xc3,
      0xc4,
      4,
      'data',
      0xc4,
      6,
      '\0\0\0\0\0\0',
      0xc4,
      5,
      'dtype',
      0xa3,
      '|u1',
      0xc4,
      5,
      'shape',
      0x93,
      1,
      2,
      3,
    );
    // msgpackr with binary Map keys writes the same bytes, so tests may build messages with it.
    expect(Buffer.from(python.pack({ img: pyArray('|u1', [1, 2, 3], new Uint8Array(6)) }))).toEqual(wire);
    expect(Buffer.from(encodeMsgpack({ img: ndarrayMap('|u1', [1, 2, 3], new Uint8Array(6)) }))).toEqual(wire);
    const out = decode(wire) as { img: NdArray };
    expect(out.img).toBeInstanceOf(NdArray);
    expect(out.img.dtype).toBe('|u1');
    expect(out.img.shape).toEqual([1, 2, 3]);
    expect(out.img.data.length).toBe(6);
  });

  it('decodes numpy scalars (__npgeneric__) to plain numbers and booleans', () => {
    const g = (dtype: string, data: unknown) =>
      new Map<Buffer, unknown>([
        [b('__npgeneric__'), true],
        [b('data'), data],
        [b('dtype'), dtype],
      ]);
    const out = decode(python.pack({ reward: g('<f4', 0.5), terminated: g('|b1', true), step: g('<i8', 7) })) as Record<string, unknown>;
    expect(out).toEqual({ reward: 0.5, terminated: true, step: 7 });
  });

  it('reads float32 state arrays and refuses big-endian, object and unknown dtypes', async () => {
    const state = new Float32Array([1.5, -2, 3]);
    const a = decode(python.pack({ s: pyArray('<f4', [3], new Uint8Array(state.buffer)) })) as { s: NdArray };
    expect(Array.from(a.s.toFloat32())).toEqual([1.5, -2, 3]);
    for (const dtype of ['>f4', '|O', '<c8', '|V8', 'float32', '<f16']) {
      await expectCode(() => decode(python.pack({ s: pyArray(dtype, [3], new Uint8Array(12)) })), 'SW_ERR_NDARRAY');
    }
  });

  it('checks shape x itemsize against the bytes before building anything', async () => {
    const arr = (shape: unknown[], n: number) =>
      python.pack({
        a: new Map<Buffer, unknown>([
          [b('__ndarray__'), true],
          [b('data'), new Uint8Array(n)],
          [b('dtype'), '<f4'],
          [b('shape'), shape],
        ]),
      });
    await expectCode(() => decode(arr([2, 3], 23)), 'SW_ERR_NDARRAY', 'more than the 23 bytes');
    await expectCode(() => decode(arr([2, 3], 25)), 'SW_ERR_NDARRAY', 'needs 24 bytes');
    await expectCode(() => decode(arr([-1, 6], 24)), 'SW_ERR_NDARRAY');
    await expectCode(() => decode(arr([2 ** 40, 2 ** 40], 24)), 'SW_ERR_NDARRAY');
    await expectCode(() => decode(arr([1.5], 24)), 'SW_ERR_NDARRAY');
    await expectCode(() => decode(arr([1, 1, 1, 1, 1, 1, 1, 1, 6], 24)), 'SW_ERR_NDARRAY', 'rank');
    expect((decode(arr([0, 2 ** 40], 0)) as { a: NdArray }).a.size).toBe(0);
  });

  it('turns uint8 HWC arrays into raw images without copying, and refuses layouts with no channel axis', async () => {
    const data = new Uint8Array(4 * 5 * 3);
    const img = toRawImage(new NdArray('|u1', [4, 5, 3], data), 1000, 'v');
    expect(img).toMatchObject({ height: 4, width: 5, channels: 3 });
    expect(img.data).toBe(data);
    await expectCode(() => toRawImage(new NdArray('|u1', [5, 6, 7], new Uint8Array(210)), 1000, 'v'), 'SW_ERR_NDARRAY', '[C, H, W]');
    await expectCode(() => toRawImage(new NdArray('<i4', [2, 2, 3], new Uint8Array(48)), 1000, 'v'), 'SW_ERR_NDARRAY', 'uint8');
    await expectCode(
      () => toRawImage(new NdArray('|u1', [40, 50, 3], new Uint8Array(6000)), 1000, 'v'),
      'SW_ERR_IMAGE_SIZE',
      'maxImagePixels',
    );
  });
});

describe('strict MessagePack decoder', () => {
  it('round-trips the value types of the protocol', () => {
    const value = {
      type: 'step',
      seq: 3,
      neg: -5,
      big: 2 ** 40,
      f: 0.25,
      ok: true,
      none: null,
      list: [1, 'a', [2]],
      bin: new Uint8Array([1, 2]),
    };
    // bin values come back as views of the payload (a Buffer when the payload is one)
    expect(decodeMsgpack(encodeMsgpack(value), { maxNestingDepth: 8, maxElements: 64 })).toEqual({ ...value, bin: Buffer.from([1, 2]) });
  });

  it('refuses every extension type, including msgpackr records and typed arrays', async () => {
    const withRecords = new Packr({ useRecords: true }).pack([{ a: 1 }, { a: 2 }]);
    await expectCode(() => decode(withRecords), 'SW_ERR_PROTOCOL', 'extension');
    const typed = new Packr({ moreTypes: true }).pack({ f: new Float32Array(2) });
    await expectCode(() => decode(typed), 'SW_ERR_PROTOCOL', 'extension');
    for (const t of [0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9]) {
      await expectCode(() => decode(bytes(t, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), 'SW_ERR_PROTOCOL', 'extension');
    }
    await expectCode(() => decode(bytes(0xc1)), 'SW_ERR_PROTOCOL');
  });

  it('refuses declared lengths beyond the payload before allocating', async () => {
    await expectCode(() => decode(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, 0)), 'SW_ERR_PROTOCOL', 'declares 4294967295 elements');
    await expectCode(() => decode(bytes(0xdf, 0xff, 0xff, 0xff, 0xff)), 'SW_ERR_PROTOCOL', 'declares');
    await expectCode(() => decode(bytes(0xc6, 0x7f, 0xff, 0xff, 0xff, 1, 2)), 'SW_ERR_PROTOCOL', 'past the end');
    await expectCode(() => decode(bytes(0xdb, 0x7f, 0xff, 0xff, 0xff)), 'SW_ERR_PROTOCOL', 'past the end');
  });

  it('refuses truncation, trailing bytes, bad keys, repeated keys, bad UTF-8 and deep nesting', async () => {
    const full = encodeMsgpack({ type: 'hello', task: 'pick_place' });
    for (let n = 0; n < full.length; n++) await expectCode(() => decode(full.subarray(0, n)), 'SW_ERR_PROTOCOL');
    await expectCode(() => decode(Buffer.concat([full, Buffer.from([0])])), 'SW_ERR_PROTOCOL', 'follow');
    await expectCode(() => decode(bytes(0x81, 0x01, 0x02)), 'SW_ERR_PROTOCOL', 'key');
    await expectCode(() => decode(bytes(0x82, 0xa1, 'a', 1, 0xc4, 1, 'a', 2)), 'SW_ERR_PROTOCOL', 'repeats');
    await expectCode(() => decode(bytes(0xa2, 0xc3, 0x28)), 'SW_ERR_PROTOCOL', 'UTF-8');
    await expectCode(() => decode(Buffer.alloc(40, 0x91)), 'SW_ERR_LIMIT', 'maxNestingDepth');
    await expectCode(() => decode(bytes(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), 'SW_ERR_PROTOCOL', '2^53');
  });

  it('keeps a "__proto__" key as an own property (no prototype pollution)', () => {
    const out = decode(bytes(0x81, 0xa9, '__proto__', 0x81, 0xa1, 'x', 1)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('JSON text frames', () => {
  it('decode numpy maps with base64 data, and encode replies as JSON', () => {
    const msg = JSON.stringify({
      a: { __ndarray__: true, data: Buffer.from([1, 2, 3]).toString('base64'), dtype: '|u1', shape: [1, 1, 3] },
    });
    const out = decodeFrame(Buffer.from(msg), 'text', LIMITS) as { a: NdArray };
    expect(Array.from(out.a.data)).toEqual([1, 2, 3]);
    expect(encodeFrame({ type: 'x', v: 1 }, 'text')).toBe('{"type":"x","v":1}');
    expect(numpyMapHook({ plain: 1 })).toEqual({ plain: 1 });
  });

  it('refuses invalid JSON, bad base64 and deep nesting with their codes', async () => {
    await expectCode(() => decodeFrame(Buffer.from('{"type":'), 'text', LIMITS), 'SW_ERR_PROTOCOL', 'JSON');
    await expectCode(
      () => decodeFrame(Buffer.from('{"a":{"__ndarray__":true,"data":"!!","dtype":"|u1","shape":[1]}}'), 'text', LIMITS),
      'SW_ERR_PROTOCOL',
      'base64',
    );
    await expectCode(() => decodeFrame(Buffer.from('['.repeat(40) + ']'.repeat(40)), 'text', LIMITS), 'SW_ERR_LIMIT');
  });
});

describe('the decode budget (maxMessageElements)', () => {
  /** The number of values a decoded JSON value holds, map keys included (what the budget counts). */
  const countValues = (v: unknown): number => {
    if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => n + countValues(x), 0);
    if (v !== null && typeof v === 'object') return 1 + Object.values(v).reduce((n: number, x) => n + 1 + countValues(x), 0);
    return 1;
  };

  it('refuses a flat MessagePack bomb of empty maps after maxMessageElements values, before building the rest', async () => {
    const n = 1_000_000;
    const bomb = Buffer.alloc(5 + n, 0x80); // array32 of n empty fixmaps
    bomb[0] = 0xdd;
    bomb.writeUInt32BE(n, 1);
    let built = 0;
    const hook = (m: Record<string, unknown>) => (built++, m);
    await expectCode(
      () => decodeMsgpack(bomb, { maxNestingDepth: 16, maxElements: 1000, mapHook: hook }),
      'SW_ERR_LIMIT',
      'maxMessageElements',
    );
    expect(built).toBeLessThan(1000);
    // The same structure within the budget decodes.
    const small = Buffer.alloc(5 + 999, 0x80);
    small[0] = 0xdd;
    small.writeUInt32BE(999, 1);
    expect((decodeMsgpack(small, { maxNestingDepth: 16, maxElements: 1000 }) as unknown[]).length).toBe(999);
  });

  it('counts map keys as values, as the limit says', async () => {
    const msg = encodeMsgpack({ a: 1, b: 2 }); // 1 map + 2 keys + 2 values
    expect(decodeMsgpack(msg, { maxNestingDepth: 4, maxElements: 5 })).toEqual({ a: 1, b: 2 });
    await expectCode(() => decodeMsgpack(msg, { maxNestingDepth: 4, maxElements: 4 }), 'SW_ERR_LIMIT', 'maxMessageElements');
  });

  it('scans JSON text frames before JSON.parse: flat and deep bombs are refused without being parsed', async () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const flat = Buffer.from(`[${'{},'.repeat(1_000_000)}{}]`);
      await expectCode(() => decodeFrame(flat, 'text', LIMITS), 'SW_ERR_LIMIT', 'maxMessageElements');
      const deep = Buffer.from('['.repeat(1_000_000) + ']'.repeat(1_000_000));
      await expectCode(() => decodeFrame(deep, 'text', LIMITS), 'SW_ERR_LIMIT', 'maxNestingDepth');
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  it("counts a JSON text's values exactly as the MessagePack decoder counts the same value", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const n = countValues(value);
        const text = Buffer.from(JSON.stringify(value, null, n % 2));
        const limits = (max: number) => ({
          maxNestingDepth: 64,
          maxMessageElements: max,
          maxStringBytes: 1 << 20,
          maxTextPayloadBytes: 1 << 30,
        });
        expect(() => scanJson(text, limits(n))).not.toThrow();
        if (n > 1) expect(() => scanJson(text, limits(n - 1))).toThrow(/maxMessageElements/);
        const packed = encodeMsgpack(value);
        expect(() => decodeMsgpack(packed, { maxNestingDepth: 64, maxElements: n })).not.toThrow();
        if (n > 1) expect(() => decodeMsgpack(packed, { maxNestingDepth: 64, maxElements: n - 1 })).toThrow(/maxMessageElements/);
      }),
      { seed: 20261203, numRuns: 300 },
    );
  });

  it('ignores brackets, commas and escaped quotes inside JSON strings', () => {
    const text = Buffer.from(JSON.stringify({ a: '[[[[,,,:::"\\"{{{{', b: ['\\', '"]'] }));
    expect(() => scanJson(text, { ...LIMITS, maxNestingDepth: 2, maxMessageElements: 7 })).not.toThrow();
    expect(decodeFrame(text, 'text', LIMITS)).toEqual({ a: '[[[[,,,:::"\\"{{{{', b: ['\\', '"]'] });
  });
});

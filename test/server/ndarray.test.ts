// numpy arrays and scalars as openpi clients send them (msgpack_numpy's maps, or base64 in JSON):
// every dtype's values, float16 included; each field check with its message; the shape and byte
// checks at their boundary; and images in each accepted layout, float ones within their slack.
import { describe, expect, it } from 'vitest';
import { refusal } from '../helpers.ts';
import { base64Bytes, ndarrayFrom, NdArray, npgenericFrom, numpyMapHook, reviveJson, toRawImage } from '../../server/ndarray.ts';

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const array = (dtype: string, shape: number[], data: Uint8Array) => ndarrayFrom({ __ndarray__: true, dtype, shape, data });

const message = (f: () => unknown) => refusal(f).message;

describe('numpy dtypes to numbers', () => {
  it('reads every little-endian dtype exactly', () => {
    const cases: [string, ArrayBufferView, number[]][] = [
      ['|u1', Uint8Array.of(0, 255), [0, 255]],
      ['|i1', Int8Array.of(-128, 127), [-128, 127]],
      ['|b1', Uint8Array.of(0, 1), [0, 1]],
      ['<u2', Uint16Array.of(65535, 1), [65535, 1]],
      ['<i2', Int16Array.of(-32768, 5), [-32768, 5]],
      ['<u4', Uint32Array.of(4026531840, 2), [4026531840, 2]], // exact in float32
      ['<i4', Int32Array.of(-2147483648, 7), [-2147483648, 7]],
      ['<u8', BigUint64Array.of(2n ** 40n, 3n), [2 ** 40, 3]],
      ['<i8', BigInt64Array.of(-(2n ** 40n), 9n), [-(2 ** 40), 9]],
      ['<f4', Float32Array.of(0.5, -2.25), [0.5, -2.25]],
      ['<f8', Float64Array.of(0.125, -1e10), [0.125, -1e10]],
    ];
    for (const [dtype, data, want] of cases) expect(Array.from(array(dtype, [2], bytesOf(data)).toFloat32()), dtype).toEqual(want);
  });

  it('reads float16: normal, subnormal, signed, infinite and NaN values', () => {
    // 1.0, -2.0, 0.5, the smallest subnormal 2^-24, -0, +inf, -inf, NaN
    const halves = Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00);
    const got = Array.from(array('<f2', [8], bytesOf(halves)).toFloat32());
    expect(got.slice(0, 4)).toEqual([1, -2, 0.5, Math.fround(2 ** -24)]);
    expect(Object.is(got[4], -0)).toBe(true);
    expect(got.slice(5, 7)).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(got[7])).toBe(true);
  });

  it('reads uint64 values at and above 2^63 as unsigned', () => {
    const got = array('<u8', [2], bytesOf(BigUint64Array.of(2n ** 63n, 2n ** 64n - 1n))).toFloat32();
    expect(Array.from(got)).toEqual([2 ** 63, 2 ** 64]); // 2^64 - 1 rounds to 2^64 in float32
  });

  it('reads float16 mantissa bits: normal values between powers of two, both ends of the subnormal range', () => {
    // 1.5, 1/3 rounded to float16, -3.75, the largest finite 65504, the smallest normal 2^-14, the largest subnormal
    const halves = Uint16Array.of(0x3e00, 0x3555, 0xc380, 0x7bff, 0x0400, 0x03ff);
    expect(Array.from(array('<f2', [6], bytesOf(halves)).toFloat32())).toEqual([
      1.5,
      0.333251953125,
      -3.75,
      65504,
      2 ** -14,
      (1023 / 1024) * 2 ** -14,
    ]);
  });

  it('refuses numbers from a text array', () => {
    const text = new NdArray('<U2', [1], new Uint8Array(8));
    expect(text.numeric).toBe(false);
    expect(message(() => text.toFloat32())).toBe('a <U2 (text) array has no numbers');
  });
});

describe('array map checks', () => {
  it('refuses each malformed field with its own message', () => {
    const ok = { __ndarray__: true, dtype: '|u1', shape: [2], data: new Uint8Array(2) };
    expect(message(() => ndarrayFrom({ ...ok, extra: 1 }))).toBe('an array map has the unknown key "extra"');
    expect(message(() => ndarrayFrom({ ...ok, __ndarray__: 1 }))).toBe('`__ndarray__` must be true');
    expect(message(() => ndarrayFrom({ ...ok, dtype: 3 }))).toBe('`dtype` must be a numpy dtype string such as "|u1" or "<f4"');
    expect(message(() => ndarrayFrom({ ...ok, dtype: '>f4' }))).toBe('dtype ">f4" is big-endian; send little-endian arrays');
    expect(message(() => ndarrayFrom({ ...ok, dtype: '<c8' }))).toMatch(/^dtype "<c8" is not accepted \(use one of \|b1, \|u1, /);
    expect(message(() => ndarrayFrom({ ...ok, data: 'xx' }))).toBe("an array's `data` must be bytes");
    expect(message(() => ndarrayFrom({ ...ok, shape: 2 }))).toBe("an array's `shape` must be a list of integers");
    expect(message(() => ndarrayFrom({ ...ok, shape: [2, -1] }))).toBe('shape [2, -1] must hold non-negative integers');
    expect(message(() => ndarrayFrom({ ...ok, shape: [1.5] }))).toBe('shape [1.5] must hold non-negative integers');
    expect(message(() => ndarrayFrom({ ...ok, shape: ['2'] }))).toBe('shape [2] must hold non-negative integers');
    expect(message(() => ndarrayFrom({ ...ok, shape: [3] }))).toBe('shape [3] of |u1 needs more than the 2 bytes sent');
    expect(message(() => ndarrayFrom({ ...ok, shape: [1] }))).toBe('shape [1] of |u1 needs 1 bytes, 2 were sent');
    expect(refusal(() => ndarrayFrom({ ...ok, shape: [1] })).code).toBe('SW_ERR_NDARRAY');
  });

  it('keeps messages short: a long dtype, key or shape entry is cut', () => {
    const ok = { __ndarray__: true, dtype: '|u1', shape: [2], data: new Uint8Array(2) };
    expect(message(() => ndarrayFrom({ ...ok, dtype: 'q'.repeat(40) }))).toMatch(/^dtype "q{16}" is not accepted \(use one of /);
    expect(message(() => ndarrayFrom({ ...ok, dtype: '>' + 'q'.repeat(40) }))).toBe(
      `dtype ">${'q'.repeat(15)}" is big-endian; send little-endian arrays`,
    );
    expect(message(() => ndarrayFrom({ ...ok, ['k'.repeat(50)]: 1 }))).toBe(`an array map has the unknown key "${'k'.repeat(32)}"`);
    expect(message(() => npgenericFrom({ __npgeneric__: true, dtype: '<f8', data: 1, ['k'.repeat(50)]: 0 }))).toBe(
      `a numpy scalar map has the unknown key "${'k'.repeat(32)}"`,
    );
    expect(message(() => ndarrayFrom({ ...ok, shape: ['x'.repeat(200)] }))).toBe(
      `shape [${'x'.repeat(80)}] must hold non-negative integers`,
    );
  });

  it('names a shape entry that is a list, a map or nil by its kind, even a map with a "toString" key', () => {
    const ok = { __ndarray__: true, dtype: '|u1', data: new Uint8Array(1) };
    expect(refusal(() => ndarrayFrom({ ...ok, shape: [{ toString: 0 }] }))).toMatchObject({
      code: 'SW_ERR_NDARRAY',
      message: 'shape [object] must hold non-negative integers',
    });
    expect(message(() => ndarrayFrom({ ...ok, shape: [[1, 2], null, true, 1] }))).toBe(
      'shape [array, nil, true, 1] must hold non-negative integers',
    );
    // the same map arriving in a JSON message
    const json = JSON.parse('{"__ndarray__": true, "dtype": "|u1", "shape": [{"toString": 0, "valueOf": 0}], "data": "AQ=="}');
    expect(refusal(() => reviveJson(json, 8))).toMatchObject({
      code: 'SW_ERR_NDARRAY',
      message: 'shape [object] must hold non-negative integers',
    });
  });

  it('names every dimension of a shape the bytes cannot hold', () => {
    expect(message(() => array('|u1', [2, 3], new Uint8Array(2)))).toBe('shape [2, 3] of |u1 needs more than the 2 bytes sent');
    expect(message(() => array('<i2', [2, 3], new Uint8Array(14)))).toBe('shape [2, 3] of <i2 needs 12 bytes, 14 were sent');
  });

  it('takes rank 8 and refuses rank 9; a zero dimension is an empty array', () => {
    expect(array('|u1', [1, 1, 1, 1, 1, 1, 1, 2], new Uint8Array(2)).size).toBe(2);
    expect(message(() => array('|u1', [1, 1, 1, 1, 1, 1, 1, 1, 2], new Uint8Array(2)))).toBe('an array has rank 9, above the limit of 8');
    expect(array('<f4', [0, 3], new Uint8Array(0)).size).toBe(0);
    expect(array('<f4', [3, 0], new Uint8Array(0)).size).toBe(0); // numpy's np.zeros((3, 0))
    expect(message(() => array('<f4', [3, 0], new Uint8Array(4)))).toBe('shape [3, 0] of <f4 needs 0 bytes, 4 were sent');
  });

  it('sizes text dtypes by their length: <U is 4 bytes a character, |S one', () => {
    expect(array('<U3', [2], new Uint8Array(24)).size).toBe(2);
    expect(array('|S3', [2], new Uint8Array(6)).size).toBe(2);
    expect(message(() => array('<U0', [1], new Uint8Array(0)))).toMatch(/^dtype "<U0" is not accepted/);
    expect(message(() => array('x<U3', [1], new Uint8Array(12)))).toMatch(/^dtype "x<U3" is not accepted/);
  });

  it('takes text lengths of one to six digits and refuses anything around or inside them', () => {
    expect(array('<U12', [1], new Uint8Array(48)).numeric).toBe(false);
    expect(array('|S10', [2], new Uint8Array(20)).size).toBe(2);
    expect(array('<U999999', [0], new Uint8Array(0)).numeric).toBe(false);
    expect(npgenericFrom({ __npgeneric__: true, dtype: '|S12', data: new Uint8Array(3) })).toEqual(new Uint8Array(3));
    for (const [dtype, bytes] of [
      ['<U3x', 12],
      ['<U3 ', 12],
      ['|S3\n', 3],
      ['<U1234567', 0],
      ['<U03', 12],
      ['<Ux', 4],
      ['<S3', 3],
      ['|U3', 12],
    ] as const)
      expect(
        refusal(() => array(dtype, [bytes === 0 ? 0 : 1], new Uint8Array(bytes))),
        dtype,
      ).toMatchObject({
        code: 'SW_ERR_NDARRAY',
        message: expect.stringMatching(/^dtype ".*" is not accepted/),
      });
  });
});

describe('numpy scalars', () => {
  it('returns the value of each kind, and refuses a value of the wrong kind', () => {
    expect(npgenericFrom({ __npgeneric__: true, dtype: '<f8', data: 0.5 })).toBe(0.5);
    expect(npgenericFrom({ __npgeneric__: true, dtype: '|b1', data: true })).toBe(true);
    expect(npgenericFrom({ __npgeneric__: true, dtype: '<U5', data: 'hello' })).toBe('hello');
    expect(message(() => npgenericFrom({ __npgeneric__: true, dtype: '<f8', data: 'x' }))).toBe('a numpy <f8 scalar must carry a number');
    expect(message(() => npgenericFrom({ __npgeneric__: true, dtype: '|b1', data: 1 }))).toBe(
      'a numpy bool scalar must carry true or false',
    );
    expect(message(() => npgenericFrom({ __npgeneric__: true, dtype: '<U5', data: 5 }))).toBe('a numpy <U5 scalar must carry text');
    expect(message(() => npgenericFrom({ __npgeneric__: 1, dtype: '<f8', data: 1 }))).toBe('`__npgeneric__` must be true');
    expect(message(() => npgenericFrom({ __npgeneric__: true, dtype: '<f8', data: 1, x: 0 }))).toBe(
      'a numpy scalar map has the unknown key "x"',
    );
  });

  it('the decoder hook turns numpy maps into values and passes other maps through', () => {
    expect(numpyMapHook({ __npgeneric__: true, dtype: '<i8', data: 3 })).toBe(3);
    expect(numpyMapHook({ __ndarray__: true, dtype: '|u1', shape: [1], data: new Uint8Array(1) })).toBeInstanceOf(NdArray);
    expect(numpyMapHook({ a: 1 })).toEqual({ a: 1 });
  });
});

describe('JSON messages: base64 arrays', () => {
  it('revives arrays and scalars at any depth within maxNestingDepth', () => {
    const data = Buffer.from(Uint8Array.of(1, 2, 3)).toString('base64');
    const out = reviveJson(
      { obs: [{ img: { __ndarray__: true, dtype: '|u1', shape: [3], data } }], s: { __npgeneric__: true, dtype: '<f4', data: 2 } },
      6,
    ) as any;
    expect(out.obs[0].img).toBeInstanceOf(NdArray);
    expect(Array.from(out.obs[0].img.data)).toEqual([1, 2, 3]);
    expect(out.s).toBe(2);
    // depth counts every value, the top one as 1 and leaves included (as the MessagePack decoder does)
    expect(refusal(() => reviveJson({ a: [{ b: 1 }] }, 3))).toMatchObject({
      code: 'SW_ERR_LIMIT',
      message: 'a message nests deeper than maxNestingDepth (3)',
    });
    expect(() => reviveJson({ a: [1] }, 3)).not.toThrow();
    expect(refusal(() => reviveJson([[[1]]], 3)).code).toBe('SW_ERR_LIMIT');
    expect(() => reviveJson([[1]], 3)).not.toThrow();
    expect(message(() => reviveJson({ __ndarray__: true, dtype: '|u1', shape: [1], data: 5 }, 4))).toBe(
      "in JSON, an array's `data` must be base64 text",
    );
  });

  it('accepts only strict base64', () => {
    expect(Array.from(base64Bytes('AQID'))).toEqual([1, 2, 3]);
    expect(Array.from(base64Bytes('AQ=='))).toEqual([1]);
    expect(Array.from(base64Bytes(''))).toEqual([]);
    for (const bad of ['AQ I', 'AQ-_', 'A', 'AQID=A', 'AQ==='])
      expect(refusal(() => base64Bytes(bad))).toMatchObject({
        code: 'SW_ERR_PROTOCOL',
        message: 'an image or array in a JSON message is not valid base64',
      });
  });
});

describe('image arrays', () => {
  const u8 = (shape: number[], f: (i: number) => number = (i) => i % 256) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return array(
      '|u1',
      shape,
      Uint8Array.from({ length: n }, (_, i) => f(i)),
    );
  };

  it('takes HW and HWC as they are, transposes CHW, and reads an ambiguous [C, H, C] as HWC', () => {
    const gray = toRawImage(u8([2, 3]), 100, 'v');
    expect(gray).toMatchObject({ height: 2, width: 3, channels: 1 });
    const hwc = u8([2, 2, 3]);
    expect(toRawImage(hwc, 100, 'v').data).toBe(hwc.data); // no copy
    const chw = toRawImage(u8([3, 2, 2]), 100, 'v');
    expect(chw).toMatchObject({ height: 2, width: 2, channels: 3 });
    // CHW planes [0..3], [4..7], [8..11] interleave to pixel-major
    expect(Array.from(chw.data)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    expect(toRawImage(u8([4, 5, 4]), 100, 'v')).toMatchObject({ height: 4, width: 5, channels: 4 });
    expect(toRawImage(u8([1, 6, 6]), 100, 'v')).toMatchObject({ height: 6, width: 6, channels: 1 });
  });

  it('refuses other shapes, empty images and images over maxImagePixels (at the limit is fine)', () => {
    const shapeError = (shape: number[]) => message(() => toRawImage(u8(shape), 1000, 'cam'));
    expect(shapeError([4])).toBe('cam: an image array must be [H, W], [H, W, C] or [C, H, W] with C 1, 3 or 4; got [4]');
    expect(shapeError([2, 2, 2, 2])).toContain('got [2, 2, 2, 2]');
    expect(shapeError([5, 5, 2])).toContain('got [5, 5, 2]');
    expect(refusal(() => toRawImage(u8([0, 3, 3]), 1000, 'cam'))).toMatchObject({
      code: 'SW_ERR_IMAGE_SIZE',
      message: 'cam: image array [0, 3, 3] is empty',
    });
    expect(refusal(() => toRawImage(u8([3, 0]), 1000, 'cam')).code).toBe('SW_ERR_IMAGE_SIZE');
    expect(toRawImage(u8([10, 10, 3]), 100, 'cam').width).toBe(10);
    expect(refusal(() => toRawImage(u8([10, 11, 3]), 100, 'cam'))).toMatchObject({
      code: 'SW_ERR_IMAGE_SIZE',
      message: 'cam: 11x10 is over maxImagePixels (100)',
    });
    expect(message(() => toRawImage(array('<i4', [2, 2], new Uint8Array(16)), 100, 'cam'))).toBe(
      'cam: an image array must be uint8, or float in [0, 1]; got "<i4"',
    );
    expect(message(() => toRawImage(new NdArray('|S4', [2, 2], new Uint8Array(16)), 100, 'cam'))).toBe(
      'cam: a |S4 (text) array is not an image',
    );
  });

  it('scales float16/32/64 images in [0, 1] to uint8, clamping within the slack and refusing beyond it', () => {
    const values = [0, 0.5, 1, -0.0005, 1.0005, 0.2];
    const want = [0, 128, 255, 0, 255, 51];
    for (const [dtype, data] of [
      ['<f4', bytesOf(Float32Array.from(values))],
      ['<f8', bytesOf(Float64Array.from(values))],
    ] as const)
      expect(Array.from(toRawImage(array(dtype, [2, 3], data), 100, 'v').data), dtype).toEqual(want);
    const half = Uint16Array.of(0x0000, 0x3800, 0x3c00, 0x3400); // 0, 0.5, 1, 0.25
    expect(Array.from(toRawImage(array('<f2', [2, 2], bytesOf(half)), 100, 'v').data)).toEqual([0, 128, 255, 64]);
    for (const v of [1.01, -0.01, NaN])
      expect(message(() => toRawImage(array('<f4', [1, 1], bytesOf(Float32Array.of(v))), 100, 'v'))).toMatch(
        /^v: a float image must hold values in \[0, 1\]/,
      );
    // the slack's edges are inclusive: exactly -0.001 and 1.001 (float64, read as float64, not rounded to float32) are taken
    const edges = bytesOf(Float64Array.of(-1e-3, 1 + 1e-3));
    expect(Array.from(toRawImage(array('<f8', [1, 2], edges), 100, 'v').data)).toEqual([0, 255]);
    for (const v of [-1e-3 - 1e-12, 1 + 1e-3 + 1e-12])
      expect(message(() => toRawImage(array('<f8', [1, 1], bytesOf(Float64Array.of(v))), 100, 'v'))).toBe(
        `v: a float image must hold values in [0, 1] (scale 0-255 images to [0, 1], or send uint8); found ${v}`,
      );
    // a float CHW image: transposed and scaled
    const chw = Float32Array.from([0, 1, 1, 0, 0.5, 0.5]); // C=3, H=1, W=2
    expect(Array.from(toRawImage(array('<f4', [3, 1, 2], bytesOf(chw)), 100, 'v').data)).toEqual([0, 255, 128, 255, 0, 128]);
  });

  it('reads a float image whose bytes start at an odd offset in the message', () => {
    const buf = new Uint8Array(1 + 8);
    buf.set(bytesOf(Float32Array.of(0.5, 1)), 1);
    expect(Array.from(toRawImage(array('<f4', [1, 2], buf.subarray(1)), 100, 'v').data)).toEqual([128, 255]);
    const buf8 = new Uint8Array(3 + 16);
    buf8.set(bytesOf(Float64Array.of(0, 0.5)), 3);
    expect(Array.from(toRawImage(array('<f8', [1, 2], buf8.subarray(3)), 100, 'v').data)).toEqual([0, 128]);
  });
});

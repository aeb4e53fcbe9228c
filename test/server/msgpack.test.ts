// The strict MessagePack decoder byte by byte: every format family at its edges (what a Python or
// Go client's encoder may choose for the same value), the limits at exactly their value and one past
// it, and each refusal with the message a client developer reads.
import { describe as group, expect, it } from 'vitest';
import { refusal as thrown } from '../helpers.ts';
import { decodeMsgpack, describe, encodeMsgpack, type DecodeOptions } from '../../server/msgpack.ts';

const OPTIONS: DecodeOptions = { maxNestingDepth: 8, maxElements: 1000, maxStringBytes: 1000 };
const decode = (bytes: number[] | Uint8Array, o: Partial<DecodeOptions> = {}) =>
  decodeMsgpack(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes), { ...OPTIONS, ...o });

/** The StagewardError a decode throws. */
const refusal = (bytes: number[] | Uint8Array, o: Partial<DecodeOptions> = {}) => thrown(() => decode(bytes, o));

const be = (n: number, bytes: number) => Array.from({ length: bytes }, (_, i) => (n >>> (8 * (bytes - 1 - i))) & 0xff);

group('MessagePack formats at their edges', () => {
  it('integers: fixints, uint 8-64 and int 8-64 at their extremes', () => {
    expect(decode([0x00])).toBe(0);
    expect(decode([0x7f])).toBe(127);
    expect(decode([0xe0])).toBe(-32);
    expect(decode([0xff])).toBe(-1);
    expect(decode([0xcc, 0xff])).toBe(255);
    expect(decode([0xcd, 0xff, 0xff])).toBe(65535);
    expect(decode([0xce, 0xff, 0xff, 0xff, 0xff])).toBe(4294967295);
    expect(decode([0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe(Number.MAX_SAFE_INTEGER);
    expect(decode([0xd0, 0x80])).toBe(-128);
    expect(decode([0xd0, 0x7f])).toBe(127);
    expect(decode([0xd1, 0x80, 0x00])).toBe(-32768);
    expect(decode([0xd1, 0x7f, 0xff])).toBe(32767);
    expect(decode([0xd2, 0x80, 0x00, 0x00, 0x00])).toBe(-2147483648);
    expect(decode([0xd2, 0xff, 0xff, 0xff, 0xfe])).toBe(-2);
    expect(decode([0xd3, 0xff, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01])).toBe(Number.MIN_SAFE_INTEGER);
    expect(decode([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe(-1);
  });

  it('refuses 64-bit integers just outside +-2^53 - 1, which a double cannot hold exactly', () => {
    for (const bytes of [
      [0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
      [0xd3, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
      [0xd3, 0xff, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
    ])
      expect(refusal(bytes).message).toContain('outside the exactly representable range');
  });

  it('floats, nil and booleans', () => {
    expect(decode([0xca, 0x3f, 0xc0, 0x00, 0x00])).toBe(1.5);
    expect(decode([0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18])).toBe(3.141592653589793);
    expect(decode([0xc0])).toBeNull();
    expect(decode([0xc2])).toBe(false);
    expect(decode([0xc3])).toBe(true);
  });

  it('strings and bins in every length width, at the fix* boundaries', () => {
    const s31 = 'a'.repeat(31);
    expect(decode([0xbf, ...Buffer.from(s31)])).toBe(s31);
    expect(decode([0xa0])).toBe('');
    expect(decode([0xd9, 0x02, 0x68, 0x69])).toBe('hi');
    expect(decode([0xda, 0x00, 0x02, 0x68, 0x69])).toBe('hi');
    expect(decode([0xdb, ...be(2, 4), 0x68, 0x69])).toBe('hi');
    for (const head of [
      [0xc4, 0x02],
      [0xc5, 0x00, 0x02],
      [0xc6, ...be(2, 4)],
    ])
      expect(Array.from(decode([...head, 7, 9]) as Uint8Array)).toEqual([7, 9]);
  });

  it('arrays and maps in every count width, at the fix* boundaries', () => {
    const fifteen = Array.from({ length: 15 }, (_, i) => i);
    expect(decode([0x9f, ...fifteen])).toEqual(fifteen);
    expect(decode([0x90])).toEqual([]);
    expect(decode([0xdc, 0x00, 0x02, 0x01, 0x02])).toEqual([1, 2]);
    expect(decode([0xdd, ...be(2, 4), 0x01, 0x02])).toEqual([1, 2]);
    const keys = Array.from({ length: 15 }, (_, i) => String.fromCharCode(97 + i));
    expect(decode([0x8f, ...keys.flatMap((k, i) => [0xa1, k.charCodeAt(0), i])])).toEqual(Object.fromEntries(keys.map((k, i) => [k, i])));
    expect(decode([0x80])).toEqual({});
    expect(decode([0xde, 0x00, 0x01, 0xa1, 0x61, 0x01])).toEqual({ a: 1 });
    expect(decode([0xdf, ...be(1, 4), 0xa1, 0x61, 0x01])).toEqual({ a: 1 });
    // a binary key decodes to its UTF-8 string (numpy's keys arrive this way)
    expect(decode([0x81, 0xc4, 0x01, 0x61, 0x02])).toEqual({ a: 2 });
  });

  it('round-trips what the encoder writes', () => {
    const value = { type: 'step', seq: 7, frames: { front: new Uint8Array([1, 2, 3]) }, reward: -0.25, done: false, list: [null, 'x'] };
    const out = decode(encodeMsgpack(value)) as typeof value;
    expect(Array.from(out.frames.front)).toEqual([1, 2, 3]);
    expect({ ...out, frames: null }).toEqual({ ...value, frames: null });
    // undefined goes out as nil, as Python clients read it
    expect(decode(encodeMsgpack({ a: undefined }))).toEqual({ a: null });
    // a small map goes out as a fixmap (0x81: one entry), not a map16
    expect(encodeMsgpack({ a: 1 })[0]).toBe(0x81);
  });
});

group('MessagePack refusals', () => {
  it('names what runs past the end, and where', () => {
    expect(refusal([0xcd, 0x01]).message).toBe('not valid MessagePack: a length at byte 1 runs past the end of the message (2 bytes)');
    expect(refusal([0xdb, 0x00, 0x00]).message).toBe(
      'not valid MessagePack: a length at byte 1 runs past the end of the message (3 bytes)',
    );
    expect(refusal([0xa3, 0x61]).message).toBe('not valid MessagePack: a string at byte 1 runs past the end of the message (2 bytes)');
    expect(refusal([0xcf, 0x01]).message).toBe('not valid MessagePack: an integer at byte 1 runs past the end of the message (2 bytes)');
    expect(refusal([0xd2, 0x01]).message).toBe('not valid MessagePack: an integer at byte 1 runs past the end of the message (2 bytes)');
    expect(refusal([0xca, 0x01]).message).toBe('not valid MessagePack: a float at byte 1 runs past the end of the message (2 bytes)');
    expect(refusal([0xcb, 0x01]).message).toBe('not valid MessagePack: a float at byte 1 runs past the end of the message (2 bytes)');
    for (const head of [
      [0xc4, 0x05],
      [0xc5, 0x00, 0x05],
      [0xc6, ...be(5, 4)],
    ])
      expect(refusal([...head, 1]).message).toContain('a bin value at byte');
    expect(refusal([0xcc]).message).toBe('not valid MessagePack: a value at byte 1 runs past the end of the message (1 bytes)');
  });

  it('refuses counts the bytes left cannot hold, before building anything', () => {
    expect(refusal([0xdc, 0x00, 0x05, 0xc0]).message).toBe('not valid MessagePack: an array declares 5 elements with 1 bytes left');
    expect(refusal([0xde, 0x00, 0x02, 0xa1, 0x61, 0xc0]).message).toBe('not valid MessagePack: a map declares 2 entries with 3 bytes left');
    // exactly enough bytes is accepted
    expect(decode([0xdc, 0x00, 0x02, 0xc0, 0xc0])).toEqual([null, null]);
  });

  it('refuses empty messages, trailing bytes, 0xc1 and extension types', () => {
    expect(refusal([]).message).toBe('not valid MessagePack: the message is empty');
    expect(refusal([0xc0, 0xc0, 0xc0]).message).toBe('not valid MessagePack: 2 bytes follow the first value');
    expect(refusal([0xc1]).message).toBe('not valid MessagePack: byte 0xc1 is never used in MessagePack');
    expect(refusal([0x91, 0xd4, 0x01, 0x00]).message).toBe(
      'not valid MessagePack: extension types are not accepted (type byte 0xd4 at byte 1)',
    );
    for (const b of [0xc7, 0xc8, 0xc9, 0xd5, 0xd6, 0xd7, 0xd8])
      expect(refusal([b, 0, 0, 0]).message).toContain('extension types are not accepted');
  });

  it('refuses bad map keys: not a string, invalid UTF-8, repeated', () => {
    expect(refusal([0x81, 0x01, 0x02]).message).toBe('not valid MessagePack: a map key at byte 1 is not a string or binary (number)');
    expect(refusal([0x81, 0xc4, 0x01, 0xff, 0x02]).message).toBe('not valid MessagePack: a binary map key at byte 1 is not valid UTF-8');
    expect(refusal([0x82, 0xa1, 0x61, 0x01, 0xc4, 0x01, 0x61, 0x02]).message).toBe('not valid MessagePack: a map repeats the key "a"');
    expect(refusal([0xa1, 0xff]).message).toBe('not valid MessagePack: a string is not valid UTF-8');
    // a repeated long key is named by its first 64 characters only
    const long = [...Buffer.from('k'.repeat(100))];
    expect(refusal([0x82, 0xd9, 100, ...long, 0x01, 0xd9, 100, ...long, 0x02]).message).toBe(
      `not valid MessagePack: a map repeats the key "${'k'.repeat(64)}"`,
    );
  });

  it('keeps a "__proto__" key as an own property, never the prototype', () => {
    const out = decode([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01]) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')).toEqual({
      value: { x: 1 },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

group('MessagePack limits, at the limit and one past it', () => {
  it('maxNestingDepth counts the top-level value as depth 1, through arrays and maps', () => {
    const arrays = (n: number) => [...Array(n - 1).fill(0x91), 0xc0];
    expect(() => decode(arrays(8))).not.toThrow();
    expect(refusal(arrays(9))).toMatchObject({ code: 'SW_ERR_LIMIT', message: 'a message nests deeper than maxNestingDepth (8)' });
    const maps = (n: number) => [...Array.from({ length: n - 1 }, () => [0x81, 0xa1, 0x6b]).flat(), 0xc0];
    expect(() => decode(maps(8))).not.toThrow();
    expect(refusal(maps(9)).code).toBe('SW_ERR_LIMIT');
  });

  it('maxElements counts every value, map keys included', () => {
    expect(() => decode([0x93, 1, 2, 3], { maxElements: 4 })).not.toThrow();
    expect(refusal([0x93, 1, 2, 3], { maxElements: 3 })).toMatchObject({
      code: 'SW_ERR_LIMIT',
      message: 'a message holds more than maxMessageElements (3) values',
    });
    expect(() => decode([0x81, 0xa1, 0x61, 0x01], { maxElements: 3 })).not.toThrow();
    expect(refusal([0x81, 0xa1, 0x61, 0x01], { maxElements: 2 }).code).toBe('SW_ERR_LIMIT');
  });

  it('maxStringBytes adds up strings and binary keys across the message', () => {
    const two = [0x92, 0xa2, 0x61, 0x62, 0xa2, 0x63, 0x64];
    expect(() => decode(two, { maxStringBytes: 4 })).not.toThrow();
    expect(refusal(two, { maxStringBytes: 3 })).toMatchObject({
      code: 'SW_ERR_LIMIT',
      message: 'a message holds more than maxStringBytes (3) bytes of strings',
    });
    const binKey = [0x81, 0xc4, 0x02, 0x61, 0x62, 0xa1, 0x63];
    expect(() => decode(binKey, { maxStringBytes: 3 })).not.toThrow();
    expect(refusal(binKey, { maxStringBytes: 2 }).code).toBe('SW_ERR_LIMIT');
    // bin values are views, not copies: they do not count
    expect(() => decode([0xc4, 0x05, 1, 2, 3, 4, 5], { maxStringBytes: 0 })).not.toThrow();
  });
});

group('describe', () => {
  it('names a decoded value the way error messages do', () => {
    expect([null, new Uint8Array(1), [1], 1, 'x', true, {}].map(describe)).toEqual([
      'nil',
      'binary',
      'array',
      'number',
      'string',
      'boolean',
      'object',
    ]);
  });
});

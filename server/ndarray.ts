// openpi's numpy encoding (packages/openpi-client msgpack_numpy): an array is a map with the keys
// `__ndarray__` (true), `data` (raw bytes, C order), `dtype` (numpy's dtype.str, e.g. "|u1", "<f4")
// and `shape` (list of ints); a numpy scalar is {`__npgeneric__`: true, `data`: value, `dtype`}. On
// the wire the keys are MessagePack `bin`, as Python's msgpack writes bytes keys.
//
// Decoding checks everything before anything is built: the dtype against a fixed table (little-endian
// or byte-order-free numeric types and bool; object, void, complex and big-endian are refused), the
// shape (rank, non-negative integers) and shape x itemsize against the byte length. The array keeps
// a view of the payload; `toRawImage` turns a uint8 HWC array into the engine's RawImage without a copy.

import { StagewardError } from '../core/errors.ts';
import type { RawImage } from '../core/image.ts';
import { setKey, type Decoded } from './msgpack.ts';

/** numpy dtype.str -> bytes per item. */
export const DTYPES = {
  '|b1': 1,
  '|u1': 1,
  '|i1': 1,
  '<u2': 2,
  '<i2': 2,
  '<f2': 2,
  '<u4': 4,
  '<i4': 4,
  '<f4': 4,
  '<u8': 8,
  '<i8': 8,
  '<f8': 8,
} as const;
export type Dtype = keyof typeof DTYPES;

/** Highest array rank accepted (numpy's own limit is 64; camera frames and states need 1-4). */
export const MAX_NDARRAY_RANK = 8;

function bad(message: string): never {
  throw new StagewardError('SW_ERR_NDARRAY', message);
}

export class NdArray {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** The raw bytes (C order), a view of the received message. */
  readonly data: Uint8Array;

  constructor(dtype: Dtype, shape: readonly number[], data: Uint8Array) {
    this.dtype = dtype;
    this.shape = shape;
    this.data = data;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** float32 copy of the values (for small arrays such as a robot state). */
  toFloat32(): Float32Array {
    const n = this.size;
    const out = new Float32Array(n);
    const bytes = Uint8Array.from(this.data); // aligned copy
    const dv = new DataView(bytes.buffer);
    const size = DTYPES[this.dtype];
    for (let i = 0; i < n; i++) {
      const o = i * size;
      switch (this.dtype) {
        case '|b1':
        case '|u1':
          out[i] = dv.getUint8(o);
          break;
        case '|i1':
          out[i] = dv.getInt8(o);
          break;
        case '<u2':
          out[i] = dv.getUint16(o, true);
          break;
        case '<i2':
          out[i] = dv.getInt16(o, true);
          break;
        case '<f2':
          out[i] = halfToFloat(dv.getUint16(o, true));
          break;
        case '<u4':
          out[i] = dv.getUint32(o, true);
          break;
        case '<i4':
          out[i] = dv.getInt32(o, true);
          break;
        case '<f4':
          out[i] = dv.getFloat32(o, true);
          break;
        case '<u8':
          out[i] = Number(dv.getBigUint64(o, true));
          break;
        case '<i8':
          out[i] = Number(dv.getBigInt64(o, true));
          break;
        case '<f8':
          out[i] = dv.getFloat64(o, true);
          break;
      }
    }
    return out;
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function checkDtype(v: unknown): Dtype {
  if (typeof v !== 'string') bad('`dtype` must be a numpy dtype string such as "|u1" or "<f4"');
  if (!Object.hasOwn(DTYPES, v)) {
    const shown = JSON.stringify(v.slice(0, 16));
    if (v.startsWith('>')) bad(`dtype ${shown} is big-endian; send little-endian arrays`);
    bad(`dtype ${shown} is not accepted (use one of ${Object.keys(DTYPES).join(', ')})`);
  }
  return v as Dtype;
}

/** Validate an `__ndarray__` map's fields; `data` must already be bytes. */
export function ndarrayFrom(fields: Record<string, unknown>): NdArray {
  for (const key of Object.keys(fields)) {
    if (key !== '__ndarray__' && key !== 'data' && key !== 'dtype' && key !== 'shape')
      bad(`an array map has the unknown key "${key.slice(0, 32)}"`);
  }
  if (fields.__ndarray__ !== true) bad('`__ndarray__` must be true');
  const dtype = checkDtype(fields.dtype);
  const data = fields.data;
  if (!(data instanceof Uint8Array)) bad("an array's `data` must be bytes");
  const shape = fields.shape;
  if (!Array.isArray(shape)) bad("an array's `shape` must be a list of integers");
  if (shape.length > MAX_NDARRAY_RANK) bad(`an array has rank ${shape.length}, above the limit of ${MAX_NDARRAY_RANK}`);
  const itemsize = DTYPES[dtype];
  let size = 1;
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0)
      bad(`shape [${shape.map(String).join(', ').slice(0, 80)}] must hold non-negative integers`);
    size *= dim;
    // Stop as soon as the product passes what the bytes could hold (no overflow, no allocation).
    if (size * itemsize > data.length) bad(`shape [${shape.join(', ')}] of ${dtype} needs more than the ${data.length} bytes sent`);
  }
  if (size * itemsize !== data.length)
    bad(`shape [${shape.join(', ')}] of ${dtype} needs ${size * itemsize} bytes, ${data.length} were sent`);
  return new NdArray(dtype, shape as number[], data);
}

/** Validate an `__npgeneric__` map and return its value (a number or a boolean). */
export function npgenericFrom(fields: Record<string, unknown>): number | boolean {
  for (const key of Object.keys(fields)) {
    if (key !== '__npgeneric__' && key !== 'data' && key !== 'dtype') bad(`a numpy scalar map has the unknown key "${key.slice(0, 32)}"`);
  }
  if (fields.__npgeneric__ !== true) bad('`__npgeneric__` must be true');
  const dtype = checkDtype(fields.dtype);
  const v = fields.data;
  if (dtype === '|b1') {
    if (typeof v !== 'boolean') bad('a numpy bool scalar must carry true or false');
    return v;
  }
  if (typeof v !== 'number') bad(`a numpy ${dtype} scalar must carry a number`);
  return v;
}

/** The decoder's map hook: numpy maps become NdArray / primitive values; other maps pass through. */
export function numpyMapHook(map: Record<string, Decoded>): Decoded {
  if (Object.hasOwn(map, '__ndarray__')) return ndarrayFrom(map);
  if (Object.hasOwn(map, '__npgeneric__')) return npgenericFrom(map);
  return map;
}

/**
 * JSON's version of the same encoding: `data` is base64 text. Walks a parsed JSON value, turning
 * numpy maps into NdArray and checking the nesting depth.
 */
export function reviveJson(value: unknown, maxNestingDepth: number, depth = 1): Decoded {
  if (depth > maxNestingDepth) throw new StagewardError('SW_ERR_LIMIT', `a message nests deeper than maxNestingDepth (${maxNestingDepth})`);
  if (Array.isArray(value)) return value.map((v) => reviveJson(v, maxNestingDepth, depth + 1));
  if (value === null || typeof value !== 'object') return value as Decoded;
  const out: Record<string, Decoded> = {};
  for (const [k, v] of Object.entries(value)) setKey(out, k, reviveJson(v, maxNestingDepth, depth + 1));
  if (Object.hasOwn(out, '__ndarray__')) {
    if (typeof out.data !== 'string') bad("in JSON, an array's `data` must be base64 text");
    return ndarrayFrom({ ...out, data: base64Bytes(out.data) });
  }
  if (Object.hasOwn(out, '__npgeneric__')) return npgenericFrom(out);
  return out;
}

/** Strict base64 (standard alphabet, optional padding): anything else is refused, not skipped. */
export function base64Bytes(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new StagewardError('SW_ERR_PROTOCOL', 'an image or array in a JSON message is not valid base64');
  }
  return Buffer.from(text, 'base64');
}

/**
 * A uint8 array [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] as a RawImage (no copy). The pixel count
 * is checked against `maxImagePixels` here, before the engine sees it.
 */
export function toRawImage(a: NdArray, maxImagePixels: number, label: string): RawImage {
  if (a.dtype !== '|u1') bad(`${label}: an image array must be uint8 ("|u1"), got "${a.dtype}"`);
  const [h, w, c = 1] = a.shape;
  if (a.shape.length < 2 || a.shape.length > 3 || (c !== 1 && c !== 3 && c !== 4)) {
    bad(`${label}: an image array must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (HWC), got [${a.shape.join(', ')}]`);
  }
  if (h! < 1 || w! < 1) throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: image array [${a.shape.join(', ')}] is empty`);
  if (h! * w! > maxImagePixels)
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${w}x${h} is over maxImagePixels (${maxImagePixels})`);
  return { data: a.data, height: h!, width: w!, channels: c as 1 | 3 | 4 };
}

const KEY = {
  ndarray: Buffer.from('__ndarray__'),
  data: Buffer.from('data'),
  dtype: Buffer.from('dtype'),
  shape: Buffer.from('shape'),
};

/** An array as openpi writes it (binary keys), ready for `encodeMsgpack`. */
export function ndarrayMap(dtype: Dtype, shape: readonly number[], data: Uint8Array): Map<Uint8Array, unknown> {
  return new Map<Uint8Array, unknown>([
    [KEY.ndarray, true],
    [KEY.data, data],
    [KEY.dtype, dtype],
    [KEY.shape, [...shape]],
  ]);
}

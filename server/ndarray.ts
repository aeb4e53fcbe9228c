// openpi's numpy encoding (packages/openpi-client msgpack_numpy): an array is a map with the keys
// `__ndarray__` (true), `data` (raw bytes, C order), `dtype` (numpy's dtype.str, e.g. "|u1", "<f4")
// and `shape` (list of ints); a numpy scalar is {`__npgeneric__`: true, `data`: value, `dtype`}. On
// the wire the keys are MessagePack `bin`, as Python's msgpack writes bytes keys.
//
// Decoding checks everything before anything is built: the dtype against a fixed table (little-endian
// or byte-order-free numeric types and bool, and numpy's text types `<U{n}` and `|S{n}`, which
// clients send in keys stageward does not read; object, void, complex and big-endian are refused),
// the shape (rank, non-negative integers) and shape x itemsize against the byte length. The array
// keeps a view of the payload. `toRawImage` turns an image array into the engine's RawImage: uint8
// HWC without a copy; CHW (ALOHA-style cameras) and float images in [0, 1] converted to uint8 HWC.

import { StagewardError } from '../core/errors.ts';
import type { RawImage } from '../core/image.ts';
import { describe, setKey, type Decoded } from './msgpack.ts';

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
/** numpy's text dtypes: `<U{n}` (UTF-32, 4n bytes per item) and `|S{n}` (n bytes). Decoded, never read. */
export type TextDtype = `<U${number}` | `|S${number}`;
const TEXT_DTYPE = /^(<U|\|S)([1-9]\d{0,5})$/;

function itemsizeOf(dtype: Dtype | TextDtype): number {
  if (Object.hasOwn(DTYPES, dtype)) return DTYPES[dtype as Dtype];
  const [, kind, n] = TEXT_DTYPE.exec(dtype)!;
  return kind === '<U' ? 4 * Number(n) : Number(n);
}

export const isTextDtype = (dtype: string): dtype is TextDtype => TEXT_DTYPE.test(dtype);

/** Highest array rank accepted (numpy's own limit is 64; camera frames and states need 1-4). */
export const MAX_NDARRAY_RANK = 8;

function bad(message: string): never {
  throw new StagewardError('SW_ERR_NDARRAY', message);
}

export class NdArray {
  readonly dtype: Dtype | TextDtype;
  readonly shape: readonly number[];
  /** The raw bytes (C order), a view of the received message. */
  readonly data: Uint8Array;

  constructor(dtype: Dtype | TextDtype, shape: readonly number[], data: Uint8Array) {
    this.dtype = dtype;
    this.shape = shape;
    this.data = data;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** A numeric array (not text). */
  get numeric(): boolean {
    return !isTextDtype(this.dtype);
  }

  /** float32 copy of the values (for small arrays such as a robot state); a text array is SW_ERR_NDARRAY. */
  toFloat32(): Float32Array {
    if (!this.numeric) bad(`a ${this.dtype} (text) array has no numbers`);
    const n = this.size;
    const out = new Float32Array(n);
    const bytes = Uint8Array.from(this.data); // aligned copy
    const dv = new DataView(bytes.buffer);
    const size = DTYPES[this.dtype as Dtype];
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

function checkDtype(v: unknown): Dtype | TextDtype {
  if (typeof v !== 'string') bad('`dtype` must be a numpy dtype string such as "|u1" or "<f4"');
  if (isTextDtype(v)) return v;
  if (!Object.hasOwn(DTYPES, v)) {
    const shown = JSON.stringify(v.slice(0, 16));
    if (v.startsWith('>')) bad(`dtype ${shown} is big-endian; send little-endian arrays`);
    bad(`dtype ${shown} is not accepted (use one of ${Object.keys(DTYPES).join(', ')})`);
  }
  return v as Dtype;
}

/** A shape entry as an error shows it: a list or map by its kind (String() of a map with a `toString` key throws). */
const shownDim = (d: unknown): string => (typeof d === 'object' ? describe(d) : String(d));

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
  const itemsize = itemsizeOf(dtype);
  for (const dim of shape)
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0)
      bad(`shape [${shape.map(shownDim).join(', ').slice(0, 80)}] must hold non-negative integers`);
  // A zero dimension anywhere makes an empty array; else stop as soon as the product passes what the
  // bytes could hold (no overflow, no allocation).
  let size = shape.includes(0) ? 0 : 1;
  for (const dim of size === 0 ? [] : (shape as number[])) {
    size *= dim;
    if (size * itemsize > data.length) bad(`shape [${shape.join(', ')}] of ${dtype} needs more than the ${data.length} bytes sent`);
  }
  if (size * itemsize !== data.length)
    bad(`shape [${shape.join(', ')}] of ${dtype} needs ${size * itemsize} bytes, ${data.length} were sent`);
  return new NdArray(dtype, shape as number[], data);
}

/** Validate an `__npgeneric__` map and return its value (a number, a boolean, or the text of a numpy str_/bytes_). */
export function npgenericFrom(fields: Record<string, unknown>): number | boolean | string | Uint8Array {
  for (const key of Object.keys(fields)) {
    if (key !== '__npgeneric__' && key !== 'data' && key !== 'dtype') bad(`a numpy scalar map has the unknown key "${key.slice(0, 32)}"`);
  }
  if (fields.__npgeneric__ !== true) bad('`__npgeneric__` must be true');
  const dtype = checkDtype(fields.dtype);
  const v = fields.data;
  if (isTextDtype(dtype)) {
    if (typeof v !== 'string' && !(v instanceof Uint8Array)) bad(`a numpy ${dtype} scalar must carry text`);
    return v;
  }
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

const FLOAT_IMAGE_DTYPES: readonly string[] = ['<f2', '<f4', '<f8'];
/** Float pixels this far outside [0, 1] are refused (rounding in the client's own pipeline stays within it). */
const FLOAT_IMAGE_SLACK = 1e-3;
const isChannels = (n: number | undefined) => n === 1 || n === 3 || n === 4;

/**
 * An image array as a RawImage: uint8 [H, W], [H, W, C] as it is (no copy); [C, H, W] (channels
 * first, as ALOHA-style pipelines send) transposed; float16/32/64 pixels in [0, 1] scaled to uint8
 * (round(255 x)). C is 1, 3 or 4; a shape whose last and first dimensions could both be C reads as
 * HWC. The pixel count is checked against `maxImagePixels` before any conversion.
 */
export function toRawImage(a: NdArray, maxImagePixels: number, label: string): RawImage {
  if (!a.numeric) bad(`${label}: a ${a.dtype} (text) array is not an image`);
  const float = FLOAT_IMAGE_DTYPES.includes(a.dtype);
  if (a.dtype !== '|u1' && !float) bad(`${label}: an image array must be uint8, or float in [0, 1]; got "${a.dtype}"`);
  const s = a.shape;
  const chw = s.length === 3 && !isChannels(s[2]) && isChannels(s[0]);
  if (s.length < 2 || s.length > 3 || (s.length === 3 && !chw && !isChannels(s[2]))) {
    bad(`${label}: an image array must be [H, W], [H, W, C] or [C, H, W] with C 1, 3 or 4; got [${s.join(', ')}]`);
  }
  const [h, w, c] = chw ? [s[1]!, s[2]!, s[0]!] : [s[0]!, s[1]!, s[2] ?? 1];
  if (h < 1 || w < 1) throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: image array [${s.join(', ')}] is empty`);
  if (h * w > maxImagePixels)
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${w}x${h} is over maxImagePixels (${maxImagePixels})`);
  const channels = c as 1 | 3 | 4;
  if (!float && !chw) return { data: a.data, height: h, width: w, channels };
  const values = float ? floatValues(a, label) : a.data;
  const out = new Uint8Array(h * w * c);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < c; k++) {
      const v = values[chw ? k * plane + i : i * c + k]!;
      out[i * c + k] = float ? Math.round(Math.min(1, Math.max(0, v)) * 255) : v;
    }
  }
  return { data: out, height: h, width: w, channels };
}

/** A float image's values, each checked to lie in [0, 1] (NaN included in the refusal). */
function floatValues(a: NdArray, label: string): ArrayLike<number> {
  const bytes = a.data.byteOffset % 8 === 0 ? a.data : Uint8Array.from(a.data); // typed views need alignment
  const n = a.size;
  let values: ArrayLike<number>;
  if (a.dtype === '<f4') values = new Float32Array(bytes.buffer, bytes.byteOffset, n);
  else if (a.dtype === '<f8') values = new Float64Array(bytes.buffer, bytes.byteOffset, n);
  else values = a.toFloat32();
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!(v >= -FLOAT_IMAGE_SLACK && v <= 1 + FLOAT_IMAGE_SLACK))
      bad(`${label}: a float image must hold values in [0, 1] (scale 0-255 images to [0, 1], or send uint8); found ${v}`);
  }
  return values;
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

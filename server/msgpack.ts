// MessagePack for untrusted input: a strict decoder written for the server, and the encoder (msgpackr)
// configured to write only plain MessagePack. The decoder never allocates more than the payload
// implies: a container's declared count is checked against the bytes left before anything is
// built, `bin` values are views of the payload (no copy), nesting is bounded, the number of values a
// message builds is bounded (`maxElements`, counted as each value is read, so a flat bomb of a
// million 1-byte empty maps is refused after `maxElements` of them, not after building them all), so
// are the bytes of its strings (`maxStringBytes`, checked before each string is decoded), and
// every extension type is refused (openpi's encoding uses none). What a message decodes to is thus at
// most `maxStringBytes` of strings plus `maxElements` small values: bin values are views, never copies. Map keys must be str or bin (Python's msgpack with
// `strict_map_key`), are decoded to strings, must not repeat, and a `__proto__` key stays an own property.
//
// Maps carrying openpi's numpy keys are handed to `hooks.map` as they close (server/ndarray.ts turns
// `__ndarray__` / `__npgeneric__` maps into arrays and scalars there), so one pass validates them.

import { Packr } from 'msgpackr';
import { StagewardError } from '../core/errors.ts';

export type Decoded = null | boolean | number | string | Uint8Array | Decoded[] | { [key: string]: Decoded } | object;

export interface DecodeOptions {
  /** Deepest nesting of arrays and maps accepted (the top-level value is depth 1). */
  maxNestingDepth: number;
  /** Most values (scalars, strings, bins, arrays, maps, map keys) one message may hold. */
  maxElements: number;
  /** Most bytes of strings (binary map keys included) one message may hold: the only bytes decoding copies. */
  maxStringBytes?: number;
  /** Called on each map as it closes; its return value replaces the map. */
  mapHook?: (map: Record<string, Decoded>) => Decoded;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(message: string): never {
  throw new StagewardError('SW_ERR_PROTOCOL', `not valid MessagePack: ${message}`);
}

/** Decode one MessagePack value that fills `bytes` exactly. Throws SW_ERR_PROTOCOL / SW_ERR_LIMIT. */
export function decodeMsgpack(bytes: Uint8Array, options: DecodeOptions): Decoded {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let pos = 0;
  let elements = 0;
  let stringBytes = 0;
  const maxStringBytes = options.maxStringBytes ?? Infinity;
  const countString = (n: number): void => {
    stringBytes += n;
    if (stringBytes > maxStringBytes) {
      throw new StagewardError('SW_ERR_LIMIT', `a message holds more than maxStringBytes (${maxStringBytes}) bytes of strings`);
    }
  };

  const need = (n: number, what: string): void => {
    if (n > end - pos) fail(`${what} at byte ${pos} runs past the end of the message (${end} bytes)`);
  };
  const u8 = (): number => {
    need(1, 'a value');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'a length');
    const v = view.getUint16(pos);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'a length');
    const v = view.getUint32(pos);
    pos += 4;
    return v;
  };
  const raw = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const str = (n: number): string => {
    const b = raw(n, 'a string');
    countString(n);
    try {
      return utf8.decode(b);
    } catch {
      fail('a string is not valid UTF-8');
    }
  };
  const int64 = (signed: boolean): number => {
    need(8, 'an integer');
    const big = signed ? view.getBigInt64(pos) : view.getBigUint64(pos);
    pos += 8;
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
      fail('a 64-bit integer is outside the exactly representable range (+-2^53)');
    return Number(big);
  };

  const array = (count: number, depth: number): Decoded[] => {
    // Every element takes at least one byte: a count above the bytes left is a lie, refused before allocation.
    if (count > end - pos) fail(`an array declares ${count} elements with ${end - pos} bytes left`);
    const out: Decoded[] = [];
    for (let i = 0; i < count; i++) out.push(value(depth + 1));
    return out;
  };

  const map = (count: number, depth: number): Decoded => {
    if (count * 2 > end - pos) fail(`a map declares ${count} entries with ${end - pos} bytes left`);
    const out: Record<string, Decoded> = {};
    for (let i = 0; i < count; i++) {
      const at = pos;
      const key = value(depth + 1);
      let name: string;
      if (typeof key === 'string') name = key;
      else if (key instanceof Uint8Array) {
        countString(key.length);
        try {
          name = utf8.decode(key);
        } catch {
          fail(`a binary map key at byte ${at} is not valid UTF-8`);
        }
      } else fail(`a map key at byte ${at} is not a string or binary (${describe(key)})`);
      if (Object.hasOwn(out, name)) fail(`a map repeats the key "${name.slice(0, 64)}"`);
      setKey(out, name, value(depth + 1));
    }
    return options.mapHook ? options.mapHook(out) : out;
  };

  const value = (depth: number): Decoded => {
    if (depth > options.maxNestingDepth) {
      throw new StagewardError('SW_ERR_LIMIT', `a message nests deeper than maxNestingDepth (${options.maxNestingDepth})`);
    }
    if (++elements > options.maxElements) {
      throw new StagewardError('SW_ERR_LIMIT', `a message holds more than maxMessageElements (${options.maxElements}) values`);
    }
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return array(b & 0x0f, depth);
    if (b >= 0xa0 && b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return raw(u8(), 'a bin value');
      case 0xc5:
        return raw(u16(), 'a bin value');
      case 0xc6:
        return raw(u32(), 'a bin value');
      case 0xca: {
        need(4, 'a float');
        const v = view.getFloat32(pos);
        pos += 4;
        return v;
      }
      case 0xcb: {
        need(8, 'a float');
        const v = view.getFloat64(pos);
        pos += 8;
        return v;
      }
      case 0xcc:
        return u8();
      case 0xcd:
        return u16();
      case 0xce:
        return u32();
      case 0xcf:
        return int64(false);
      case 0xd0: {
        const v = u8();
        return v >= 0x80 ? v - 0x100 : v;
      }
      case 0xd1: {
        const v = u16();
        return v >= 0x8000 ? v - 0x10000 : v;
      }
      case 0xd2: {
        need(4, 'an integer');
        const v = view.getInt32(pos);
        pos += 4;
        return v;
      }
      case 0xd3:
        return int64(true);
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xdc:
        return array(u16(), depth);
      case 0xdd:
        return array(u32(), depth);
      case 0xde:
        return map(u16(), depth);
      case 0xdf:
        return map(u32(), depth);
      case 0xc1:
        return fail('byte 0xc1 is never used in MessagePack');
      default: // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext
        fail(`extension types are not accepted (type byte 0x${b.toString(16)} at byte ${pos - 1})`);
    }
  };

  if (end === 0) fail('the message is empty');
  const out = value(1);
  if (pos !== end) fail(`${end - pos} bytes follow the first value`);
  return out;
}

/** obj[key] = value, where a key named `__proto__` becomes an own property, never the prototype. */
export function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

export function describe(v: unknown): string {
  if (v === null) return 'nil';
  if (v instanceof Uint8Array) return 'binary';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

// Plain MessagePack out: no records extension, no typed-array extensions (a Uint8Array is `bin`),
// fixmaps for small maps. Numpy maps need binary keys: callers pass a Map with Uint8Array keys.
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true });

export function encodeMsgpack(value: unknown): Buffer {
  return packr.pack(value);
}

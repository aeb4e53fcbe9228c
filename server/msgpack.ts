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
  if (bytes.length === 0) fail('the message is empty');
  const reader = new Reader(bytes, options);
  const out = reader.value(1);
  if (reader.pos !== bytes.length) fail(`${bytes.length - reader.pos} bytes follow the first value`);
  return out;
}

// A class rather than closures: a decode then creates one object instead of a dozen functions, which
// matters for small messages (a burst of thousands of them is decoded on the main thread).
class Reader {
  pos = 0;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #end: number;
  readonly #options: DecodeOptions;
  readonly #maxStringBytes: number;
  #elements = 0;
  #stringBytes = 0;

  constructor(bytes: Uint8Array, options: DecodeOptions) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#end = bytes.length;
    this.#options = options;
    this.#maxStringBytes = options.maxStringBytes ?? Infinity;
  }

  #countString(n: number): void {
    this.#stringBytes += n;
    if (this.#stringBytes > this.#maxStringBytes) {
      throw new StagewardError('SW_ERR_LIMIT', `a message holds more than maxStringBytes (${this.#maxStringBytes}) bytes of strings`);
    }
  }

  #need(n: number, what: string): void {
    if (n > this.#end - this.pos) fail(`${what} at byte ${this.pos} runs past the end of the message (${this.#end} bytes)`);
  }

  #u8(): number {
    this.#need(1, 'a value');
    return this.#bytes[this.pos++]!;
  }

  #u16(): number {
    this.#need(2, 'a length');
    const v = this.#view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  #u32(): number {
    this.#need(4, 'a length');
    const v = this.#view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  #raw(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const out = this.#bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  #str(n: number): string {
    const b = this.#raw(n, 'a string');
    this.#countString(n);
    try {
      return utf8.decode(b);
    } catch {
      fail('a string is not valid UTF-8');
    }
  }

  #int64(signed: boolean): number {
    this.#need(8, 'an integer');
    const big = signed ? this.#view.getBigInt64(this.pos) : this.#view.getBigUint64(this.pos);
    this.pos += 8;
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
      fail('a 64-bit integer is outside the exactly representable range (+-2^53)');
    return Number(big);
  }

  #array(count: number, depth: number): Decoded[] {
    // Every element takes at least one byte: a count above the bytes left is a lie, refused before allocation.
    if (count > this.#end - this.pos) fail(`an array declares ${count} elements with ${this.#end - this.pos} bytes left`);
    const out: Decoded[] = [];
    for (let i = 0; i < count; i++) out.push(this.value(depth + 1));
    return out;
  }

  #map(count: number, depth: number): Decoded {
    if (count * 2 > this.#end - this.pos) fail(`a map declares ${count} entries with ${this.#end - this.pos} bytes left`);
    const out: Record<string, Decoded> = {};
    for (let i = 0; i < count; i++) {
      const at = this.pos;
      const key = this.value(depth + 1);
      let name: string;
      if (typeof key === 'string') name = key;
      else if (key instanceof Uint8Array) {
        this.#countString(key.length);
        try {
          name = utf8.decode(key);
        } catch {
          fail(`a binary map key at byte ${at} is not valid UTF-8`);
        }
      } else fail(`a map key at byte ${at} is not a string or binary (${describe(key)})`);
      if (Object.hasOwn(out, name)) fail(`a map repeats the key "${name.slice(0, 64)}"`);
      setKey(out, name, this.value(depth + 1));
    }
    return this.#options.mapHook ? this.#options.mapHook(out) : out;
  }

  value(depth: number): Decoded {
    const options = this.#options;
    if (depth > options.maxNestingDepth) {
      throw new StagewardError('SW_ERR_LIMIT', `a message nests deeper than maxNestingDepth (${options.maxNestingDepth})`);
    }
    if (++this.#elements > options.maxElements) {
      throw new StagewardError('SW_ERR_LIMIT', `a message holds more than maxMessageElements (${options.maxElements}) values`);
    }
    const b = this.#u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0x80 && b <= 0x8f) return this.#map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return this.#array(b & 0x0f, depth);
    if (b >= 0xa0 && b <= 0xbf) return this.#str(b & 0x1f);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.#raw(this.#u8(), 'a bin value');
      case 0xc5:
        return this.#raw(this.#u16(), 'a bin value');
      case 0xc6:
        return this.#raw(this.#u32(), 'a bin value');
      case 0xca: {
        this.#need(4, 'a float');
        const v = this.#view.getFloat32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xcb: {
        this.#need(8, 'a float');
        const v = this.#view.getFloat64(this.pos);
        this.pos += 8;
        return v;
      }
      case 0xcc:
        return this.#u8();
      case 0xcd:
        return this.#u16();
      case 0xce:
        return this.#u32();
      case 0xcf:
        return this.#int64(false);
      case 0xd0: {
        const v = this.#u8();
        return v >= 0x80 ? v - 0x100 : v;
      }
      case 0xd1: {
        const v = this.#u16();
        return v >= 0x8000 ? v - 0x10000 : v;
      }
      case 0xd2: {
        this.#need(4, 'an integer');
        const v = this.#view.getInt32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xd3:
        return this.#int64(true);
      case 0xd9:
        return this.#str(this.#u8());
      case 0xda:
        return this.#str(this.#u16());
      case 0xdb:
        return this.#str(this.#u32());
      case 0xdc:
        return this.#array(this.#u16(), depth);
      case 0xdd:
        return this.#array(this.#u32(), depth);
      case 0xde:
        return this.#map(this.#u16(), depth);
      case 0xdf:
        return this.#map(this.#u32(), depth);
      case 0xc1:
        return fail('byte 0xc1 is never used in MessagePack');
      default: // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext
        fail(`extension types are not accepted (type byte 0x${b.toString(16)} at byte ${this.pos - 1})`);
    }
  }
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

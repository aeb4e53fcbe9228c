// The message codec of both WebSocket endpoints: a frame in -> a decoded value, a reply out -> a
// frame in the format the request used. Binary frames are MessagePack with openpi's numpy encoding
// (server/msgpack.ts, server/ndarray.ts); text frames are JSON for debugging, where images are base64
// JPEG/PNG strings and arrays are numpy maps with base64 `data`. Size limits are enforced before
// this runs (ws `maxPayload`).
//
// The decode budget: nesting depth (`maxNestingDepth`), the number of values (`maxMessageElements`) and
// the bytes that decoding copies (`maxStringBytes` of MessagePack strings; `maxTextPayloadBytes`, the
// whole of a JSON text) are enforced before the objects exist. MessagePack counts while it decodes (server/msgpack.ts);
// JSON is first scanned for its structure (`scanJson`: one pass over the bytes that skips strings
// with indexOf and allocates nothing), and only a text within the budget reaches JSON.parse. Either
// way a message costs the main thread work in proportion to its bytes, up to the budget.

import { StagewardError } from '../core/errors.ts';
import { decodeMsgpack, encodeMsgpack, type Decoded } from './msgpack.ts';
import { numpyMapHook, reviveJson } from './ndarray.ts';

export type FrameKind = 'binary' | 'text';

export interface CodecLimits {
  maxNestingDepth: number;
  maxMessageElements: number;
  /** Bytes of strings in a MessagePack message (images and arrays travel as bin, which is not copied). */
  maxStringBytes: number;
  /** Largest JSON text frame: text is for debugging, and parsing it copies every byte. */
  maxTextPayloadBytes: number;
}

/** Decode one WebSocket message. Throws SW_ERR_PROTOCOL, SW_ERR_LIMIT or SW_ERR_NDARRAY. */
export function decodeFrame(data: Buffer, kind: FrameKind, limits: CodecLimits): Decoded {
  if (kind === 'binary') {
    return decodeMsgpack(data, {
      maxNestingDepth: limits.maxNestingDepth,
      maxElements: limits.maxMessageElements,
      maxStringBytes: limits.maxStringBytes,
      mapHook: numpyMapHook,
    });
  }
  if (data.length > limits.maxTextPayloadBytes) {
    throw new StagewardError(
      'SW_ERR_LIMIT',
      `a text message of ${data.length} bytes is over maxTextPayloadBytes (${limits.maxTextPayloadBytes}); send large messages as MessagePack`,
    );
  }
  scanJson(data, limits);
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    throw new StagewardError('SW_ERR_PROTOCOL', 'a text message is not valid JSON');
  }
  return reviveJson(parsed, limits.maxNestingDepth);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Check a JSON text's structure against the budget before it is parsed: the nesting depth of lists
 * and maps, and the number of values (map keys included, as MessagePack counts them), from the
 * structural bytes outside strings: the top-level value, plus one for each `,` and `:`, plus one for
 * each non-empty list or map (its first element). For valid JSON the count is exact. Invalid JSON
 * passes through to JSON.parse, which refuses it; this only bounds what parsing can build.
 */
export function scanJson(bytes: Uint8Array, limits: CodecLimits): void {
  const { maxNestingDepth, maxMessageElements } = limits;
  const end = bytes.length;
  let depth = 0;
  let values = 1; // the top-level value
  for (let pos = 0; pos < end; pos++) {
    const b = bytes[pos]!;
    if (b === QUOTE) {
      // Skip to the closing quote: one not preceded by an odd run of backslashes.
      let close = pos;
      for (;;) {
        close = bytes.indexOf(QUOTE, close + 1);
        if (close < 0) return; // unterminated: JSON.parse refuses it
        let slashes = 0;
        while (bytes[close - 1 - slashes] === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
      }
      pos = close;
    } else if (b === 0x5b || b === 0x7b) {
      // [ {
      if (++depth > maxNestingDepth) {
        throw new StagewardError('SW_ERR_LIMIT', `a message nests deeper than maxNestingDepth (${maxNestingDepth})`);
      }
      let next = pos + 1;
      while (next < end && isSpace(bytes[next]!)) next++;
      if (next < end && bytes[next] !== 0x5d && bytes[next] !== 0x7d && ++values > maxMessageElements) tooMany(maxMessageElements);
    } else if (b === 0x5d || b === 0x7d) {
      depth--; // ] }
    } else if (b === 0x2c || b === 0x3a) {
      if (++values > maxMessageElements) tooMany(maxMessageElements); // , :
    }
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function tooMany(max: number): never {
  throw new StagewardError('SW_ERR_LIMIT', `a message holds more than maxMessageElements (${max}) values`);
}

/** Encode a reply in the request's format (plain objects, numbers, strings, lists only). */
export function encodeFrame(reply: object, kind: FrameKind): Buffer | string {
  return kind === 'binary' ? encodeMsgpack(reply) : JSON.stringify(reply);
}

/** A decoded value that must be a map (a message). */
export function asMessage(v: Decoded): Record<string, unknown> {
  if (
    v === null ||
    typeof v !== 'object' ||
    Array.isArray(v) ||
    v instanceof Uint8Array ||
    (Object.getPrototypeOf(v) !== null && Object.getPrototypeOf(v) !== Object.prototype)
  ) {
    throw new StagewardError('SW_ERR_PROTOCOL', 'a message must be a map');
  }
  return v as Record<string, unknown>;
}

// The message codec of both WebSocket endpoints: a frame in -> a decoded value, a reply out -> a
// frame in the format the request used. Binary frames are MessagePack with openpi's numpy encoding
// (server/msgpack.ts, server/ndarray.ts); text frames are JSON for debugging, where images are base64
// JPEG/PNG strings and arrays are numpy maps with base64 `data`. Size limits are enforced before
// this runs (ws `maxPayload`); nesting depth and array shapes are checked while decoding.

import { StagewardError } from '../core/errors.ts';
import { decodeMsgpack, encodeMsgpack, type Decoded } from './msgpack.ts';
import { numpyMapHook, reviveJson } from './ndarray.ts';

export type FrameKind = 'binary' | 'text';

export interface CodecLimits {
  maxNestingDepth: number;
}

/** Decode one WebSocket message. Throws SW_ERR_PROTOCOL, SW_ERR_LIMIT or SW_ERR_NDARRAY. */
export function decodeFrame(data: Buffer, kind: FrameKind, limits: CodecLimits): Decoded {
  if (kind === 'binary') return decodeMsgpack(data, { maxNestingDepth: limits.maxNestingDepth, mapHook: numpyMapHook });
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    throw new StagewardError('SW_ERR_PROTOCOL', 'a text message is not valid JSON');
  }
  return reviveJson(parsed, limits.maxNestingDepth);
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

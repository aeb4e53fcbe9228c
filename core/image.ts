// Raw camera images, the one pixel type every layer shares (renderer, video decoding, engine, wire),
// JPEG encoding of them as a camera client would send it, and small JPEG thumbnails of any frame
// (the dashboard's camera views, the reports' key frames).

import sharp from 'sharp';

// libvips' operation cache keeps decoded results for reuse; every camera frame is decoded or encoded once, so
// the cache would only hold memory.
sharp.cache(false);

/** A raw image: uint8, row-major height x width x channels (1 grey, 3 RGB, 4 RGBA). */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3 | 4;
}

/** JPEG bytes of a raw RGB frame, as a camera client would send it. */
export function encodeJpeg(img: RawImage, quality = 90): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .jpeg({ quality })
    .toBuffer();
}

/** Every view of a raw frame set as JPEG bytes, encoded in parallel on libuv's threads. */
export async function encodeJpegFrames(frames: Record<string, RawImage>, quality = 90): Promise<Record<string, Uint8Array>> {
  const views = Object.keys(frames);
  const bytes = await Promise.all(views.map((v) => encodeJpeg(frames[v]!, quality)));
  return Object.fromEntries(views.map((v, i) => [v, bytes[i]!]));
}

export function isRawImage(img: Uint8Array | RawImage): img is RawImage {
  return !(img instanceof Uint8Array);
}

/**
 * A small JPEG of one camera image, raw or encoded, `width` pixels wide (a smaller image keeps its
 * size). The input is copied before this returns, so the caller may reuse its buffer; any failure
 * rejects.
 */
export function thumbnailJpeg(img: Uint8Array | RawImage, width: number, quality: number): Promise<Buffer> {
  const input = isRawImage(img)
    ? sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: img.channels } })
    : sharp(Buffer.from(img));
  return input.resize({ width, withoutEnlargement: true }).jpeg({ quality }).toBuffer();
}

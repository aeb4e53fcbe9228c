// Preprocessing: camera images of any size -> RGB uint8 [H, W, 3] at the model's resolution, views in
// the card's order. JPEG bytes are decoded by the native libjpeg-turbo addon when it is built
// (native-jpeg.ts; DCT-scaled to the model's size, on libuv's threads), else by sharp; PNG bytes by
// sharp. Raw uint8 HWC arrays at the model's size are copied as they are; other sizes, and native
// decodes that are not exactly the model's size, are resized by sharp.
// Sizes are checked from the declared header or shape before anything is decoded or allocated.

import sharp from 'sharp';
import type { ModelCard, ResizeMode } from './card.ts';
import { echo, StagewardError } from '../core/errors.ts';
import { isRawImage, type RawImage } from '../core/image.ts';
import { nativeJpeg } from './native-jpeg.ts';

/** JPEG or PNG bytes, or a raw uint8 HWC array. */
export type ImageInput = Uint8Array | RawImage;

export type FrameSet = Record<string, ImageInput>;

export interface PreprocessLimits {
  /** Largest accepted image, in pixels (width x height), checked before decoding. */
  maxImagePixels: number;
}

/**
 * The engine's own image-size ceiling, for library callers that set no limit (a RewardEngine built
 * without `limits`, dataset bundling, offline scoring): 4096 x 4096, room for any camera frame or
 * dataset video a caller hands it, while a decompression bomb is still refused before decoding.
 * The reward server does not use it: it passes the engine its own, tighter per-request wire limit
 * (`limits.maxImagePixels`, 2048 x 2048 in configs/default.json), since its images come from
 * untrusted clients, many sessions at once.
 */
export const ENGINE_MAX_IMAGE_PIXELS = 4096 * 4096;

/** The limits a caller gets when it passes none (see ENGINE_MAX_IMAGE_PIXELS). */
export const DEFAULT_PREPROCESS_LIMITS: PreprocessLimits = { maxImagePixels: ENGINE_MAX_IMAGE_PIXELS };

type Sharp = ReturnType<typeof sharp>;

/** A resize mode as sharp's `fit` (centred, black bars): what every sharp resize of camera frames uses. */
export const SHARP_FIT: Record<ResizeMode, 'fill' | 'contain' | 'cover'> = { stretch: 'fill', pad: 'contain', crop: 'cover' };

/**
 * Resize one image into `out` at `offset` (H*W*3 bytes, RGB). `label` names the image in errors.
 */
export async function preprocessInto(
  img: ImageInput,
  target: { height: number; width: number; resize: ResizeMode },
  out: Uint8Array,
  offset: number,
  limits: PreprocessLimits,
  label: string,
): Promise<void> {
  const { height, width } = target;
  let pipeline: Sharp;
  if (isRawImage(img)) {
    checkRaw(img, limits, label);
    if (img.height === height && img.width === width && img.channels === 3) {
      out.set(img.data, offset);
      return;
    }
    // Camera frames ignore alpha: drop it here, since resizing RGBA would premultiply by it.
    // Dropped by libvips in a pass of its own (no resize there, so nothing is premultiplied), off the main thread.
    const rgb = img.channels === 4 ? await dropAlpha(img) : img.data;
    pipeline = sharp(rgb, { raw: { width: img.width, height: img.height, channels: img.channels === 4 ? 3 : img.channels } });
  } else {
    const format = sniff(img);
    if (format === undefined) throw new StagewardError('SW_ERR_IMAGE_DECODE', `${label}: not JPEG or PNG bytes`);
    // The size comes from the header, read here in a few byte comparisons (no libvips round trip).
    const size = format === 'PNG' ? pngSize(img) : jpegSize(img);
    if (size === undefined) throw new StagewardError('SW_ERR_IMAGE_DECODE', `${label}: unreadable ${format} header`);
    const pixels = size.width * size.height;
    if (pixels <= 0) throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${format} declares no size`);
    if (pixels > limits.maxImagePixels) {
      throw new StagewardError(
        'SW_ERR_IMAGE_SIZE',
        `${label}: ${size.width}x${size.height} is over maxImagePixels (${limits.maxImagePixels})`,
      );
    }
    const native = format === 'JPEG' ? nativeJpeg() : null;
    const decoded = native === null ? undefined : await native.decode(img, width, height).catch(() => undefined);
    if (decoded === undefined) {
      // sharp decodes, and has the last word on what the native decoder refused (its error is the reply's).
      pipeline = sharp(img, { failOn: 'warning', limitInputPixels: limits.maxImagePixels });
    } else if (decoded.width === width && decoded.height === height) {
      out.set(decoded.data, offset);
      return;
    } else {
      pipeline = sharp(decoded.data, { raw: { width: decoded.width, height: decoded.height, channels: 3 } });
    }
  }
  let data: Buffer;
  try {
    data = await pipeline
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: SHARP_FIT[target.resize], position: 'centre', background: { r: 0, g: 0, b: 0 } })
      .raw()
      .toBuffer();
  } catch (err) {
    throw new StagewardError('SW_ERR_IMAGE_DECODE', `${label}: could not decode (${(err as Error).message.split('\n')[0]})`);
  }
  if (data.length !== height * width * 3) {
    throw new StagewardError('SW_ERR_IMAGE_DECODE', `${label}: decoded to ${data.length} bytes, expected ${height * width * 3}`);
  }
  out.set(data, offset);
}

/**
 * Check a step's views against the model's and preprocess them all into one buffer
 * [V, H, W, 3] in the card's view order.
 */
export async function preprocessFrames(
  frames: FrameSet,
  card: ModelCard,
  limits: PreprocessLimits,
  schedule: DecodeScheduler = (_cost, fn) => fn(),
): Promise<Uint8Array> {
  checkViews(frames, card.views);
  const { height, width } = card.image;
  const size = height * width * 3;
  const out = new Uint8Array(card.views.length * size);
  await Promise.all(
    card.views.map((view, i) => {
      const img = frames[view]!;
      const cost = isRawImage(img) ? img.data.length : img.length;
      return schedule(cost, () => preprocessInto(img, card.image, out, i * size, limits, `view "${view}"`));
    }),
  );
  return out;
}

/** Runs one image's decode when its turn comes; `cost` is its bytes (a fair queue charges them). */
export type DecodeScheduler = (cost: number, fn: () => Promise<void>) => Promise<void>;

export function checkViews(frames: Record<string, unknown>, views: readonly string[]): void {
  if (typeof frames !== 'object' || frames === null)
    throw new StagewardError('SW_ERR_VIEW_MISSING', 'frames must be a map of view name to image');
  for (const key of Object.keys(frames)) {
    if (!views.includes(key))
      throw new StagewardError('SW_ERR_VIEW_UNKNOWN', `unknown view ${echo(key)}; the model's views are ${views.join(', ')}`);
  }
  for (const view of views) {
    if (frames[view] === undefined)
      throw new StagewardError('SW_ERR_VIEW_MISSING', `missing view "${view}"; the model needs ${views.join(', ')}`);
  }
}

function checkRaw(img: RawImage, limits: PreprocessLimits, label: string): void {
  const { height, width, channels, data } = img;
  if (!(data instanceof Uint8Array)) throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: raw image data must be uint8`);
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: raw image size ${height}x${width} is not a positive integer size`);
  }
  if (height * width > limits.maxImagePixels) {
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${width}x${height} is over maxImagePixels (${limits.maxImagePixels})`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4)
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${channels} channels; use 1, 3 or 4`);
  if (data.length !== height * width * channels) {
    throw new StagewardError('SW_ERR_IMAGE_SIZE', `${label}: ${data.length} bytes do not match shape [${height}, ${width}, ${channels}]`);
  }
}

/** Width and height from a PNG's IHDR chunk (always first, at a fixed offset). */
function pngSize(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length < 24 || b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return undefined;
  const u32 = (i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  return { width: u32(16), height: u32(20) };
}

/** Width and height from a JPEG's first start-of-frame marker (SOF0-SOF15 but DHT, JPG and DAC). */
function jpegSize(b: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = (b[i + 2]! << 8) | b[i + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (b[i + 5]! << 8) | b[i + 6]!, width: (b[i + 7]! << 8) | b[i + 8]! };
    }
    if (marker === 0xd9 || marker === 0xda || length < 2) return undefined; // end of image / scan before any frame header
    i += 2 + length;
  }
  return undefined;
}

function sniff(bytes: Uint8Array): 'JPEG' | 'PNG' | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'JPEG';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'PNG';
  return undefined;
}

async function dropAlpha(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 4 } })
    .removeAlpha()
    .raw()
    .toBuffer();
}

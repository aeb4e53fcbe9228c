// Camera features of dtype "image": LeRobot (v2.1 and v3.0) keeps their frames in the data parquet,
// one cell per row, as the Hugging Face `Image` struct {bytes, path}: PNG or JPEG bytes, or, when
// the bytes are null, a path to the file (relative to the dataset root unless absolute). This file
// reads those cells in row ranges (binary, never as text) and decodes them with sharp to RGB uint8,
// at their own size or resized like the video decoder (stretch / pad / crop, centred, black).

import { isAbsolute, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { StagewardError } from '../core/errors.ts';
import type { RawImage } from '../core/image.ts';
import { SHARP_FIT } from '../models/preprocess.ts';
import type { FitMode } from './ffmpeg.ts';
import { topLevelColumns } from './parquet-file.ts';

/** Rows read (and decoded in parallel) per step: bounds memory to this many encoded and decoded frames. */
export const IMAGE_ROWS_PER_READ = 32;

/** One data parquet file opened for reading image cells; the footer is read once. */
export class ImageColumnFile {
  private constructor(
    readonly path: string,
    private readonly file: AsyncBuffer,
    private readonly metadata: FileMetaData,
  ) {}

  static async open(path: string): Promise<ImageColumnFile> {
    let file: AsyncBuffer;
    try {
      file = await asyncBufferFromFile(path);
    } catch (err) {
      throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return new ImageColumnFile(path, file, await parquetMetadataAsync(file));
    } catch (err) {
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} is not a readable parquet file: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  get rowCount(): number {
    return Number(this.metadata.num_rows);
  }

  /** Rows [rowStart, rowEnd) (all when absent) of `column` and, when the file has it, episode_index. */
  async rows(column: string, range: { rowStart?: number; rowEnd?: number } = {}): Promise<Record<string, unknown>[]> {
    const present = topLevelColumns(this.metadata.schema);
    if (!present.includes(column))
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${this.path} has no column "${column}" for the image feature of that name`);
    const columns = present.includes('episode_index') ? [column, 'episode_index'] : [column];
    try {
      return (await parquetReadObjects({ file: this.file, metadata: this.metadata, columns, utf8: false, ...range })) as Record<
        string,
        unknown
      >[];
    } catch (err) {
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${this.path}: cannot read column "${column}": ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

/** The encoded bytes of one image cell: its own bytes, else the file its path names. */
export async function imageBytes(cell: unknown, root: string, where: string): Promise<Uint8Array> {
  if (cell instanceof Uint8Array) return cell;
  if (cell === null || typeof cell !== 'object')
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `${where}: the image cell is ${cell === null ? 'null' : typeof cell}, not {bytes, path}`,
    );
  const { bytes, path } = cell as { bytes?: unknown; path?: unknown };
  if (bytes instanceof Uint8Array && bytes.length > 0) return bytes;
  const name = path instanceof Uint8Array ? new TextDecoder().decode(path) : path;
  if (typeof name !== 'string' || name === '')
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${where}: the image cell has neither bytes nor a path`);
  const file = isAbsolute(name) ? name : join(root, name);
  try {
    return await readFile(file);
  } catch {
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `${where}: the image cell has no bytes and its file is missing: ${file}`);
  }
}

/** Decode PNG/JPEG bytes to RGB uint8, at their size or at width x height by `resize` (default stretch). */
export async function decodeImage(
  bytes: Uint8Array,
  target: { width?: number; height?: number; resize?: FitMode },
  where: string,
): Promise<RawImage> {
  try {
    let pipeline = sharp(bytes, { failOn: 'error' }).removeAlpha().toColourspace('srgb');
    if (target.width !== undefined || target.height !== undefined) {
      // The header is parsed a second time only when one side must come from the image itself.
      const meta = target.width === undefined || target.height === undefined ? await sharp(bytes).metadata() : undefined;
      const width = target.width ?? meta!.width;
      const height = target.height ?? meta!.height;
      if (meta === undefined || width !== meta.width || height !== meta.height)
        pipeline = pipeline.resize(width, height, {
          fit: SHARP_FIT[target.resize ?? 'stretch'],
          position: 'centre',
          background: { r: 0, g: 0, b: 0 },
        });
    }
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3)
      throw new Error(`decoded to ${info.channels} channels, ${data.length} bytes for ${info.width}x${info.height}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels: 3 };
  } catch (err) {
    throw new StagewardError('SW_ERR_IMAGE_DECODE', `${where}: not a readable PNG or JPEG (${(err as Error).message.split('\n')[0]})`, {
      cause: err,
    });
  }
}

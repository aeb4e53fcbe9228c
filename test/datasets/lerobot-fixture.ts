// Small LeRobot datasets laid out as LeRobot itself writes them, made by the tests in a temp dir:
// v2.1 (per-episode data parquet and mp4 under chunk-{episode_chunk:03d}, meta/*.jsonl) and v3.0
// (one data parquet, concatenated mp4s, the episodes parquet), with camera features stored as
// videos (H.264, datasets/ffmpeg.ts) or as images in the data parquet (the Hugging Face Image struct
// {bytes, path} with PNG or JPEG bytes). Frames are flat colour blocks that name (episode, view,
// frame), so a misplaced frame shows as a large error.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { expect } from 'vitest';
import type { SchemaElement } from 'hyparquet-writer';
import { H264Encoder } from '../../datasets/ffmpeg.ts';
import { DATA_PATH, EPISODES_PATH, formatTemplate, listColumn, scalarColumn, schemaOf, VIDEO_PATH } from '../../datasets/format.ts';
import { writeParquetTable } from '../../datasets/parquet-file.ts';
import { FIXTURE_MODEL_DIR, runCli } from '../helpers.ts';

export const FIXTURE_SIZE = 16;

export interface FixtureCamera {
  view: string;
  storage: 'video' | 'image';
  /** Image features: the cell format (default png). */
  format?: 'png' | 'jpeg';
}

/** An extra per-episode column (annotations): its parquet leaf type and one value per episode (null: absent). */
export interface ExtraColumn {
  leaf: 'STRING' | 'INT64' | 'DOUBLE';
  values: ((string | number)[] | null)[];
}

export interface FixtureOptions {
  version: 'v2.1' | 'v3.0';
  fps?: number;
  lengths: number[];
  tasks: string[];
  /** Task index per episode (default 0). */
  taskOf?: number[];
  cameras: FixtureCamera[];
  /** v2.1: episodes per chunk folder (default 1000). */
  chunksSize?: number;
  extras?: Record<string, ExtraColumn>;
}

/** The RGB pixels of frame t of view v in episode e (S x S): flat colour blocks, so a misaligned frame shows as a big error. */
export function fixturePixels(e: number, v: number, t: number, S = FIXTURE_SIZE): Uint8Array {
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const p = (y * S + x) * 3;
      const q = (x < S / 2 ? 0 : 1) + (y < S / 2 ? 0 : 2);
      out[p] = 30 + ((t * 23 + e * 61 + q * 37) % 190);
      out[p + 1] = 30 + ((v * 90 + q * 50 + t * 7) % 190);
      out[p + 2] = 30 + ((e * 45 + q * 70 + 150 - t * 11 + 1900) % 190);
    }
  }
  return out;
}

const key = (view: string) => `observation.images.${view}`;

function features(o: FixtureOptions, fps: number): Record<string, unknown> {
  const S = FIXTURE_SIZE;
  const f: Record<string, unknown> = {
    action: { dtype: 'float32', shape: [2], names: ['dx', 'dy'] },
    'observation.state': { dtype: 'float32', shape: [2], names: ['x', 'y'] },
  };
  for (const c of o.cameras) {
    f[key(c.view)] =
      c.storage === 'video'
        ? {
            dtype: 'video',
            shape: [S, S, 3],
            names: ['height', 'width', 'channels'],
            info: {
              'video.fps': fps,
              'video.height': S,
              'video.width': S,
              'video.channels': 3,
              'video.codec': 'h264',
              'video.pix_fmt': 'yuv420p',
              'video.is_depth_map': false,
              has_audio: false,
            },
          }
        : { dtype: 'image', shape: [S, S, 3], names: ['height', 'width', 'channels'] };
  }
  const scalar = (dtype: string) => ({ dtype, shape: [1], names: null });
  Object.assign(f, {
    timestamp: scalar('float32'),
    frame_index: scalar('int64'),
    episode_index: scalar('int64'),
    index: scalar('int64'),
    task_index: scalar('int64'),
  });
  return f;
}

async function imageCell(e: number, v: number, t: number, format: 'png' | 'jpeg'): Promise<{ bytes: Uint8Array; path: string }> {
  const S = FIXTURE_SIZE;
  const img = sharp(fixturePixels(e, v, t), { raw: { width: S, height: S, channels: 3 } });
  const bytes = format === 'png' ? await img.png().toBuffer() : await img.jpeg({ quality: 95 }).toBuffer();
  return { bytes: new Uint8Array(bytes), path: `frame_${String(t).padStart(6, '0')}.${format === 'png' ? 'png' : 'jpg'}` };
}

/** The Hugging Face Image struct column as pyarrow writes it: struct<bytes: binary, path: string>. */
/** The Hugging Face Image struct {bytes, path} LeRobot stores image features as. */
export function imageColumn(name: string): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', num_children: 2 },
    { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
    { name: 'path', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  ];
}

/** Data rows of the given episodes (global index from `from`), as parquet columns in LeRobot's order. */
async function writeDataFile(path: string, o: FixtureOptions, fps: number, episodes: number[], from: number): Promise<void> {
  const rows: { e: number; t: number }[] = episodes.flatMap((e) => Array.from({ length: o.lengths[e]! }, (_, t) => ({ e, t })));
  const images = o.cameras.map((c, v) => ({ c, v })).filter(({ c }) => c.storage === 'image');
  const schema: SchemaElement[][] = [listColumn('action', 'FLOAT'), listColumn('observation.state', 'FLOAT')];
  const data: { name: string; data: unknown }[] = [
    { name: 'action', data: rows.map(({ e, t }) => [t * 0.5, -e]) },
    { name: 'observation.state', data: rows.map(({ e, t }) => [t, e]) },
  ];
  for (const { c, v } of images) {
    schema.push(imageColumn(key(c.view)));
    data.push({ name: key(c.view), data: await Promise.all(rows.map(({ e, t }) => imageCell(e, v, t, c.format ?? 'png'))) });
  }
  schema.push(
    scalarColumn('timestamp', 'FLOAT'),
    ...['frame_index', 'episode_index', 'index', 'task_index'].map((n) => scalarColumn(n, 'INT64')),
  );
  data.push(
    { name: 'timestamp', data: Float32Array.from(rows, ({ t }) => t / fps) },
    { name: 'frame_index', data: BigInt64Array.from(rows, ({ t }) => BigInt(t)) },
    { name: 'episode_index', data: BigInt64Array.from(rows, ({ e }) => BigInt(e)) },
    { name: 'index', data: BigInt64Array.from(rows, (_, i) => BigInt(from + i)) },
    { name: 'task_index', data: BigInt64Array.from(rows, ({ e }) => BigInt(o.taskOf?.[e] ?? 0)) },
  );
  await mkdir(dirname(path), { recursive: true });
  await writeParquetTable(path, schemaOf(schema), data as Parameters<typeof writeParquetTable>[2]);
}

async function writeVideo(path: string, fps: number, frames: { e: number; v: number; t: number }[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const enc = await H264Encoder.open(path, { width: FIXTURE_SIZE, height: FIXTURE_SIZE, fps, crf: 10 });
  for (const { e, v, t } of frames) await enc.write(fixturePixels(e, v, t));
  await enc.close();
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(value, null, 4));
}

async function writeJsonLines(path: string, rows: unknown[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** Per-episode stats rows as LeRobot v2.1's episodes_stats.jsonl has them (count as [n]). */
function episodeStats(o: FixtureOptions, e: number): Record<string, unknown> {
  const T = o.lengths[e]!;
  const ts = Array.from({ length: T }, (_, t) => t);
  const mean = ts.reduce((a, b) => a + b, 0) / T;
  const std = Math.sqrt(ts.reduce((a, t) => a + (t - mean) ** 2, 0) / T);
  return {
    'observation.state': { min: [0, e], max: [T - 1, e], mean: [mean, e], std: [std, 0], count: [T] },
  };
}

/** Write a dataset at `root` in the layout of `o.version`. */
export async function writeLeRobotFixture(root: string, o: FixtureOptions): Promise<void> {
  const fps = o.fps ?? 10;
  const E = o.lengths.length;
  const total = o.lengths.reduce((a, b) => a + b, 0);
  const videos = o.cameras.map((c, v) => ({ c, v })).filter(({ c }) => c.storage === 'video');
  const starts = o.lengths.map((_, e) => o.lengths.slice(0, e).reduce((a, b) => a + b, 0));
  if (o.version === 'v2.1') {
    const chunksSize = o.chunksSize ?? 1000;
    const dataPath = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet';
    const videoPath = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4';
    await writeJson(join(root, 'meta/info.json'), {
      codebase_version: 'v2.1',
      robot_type: 'so100',
      total_episodes: E,
      total_frames: total,
      total_tasks: o.tasks.length,
      total_videos: E * videos.length,
      total_chunks: Math.ceil(E / chunksSize),
      chunks_size: chunksSize,
      fps,
      splits: { train: `0:${E}` },
      data_path: dataPath,
      video_path: videos.length > 0 ? videoPath : null,
      features: features(o, fps),
    });
    await writeJsonLines(
      join(root, 'meta/tasks.jsonl'),
      o.tasks.map((task, task_index) => ({ task_index, task })),
    );
    await writeJsonLines(
      join(root, 'meta/episodes.jsonl'),
      o.lengths.map((length, e) => {
        const row: Record<string, unknown> = { episode_index: e, tasks: [o.tasks[o.taskOf?.[e] ?? 0]], length };
        for (const [name, col] of Object.entries(o.extras ?? {})) if (col.values[e] !== null) row[name] = col.values[e];
        return row;
      }),
    );
    await writeJsonLines(
      join(root, 'meta/episodes_stats.jsonl'),
      o.lengths.map((_, e) => ({ episode_index: e, stats: episodeStats(o, e) })),
    );
    for (let e = 0; e < E; e++) {
      const chunk = Math.floor(e / chunksSize);
      await writeDataFile(join(root, formatTemplate(dataPath, { episode_chunk: chunk, episode_index: e })), o, fps, [e], starts[e]!);
      for (const { c, v } of videos) {
        const path = join(root, formatTemplate(videoPath, { episode_chunk: chunk, video_key: key(c.view), episode_index: e }));
        await writeVideo(
          path,
          fps,
          Array.from({ length: o.lengths[e]! }, (_, t) => ({ e, v, t })),
        );
      }
    }
    return;
  }
  // v3.0: one data file, one concatenated video per view, one episodes file
  await writeJson(join(root, 'meta/info.json'), {
    codebase_version: 'v3.0',
    robot_type: 'so100',
    total_episodes: E,
    total_frames: total,
    total_tasks: o.tasks.length,
    chunks_size: 1000,
    data_files_size_in_mb: 100,
    video_files_size_in_mb: 200,
    fps,
    splits: { train: `0:${E}` },
    data_path: DATA_PATH,
    video_path: videos.length > 0 ? VIDEO_PATH : null,
    features: features(o, fps),
  });
  await writeParquetTable(
    join(root, 'meta/tasks.parquet'),
    schemaOf([scalarColumn('task_index', 'INT64'), scalarColumn('task', 'STRING')]),
    [
      { name: 'task_index', data: BigInt64Array.from(o.tasks, (_, i) => BigInt(i)) },
      { name: 'task', data: o.tasks },
    ],
  );
  const all = o.lengths.map((_, e) => e);
  await writeDataFile(join(root, formatTemplate(DATA_PATH, { chunk_index: 0, file_index: 0 })), o, fps, all, 0);
  for (const { c, v } of videos) {
    await writeVideo(
      join(root, formatTemplate(VIDEO_PATH, { video_key: key(c.view), chunk_index: 0, file_index: 0 })),
      fps,
      all.flatMap((e) => Array.from({ length: o.lengths[e]! }, (_, t) => ({ e, v, t }))),
    );
  }
  const ints = (name: string, values: number[]) => ({ schema: scalarColumn(name, 'INT64'), data: BigInt64Array.from(values, BigInt) });
  const doubles = (name: string, values: number[]) => ({ schema: scalarColumn(name, 'DOUBLE'), data: Float64Array.from(values) });
  const cols: { name: string; schema: SchemaElement[]; data: unknown }[] = [
    { name: 'episode_index', ...ints('episode_index', all) },
    { name: 'tasks', schema: listColumn('tasks', 'STRING'), data: all.map((e) => [o.tasks[o.taskOf?.[e] ?? 0]!]) },
    { name: 'length', ...ints('length', o.lengths) },
    {
      name: 'data/chunk_index',
      ...ints(
        'data/chunk_index',
        all.map(() => 0),
      ),
    },
    {
      name: 'data/file_index',
      ...ints(
        'data/file_index',
        all.map(() => 0),
      ),
    },
    { name: 'dataset_from_index', ...ints('dataset_from_index', starts) },
    {
      name: 'dataset_to_index',
      ...ints(
        'dataset_to_index',
        starts.map((s, e) => s + o.lengths[e]!),
      ),
    },
  ];
  for (const { c } of videos) {
    const k = `videos/${key(c.view)}`;
    cols.push(
      {
        name: `${k}/chunk_index`,
        ...ints(
          `${k}/chunk_index`,
          all.map(() => 0),
        ),
      },
      {
        name: `${k}/file_index`,
        ...ints(
          `${k}/file_index`,
          all.map(() => 0),
        ),
      },
      {
        name: `${k}/from_timestamp`,
        ...doubles(
          `${k}/from_timestamp`,
          starts.map((s) => s / fps),
        ),
      },
      {
        name: `${k}/to_timestamp`,
        ...doubles(
          `${k}/to_timestamp`,
          starts.map((s, e) => (s + o.lengths[e]!) / fps),
        ),
      },
    );
  }
  cols.push(
    {
      name: 'meta/episodes/chunk_index',
      ...ints(
        'meta/episodes/chunk_index',
        all.map(() => 0),
      ),
    },
    {
      name: 'meta/episodes/file_index',
      ...ints(
        'meta/episodes/file_index',
        all.map(() => 0),
      ),
    },
  );
  for (const [name, col] of Object.entries(o.extras ?? {})) {
    cols.push({
      name,
      schema: listColumn(name, col.leaf),
      data: col.values.map((v) => (v === null ? null : col.leaf === 'INT64' ? v.map((x) => BigInt(x)) : v)),
    });
  }
  await writeParquetTable(
    join(root, formatTemplate(EPISODES_PATH, { chunk_index: 0, file_index: 0 })),
    schemaOf(cols.map((c) => c.schema)),
    cols.map((c) => ({ name: c.name, data: c.data })) as Parameters<typeof writeParquetTable>[2],
  );
}

/** `stageward score` of a fixture dataset as pick_place with the tiny model; exits 0, returns summary.json. */
export async function scoreFixture(root: string, out: string): Promise<Record<string, any>> {
  const run = await runCli([
    'score',
    '--model',
    FIXTURE_MODEL_DIR,
    '--dataset',
    root,
    '--out',
    out,
    '--task',
    'pick_place',
    '--inference-thread',
    'main',
    '--no-progress',
    '--no-plots',
  ]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, any>;
}

/** `stageward eval` of a fixture dataset as pick_place with the tiny model; exits 0, returns metrics.json as text. */
export async function evalFixture(root: string, out: string): Promise<string> {
  const run = await runCli([
    'eval',
    '--model',
    FIXTURE_MODEL_DIR,
    '--dataset',
    root,
    '--task',
    'pick_place',
    '--out',
    out,
    '--no-plots',
    '--no-progress',
  ]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.stringify(JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')));
}

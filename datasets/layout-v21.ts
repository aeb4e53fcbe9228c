// The LeRobot v2.1 layout, read-only: one data parquet and one mp4 per view for every episode, and
// JSON-lines metadata. What LeRobot writes (and its v2.1 -> v3.0 converter reads):
//
//   meta/info.json                  codebase_version "v2.1", total_chunks, chunks_size, data_path, video_path, ...
//   meta/episodes.jsonl             {"episode_index": 0, "tasks": ["..."], "length": 123} per line
//   meta/tasks.jsonl                {"task_index": 0, "task": "..."} per line
//   meta/episodes_stats.jsonl       {"episode_index": 0, "stats": {feature: {min, max, mean, std, count}}} per line
//   data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet
//   videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4
//
// with episode_chunk = episode_index // chunks_size. Global frame indices follow episode order, as
// the converter's dataset_from_index does. Episode rows may carry the same SARM annotation keys as
// v3.0's episodes table. reader.ts turns what this file returns into the one LeRobotDataset API.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StagewardError } from '../core/errors.ts';
import { episodeExtras, episodeInfo, type EpisodeInfo, type VideoSlice } from './episode-info.ts';
import { formatTemplate, IMAGE_KEY_PREFIX, INFO_PATH, type LeRobotInfo } from './format.ts';
import { aggregateStats, type FeatureStats, type StatValue } from './stats.ts';

export const V21_CODEBASE_VERSION = 'v2.1';
export const V21_EPISODES_PATH = 'meta/episodes.jsonl';
export const V21_TASKS_PATH = 'meta/tasks.jsonl';
export const V21_EPISODES_STATS_PATH = 'meta/episodes_stats.jsonl';
export const V21_DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet';
export const V21_VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4';
/** LeRobot's DEFAULT_CHUNK_SIZE: episodes per chunk folder when info.json does not say. */
export const V21_DEFAULT_CHUNKS_SIZE = 1000;

/** info.json fields v2.1 has and v3.0 dropped. */
export interface V21InfoFields {
  total_chunks?: number;
  total_videos?: number;
  chunks_size?: number;
}

/** Every line of a JSON-lines file as an object; `required`: a missing file is SW_ERR_DATASET_NOT_FOUND, else []. */
export async function readJsonLines(path: string, required: boolean): Promise<Record<string, unknown>[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    if (!required) return [];
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `not a LeRobot v2.1 dataset: ${path} is missing`);
  }
  const out: Record<string, unknown>[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} line ${i + 1} is not valid JSON`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} line ${i + 1} is not a JSON object`);
    out.push(v as Record<string, unknown>);
  });
  return out;
}

/** Task strings by task_index, from meta/tasks.jsonl. */
export async function readTasksV21(root: string): Promise<string[]> {
  const path = join(root, V21_TASKS_PATH);
  const tasks: string[] = [];
  (await readJsonLines(path, true)).forEach((r, i) => {
    if (!Number.isInteger(r.task_index) || typeof r.task !== 'string')
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} line ${i + 1} needs an integer "task_index" and a string "task"`);
    tasks[r.task_index as number] = r.task;
  });
  return tasks;
}

/** Episodes per chunk folder: info.json's chunks_size, a positive integer (LeRobot's default when absent). */
export function chunksSizeOf(info: LeRobotInfo & V21InfoFields): number {
  const size = info.chunks_size ?? V21_DEFAULT_CHUNKS_SIZE;
  if (!Number.isInteger(size) || size < 1)
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${INFO_PATH}: chunks_size must be a positive integer, got ${JSON.stringify(size)}`);
  return size;
}

/** The episodes of meta/episodes.jsonl in index order, with their files and global frame ranges. */
export async function readEpisodesV21(root: string, info: LeRobotInfo & V21InfoFields, tasks: string[]): Promise<EpisodeInfo[]> {
  const path = join(root, V21_EPISODES_PATH);
  const rows = await readJsonLines(path, true);
  if (rows.length === 0) throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `no episodes in ${path}`);
  rows.forEach((r, i) => {
    if (!Number.isInteger(r.episode_index) || (r.episode_index as number) < 0 || !Number.isInteger(r.length) || (r.length as number) < 1)
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `${path} line ${i + 1} needs a non-negative integer "episode_index" and a positive integer "length"`,
      );
  });
  rows.sort((a, b) => (a.episode_index as number) - (b.episode_index as number));
  const chunksSize = chunksSizeOf(info);
  const videoKeys = Object.entries(info.features)
    .filter(([, f]) => f.dtype === 'video')
    .map(([k]) => k);
  if (videoKeys.length > 0 && !info.video_path)
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${INFO_PATH} has video features but no video_path`);
  const out: EpisodeInfo[] = [];
  let from = 0;
  for (const r of rows) {
    const index = r.episode_index as number;
    const length = r.length as number;
    if (out.at(-1)?.index === index) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} lists episode ${index} twice`);
    const chunk = Math.floor(index / chunksSize);
    const videos: Record<string, VideoSlice> = {};
    for (const key of videoKeys) {
      const view = key.startsWith(IMAGE_KEY_PREFIX) ? key.slice(IMAGE_KEY_PREFIX.length) : key;
      videos[view] = {
        path: join(root, formatTemplate(info.video_path!, { video_key: key, episode_chunk: chunk, episode_index: index })),
        chunkIndex: chunk,
        fileIndex: index,
        fromSeconds: 0,
        toSeconds: length / info.fps,
      };
    }
    out.push(
      episodeInfo({
        index,
        length,
        tasks: Array.isArray(r.tasks) ? r.tasks.map(String) : typeof r.tasks === 'string' ? [r.tasks] : tasks.slice(0, 1),
        datasetFrom: from,
        datasetTo: from + length,
        dataPath: join(root, formatTemplate(info.data_path, { episode_chunk: chunk, episode_index: index })),
        videos,
        ...episodeExtras(r, { index, length, fps: info.fps }),
      }),
    );
    from += length;
  }
  return out;
}

/**
 * meta/episodes_stats.jsonl aggregated over every episode as LeRobot's aggregate_stats does: min of
 * mins, max of maxes, count-weighted mean, pooled population std, summed count; null when the file
 * is absent. Features some episode lacks are aggregated over the episodes that have them.
 */
export async function readStatsV21(root: string): Promise<Record<string, unknown> | null> {
  const path = join(root, V21_EPISODES_STATS_PATH);
  const rows = await readJsonLines(path, false);
  if (rows.length === 0) return null;
  const perFeature = new Map<string, FeatureStats[]>();
  rows.forEach((r, i) => {
    const stats = r.stats;
    if (stats === null || typeof stats !== 'object' || Array.isArray(stats))
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} line ${i + 1} has no "stats" object`);
    for (const [feature, s] of Object.entries(stats as Record<string, unknown>)) {
      const f = s as Record<string, unknown> | null;
      if (!f || [f.min, f.max, f.mean, f.std, f.count].some((v) => v === undefined)) continue;
      const count = firstNumber(f.count);
      if (!(count > 0)) continue;
      const list = (v: unknown) => (Array.isArray(v) ? v : [v]) as StatValue;
      const entry = { min: list(f.min), max: list(f.max), mean: list(f.mean), std: list(f.std), count: [count] } as FeatureStats;
      perFeature.set(feature, [...(perFeature.get(feature) ?? []), entry]);
    }
  });
  return Object.fromEntries([...perFeature].map(([feature, list]) => [feature, aggregateStats(list)]));
}

function firstNumber(v: unknown): number {
  return Array.isArray(v) ? firstNumber(v[0]) : Number(v);
}

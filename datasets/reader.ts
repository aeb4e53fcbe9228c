// LeRobot dataset reader, v3.0 and v2.1 behind one API: meta/info.json, tasks, the episodes (with
// SARM subtask annotations when present, annotations.ts), an episode's rows of the data parquet,
// and an episode's frames per camera view: video views decoded from the episode's time range of
// its mp4 (any codec ffmpeg reads, AV1 included), image views decoded from the PNG/JPEG cells of
// the data parquet (image-frames.ts); optionally resized. The v2.1 specifics are in layout-v21.ts.
// Works on datasets stageward did not write: its extra columns (annotation.*, success,
// stageward/meta, temporal_proportions_sparse.json) are optional.
//
//   const ds = await LeRobotDataset.open('data/pick');
//   for await (const frame of ds.frames(0, 'front', { width: 96, height: 96 })) { ... }

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RawImage } from '../core/image.ts';
import { decodeVideo, probeVideo, type FitMode, type VideoInfo } from './ffmpeg.ts';
import { StagewardError } from '../core/errors.ts';
import {
  CODEBASE_VERSION,
  formatTemplate,
  INFO_PATH,
  PRIORS_PATH,
  STATS_PATH,
  TASKS_PATH,
  TRUE_PROGRESS_KEY,
  TRUE_STAGE_KEY,
  viewOfKey,
  type LeRobotInfo,
} from './format.ts';
import { readParquetRows } from './parquet-file.ts';
import { episodeExtras, episodeInfo, subtasksOrNull, type EpisodeInfo, type VideoSlice } from './episode-info.ts';
import { decodeImage, IMAGE_ROWS_PER_READ, ImageColumnFile, imageBytes } from './image-frames.ts';
import { readEpisodesV21, readStatsV21, readTasksV21, V21_CODEBASE_VERSION } from './layout-v21.ts';

export type { EpisodeInfo, VideoSlice } from './episode-info.ts';

/** The LeRobot codebase versions the reader takes; others are SW_ERR_DATASET_FORMAT. */
export const READABLE_VERSIONS: readonly string[] = [CODEBASE_VERSION, V21_CODEBASE_VERSION];

/** How a camera feature's frames are stored: mp4 files, or PNG/JPEG cells of the data parquet. */
export type CameraStorage = 'video' | 'image';

export interface EpisodeData {
  /** Every data column of the episode's rows, as hyparquet decodes them (int64 as bigint). */
  columns: Record<string, unknown[]>;
  timestamp: Float64Array;
  frameIndex: Int32Array;
  taskIndex: Int32Array;
  state: Float32Array[] | null;
  action: Float32Array[] | null;
  reward: Float32Array | null;
  /** stageward's ground truth, absent from other datasets. */
  trueStage: Int32Array | null;
  trueProgress: Float32Array | null;
}

export interface FrameOptions {
  width?: number;
  height?: number;
  resize?: FitMode;
}

export class LeRobotDataset {
  private readonly probes = new Map<string, Promise<VideoInfo>>();

  private constructor(
    readonly root: string,
    readonly info: LeRobotInfo,
    /** Task strings by task_index. */
    readonly tasks: string[],
    readonly episodes: EpisodeInfo[],
    /** Ordered stage names: the keys of temporal_proportions_sparse.json, else the annotations' names in order of appearance. */
    readonly stageNames: string[],
    /** SARM priors in stageNames order from temporal_proportions_sparse.json, or null. */
    readonly priors: number[] | null,
    readonly stats: Record<string, unknown> | null,
  ) {}

  static async open(dir: string): Promise<LeRobotDataset> {
    const root = resolve(dir);
    const info = await readInfo(root);
    const v21 = info.codebase_version === V21_CODEBASE_VERSION;
    const tasks = v21 ? await readTasksV21(root) : await readTasks(root);
    const episodes = v21 ? await readEpisodesV21(root, info, tasks) : await readEpisodes(root, info, tasks);
    const priorsDoc = await readJsonIfPresent(join(root, PRIORS_PATH));
    let stageNames: string[];
    let priors: number[] | null = null;
    if (priorsDoc !== null && typeof priorsDoc === 'object' && !Array.isArray(priorsDoc)) {
      stageNames = Object.keys(priorsDoc);
      priors = Object.values(priorsDoc).map(Number);
      if (priors.some((p) => !Number.isFinite(p)))
        throw new StagewardError('SW_ERR_DATASET_FORMAT', `${PRIORS_PATH} must map stage names to numbers`);
    } else {
      stageNames = [...new Set(episodes.flatMap((e) => (subtasksOrNull(e) ?? []).map((s) => s.name)))];
    }
    const stats = ((await readJsonIfPresent(join(root, STATS_PATH))) ?? (v21 ? await readStatsV21(root) : null)) as Record<
      string,
      unknown
    > | null;
    return new LeRobotDataset(root, info, tasks, episodes, stageNames, priors, stats);
  }

  get fps(): number {
    return this.info.fps;
  }

  /** Camera views (video and image features), by the name after `observation.images.`, in info.json order. */
  get views(): string[] {
    return cameraKeys(this.info).map(([key]) => viewOfKey(key));
  }

  /** How `view`'s frames are stored. */
  storage(view: string): CameraStorage {
    return this.camera(view)[1];
  }

  episode(index: number): EpisodeInfo {
    const ep = this.episodes.find((e) => e.index === index);
    if (!ep)
      throw new StagewardError(
        'SW_ERR_DATASET_EPISODE',
        `no episode ${index}; the dataset has ${this.episodes.length} (indices ${this.episodes[0]?.index ?? '-'}..${this.episodes.at(-1)?.index ?? '-'})`,
      );
    return ep;
  }

  /** The episode's rows of its data parquet file (image features' cells left out: frames() serves them). */
  async episodeData(index: number): Promise<EpisodeData> {
    const ep = this.episode(index);
    const offset = this.rowOffset(ep);
    const cameras = cameraKeys(this.info);
    const only = cameras.some(([, storage]) => storage === 'image')
      ? { columns: Object.keys(this.info.features).filter((k) => !cameras.some(([key]) => key === k)) }
      : {};
    let table = await readParquetRows(ep.dataPath, { ...only, rowStart: offset, rowEnd: offset + ep.length });
    let rows = table.rows;
    if (rows.length !== ep.length || rows.some((r) => r.episode_index !== undefined && Number(r.episode_index) !== index)) {
      table = await readParquetRows(ep.dataPath, only); // rows not in dataset_from_index order: filter instead
      rows = table.rows.filter((r) => Number(r.episode_index) === index);
    }
    if (rows.length !== ep.length)
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `episode ${index}: ${rows.length} rows in ${ep.dataPath}, expected ${ep.length}`);
    const columns: Record<string, unknown[]> = {};
    for (const name of table.columns) if (!only.columns || only.columns.includes(name)) columns[name] = rows.map((r) => r[name]);
    const num = (name: string) => (columns[name] ? columns[name]!.map((v) => Number(v)) : null);
    const vectors = (name: string) => (columns[name] ? columns[name]!.map((v) => Float32Array.from(v as ArrayLike<number>)) : null);
    const reward = num('next.reward');
    const stage = num(TRUE_STAGE_KEY);
    const progress = num(TRUE_PROGRESS_KEY);
    return {
      columns,
      timestamp: Float64Array.from(num('timestamp') ?? rows.map((_, t) => t / this.fps)),
      frameIndex: Int32Array.from(num('frame_index') ?? rows.map((_, t) => t)),
      taskIndex: Int32Array.from(num('task_index') ?? rows.map(() => 0)),
      state: vectors('observation.state'),
      action: vectors('action'),
      reward: reward && Float32Array.from(reward),
      trueStage: stage && Int32Array.from(stage),
      trueProgress: progress && Float32Array.from(progress),
    };
  }

  /** Metadata of the video file holding `view` for episode `index` (probed once per file); video views only. */
  async videoInfo(index: number, view: string): Promise<VideoInfo> {
    const slice = this.slice(index, view);
    await mustExist(slice.path, `video of view "${view}"`);
    let p = this.probes.get(slice.path);
    if (!p) {
      p = probeVideo(slice.path);
      this.probes.set(slice.path, p);
      p.catch(() => this.probes.delete(slice.path));
    }
    return p;
  }

  /** Stream episode `index`'s frames of `view`, RGB uint8, at the video's size or the one asked for. */
  async *frames(index: number, view: string, options: FrameOptions = {}): AsyncGenerator<RawImage> {
    const ep = this.episode(index);
    const [key, storage] = this.camera(view, index);
    if (storage === 'image') {
      yield* this.imageFrames(ep, view, key, options);
      return;
    }
    const slice = this.slice(index, view);
    let { width, height } = options;
    if (width === undefined || height === undefined) {
      const native = await this.videoInfo(index, view);
      width ??= native.width;
      height ??= native.height;
    } else {
      await mustExist(slice.path, `video of view "${view}"`);
    }
    let count = 0;
    const frames = decodeVideo(slice.path, {
      width,
      height,
      resize: options.resize,
      fromSeconds: slice.fromSeconds,
      toSeconds: slice.fromSeconds + ep.length / this.fps,
      fps: this.fps,
    });
    for await (const frame of frames) {
      count++;
      yield frame;
    }
    if (count !== ep.length) {
      throw new StagewardError(
        'SW_ERR_DATASET_FORMAT',
        `episode ${index} view "${view}": decoded ${count} frames from ${slice.path} at [${slice.fromSeconds}, ${slice.toSeconds}) s, expected ${ep.length}`,
      );
    }
  }

  /** Stream episode `index`'s frames of several views together, one {view: frame} per time step. */
  async *frameSets(index: number, options: FrameOptions & { views?: string[] } = {}): AsyncGenerator<Record<string, RawImage>> {
    const views = options.views ?? this.views;
    for (const v of views) if (this.camera(v, index)[1] === 'video') this.slice(index, v); // fail before starting any decoder
    const its = views.map((v) => this.frames(index, v, options)[Symbol.asyncIterator]());
    try {
      for (;;) {
        const next = await Promise.all(its.map((it) => it.next()));
        const ended = next.filter((n) => n.done).length;
        if (ended === next.length) return;
        if (ended > 0) throw new StagewardError('SW_ERR_DATASET_FORMAT', `episode ${index}: views ended at different frames`);
        yield Object.fromEntries(views.map((v, i) => [v, next[i]!.value as RawImage]));
      }
    } finally {
      await Promise.all(its.map((it) => it.return?.(undefined)));
    }
  }

  /** Rows of the data parquet file before the episode's first row (episodes of one file lie in index order). */
  private rowOffset(ep: EpisodeInfo): number {
    const fileStart = Math.min(...this.episodes.filter((e) => e.dataPath === ep.dataPath).map((e) => e.datasetFrom));
    return ep.datasetFrom - fileStart;
  }

  /** Episode `ep`'s frames of an image feature: its data rows' PNG/JPEG cells, a block of rows at a time. */
  private async *imageFrames(ep: EpisodeInfo, view: string, key: string, options: FrameOptions): AsyncGenerator<RawImage> {
    const file = await ImageColumnFile.open(ep.dataPath);
    const offset = this.rowOffset(ep);
    const mine = (rows: Record<string, unknown>[]) =>
      rows.every((r) => r.episode_index === undefined || Number(r.episode_index) === ep.index);
    let t = 0;
    let fallback: Record<string, unknown>[] | null = null;
    while (t < ep.length) {
      const end = Math.min(ep.length, t + IMAGE_ROWS_PER_READ);
      let rows: Record<string, unknown>[];
      if (fallback) rows = fallback.slice(t, end);
      else {
        rows = await file.rows(key, { rowStart: offset + t, rowEnd: offset + end });
        if (rows.length !== end - t || !mine(rows)) {
          // rows not in dataset_from_index order: filter the whole file instead
          fallback = (await file.rows(key)).filter((r) => Number(r.episode_index) === ep.index);
          if (fallback.length !== ep.length)
            throw new StagewardError(
              'SW_ERR_DATASET_FORMAT',
              `episode ${ep.index}: ${fallback.length} rows in ${ep.dataPath}, expected ${ep.length}`,
            );
          rows = fallback.slice(t, end);
        }
      }
      const first = t;
      const decoded = await Promise.allSettled(
        rows.map(async (r, i) => {
          const where = `episode ${ep.index} view "${view}" frame ${first + i} (${key} in ${ep.dataPath})`;
          return decodeImage(await imageBytes(r[key], this.root, where), options, where);
        }),
      );
      for (const d of decoded) {
        if (d.status === 'rejected') throw d.reason; // the first bad frame in frame order
        yield d.value;
      }
      t = end;
    }
  }

  /** The info.json key and storage of camera `view`; SW_ERR_DATASET_VIEW when the dataset (or `index`'s episode) lacks it. */
  private camera(view: string, index?: number): [string, CameraStorage] {
    const found = cameraKeys(this.info).find(([key]) => viewOfKey(key) === view);
    if (!found)
      throw new StagewardError(
        'SW_ERR_DATASET_VIEW',
        `no view "${view}"${index === undefined ? '' : ` in episode ${index}`}; the dataset's views are ${this.views.join(', ') || '(none)'}`,
      );
    return found;
  }

  private slice(index: number, view: string): VideoSlice {
    const ep = this.episode(index);
    const slice = ep.videos[view];
    if (!slice) {
      const storage = cameraKeys(this.info).find(([key]) => viewOfKey(key) === view)?.[1];
      throw new StagewardError(
        'SW_ERR_DATASET_VIEW',
        storage === 'image'
          ? `view "${view}" is stored as images in the data parquet, not as a video`
          : `no view "${view}" in episode ${index}; the dataset's views are ${this.views.join(', ') || '(none)'}`,
      );
    }
    return slice;
  }
}

/** Camera features (dtype video or image) as [info.json key, storage], in info.json order. */
function cameraKeys(info: LeRobotInfo): [string, CameraStorage][] {
  return Object.entries(info.features)
    .filter(([, f]) => f.dtype === 'video' || f.dtype === 'image')
    .map(([key, f]) => [key, f.dtype as CameraStorage]);
}

async function mustExist(path: string, what: string): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `${what} is missing: ${path}`);
  }
}

async function readJsonIfPresent(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} is not valid JSON`);
  }
}

async function readInfo(root: string): Promise<LeRobotInfo> {
  const path = join(root, INFO_PATH);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `not a LeRobot dataset: ${path} is missing`);
  }
  let info: LeRobotInfo;
  try {
    info = JSON.parse(text) as LeRobotInfo;
  } catch {
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} is not valid JSON`);
  }
  if (!READABLE_VERSIONS.includes(info.codebase_version)) {
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `${path}: codebase_version is ${JSON.stringify(info.codebase_version)}; stageward reads ${READABLE_VERSIONS.join(' and ')} (convert older datasets with LeRobot's convert_dataset_v20_to_v21, then convert_dataset_v21_to_v30)`,
    );
  }
  for (const field of ['fps', 'features', 'data_path'] as const) {
    if (info[field] === undefined || info[field] === null) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} lacks "${field}"`);
  }
  if (!(info.fps > 0)) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path}: fps must be positive, got ${info.fps}`);
  return info;
}

async function readTasks(root: string): Promise<string[]> {
  const { rows, columns } = await readParquetRows(join(root, TASKS_PATH));
  const textColumn =
    ['task', '__index_level_0__'].find((c) => columns.includes(c)) ?? columns.find((c) => typeof rows[0]?.[c] === 'string');
  if (textColumn === undefined || !columns.includes('task_index'))
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `${TASKS_PATH} needs a task string column and task_index (has ${columns.join(', ')})`,
    );
  const tasks: string[] = [];
  for (const r of rows) tasks[Number(r.task_index)] = String(r[textColumn]);
  return tasks;
}

async function listEpisodeFiles(root: string): Promise<string[]> {
  const base = join(root, 'meta', 'episodes');
  let chunks: string[];
  try {
    chunks = (await readdir(base)).filter((d) => /^chunk-\d+$/.test(d)).sort();
  } catch {
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `not a LeRobot v3.0 dataset: ${base} is missing`);
  }
  const files: string[] = [];
  for (const chunk of chunks) {
    for (const f of (await readdir(join(base, chunk))).filter((n) => /^file-\d+\.parquet$/.test(n)).sort())
      files.push(join(base, chunk, f));
  }
  if (files.length === 0) throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `no episode files under ${base}`);
  return files;
}

async function readEpisodes(root: string, info: LeRobotInfo, tasks: string[]): Promise<EpisodeInfo[]> {
  const videoKeys = Object.entries(info.features)
    .filter(([, f]) => f.dtype === 'video')
    .map(([k]) => k);
  const out: EpisodeInfo[] = [];
  for (const file of await listEpisodeFiles(root)) {
    // The per-episode `stats/...` columns (list columns, nested for cameras) are LeRobot's business: not decoded.
    const { rows, columns } = await readParquetRows(file, { exclude: (c) => c.startsWith('stats/') });
    for (const col of ['episode_index', 'length', 'dataset_from_index', 'dataset_to_index']) {
      if (!columns.includes(col)) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${file} lacks the column "${col}"`);
    }
    for (const r of rows) {
      const index = Number(r.episode_index);
      const num = (c: string, fallback = 0) => (r[c] === undefined || r[c] === null ? fallback : Number(r[c]));
      const videos: Record<string, VideoSlice> = {};
      for (const key of videoKeys) {
        const chunkIndex = num(`videos/${key}/chunk_index`);
        const fileIndex = num(`videos/${key}/file_index`);
        const template = info.video_path;
        if (!template) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${INFO_PATH} has video features but no video_path`);
        videos[viewOfKey(key)] = {
          path: join(
            root,
            formatTemplate(template, {
              video_key: key,
              chunk_index: chunkIndex,
              file_index: fileIndex,
              episode_chunk: chunkIndex,
              episode_index: index,
            }),
          ),
          chunkIndex,
          fileIndex,
          fromSeconds: num(`videos/${key}/from_timestamp`),
          toSeconds: num(`videos/${key}/to_timestamp`, num('length') / info.fps),
        };
      }
      const dataChunk = num('data/chunk_index');
      const dataFile = num('data/file_index');
      const length = num('length');
      out.push(
        episodeInfo({
          index,
          length,
          tasks: Array.isArray(r.tasks) ? (r.tasks as unknown[]).map(String) : typeof r.tasks === 'string' ? [r.tasks] : tasks.slice(0, 1),
          datasetFrom: num('dataset_from_index'),
          datasetTo: num('dataset_to_index'),
          dataPath: join(root, formatTemplate(info.data_path, { chunk_index: dataChunk, file_index: dataFile })),
          videos,
          ...episodeExtras(r, { index, length, fps: info.fps }),
        }),
      );
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

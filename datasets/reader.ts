// LeRobot v3.0 dataset reader: meta/info.json, tasks, the episodes table (with SARM subtask
// annotations when present), an episode's rows of the data parquet, and an episode's frames per
// view, decoded from its time range of the concatenated mp4 (any codec ffmpeg reads, AV1 included)
// and optionally resized. Works on datasets stageward did not write: its extra columns
// (annotation.*, success, stageward/meta, temporal_proportions_sparse.json) are optional.
//
//   const ds = await LeRobotDataset.open('data/pick');
//   for await (const frame of ds.frames(0, 'front', { width: 96, height: 96 })) { ... }

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RawImage } from '../core/image.ts';
import { decodeVideo, probeVideo, type FitMode, type VideoInfo } from './ffmpeg.ts';
import type { SubtaskSpan } from './types.ts';
import { StagewardError } from '../core/errors.ts';
import {
  CODEBASE_VERSION,
  formatTemplate,
  IMAGE_KEY_PREFIX,
  INFO_PATH,
  LEGACY_SUBTASK_COLUMNS,
  META_COLUMN,
  PRIORS_PATH,
  STATS_PATH,
  SUBTASK_COLUMNS,
  SUCCESS_COLUMN,
  TASKS_PATH,
  TRUE_PROGRESS_KEY,
  TRUE_STAGE_KEY,
  type LeRobotInfo,
} from './format.ts';
import { readParquetRows } from './parquet-file.ts';

export interface VideoSlice {
  /** Absolute path of the (concatenated) mp4. */
  path: string;
  chunkIndex: number;
  fileIndex: number;
  fromSeconds: number;
  toSeconds: number;
}

export interface EpisodeInfo {
  index: number;
  length: number;
  tasks: string[];
  /** Global frame indices [datasetFrom, datasetTo). */
  datasetFrom: number;
  datasetTo: number;
  dataPath: string;
  /** Per view (the name after `observation.images.`). */
  videos: Record<string, VideoSlice>;
  /** Sparse SARM annotations in frames (inclusive), or null when the dataset has none for it. */
  subtasks: SubtaskSpan[] | null;
  success: boolean | null;
  /** stageward's RecordedEpisode.meta, or null. */
  meta: Record<string, unknown> | null;
}

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
    const tasks = await readTasks(root);
    const episodes = await readEpisodes(root, info, tasks);
    const priorsDoc = await readJsonIfPresent(join(root, PRIORS_PATH));
    let stageNames: string[];
    let priors: number[] | null = null;
    if (priorsDoc !== null && typeof priorsDoc === 'object' && !Array.isArray(priorsDoc)) {
      stageNames = Object.keys(priorsDoc);
      priors = Object.values(priorsDoc).map(Number);
      if (priors.some((p) => !Number.isFinite(p)))
        throw new StagewardError('SW_ERR_DATASET_FORMAT', `${PRIORS_PATH} must map stage names to numbers`);
    } else {
      stageNames = [...new Set(episodes.flatMap((e) => (e.subtasks ?? []).map((s) => s.name)))];
    }
    const stats = (await readJsonIfPresent(join(root, STATS_PATH))) as Record<string, unknown> | null;
    return new LeRobotDataset(root, info, tasks, episodes, stageNames, priors, stats);
  }

  get fps(): number {
    return this.info.fps;
  }

  /** Camera views (video features), by the name after `observation.images.`, in info.json order. */
  get views(): string[] {
    return Object.entries(this.info.features)
      .filter(([, f]) => f.dtype === 'video')
      .map(([key]) => viewName(key));
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

  /** The episode's rows of its data parquet file. */
  async episodeData(index: number): Promise<EpisodeData> {
    const ep = this.episode(index);
    const fileStart = Math.min(...this.episodes.filter((e) => e.dataPath === ep.dataPath).map((e) => e.datasetFrom));
    const offset = ep.datasetFrom - fileStart;
    let table = await readParquetRows(ep.dataPath, { rowStart: offset, rowEnd: offset + ep.length });
    let rows = table.rows;
    if (rows.length !== ep.length || rows.some((r) => r.episode_index !== undefined && Number(r.episode_index) !== index)) {
      table = await readParquetRows(ep.dataPath); // rows not in dataset_from_index order: filter instead
      rows = table.rows.filter((r) => Number(r.episode_index) === index);
    }
    if (rows.length !== ep.length)
      throw new StagewardError('SW_ERR_DATASET_FORMAT', `episode ${index}: ${rows.length} rows in ${ep.dataPath}, expected ${ep.length}`);
    const columns: Record<string, unknown[]> = {};
    for (const name of table.columns) columns[name] = rows.map((r) => r[name]);
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

  /** Metadata of the video file holding `view` for episode `index` (probed once per file). */
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
    for (const v of views) this.slice(index, v); // fail before starting any decoder
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

  private slice(index: number, view: string): VideoSlice {
    const ep = this.episode(index);
    const slice = ep.videos[view];
    if (!slice)
      throw new StagewardError(
        'SW_ERR_DATASET_VIEW',
        `no view "${view}" in episode ${index}; the dataset's views are ${this.views.join(', ') || '(none)'}`,
      );
    return slice;
  }
}

function viewName(key: string): string {
  return key.startsWith(IMAGE_KEY_PREFIX) ? key.slice(IMAGE_KEY_PREFIX.length) : key;
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
  if (info.codebase_version !== CODEBASE_VERSION) {
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `${path}: codebase_version is ${JSON.stringify(info.codebase_version)}, only ${CODEBASE_VERSION} is read (convert older datasets with LeRobot's convert_dataset_v21_to_v30)`,
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
    const { rows, columns } = await readParquetRows(file);
    for (const col of ['episode_index', 'length', 'dataset_from_index', 'dataset_to_index']) {
      if (!columns.includes(col)) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${file} lacks the column "${col}"`);
    }
    const names = columns.includes(SUBTASK_COLUMNS.names)
      ? SUBTASK_COLUMNS
      : columns.includes(LEGACY_SUBTASK_COLUMNS.names)
        ? LEGACY_SUBTASK_COLUMNS
        : null;
    for (const r of rows) {
      const index = Number(r.episode_index);
      const num = (c: string, fallback = 0) => (r[c] === undefined || r[c] === null ? fallback : Number(r[c]));
      const videos: Record<string, VideoSlice> = {};
      for (const key of videoKeys) {
        const chunkIndex = num(`videos/${key}/chunk_index`);
        const fileIndex = num(`videos/${key}/file_index`);
        const template = info.video_path;
        if (!template) throw new StagewardError('SW_ERR_DATASET_FORMAT', `${INFO_PATH} has video features but no video_path`);
        videos[viewName(key)] = {
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
      const metaText = r[META_COLUMN];
      out.push({
        index,
        length: num('length'),
        tasks: Array.isArray(r.tasks) ? (r.tasks as unknown[]).map(String) : typeof r.tasks === 'string' ? [r.tasks] : tasks.slice(0, 1),
        datasetFrom: num('dataset_from_index'),
        datasetTo: num('dataset_to_index'),
        dataPath: join(root, formatTemplate(info.data_path, { chunk_index: dataChunk, file_index: dataFile })),
        videos,
        subtasks: names ? subtasksOf(r, names, info.fps, index) : null,
        success: typeof r[SUCCESS_COLUMN] === 'boolean' ? (r[SUCCESS_COLUMN] as boolean) : null,
        meta: typeof metaText === 'string' ? parseMeta(metaText) : null,
      });
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

function subtasksOf(
  row: Record<string, unknown>,
  cols: typeof SUBTASK_COLUMNS | typeof LEGACY_SUBTASK_COLUMNS,
  fps: number,
  index: number,
): SubtaskSpan[] | null {
  const names = row[cols.names];
  if (!Array.isArray(names)) return null;
  const list = (c: string) => (Array.isArray(row[c]) ? (row[c] as unknown[]).map(Number) : null);
  const starts = list(cols.startFrames) ?? list(cols.startTimes)?.map((s) => Math.round(s * fps)) ?? null;
  const ends = list(cols.endFrames) ?? list(cols.endTimes)?.map((s) => Math.round(s * fps)) ?? null;
  if (!starts || !ends || starts.length !== names.length || ends.length !== names.length) {
    throw new StagewardError(
      'SW_ERR_DATASET_FORMAT',
      `episode ${index}: ${cols.names} has ${names.length} entries but the start/end frames or times do not match`,
    );
  }
  return names.map((name, i) => ({ name: String(name), start: starts[i]!, end: ends[i]! }));
}

function parseMeta(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

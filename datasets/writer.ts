// LeRobot v3.0 dataset writer. One episode is in memory at a time: its frames stream into one
// ongoing H.264 encoder per view (v3.0 concatenates episodes in each video file), its rows become
// one row group of data/chunk-000/file-000.parquet, and only small per-episode metadata is kept.
// Everything is written into a hidden sibling folder that finish() renames into place, so an
// interrupted recording never leaves a half dataset at the target. Layout: see format.ts.
//
// Each episode's feature statistics (stats.ts: min, max, mean, std, count, q01..q99) go into its
// `stats/<feature>/<stat>` columns of meta/episodes, and meta/stats.json is their aggregate, as LeRobot
// writes both, so LeRobot's episode tools (delete_episodes, split) recompute stats.json from them.
//
// SARM annotations: RecordedEpisode carries one set of spans, the annotator's stages. They are written
// as the sparse annotations (`sparse_subtask_*`, meta/temporal_proportions_sparse.json) and, unchanged,
// as the dense ones too (`dense_subtask_*`, meta/temporal_proportions_dense.json with the same
// priors), so SARM's `dense_only` and `dual` modes train on stageward datasets; the dense head then
// learns the same stages as the sparse one, not a finer split.
//
//   const w = await LeRobotDatasetWriter.create('out/pick', spec);
//   for (const ep of episodes) await w.addEpisode(ep);
//   await w.finish();            // or w.abort()

import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import { H264Encoder, type X264Preset } from './ffmpeg.ts';
import { DEFAULT_PRIOR_FLOOR, temporalProportions, validateSpans, type AnnotatedEpisode } from './labels.ts';
import type { DatasetSpec, RecordedEpisode, SubtaskSpan } from './types.ts';
import { StagewardError } from '../core/errors.ts';
import {
  buildInfo,
  DATA_PATH,
  EPISODES_PATH,
  formatTemplate,
  INFO_PATH,
  listColumn,
  DENSE_PRIORS_PATH,
  DENSE_SUBTASK_COLUMNS,
  episodeStatsColumn,
  featuresFor,
  META_COLUMN,
  pandasIndexMetadata,
  PRIORS_PATH,
  scalarColumn,
  schemaOf,
  STATS_PATH,
  SUBTASK_COLUMNS,
  SUCCESS_COLUMN,
  TASKS_PATH,
  TRUE_PROGRESS_KEY,
  TRUE_STAGE_KEY,
  VIDEO_PATH,
  videoKey,
  type Feature,
} from './format.ts';
import { IncrementalParquetFile, writeParquetTable } from './parquet-file.ts';
import { checkTarget, commitStaging, makeStaging, removeStaging, writeFileAtomic } from '../core/files.ts';
import {
  aggregateFeatures,
  ImageEpisodeStats,
  sampleIndices,
  STAT_KEYS,
  vectorStats,
  type FeatureStats,
  type StatsPrecision,
} from './stats.ts';

export interface WriterOptions {
  /** Replace an existing non-empty target folder at finish() (default false: refuse). */
  overwrite?: boolean;
  /** x264 quality and speed (see ffmpeg.ts). */
  crf?: number;
  gopFrames?: number;
  preset?: X264Preset;
  /** Smallest stage prior before renormalising (labels.ts temporalProportions). */
  priorFloor?: number;
  /**
   * The stage priors to write, in spec.stageNames order, instead of estimating them from the
   * annotations: a simulator knows the priors its annotation.true_progress is composed with.
   */
  priors?: readonly number[];
}

export interface DatasetSummary {
  root: string;
  episodes: number;
  frames: number;
  tasks: string[];
  /** SARM priors in stage order, as written to meta/temporal_proportions_sparse.json. */
  priors: Record<string, number>;
}

type WriterState = 'open' | 'busy' | 'finished' | 'aborted' | 'failed';

interface EpisodeRow {
  index: number;
  task: string;
  length: number;
  from: number;
  videoFrom: number;
  subtasks: RecordedEpisode['subtasks'];
  success: boolean;
  meta: string;
  /** Per feature, in info.json feature order: this episode's statistics. */
  stats: Record<string, FeatureStats>;
}

/** numpy's arithmetic for a column's statistics: its dtype promoted with float32. */
function precisionOf(f: Feature): StatsPrecision {
  return f.dtype === 'int64' || f.dtype === 'int32' || f.dtype === 'float64' ? 'float64' : 'float32';
}

export class LeRobotDatasetWriter {
  private state: WriterState = 'open';
  private readonly rows: EpisodeRow[] = [];
  private readonly tasks = new Map<string, number>();
  private readonly annotated: AnnotatedEpisode[] = [];
  private totalFrames = 0;
  private readonly features: Record<string, Feature>;

  private constructor(
    readonly root: string,
    readonly spec: DatasetSpec,
    private readonly staging: string,
    private readonly options: WriterOptions,
    private readonly encoders: Map<string, H264Encoder>,
    private readonly data: IncrementalParquetFile,
  ) {
    this.features = featuresFor(spec);
  }

  static async create(dir: string, spec: DatasetSpec, options: WriterOptions = {}): Promise<LeRobotDatasetWriter> {
    validateSpec(spec);
    if (options.priors !== undefined) {
      const p = options.priors;
      const sum = p.reduce((a, b) => a + b, 0);
      if (p.length !== spec.stageNames.length || p.some((x) => !(x > 0)) || Math.abs(sum - 1) > 1e-6)
        throw new StagewardError('SW_ERR_ANNOTATION_INVALID', `priors must be ${spec.stageNames.length} positive numbers summing to 1`);
    }
    await checkTarget(dir, options.overwrite ?? false, 'dataset');
    const staging = await makeStaging(dir);
    const encoders = new Map<string, H264Encoder>();
    try {
      for (const view of spec.views) {
        const path = join(staging, formatTemplate(VIDEO_PATH, { video_key: videoKey(view), chunk_index: 0, file_index: 0 }));
        await mkdir(join(path, '..'), { recursive: true });
        encoders.set(
          view,
          await H264Encoder.open(path, {
            width: spec.image.width,
            height: spec.image.height,
            fps: spec.fps,
            crf: options.crf,
            gopFrames: options.gopFrames,
            preset: options.preset,
          }),
        );
      }
      const dataPath = join(staging, formatTemplate(DATA_PATH, { chunk_index: 0, file_index: 0 }));
      await mkdir(join(dataPath, '..'), { recursive: true });
      const data = await IncrementalParquetFile.create(dataPath, dataSchema());
      return new LeRobotDatasetWriter(dir, spec, staging, options, encoders, data);
    } catch (err) {
      await Promise.all([...encoders.values()].map((e) => e.abort()));
      await removeStaging(staging);
      throw err;
    }
  }

  get episodeCount(): number {
    return this.rows.length;
  }

  /** Append one episode; returns its episode_index. A rejected episode (bad shapes) leaves the writer usable. */
  async addEpisode(ep: RecordedEpisode): Promise<number> {
    this.enter('addEpisode');
    const index = this.rows.length;
    let T: number;
    try {
      T = validateEpisode(ep, this.spec, index);
    } catch (err) {
      this.state = 'open'; // nothing was written: the writer stays usable
      throw err;
    }
    const taskIndex = this.tasks.get(ep.task) ?? this.tasks.size;
    let stats: Record<string, FeatureStats>;
    try {
      const images = await Promise.all(this.spec.views.map((view) => this.streamView(view, ep.frames[view]!)));
      const columns = this.episodeColumns(ep, index, taskIndex, T);
      await this.data.append(columns, T);
      stats = this.episodeStats(columns, new Map(this.spec.views.map((view, i) => [videoKey(view), images[i]!])));
    } catch (err) {
      await this.fail();
      throw err;
    }
    this.tasks.set(ep.task, taskIndex);
    this.rows.push({
      index,
      task: ep.task,
      length: T,
      from: this.totalFrames,
      videoFrom: this.totalFrames,
      subtasks: ep.subtasks,
      success: ep.success,
      meta: JSON.stringify(ep.meta ?? {}),
      stats,
    });
    this.annotated.push({ spans: ep.subtasks, length: T, label: `episode ${index}` });
    this.totalFrames += T;
    this.state = 'open';
    return index;
  }

  /** Close the videos, write the meta files, and move the dataset into place. */
  async finish(): Promise<DatasetSummary> {
    this.enter('finish');
    if (this.rows.length === 0) {
      this.state = 'open';
      throw new StagewardError(
        'SW_ERR_DATASET_STATE',
        'finish() with no episodes: a LeRobot dataset needs at least one (use abort() to discard)',
      );
    }
    try {
      await Promise.all([...this.encoders.values()].map((e) => e.close()));
      await this.data.finish();
      const priors =
        this.options.priors ?? temporalProportions(this.annotated, this.spec.stageNames, this.options.priorFloor ?? DEFAULT_PRIOR_FLOOR);
      const { map: priorMap, text: priorText } = priorsDocument(this.spec.stageNames, priors);
      const tasks = [...this.tasks.keys()];
      await this.writeEpisodes();
      await writeParquetTable(
        join(this.staging, TASKS_PATH),
        schemaOf([scalarColumn('task_index', 'INT64'), scalarColumn('task', 'STRING')]),
        [
          { name: 'task_index', data: BigInt64Array.from(tasks.map((_, i) => BigInt(i))) },
          { name: 'task', data: tasks },
        ],
        [
          {
            key: 'pandas',
            value: pandasIndexMetadata('task', [
              { name: 'task_index', pandasType: 'int64', numpyType: 'int64' },
              { name: 'task', pandasType: 'unicode', numpyType: 'object' },
            ]),
          },
        ],
      );
      await writeFileAtomic(join(this.staging, STATS_PATH), JSON.stringify(this.statsJson(), null, 4));
      await writeFileAtomic(join(this.staging, PRIORS_PATH), priorText);
      // The dense annotations are the sparse spans (see the header), so their priors are the same.
      await writeFileAtomic(join(this.staging, DENSE_PRIORS_PATH), priorText);
      const info = buildInfo(this.spec, { episodes: this.rows.length, frames: this.totalFrames, tasks: tasks.length });
      await writeFileAtomic(join(this.staging, INFO_PATH), JSON.stringify(info, null, 4));
      await commitStaging(this.staging, this.root, this.options.overwrite ?? false, 'dataset');
      this.state = 'finished';
      return { root: this.root, episodes: this.rows.length, frames: this.totalFrames, tasks, priors: priorMap };
    } catch (err) {
      await this.fail();
      throw err;
    }
  }

  /** Discard everything written so far; the target folder is never touched. */
  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    await this.fail();
    this.state = 'aborted';
  }

  private enter(what: string): void {
    if (this.state !== 'open') {
      const why = this.state === 'busy' ? 'while another call is running (await each call)' : `after the writer was ${this.state}`;
      throw new StagewardError('SW_ERR_DATASET_STATE', `${what}() ${why}`);
    }
    this.state = 'busy';
  }

  private async fail(): Promise<void> {
    this.state = 'failed';
    await Promise.all([...this.encoders.values()].map((e) => e.abort().catch(() => {})));
    await this.data.discard().catch(() => {});
    await removeStaging(this.staging);
  }

  /** Encode one view's frames; returns the view's statistics over the frames LeRobot samples. */
  private async streamView(view: string, frames: RecordedEpisode['frames'][string]): Promise<FeatureStats> {
    const encoder = this.encoders.get(view)!;
    const stats = new ImageEpisodeStats(this.spec.image.height, this.spec.image.width);
    const sampled = new Set(sampleIndices(frames.length));
    for (let t = 0; t < frames.length; t++) {
      if (sampled.has(t)) stats.addFrame(frames[t]!.data);
      await encoder.write(frames[t]!.data);
    }
    return stats.toJSON();
  }

  /** Every feature's statistics for one episode, in info.json feature order, from the columns as stored. */
  private episodeStats(columns: ColumnSource[], images: Map<string, FeatureStats>): Record<string, FeatureStats> {
    const data = new Map(columns.map((c) => [c.name, c.data as ArrayLike<unknown>]));
    const out: Record<string, FeatureStats> = {};
    for (const [key, feature] of Object.entries(this.features)) {
      const image = images.get(key);
      if (image) {
        out[key] = image;
        continue;
      }
      const col = data.get(key);
      if (col === undefined) continue;
      const rows = Array.from(col, (v) => (typeof v === 'object' && v !== null ? (v as ArrayLike<number>) : [Number(v)]));
      out[key] = vectorStats(rows, feature.shape[0] ?? 1, precisionOf(feature));
    }
    return out;
  }

  private episodeColumns(ep: RecordedEpisode, episodeIndex: number, taskIndex: number, T: number): ColumnSource[] {
    const fps = this.spec.fps;
    const ints = (f: (t: number) => number) => BigInt64Array.from({ length: T }, (_, t) => BigInt(f(t)));
    const floats = (f: (t: number) => number) => Float32Array.from({ length: T }, (_, t) => f(t));
    const cols = {
      action: ep.action.map((a) => Array.from(a)),
      'observation.state': ep.state.map((s) => Array.from(s)),
      timestamp: floats((t) => t / fps),
      frame_index: ints((t) => t),
      episode_index: ints(() => episodeIndex),
      index: ints((t) => this.totalFrames + t),
      task_index: ints(() => taskIndex),
      'next.reward': floats((t) => ep.reward[t]!),
      'next.done': Array.from({ length: T }, (_, t) => t === T - 1),
      [TRUE_STAGE_KEY]: ints((t) => ep.trueStage[t]!),
      [TRUE_PROGRESS_KEY]: floats((t) => ep.trueProgress[t]!),
    };
    return Object.entries(cols).map(([name, data]) => ({ name, data }));
  }

  private async writeEpisodes(): Promise<void> {
    const fps = this.spec.fps;
    const rows = this.rows;
    const i64 = (f: (r: EpisodeRow) => number) => BigInt64Array.from(rows, (r) => BigInt(f(r)));
    const columns: [ReturnType<typeof scalarColumn>, ColumnSource][] = [
      [scalarColumn('episode_index', 'INT64'), { name: 'episode_index', data: i64((r) => r.index) }],
      [listColumn('tasks', 'STRING'), { name: 'tasks', data: rows.map((r) => [r.task]) }],
      [scalarColumn('length', 'INT64'), { name: 'length', data: i64((r) => r.length) }],
      [scalarColumn('data/chunk_index', 'INT64'), { name: 'data/chunk_index', data: i64(() => 0) }],
      [scalarColumn('data/file_index', 'INT64'), { name: 'data/file_index', data: i64(() => 0) }],
      [scalarColumn('dataset_from_index', 'INT64'), { name: 'dataset_from_index', data: i64((r) => r.from) }],
      [scalarColumn('dataset_to_index', 'INT64'), { name: 'dataset_to_index', data: i64((r) => r.from + r.length) }],
    ];
    for (const view of this.spec.views) {
      const key = `videos/${videoKey(view)}`;
      columns.push(
        [scalarColumn(`${key}/chunk_index`, 'INT64'), { name: `${key}/chunk_index`, data: i64(() => 0) }],
        [scalarColumn(`${key}/file_index`, 'INT64'), { name: `${key}/file_index`, data: i64(() => 0) }],
        [
          scalarColumn(`${key}/from_timestamp`, 'DOUBLE'),
          { name: `${key}/from_timestamp`, data: Float64Array.from(rows, (r) => r.videoFrom / fps) },
        ],
        [
          scalarColumn(`${key}/to_timestamp`, 'DOUBLE'),
          { name: `${key}/to_timestamp`, data: Float64Array.from(rows, (r) => (r.videoFrom + r.length) / fps) },
        ],
      );
    }
    // stats/<feature>/<stat>, where LeRobot puts them (after the video columns): list<double> per
    // dimension, list<list<list<double>>> for a camera's [3, 1, 1], count list<int64>.
    for (const [feature, first] of Object.entries(rows[0]!.stats)) {
      for (const stat of STAT_KEYS) {
        const name = episodeStatsColumn(feature, stat);
        if (stat === 'count') {
          columns.push([listColumn(name, 'INT64'), { name, data: rows.map((r) => r.stats[feature]!.count.map((n) => BigInt(n))) }]);
        } else {
          const depth = Array.isArray((first[stat] as unknown[])[0]) ? 3 : 1;
          columns.push([listColumn(name, 'DOUBLE', depth), { name, data: rows.map((r) => r.stats[feature]![stat]) }]);
        }
      }
    }
    columns.push(
      [scalarColumn('meta/episodes/chunk_index', 'INT64'), { name: 'meta/episodes/chunk_index', data: i64(() => 0) }],
      [scalarColumn('meta/episodes/file_index', 'INT64'), { name: 'meta/episodes/file_index', data: i64(() => 0) }],
    );
    // The same spans as the sparse annotations and as the dense ones (see the header).
    for (const names of [SUBTASK_COLUMNS, DENSE_SUBTASK_COLUMNS])
      columns.push(
        ...subtaskColumns(
          names,
          rows.map((r) => r.subtasks),
          fps,
        ),
      );
    columns.push(
      [scalarColumn(SUCCESS_COLUMN, 'BOOLEAN'), { name: SUCCESS_COLUMN, data: rows.map((r) => r.success) }],
      [scalarColumn(META_COLUMN, 'STRING'), { name: META_COLUMN, data: rows.map((r) => r.meta) }],
    );
    const path = join(this.staging, formatTemplate(EPISODES_PATH, { chunk_index: 0, file_index: 0 }));
    await writeParquetTable(
      path,
      schemaOf(columns.map((c) => c[0])),
      columns.map((c) => c[1]),
    );
  }

  /** meta/stats.json: the episodes' statistics aggregated as LeRobot's aggregate_stats does (stats.ts). */
  private statsJson(): Record<string, FeatureStats> {
    return aggregateFeatures(this.rows.map((r) => r.stats));
  }
}

/** The column names of one set of subtask annotations: `SUBTASK_COLUMNS`, `DENSE_SUBTASK_COLUMNS` or the legacy ones. */
export type SubtaskColumnNames = Record<keyof typeof SUBTASK_COLUMNS, string>;

/** One episode's spans as the values of its five annotation cells: names, inclusive frames, and those frames in seconds (frame / fps). */
export function subtaskCells(
  spans: readonly SubtaskSpan[],
  fps: number,
): { names: string[]; startFrames: number[]; endFrames: number[]; startTimes: number[]; endTimes: number[] } {
  return {
    names: spans.map((s) => s.name),
    startFrames: spans.map((s) => s.start),
    endFrames: spans.map((s) => s.end),
    startTimes: spans.map((s) => s.start / fps),
    endTimes: spans.map((s) => s.end / fps),
  };
}

/**
 * The five annotation columns named by `names` of the episodes table, one cell per row of `rows`
 * (null: that episode has no annotations, a null cell), as LeRobot's annotation tool types them:
 * list<string> names, list<int64> frames, list<double> seconds.
 */
export function subtaskColumns(
  names: SubtaskColumnNames,
  rows: readonly (readonly SubtaskSpan[] | null)[],
  fps: number,
): [SchemaElement[], ColumnSource][] {
  const cells = rows.map((spans) => (spans === null ? null : subtaskCells(spans, fps)));
  const column = (key: keyof SubtaskColumnNames, leaf: 'STRING' | 'INT64' | 'DOUBLE'): [SchemaElement[], ColumnSource] => {
    const data = cells.map((c) => (c === null ? null : leaf === 'INT64' ? (c[key] as number[]).map((n) => BigInt(n)) : c[key]));
    return [listColumn(names[key], leaf), { name: names[key], data }];
  };
  return [
    column('names', 'STRING'),
    column('startFrames', 'INT64'),
    column('endFrames', 'INT64'),
    column('startTimes', 'DOUBLE'),
    column('endTimes', 'DOUBLE'),
  ];
}

/** The SARM priors {stage: a_k} in stage order, and the text of the temporal_proportions_*.json files holding them. */
export function priorsDocument(stageNames: readonly string[], priors: readonly number[]): { map: Record<string, number>; text: string } {
  const map = Object.fromEntries(stageNames.map((name, k) => [name, priors[k]!]));
  return { map, text: JSON.stringify(map, null, 2) };
}

/** Data parquet columns, in info.json feature order (video features live in the mp4 files). */
function dataSchema() {
  return schemaOf([
    listColumn('action', 'FLOAT'),
    listColumn('observation.state', 'FLOAT'),
    scalarColumn('timestamp', 'FLOAT'),
    scalarColumn('frame_index', 'INT64'),
    scalarColumn('episode_index', 'INT64'),
    scalarColumn('index', 'INT64'),
    scalarColumn('task_index', 'INT64'),
    scalarColumn('next.reward', 'FLOAT'),
    scalarColumn('next.done', 'BOOLEAN'),
    scalarColumn(TRUE_STAGE_KEY, 'INT64'),
    scalarColumn(TRUE_PROGRESS_KEY, 'FLOAT'),
  ]);
}

const VIEW_NAME = /^[A-Za-z0-9_-]+$/;

export function validateSpec(spec: DatasetSpec): void {
  const bad = (msg: string) => new StagewardError('SW_ERR_DATASET_SPEC', msg);
  if (typeof spec.robotType !== 'string' || spec.robotType.length === 0) throw bad('robotType must be a non-empty string');
  if (!(spec.fps > 0) || !Number.isFinite(spec.fps)) throw bad(`fps must be a positive number, got ${spec.fps}`);
  if (!Array.isArray(spec.views) || spec.views.length === 0) throw bad('views must name at least one camera');
  for (const v of spec.views)
    if (!VIEW_NAME.test(v))
      throw bad(`view "${v}" must be letters, digits, "_" or "-" (it becomes observation.images.${v} and a folder name)`);
  if (new Set(spec.views).size !== spec.views.length) throw bad(`views repeat a name: ${spec.views.join(', ')}`);
  const { height, width } = spec.image;
  if (![height, width].every((n) => Number.isInteger(n) && n >= 2 && n % 2 === 0))
    throw bad(`image size must be even integers >= 2 (H.264 yuv420p), got ${height}x${width}`);
  if (spec.stageNames.length === 0 || new Set(spec.stageNames).size !== spec.stageNames.length)
    throw bad('stageNames must be non-empty and unique');
  if (spec.stateNames.length === 0 || spec.actionNames.length === 0) throw bad('stateNames and actionNames must be non-empty');
}

/** Check an episode against the spec before anything is written; returns its length T. */
function validateEpisode(ep: RecordedEpisode, spec: DatasetSpec, index: number): number {
  const bad = (msg: string) => new StagewardError('SW_ERR_DATASET_EPISODE', `episode ${index}: ${msg}`);
  if (typeof ep.task !== 'string' || ep.task.length === 0) throw bad('task must be a non-empty string');
  const T = ep.state.length;
  if (T === 0) throw bad('has no frames');
  const lengths: [string, number][] = [
    ['action', ep.action.length],
    ['reward', ep.reward.length],
    ['trueStage', ep.trueStage.length],
    ['trueProgress', ep.trueProgress.length],
  ];
  for (const [name, n] of lengths) if (n !== T) throw bad(`${name} has ${n} entries, state has ${T}`);
  for (const key of Object.keys(ep.frames))
    if (!spec.views.includes(key))
      throw new StagewardError(
        'SW_ERR_DATASET_VIEW',
        `episode ${index}: view "${key}" is not one of the dataset's views ${spec.views.join(', ')}`,
      );
  for (const view of spec.views) {
    const frames = ep.frames[view];
    if (!frames) throw new StagewardError('SW_ERR_DATASET_VIEW', `episode ${index}: missing view "${view}"`);
    if (frames.length !== T) throw bad(`view "${view}" has ${frames.length} frames, state has ${T}`);
    frames.forEach((f, t) => {
      if (f.height !== spec.image.height || f.width !== spec.image.width || f.channels !== 3 || f.data.length !== f.height * f.width * 3) {
        throw bad(
          `view "${view}" frame ${t} is ${f.height}x${f.width}x${f.channels} (${f.data.length} bytes), expected ${spec.image.height}x${spec.image.width}x3`,
        );
      }
    });
  }
  for (let t = 0; t < T; t++) {
    if (ep.state[t]!.length !== spec.stateNames.length)
      throw bad(`state ${t} has ${ep.state[t]!.length} values, expected ${spec.stateNames.length}`);
    if (ep.action[t]!.length !== spec.actionNames.length)
      throw bad(`action ${t} has ${ep.action[t]!.length} values, expected ${spec.actionNames.length}`);
    if (!Number.isFinite(ep.reward[t])) throw bad(`reward ${t} is not a finite number`);
    const k = ep.trueStage[t]!;
    if (!Number.isInteger(k) || k < 0 || k >= spec.stageNames.length)
      throw bad(`trueStage ${t} is ${k}, not a stage index below ${spec.stageNames.length}`);
  }
  validateSpans(ep.subtasks, T, spec.stageNames, `episode ${index}`);
  return T;
}

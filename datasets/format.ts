// The LeRobot v3.0 layout as data: paths and their templates, meta/info.json fields (in the order a
// real dataset writes them, see test/fixtures/lerobot-v3.0-info.json), feature keys and the parquet
// schema pieces the writer needs. Shared by writer.ts and reader.ts; no I/O here.
//
// stageward's additions, all ignored by LeRobot's loaders and policies:
// - data columns `annotation.true_stage` (int64) and `annotation.true_progress` (float32): the
//   simulator's ground truth per frame. Deliberately not `observation.*`: LeRobot turns every
//   `observation.*` feature into a policy input, and a policy must not see the answer.
// - episode columns `success` (bool) and `stageward/meta` (JSON of RecordedEpisode.meta).
// LeRobot's own optional pieces that stageward writes:
// - episode columns `sparse_subtask_*` and `dense_subtask_*` (SARM annotations as LeRobot's annotation
//   tool writes them; SARM's `dense_only` and `dual` modes read the dense ones) and
//   `stats/<feature>/<stat>` (each episode's feature statistics, datasets/stats.ts).
// - meta/temporal_proportions_sparse.json and meta/temporal_proportions_dense.json: the SARM stage
//   priors {name: a_k}, in stage order.

import type { SchemaElement } from 'hyparquet-writer';
import type { DatasetSpec } from './types.ts';

export const CODEBASE_VERSION = 'v3.0';
export const CHUNKS_SIZE = 1000;
export const DATA_FILES_SIZE_IN_MB = 100;
export const VIDEO_FILES_SIZE_IN_MB = 200;
export const DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
export const VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4';
export const EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
export const INFO_PATH = 'meta/info.json';
export const STATS_PATH = 'meta/stats.json';
export const TASKS_PATH = 'meta/tasks.parquet';
export const PRIORS_PATH = 'meta/temporal_proportions_sparse.json';
export const DENSE_PRIORS_PATH = 'meta/temporal_proportions_dense.json';
export const IMAGE_KEY_PREFIX = 'observation.images.';

export const TRUE_STAGE_KEY = 'annotation.true_stage';
export const TRUE_PROGRESS_KEY = 'annotation.true_progress';
export const SUBTASK_COLUMNS = {
  names: 'sparse_subtask_names',
  startFrames: 'sparse_subtask_start_frames',
  endFrames: 'sparse_subtask_end_frames',
  startTimes: 'sparse_subtask_start_times',
  endTimes: 'sparse_subtask_end_times',
} as const;
/** SARM's dense annotations (`annotation_mode` `dense_only` and `dual`); same types as the sparse ones. */
export const DENSE_SUBTASK_COLUMNS = {
  names: 'dense_subtask_names',
  startFrames: 'dense_subtask_start_frames',
  endFrames: 'dense_subtask_end_frames',
  startTimes: 'dense_subtask_start_times',
  endTimes: 'dense_subtask_end_times',
} as const;
/** Older LeRobot annotation columns, read as a fallback. */
export const LEGACY_SUBTASK_COLUMNS = {
  names: 'subtask_names',
  startFrames: 'subtask_start_frames',
  endFrames: 'subtask_end_frames',
  startTimes: 'subtask_start_times',
  endTimes: 'subtask_end_times',
} as const;
export const SUCCESS_COLUMN = 'success';
export const META_COLUMN = 'stageward/meta';
/** The episode column of one statistic of one feature, as LeRobot flattens episode stats. */
export function episodeStatsColumn(feature: string, stat: string): string {
  return `stats/${feature}/${stat}`;
}

export type FeatureDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'video' | 'image' | 'string';

export interface VideoFeatureInfo {
  'video.height': number;
  'video.width': number;
  'video.codec': string;
  'video.pix_fmt': string;
  'video.is_depth_map': boolean;
  'video.fps': number;
  'video.channels': number;
  has_audio: boolean;
}

export interface Feature {
  dtype: FeatureDtype;
  shape: number[];
  names: string[] | null;
  info?: VideoFeatureInfo;
}

export interface LeRobotInfo {
  codebase_version: string;
  robot_type: string | null;
  total_episodes: number;
  total_frames: number;
  total_tasks: number;
  chunks_size: number;
  data_files_size_in_mb: number;
  video_files_size_in_mb: number;
  fps: number;
  splits: Record<string, string>;
  data_path: string;
  video_path: string | null;
  features: Record<string, Feature>;
}

export function videoKey(view: string): string {
  return `${IMAGE_KEY_PREFIX}${view}`;
}

/** A view's name from its feature key (`observation.images.top` -> `top`); other keys as they are. */
export function viewOfKey(key: string): string {
  return key.startsWith(IMAGE_KEY_PREFIX) ? key.slice(IMAGE_KEY_PREFIX.length) : key;
}

/** Python str.format for the templates above: `{name}` and `{name:03d}`. */
export function formatTemplate(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{([a-z_]+)(?::0(\d+)d)?\}/g, (whole, name: string, width?: string) => {
    const v = values[name];
    if (v === undefined) return whole;
    return width !== undefined ? String(v).padStart(Number(width), '0') : String(v);
  });
}

/** info.json features for a spec, in LeRobot's order: action, state, images, then the index columns. */
export function featuresFor(spec: DatasetSpec, codec = 'h264', pixFmt = 'yuv420p'): Record<string, Feature> {
  const features: Record<string, Feature> = {
    action: { dtype: 'float32', shape: [spec.actionNames.length], names: [...spec.actionNames] },
    'observation.state': { dtype: 'float32', shape: [spec.stateNames.length], names: [...spec.stateNames] },
  };
  for (const view of spec.views) {
    features[videoKey(view)] = {
      dtype: 'video',
      shape: [spec.image.height, spec.image.width, 3],
      names: ['height', 'width', 'channels'],
      info: {
        'video.height': spec.image.height,
        'video.width': spec.image.width,
        'video.codec': codec,
        'video.pix_fmt': pixFmt,
        'video.is_depth_map': false,
        'video.fps': spec.fps,
        'video.channels': 3,
        has_audio: false,
      },
    };
  }
  const scalar = (dtype: FeatureDtype): Feature => ({ dtype, shape: [1], names: null });
  features.timestamp = scalar('float32');
  features.frame_index = scalar('int64');
  features.episode_index = scalar('int64');
  features.index = scalar('int64');
  features.task_index = scalar('int64');
  features['next.reward'] = scalar('float32');
  features['next.done'] = scalar('bool');
  features[TRUE_STAGE_KEY] = scalar('int64');
  features[TRUE_PROGRESS_KEY] = scalar('float32');
  return features;
}

export function buildInfo(spec: DatasetSpec, totals: { episodes: number; frames: number; tasks: number }): LeRobotInfo {
  return {
    codebase_version: CODEBASE_VERSION,
    robot_type: spec.robotType,
    total_episodes: totals.episodes,
    total_frames: totals.frames,
    total_tasks: totals.tasks,
    chunks_size: CHUNKS_SIZE,
    data_files_size_in_mb: DATA_FILES_SIZE_IN_MB,
    video_files_size_in_mb: VIDEO_FILES_SIZE_IN_MB,
    fps: spec.fps,
    splits: { train: `0:${totals.episodes}` },
    data_path: DATA_PATH,
    video_path: VIDEO_PATH,
    features: featuresFor(spec),
  };
}

// ------------------------------------------------------------------------------------ parquet schema

type Leaf = 'FLOAT' | 'DOUBLE' | 'INT64' | 'BOOLEAN' | 'STRING';

/** A flat column: one value per row. */
export function scalarColumn(name: string, leaf: Leaf): SchemaElement[] {
  return leaf === 'STRING'
    ? [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }]
    : [{ name, type: leaf, repetition_type: 'OPTIONAL' }];
}

/**
 * A list column in the 3-level layout pyarrow writes (`list<element: T>`); `depth` > 1 nests lists
 * (`list<element: list<element: T>>`), as pyarrow writes a camera's [3, 1, 1] statistics.
 */
export function listColumn(name: string, leaf: Leaf, depth = 1): SchemaElement[] {
  const inner: SchemaElement[] =
    depth > 1
      ? listColumn('element', leaf, depth - 1)
      : [
          leaf === 'STRING'
            ? { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }
            : { name: 'element', type: leaf, repetition_type: 'OPTIONAL' },
        ];
  return [
    { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    ...inner,
  ];
}

/** The root element plus each column's elements, as hyparquet-writer takes an explicit schema. */
export function schemaOf(columns: SchemaElement[][]): SchemaElement[] {
  return [{ name: 'root', num_children: columns.length }, ...columns.flat()];
}

/**
 * pandas metadata that makes `pd.read_parquet` restore `indexColumn` as the DataFrame's index, as
 * LeRobot's tasks.parquet has it (task strings as the index, `task_index` as the column).
 */
export function pandasIndexMetadata(indexColumn: string, columns: { name: string; pandasType: string; numpyType: string }[]): string {
  return JSON.stringify({
    index_columns: [indexColumn],
    column_indexes: [{ name: null, field_name: null, pandas_type: 'unicode', numpy_type: 'object', metadata: { encoding: 'UTF-8' } }],
    columns: columns.map((c) => ({ name: c.name, field_name: c.name, pandas_type: c.pandasType, numpy_type: c.numpyType, metadata: null })),
    creator: { library: 'stageward', version: '0.1.0' },
    pandas_version: '2.2.3',
  });
}

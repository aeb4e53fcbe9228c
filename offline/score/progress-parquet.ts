// `sarm_progress.parquet` in a dataset's root, the file LeRobot's RA-BC training reads
// (`lerobot-train --sample_weighting.type=rabc`, RABCWeights in lerobot/rewards/sarm/rabc.py):
//
//   index           int64    global frame index (the data parquet's `index`)
//   episode_index   int64
//   frame_index     int64
//   progress_sparse float32  SARM progress (the engine's causal Phi from the SARM head)
//   progress_dense  float32  GRM fused progress, with --dense (our GRM head plays LeRobot's "dense"
//                            head: a finer-grained progress from a second head); kept when the
//                            previous file had it
//   progress_uncertainty float32  the SARM head's uncertainty of progress_sparse (an ensemble
//                            package's std over its members), when the model reports one; kept
//                            when the previous file had it. LeRobot ignores the extra column.
//
// One row per frame of the whole dataset, in index order, as LeRobot's compute_rabc_weights writes
// it. Frames of episodes not scored (failed, or not selected) are null (pandas reads NaN, which
// RABCWeights skips: such frames get the fallback weight); when a sarm_progress.parquet is already
// there, its values for the episodes not scored this time are kept, so a dataset can be scored in
// parts. Written atomically (temporary sibling + rename).
//
// Key-value metadata, as LeRobot's SARM scorer (compute_rabc_weights.py) writes it: `reward_model_path`,
// the model that produced the values (`rewardModelPath`; when not given, the one recorded in the
// previous file, which is how LeRobot's scorer finds its model again). Nothing else, and no
// timestamps, so the same values give the same bytes (a merged sharded run equals one run).

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ColumnSource } from 'hyparquet-writer';
import { StagewardError } from '../../core/errors.ts';
import type { LeRobotDataset } from '../../datasets/reader.ts';
import { scalarColumn, schemaOf } from '../../datasets/format.ts';
import { readParquetRows, writeParquetTable } from '../../datasets/parquet-file.ts';

export const SARM_PROGRESS_FILE = 'sarm_progress.parquet';
/** The key-value metadata key naming the reward model, LeRobot's. */
export const REWARD_MODEL_PATH_KEY = 'reward_model_path';

export interface ProgressFileOptions {
  /** The reward model's path, written as `reward_model_path`. */
  rewardModelPath?: string;
}

export interface ScoredEpisodeProgress {
  episode: number;
  /** Global index of each frame. */
  index: number[];
  sparse: readonly number[];
  /** GRM progress when GRM ran for the episode, else null. */
  dense: readonly number[] | null;
  /** The SARM head's uncertainty when the model reports one, else null (or absent). */
  uncertainty?: readonly number[] | null;
}

export interface ProgressFileResult {
  path: string;
  rows: number;
  /** Episodes whose values came from this run, and from the file that was there before. */
  scoredEpisodes: number;
  keptEpisodes: number;
}

type Values = { sparse: number | null; dense: number | null; uncertainty: number | null };

async function previousValues(path: string): Promise<{ values: Map<number, Values>; modelPath: string | null }> {
  try {
    await stat(path);
  } catch {
    return { values: new Map(), modelPath: null };
  }
  const { rows, columns, metadata } = await readParquetRows(path, {
    columns: ['index', 'progress_sparse', 'progress_dense', 'progress_uncertainty'],
  });
  if (!columns.includes('index'))
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} has no "index" column; move it away to write a new one`);
  const num = (v: unknown) => (v === null || v === undefined || Number.isNaN(Number(v)) ? null : Number(v));
  const values = new Map(
    rows.map((r) => [
      Number(r.index),
      { sparse: num(r.progress_sparse), dense: num(r.progress_dense), uncertainty: num(r.progress_uncertainty) },
    ]),
  );
  const modelPath = metadata.key_value_metadata?.find((kv) => kv.key === REWARD_MODEL_PATH_KEY)?.value ?? null;
  return { values, modelPath };
}

/** Write (or update) `<dataset root>/sarm_progress.parquet` from this run's episodes. */
export async function writeProgressParquet(
  ds: LeRobotDataset,
  scored: readonly ScoredEpisodeProgress[],
  dense: boolean,
  options: ProgressFileOptions = {},
): Promise<ProgressFileResult> {
  const path = join(ds.root, SARM_PROGRESS_FILE);
  const { values: previous, modelPath: previousModelPath } = await previousValues(path);
  const modelPath = options.rewardModelPath ?? previousModelPath;
  const byEpisode = new Map(scored.map((s) => [s.episode, s]));
  const index: bigint[] = [];
  const episode: bigint[] = [];
  const frame: bigint[] = [];
  const sparse: (number | null)[] = [];
  const denseCol: (number | null)[] = [];
  const uncertaintyCol: (number | null)[] = [];
  let kept = 0;
  for (const ep of ds.episodes) {
    const mine = byEpisode.get(ep.index);
    let fromBefore = false;
    for (let t = 0; t < ep.length; t++) {
      const gi = mine ? mine.index[t]! : ep.datasetFrom + t;
      index.push(BigInt(gi));
      episode.push(BigInt(ep.index));
      frame.push(BigInt(t));
      if (mine) {
        sparse.push(Math.fround(mine.sparse[t]!));
        denseCol.push(mine.dense ? Math.fround(mine.dense[t]!) : null);
        uncertaintyCol.push(mine.uncertainty ? Math.fround(mine.uncertainty[t]!) : null);
      } else {
        const old = previous.get(gi);
        sparse.push(old?.sparse ?? null);
        denseCol.push(old?.dense ?? null);
        uncertaintyCol.push(old?.uncertainty ?? null);
        if (old && (old.sparse !== null || old.dense !== null)) fromBefore = true;
      }
    }
    if (fromBefore) kept++;
  }
  const columns: [ReturnType<typeof scalarColumn>, ColumnSource][] = [
    [scalarColumn('index', 'INT64'), { name: 'index', data: BigInt64Array.from(index) }],
    [scalarColumn('episode_index', 'INT64'), { name: 'episode_index', data: BigInt64Array.from(episode) }],
    [scalarColumn('frame_index', 'INT64'), { name: 'frame_index', data: BigInt64Array.from(frame) }],
    [scalarColumn('progress_sparse', 'FLOAT'), { name: 'progress_sparse', data: sparse }],
  ];
  // The column is there when asked for, or when the file had it (then this run's GRM values, if GRM ran, else null).
  if (dense || [...previous.values()].some((v) => v.dense !== null))
    columns.push([scalarColumn('progress_dense', 'FLOAT'), { name: 'progress_dense', data: denseCol }]);
  // Likewise: there when this run's model reports uncertainty, or when the file had the column.
  if (scored.some((s) => s.uncertainty) || [...previous.values()].some((v) => v.uncertainty !== null))
    columns.push([scalarColumn('progress_uncertainty', 'FLOAT'), { name: 'progress_uncertainty', data: uncertaintyCol }]);
  await writeParquetTable(
    path,
    schemaOf(columns.map((c) => c[0])),
    columns.map((c) => c[1]),
    modelPath === null ? undefined : [{ key: REWARD_MODEL_PATH_KEY, value: modelPath }],
  );
  return { path, rows: index.length, scoredEpisodes: scored.length, keptEpisodes: kept };
}

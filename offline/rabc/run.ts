// One RA-BC filtering run over a LeRobot v3.0 dataset (what `stageward rabc` runs): read its per-frame
// progress scores (sarm_progress.parquet, as `stageward score` writes it), weight each sample by the
// progress it makes over the policy's action chunk (weights.ts), and write, atomically:
//   <dataset>/rabc_weights.parquet   index, episode_index, frame_index, delta, weight
//   <dataset>/rabc_filtered.json     kept / dropped frames per episode as index ranges, mean weight
//                                    per episode, the episodes filtered out entirely
//   <out>/rabc_stats.json            mean weight, shares, delta mean/std, mu, sigma, kappa, chunk, counts
//   <out>/rabc_weights_hist.png      histograms of the weights and of the deltas
//
//   const run = await runRabc({ dataset: 'pp-demo', chunk: 10 });
//   run.stats.mean_weight

import { basename, join, resolve } from 'node:path';
import { LeRobotDataset } from '../../datasets/reader.ts';
import {
  FILTERED_FILE,
  HISTOGRAM_FILE,
  PROGRESS_FILE,
  readProgress,
  STATS_FILE,
  WEIGHTS_FILE,
  writeFilteredList,
  writeHistogram,
  writeJson,
  writeRabcWeights,
  type AlignedProgress,
  type ProgressColumn,
} from './files.ts';
import { filteredList, type FilteredList } from './report.ts';
import { rabcWeights, resolveRabcOptions, type RabcResult } from './weights.ts';

/** The progress column RA-BC weights by default: SARM's. */
export const DEFAULT_PROGRESS_COLUMN: ProgressColumn = 'progress_sparse';

export interface RabcRunOptions {
  /** LeRobot v3.0 dataset folder (the weights and the filtered list are written into it). */
  dataset: string;
  /** The action-chunk length H in frames; checked by resolveRabcOptions (SW_ERR_RABC_OPTION). */
  chunk: number;
  /** Deltas above this get full weight; default DEFAULT_KAPPA. */
  kappa?: number;
  /** Progress parquet; default <dataset>/sarm_progress.parquet. */
  progress?: string;
  /** Default DEFAULT_PROGRESS_COLUMN. */
  column?: ProgressColumn;
  /** Folder for the stats and the histogram; default rabc-<dataset name> in the current folder. */
  out?: string;
  /** Write the histogram PNG; default true. */
  plot?: boolean;
}

export interface RabcRunSetup {
  /** The dataset root, absolute. */
  root: string;
  episodes: number;
  column: ProgressColumn;
  progressPath: string;
  chunk: number;
  kappa: number;
  out: string;
}

/** rabc_stats.json's figures (without its paths and timestamp); `stageward rabc`'s last stdout line. */
export type RabcRunStats = RabcResult['stats'] & {
  column: ProgressColumn;
  episodes: number;
  filtered_episodes: number;
  unscored_episodes: number;
  kept_samples: number;
  dropped_samples: number;
  progress_rows: number;
};

export interface RabcRunResult extends RabcRunSetup {
  aligned: AlignedProgress;
  result: RabcResult;
  list: FilteredList;
  stats: RabcRunStats;
  files: { weights: string; filtered: string; stats: string; histogram: string | null };
}

export async function runRabc(o: RabcRunOptions, hooks: { onSetup?: (setup: RabcRunSetup) => void } = {}): Promise<RabcRunResult> {
  const options = resolveRabcOptions({ chunk: o.chunk, ...(o.kappa !== undefined ? { kappa: o.kappa } : {}) }); // fail before reading anything
  const column = o.column ?? DEFAULT_PROGRESS_COLUMN;
  const plot = o.plot ?? true;
  const ds = await LeRobotDataset.open(o.dataset);
  const progressPath = resolve(o.progress ?? join(ds.root, PROGRESS_FILE));
  const out = resolve(o.out ?? `rabc-${basename(ds.root)}`);
  const setup: RabcRunSetup = {
    root: ds.root,
    episodes: ds.episodes.length,
    column,
    progressPath,
    chunk: options.chunk,
    kappa: options.kappa,
    out,
  };
  hooks.onSetup?.(setup);

  const extents = ds.episodes.map((e) => ({ index: e.index, datasetFrom: e.datasetFrom, length: e.length }));
  const aligned = await readProgress(progressPath, extents, column);
  const result = rabcWeights(aligned.progress, options);
  const list = filteredList(result, aligned.episodes, { progressFile: progressPath, column });

  const weightsPath = join(ds.root, WEIGHTS_FILE);
  const filteredPath = join(ds.root, FILTERED_FILE);
  const statsPath = join(out, STATS_FILE);
  const histogramPath = plot ? join(out, HISTOGRAM_FILE) : null;
  await writeRabcWeights(weightsPath, aligned.episodes, result);
  await writeFilteredList(filteredPath, list);
  const stats: RabcRunStats = {
    ...result.stats,
    column,
    episodes: aligned.episodes.length,
    filtered_episodes: list.filtered_episodes.length,
    unscored_episodes: aligned.unscoredEpisodes.length,
    kept_samples: list.kept_samples,
    dropped_samples: list.dropped_samples,
    progress_rows: aligned.rows,
  };
  await writeJson(statsPath, {
    ...stats,
    dataset: ds.root,
    progress_file: progressPath,
    files: { weights: weightsPath, filtered: filteredPath, ...(histogramPath !== null ? { histogram: histogramPath } : {}) },
    created_at: new Date().toISOString(),
  });
  if (histogramPath !== null)
    await writeHistogram(histogramPath, {
      title: `RA-BC on ${basename(ds.root)} (${column}, chunk ${options.chunk}, kappa ${options.kappa})`,
      result,
    });
  return {
    ...setup,
    aligned,
    result,
    list,
    stats,
    files: { weights: weightsPath, filtered: filteredPath, stats: statsPath, histogram: histogramPath },
  };
}
